"""授权管理, 运行与血缘 and 异议 driven through AppTest on the seeded console ledger, every role.

On top of `tests/console_seed.py` this seeds, through the project's own functions where they
exist: two more grants (one back-dated to have expired, one not yet valid), the published run's
lineage as the pipeline records it (datasets written to the real lake, their ledger rows and the
stage runs), a batch file, a bank's watchlist, and objections raised and resolved with
`pdo.delivery.objections` (whose alerts reach the watching bank).
"""

from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from pdo.delivery.objections import (
    Redact,
    objection_redactor,
    raise_objection,
    resolve_objection,
)
from pdo.delivery.watchlists import NewMember, add_members, create_watchlist
from pdo.lake import Lake, Manifest
from pdo.ledger.db import make_engine, session_scope
from pdo.ledger.models import (
    Alert,
    AuditEvent,
    Authorization,
    BatchFile,
    DatasetVersion,
    Objection,
    PipelineRun,
    ProductVersion,
    ServedScore,
    StageRun,
    Subscriber,
    UsageEvent,
)
from pdo.ledger.types import utcnow
from pdo.privacy.checksums import uscc_check_char
from pdo.privacy.entity_key import entity_key
from pdo.privacy.pseudonym import Pseudonymizer
from pdo.registration import grant_authorization
from pdo.settings import Settings
from tests.console_seed import CALLS, PASSWORD, PRICE_FEN, Seed, seed_console

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboard" / "app.py"
ROLES = ("olga", "rita", "regina")  # operator, reviewer, regulator
PAGES = ("authorizations", "lineage", "objections")


def _code(first17: str) -> str:
    return first17 + uscc_check_char(first17)


COMPANY_A = _code("91310000MA1K00001")
COMPANY_B = _code("91310000MA1K00002")
INDIVIDUAL = _code("92310000MA1K00003")  # a 个体工商户: shown by its pseudonym only
# (raised, resolved) in UTC; 2026-01-05 is a Monday in Beijing
OBJECTIONS = {
    COMPANY_A: ("tax_credit:2023", dt.datetime(2026, 1, 5, 2, tzinfo=dt.UTC), 2.0),
    COMPANY_B: ("tax_credit:2024", dt.datetime(2026, 1, 6, 2, tzinfo=dt.UTC), 6.0),
    INDIVIDUAL: ("tax_credit:2022", dt.datetime(2026, 1, 13, 2, tzinfo=dt.UTC), None),
}
REASONS = {"expect_column_values_to_be_valid_uscc(uscc)": 2, "missing required uscc": 1}


@dataclass(frozen=True)
class Governance:
    """The seed plus what this file added, and the figures the pages must show for it."""

    seed: Seed
    published_run_id: str
    grant_id: str  # 授权〔2026〕2号, active, with revenue terms
    expired_id: str
    datasets: dict[str, str]  # role in the lineage → dataset id
    pseudonym: str  # the individual's entity key
    objection_ids: dict[str, str]  # uscc → objection id


def _use_home(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    monkeypatch.setenv("PDO_HOME", str(home))
    monkeypatch.delenv("PDO_DATABASE_URL", raising=False)
    monkeypatch.setenv("PDO_CONSOLE_CONTINUES_RUNS", "false")


def _record(s: Session, m: Manifest, lake: Lake) -> None:
    """A dataset's ledger row, as `flows.stages.record_dataset` writes it."""
    s.add(DatasetVersion.of(m, lake.dir_for(m)))


def _frame(n: int, start: int = 0) -> pl.DataFrame:
    return pl.DataFrame({"uscc": [f"91310000MA1K{i:05d}X" for i in range(start, start + n)]})


def _seed_lineage(s: Session, lake: Lake, run_id: str, pseudo: Pseudonymizer) -> dict[str, str]:
    """The published run's tax_credit path through the lake, recorded like the pipeline does;
    its desensitized table holds the records the objections name."""
    file_sha = "f" * 64
    started = dt.datetime(2025, 12, 6, 2, tzinfo=dt.UTC)
    raw = lake.write(
        _frame(8), table="tax_credit", zone="raw", stage="ingest", parents=[f"file:{file_sha}"]
    )
    q_ingest = lake.write(
        _frame(1, 100),
        table="tax_credit",
        zone="quarantine",
        stage="ingest",
        parents=[f"file:{file_sha}"],
    )
    passed = lake.write(
        _frame(6), table="tax_credit", zone="raw", stage="validate", parents=[raw.id]
    )
    q_valid = lake.write(
        _frame(2, 200), table="tax_credit", zone="quarantine", stage="validate", parents=[raw.id]
    )
    objected = [
        (entity_key(code, pseudo), int(item[-4:])) for code, (item, _, _) in OBJECTIONS.items()
    ]
    desensitized = lake.write(
        pl.DataFrame(
            {
                "uscc": [key for key, _ in objected] + _frame(3)["uscc"].to_list(),
                "year": [year for _, year in objected] + [2024] * 3,
                "grade": ["A"] * 6,
            }
        ),
        table="tax_credit",
        zone="desensitized",
        stage="desensitize",
        parents=[passed.id],
    )
    product = lake.write(
        _frame(6).with_columns(pl.lit(600).alias("score")),
        table="credit_risk",
        zone="product",
        stage="package",
        parents=[desensitized.id],
    )
    for m in (raw, q_ingest, passed, q_valid, desensitized, product):
        _record(s, m, lake)
    stages = [
        ("ingest", "tax_credit", 9, 8, 1, [file_sha], [raw.id, q_ingest.id],
         {"reasons": {"missing required uscc": 1}}, 12.5),
        ("validate_raw", "tax_credit", 8, 6, 2, [raw.id], [passed.id, q_valid.id],
         {"reasons": {"expect_column_values_to_be_valid_uscc(uscc)": 2}}, 3.25),
        ("desensitize", "tax_credit", 6, 6, 0, [passed.id], [desensitized.id], {}, 4.0),
        ("package", "credit_risk", 6, 6, 0, [desensitized.id], [product.id], {}, 20.0),
    ]  # fmt: skip
    for i, (stage, name, rows_in, rows_out, rows_q, ins, outs, details, secs) in enumerate(stages):
        begin = started + dt.timedelta(minutes=i)
        s.add(
            StageRun(
                run_id=run_id,
                stage=stage,
                table_name=name,
                status="succeeded",
                rows_in=rows_in,
                rows_out=rows_out,
                rows_quarantined=rows_q,
                input_hashes=ins,
                output_hashes=outs,
                details=details,
                started_at=begin,
                finished_at=begin + dt.timedelta(seconds=secs),
            )
        )
    version = s.get(ProductVersion, "credit_risk@1")
    assert version is not None
    version.input_hashes, version.output_hash = [desensitized.id], product.id
    s.add(version)
    return {
        "raw": raw.id,
        "passed": passed.id,
        "quarantine": q_valid.id,
        "desensitized": desensitized.id,
        "product": product.id,
    }


def _seed_governance(home: Path) -> Governance:
    seed = seed_console(home)
    settings = Settings(home=home)
    engine = make_engine(settings.db_url)
    lake = Lake(settings.lake_dir)
    pseudo = Pseudonymizer.from_settings(settings)
    try:
        with session_scope(engine) as s:
            grant = grant_authorization(
                s,
                reference="授权〔2026〕2号",
                tables=["tax_credit", "court_cases"],
                purposes=["贷后管理"],
                days=90,
                actor="authority",
                min_department_share_bp=6000,
                revenue_parties=["model_vendor"],
            )
            expired = grant_authorization(
                s,
                reference="授权〔2024〕7号",
                tables=["enterprise_registry"],
                purposes=["贷前审查"],
                days=30,
                actor="authority",
            )
            future = grant_authorization(
                s,
                reference="授权〔2027〕1号",
                tables=["utility_payments"],
                purposes=["贷前审查"],
                days=365,
                actor="authority",
            )
            s.flush()
            now = utcnow()  # back-dated terms (the ledger holds any window the authority set)
            expired.valid_from = now - dt.timedelta(days=400)
            expired.valid_until = now - dt.timedelta(days=35)
            future.valid_from = now + dt.timedelta(days=10)
            s.add_all([expired, future])
            published = s.exec(select(PipelineRun).where(PipelineRun.status == "published")).one()
            datasets = _seed_lineage(s, lake, published.id, pseudo)
            bank = s.exec(select(Subscriber).where(Subscriber.name == "示范银行")).one()
            s.add(
                BatchFile(
                    subscriber_id=bank.id,
                    watchlist_id=_watch(s, bank, pseudo),
                    product_version_id="credit_risk@1",
                    format="csv",
                    path="batches/x.csv",
                    sha256="c" * 64,
                    rows=3,
                )
            )
            for code in OBJECTIONS:
                s.add(
                    ServedScore(
                        product_version_id="credit_risk@1",
                        uscc=entity_key(code, pseudo),
                        score=610,
                        grade="B",
                    )
                )
        ids = _seed_objections(engine, lake, pseudo, objection_redactor(settings.models_dir))
    finally:
        engine.dispose()
    return Governance(
        seed=seed,
        published_run_id=published.id,
        grant_id=grant.id,
        expired_id=expired.id,
        datasets=datasets,
        pseudonym=entity_key(INDIVIDUAL, pseudo),
        objection_ids=ids,
    )


def _watch(s: Session, bank: Subscriber, pseudo: Pseudonymizer) -> str:
    """The bank watches company A: objections on it alert the bank (on credit_risk@1)."""
    watchlist = create_watchlist(
        s, bank.id, name="贷后名单", product_name="credit_risk", actor="admin"
    )
    add_members(s, watchlist, [NewMember(COMPANY_A, "L-001")], pseudo, "admin")
    return watchlist.id


def _seed_objections(
    engine: Any, lake: Lake, pseudo: Pseudonymizer, redact: Redact
) -> dict[str, str]:
    """Raise all three, resolve two (rejected), then set the dates the figures are computed on."""
    ids: dict[str, str] = {}
    with session_scope(engine) as s:
        for code, (item, _, _) in OBJECTIONS.items():
            objection = raise_objection(
                s,
                uscc=code,
                pseudonymizer=pseudo,
                product_name="credit_risk",
                item=item,
                reason="企业称该年度纳税信用等级有误",
                actor="olga",
                lake=lake,
                redact=redact,
            )
            ids[code] = objection.id
    with session_scope(engine) as s:
        for code, (_, _, days) in OBJECTIONS.items():
            if days is not None:
                resolve_objection(
                    s,
                    ids[code],
                    outcome="rejected",
                    note="经核对部门原始记录，数据无误",
                    actor="olga",
                    lake=lake,
                    redact=redact,
                )
    with session_scope(engine) as s:
        for code, (_, raised, days) in OBJECTIONS.items():
            row = s.get(Objection, ids[code])
            assert row is not None
            row.raised_at = raised
            row.resolved_at = None if days is None else raised + dt.timedelta(days=days)
            s.add(row)
    return ids


@pytest.fixture
def gov(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Governance:
    g = _seed_governance(tmp_path / "home")
    _use_home(monkeypatch, g.seed.home)
    return g


def _session(g: Governance) -> Session:
    return Session(make_engine(Settings(home=g.seed.home).db_url))


def _app() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.run(timeout=30)
    assert not at.exception
    return at


def _login(name: str, page: str) -> AppTest:
    at = _app()
    at.text_input(key="login_name").input(name)
    at.text_input(key="login_password").input(PASSWORD)
    at.button(key="login_submit").click().run(timeout=30)
    assert not at.exception and "pdo_user" in at.session_state
    at.switch_page(f"app_pages/{page}.py").run(timeout=30)
    assert not at.exception, at.exception
    return at


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: str(m.value) for m in at.metric}


def _facts(table: Any) -> dict[str, str]:
    frame = table.value
    return dict(zip(frame["项目"], frame["内容"], strict=True))


def _action_buttons(at: AppTest) -> list[str]:
    return [b.key for b in at.button if b.key and b.key.startswith(("revoke-", "renew-"))]


# --- 授权管理 --------------------------------------------------------------------------------


@pytest.mark.parametrize("user", ROLES)
def test_authorizations_show_every_grant_to_every_role(gov: Governance, user: str) -> None:
    at = _login(user, "authorizations")
    assert [t.value for t in at.title] == ["授权管理"]
    assert not at.error
    assert _metrics(at) == {
        "授权总数": "4",
        "有效": "2",
        "已到期": "1",
        "已撤销": "0",
        "尚未生效": "1",
    }
    grants = at.dataframe[0].value.set_index("授权文号")
    assert grants.loc["授权〔2026〕2号", "状态"] == "有效"
    assert grants.loc["授权〔2026〕2号", "数据表"] == "court_cases、tax_credit"
    assert grants.loc["授权〔2024〕7号", "状态"] == "已到期"
    assert grants.loc["授权〔2027〕1号", "状态"] == "尚未生效"
    with _session(gov) as s:
        grant = s.get(Authorization, gov.grant_id)
        expired = s.get(Authorization, gov.expired_id)
        assert grant is not None and expired is not None
    facts = _facts(at.table[0])  # newest first: 授权〔2027〕1号 was granted last
    assert facts["授权文号"] == "授权〔2027〕1号"
    details = {_facts(tb)["授权文号"]: _facts(tb) for tb in at.table if "项目" in tb.value}
    terms = details["授权〔2026〕2号"]
    assert terms["部门最低分成比例"] == "60.00%"
    assert terms["其他收益方"] == "model_vendor"
    assert terms["用途"] == "贷后管理"
    assert terms["三权分置"] == (
        "数据资源持有权：税务局、中级人民法院；数据加工使用权：授权运营单位；"
        "数据产品经营权：授权运营单位"
    )
    assert terms["到期时间（北京时间）"] == (
        grant.valid_until.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime(
            "%Y-%m-%d %H:%M:%S"
        )
    )
    assert details["授权〔2026〕1号"]["部门最低分成比例"] == "0.00%"
    assert details["授权〔2026〕1号"]["其他收益方"] == "无"
    day = f"{expired.valid_until.astimezone(dt.timezone(dt.timedelta(hours=8))):%Y-%m-%d}"
    assert any(f"授权〔2024〕7号 已于 {day} 到期" in w.value for w in at.warning)
    departments = [tb.value for tb in at.table if "提供部门" in tb.value]
    court = next(d for d in departments if "court_cases" in set(d["数据表"]))
    assert dict(zip(court["数据表"], court["提供部门"], strict=True)) == {
        "court_cases": "中级人民法院",
        "tax_credit": "税务局",
    }
    if user == "regina":
        assert f"revoke-{gov.grant_id}" in _action_buttons(at)
        assert f"renew-{gov.grant_id}" in _action_buttons(at)
        assert not any("只读" in i.value for i in at.info)
    else:
        assert _action_buttons(at) == []
        assert not at.text_area and not at.number_input
        assert any("只读" in i.value and "仅监管员" in i.value for i in at.info)


def test_the_regulator_revokes_a_grant_with_a_reason(gov: Governance) -> None:
    at = _login("regina", "authorizations")
    at.button(key=f"revoke-{gov.grant_id}").click().run(timeout=30)
    assert any("撤销授权须填写理由" in e.value for e in at.error)
    with _session(gov) as s:
        grant = s.get(Authorization, gov.grant_id)
        assert grant is not None and grant.status == "active"

    at.text_area(key=f"revoke-reason-{gov.grant_id}").input("运营单位超出授权用途使用数据")
    at.button(key=f"revoke-{gov.grant_id}").click().run(timeout=30)
    assert not at.exception
    assert any("已撤销「授权〔2026〕2号」" in m.value for m in at.success)
    assert _metrics(at)["已撤销"] == "1" and _metrics(at)["有效"] == "1"
    assert f"revoke-{gov.grant_id}" not in _action_buttons(at)  # nothing left to revoke
    assert f"renew-{gov.grant_id}" in _action_buttons(at)  # renewing would reinstate it
    assert any(w.value == "授权〔2026〕2号 已撤销" for w in at.warning)
    with _session(gov) as s:
        grant = s.get(Authorization, gov.grant_id)
        assert grant is not None
        assert (grant.status, grant.revoked_by) == ("revoked", "regina")
        assert grant.revoke_reason == "运营单位超出授权用途使用数据"
        event = s.exec(
            select(AuditEvent).where(
                AuditEvent.subject == gov.grant_id, AuditEvent.action == "authorization.revoke"
            )
        ).one()
    assert event.actor == "regina"
    assert event.details["reason"] == "运营单位超出授权用途使用数据"
    assert event.details["reference"] == "授权〔2026〕2号"


def test_the_regulator_renews_a_grant_and_an_expired_one(gov: Governance) -> None:
    with _session(gov) as s:
        grant = s.get(Authorization, gov.grant_id)
        assert grant is not None
        before = grant.valid_until
    at = _login("regina", "authorizations")
    at.number_input(key=f"renew-days-{gov.grant_id}").set_value(30)
    at.button(key=f"renew-{gov.grant_id}").click().run(timeout=30)
    assert not at.exception
    with _session(gov) as s:
        grant = s.get(Authorization, gov.grant_id)
        assert grant is not None
        after = grant.valid_until
        events = s.exec(
            select(AuditEvent).where(
                AuditEvent.subject == gov.grant_id, AuditEvent.action == "authorization.renew"
            )
        ).all()
    assert after - before == dt.timedelta(days=30)  # from the current end, which lies ahead
    assert [(e.actor, e.details["days"]) for e in events] == [("regina", 30)]
    beijing = after.astimezone(dt.timezone(dt.timedelta(hours=8)))
    shown = beijing.strftime("%Y-%m-%d %H:%M:%S")
    assert any(
        "已将「授权〔2026〕2号」续期 30 天" in m.value and shown in m.value for m in at.success
    )

    started = utcnow()
    at.number_input(key=f"renew-days-{gov.expired_id}").set_value(10)
    at.button(key=f"renew-{gov.expired_id}").click().run(timeout=30)
    assert _metrics(at)["已到期"] == "0" and _metrics(at)["有效"] == "3"
    with _session(gov) as s:
        expired = s.get(Authorization, gov.expired_id)
        assert expired is not None
    lapsed_from = expired.valid_until - dt.timedelta(days=10)  # a lapsed grant: from now
    assert started <= lapsed_from <= utcnow()


@pytest.mark.parametrize("user", ["olga", "rita"])
def test_a_forged_request_from_another_role_is_refused(gov: Governance, user: str) -> None:
    """Session state forged as if the button had been pressed: the role is checked again."""
    at = _login(user, "authorizations")
    for action in ("revoke", "renew"):
        at.session_state["authorizations_request"] = {
            "action": action,
            "grant": gov.grant_id,
            "reason": "伪造",
            "days": 3650,
        }
        at.run(timeout=30)
        assert not at.exception
        assert any("无权操作" in e.value for e in at.error)
        assert not at.success
    with _session(gov) as s:
        grant = s.get(Authorization, gov.grant_id)
        assert grant is not None and grant.status == "active" and grant.revoked_by is None
        acted = s.exec(
            select(AuditEvent).where(
                AuditEvent.subject == gov.grant_id, AuditEvent.action != "authorization.grant"
            )
        ).all()
    assert acted == []
    assert _metrics(at)["已撤销"] == "0"


# --- 运行与血缘 ------------------------------------------------------------------------------


def _dot(at: AppTest) -> str:
    (chart,) = at.get("graphviz_chart")
    return str(chart.proto.spec)


def _choose_run(at: AppTest, run_id: str) -> AppTest:
    at.selectbox(key="lineage-run-zh").select(run_id).run(timeout=30)
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize("user", ROLES)
def test_lineage_defaults_to_the_newest_run_for_every_role(gov: Governance, user: str) -> None:
    at = _login(user, "lineage")
    assert [t.value for t in at.title] == ["运行与血缘"]
    assert not at.error
    pending = gov.seed.pending_run_id
    assert at.selectbox(key="lineage-run-zh").value == pending  # newest first
    dot = _dot(at)
    assert dot.startswith("digraph lineage {")
    assert gov.seed.dataset_id[:12] in dot  # the package's desensitized tax_credit
    assert "授权〔2026〕1号" in dot and f"运行 {pending[:12]}" in dot
    assert "纳税信用等级（tax_credit）" in dot and "税务局" in dot
    metrics = _metrics(at)
    assert metrics["运行状态"] == "待签核"
    assert metrics["隔离行数"] == "3"  # from the review package: 1 at ingest + 2 by the suite
    assert metrics["产品调用次数"] == "0"
    quarantine = at.dataframe[0].value  # no stage rows: quarantine from the package
    assert dict(zip(quarantine["原因"], quarantine["行数"], strict=True)) == {
        "expect_column_values_to_be_valid_uscc(uscc)": 2,
        "未记录原因": 1,
    }
    assert any("尚无签核" in c.value for c in at.caption)


@pytest.mark.parametrize("user", ROLES)
def test_lineage_of_the_published_run_reaches_its_deliveries(gov: Governance, user: str) -> None:
    at = _choose_run(_login(user, "lineage"), gov.published_run_id)
    dot = _dot(at)
    for key in ("raw", "passed", "desensitized", "product"):
        assert gov.datasets[key][:12] in dot, key
    assert "产品版本 credit_risk@1" in dot and "中小企业信用风险评分" in dot
    assert f"调用 {sum(n for n, _ in CALLS.values())} 次" in dot  # on the version node
    for bank, (calls, _) in CALLS.items():
        assert f"银行 {bank}\\n调用 {calls} 次" in dot
    assert "批量文件 1 个" in dot
    with _session(gov) as s:
        alerts = s.exec(select(Alert).where(Alert.product_version_id == "credit_risk@1")).all()
    assert sorted(a.kind for a in alerts) == ["dispute_opened", "dispute_resolved"]  # A's
    assert f"预警 {len(alerts)} 条" in dot
    assert "隔离区" in dot and "2 行" in dot
    assert f'"d:{gov.datasets["passed"]}" -> "d:{gov.datasets["desensitized"]}"' in dot
    assert f'"d:{gov.datasets["product"]}" -> "v:credit_risk@1"' in dot
    assert '"t:tax_credit" -> "d:' + gov.datasets["raw"] + '"' in dot
    total = sum(n for n, _ in CALLS.values())
    assert _metrics(at) == {
        "运行状态": "已发布",
        "阶段记录": "4",
        "隔离行数": "3",
        "产品调用次数": str(total),
    }
    stages, quarantine, signoffs, versions = (d.value for d in at.dataframe)
    assert list(stages["阶段"]) == ["采集", "原始区校验", "脱敏", "产品构建"]
    ingest = stages.iloc[0]
    assert (ingest["输入行数"], ingest["输出行数"], ingest["隔离行数"]) == (9, 8, 1)
    assert ingest["耗时（秒）"] == 12.5
    assert ingest["开始（北京时间）"] == "2025-12-06 10:00:00"
    by_reason = dict(zip(quarantine["原因"], quarantine["行数"], strict=True))
    assert by_reason == REASONS
    assert set(quarantine["阶段"]) == {"采集", "原始区校验"}
    assert (signoffs.loc[0, "审核人"], signoffs.loc[0, "决定"]) == ("rita", "批准")
    assert signoffs.loc[0, "意见"] == "首批数据核对无误"
    version = versions.set_index("产品版本").loc["credit_risk@1"]
    assert version["调用次数"] == total and version["批量文件"] == 1 and version["预警"] == 2
    assert version["银行数"] == len(CALLS)
    facts = _facts(at.table[0])
    assert facts["运行编号"] == gov.published_run_id and facts["发起人"] == "olga"
    assert facts["审核包哈希"] == "a" * 64


def test_deliveries_per_bank_are_exact_whichever_way_they_are_counted(gov: Governance) -> None:
    """By GROUP BY within the row budget; beyond it from indexes only, exact or left out."""
    from dashboard.data.lineage import deliveries

    seeded = {bank: n for bank, (n, _) in CALLS.items()}
    with _session(gov) as s:
        grouped = deliveries(s, ["credit_risk@1"])
        indexed = deliveries(s, ["credit_risk@1"], row_budget=0)  # holds every event
        for d in (grouped, indexed):
            assert d.split == "version" and d.calls == sum(seeded.values())
            assert dict(d.versions["credit_risk@1"].per_bank or []) == seeded
        assert (
            grouped.versions["credit_risk@1"].batch_files,
            grouped.versions["credit_risk@1"].alerts,
        ) == (1, 2)
        live = s.get(ProductVersion, "credit_risk@1")
        second = s.exec(select(Subscriber).where(Subscriber.name == "第二银行")).one()
        assert live is not None
        s.add(
            ProductVersion(
                id="credit_risk@2",
                product_name="credit_risk",
                version=2,
                run_id=live.run_id,
                signoff_id=live.signoff_id,
                output_hash="d" * 64,
                as_of=live.as_of,
            )
        )
        s.flush()
        s.add_all(
            UsageEvent(
                subscriber_id=second.id,
                product_version_id="credit_risk@2",
                purpose="贷后管理",
                price_fen=PRICE_FEN,
            )
            for _ in range(2)
        )
        s.commit()
        both = deliveries(s, ["credit_risk@1", "credit_risk@2"])
        run_level = deliveries(s, ["credit_risk@1", "credit_risk@2"], row_budget=0)
        totals_only = deliveries(s, ["credit_risk@1"], row_budget=0)  # others hold events too
    assert both.split == "version"
    assert dict(both.versions["credit_risk@1"].per_bank or []) == seeded
    assert both.versions["credit_risk@2"].per_bank == [("第二银行", 2)]
    assert (both.versions["credit_risk@2"].batch_files, both.versions["credit_risk@2"].alerts) == (
        0,
        0,
    )
    assert run_level.split == "run"
    assert dict(run_level.banks or []) == {"示范银行": 3, "第二银行": 3}
    assert [run_level.versions[v].calls for v in ("credit_risk@1", "credit_risk@2")] == [4, 2]
    assert totals_only.split == "none" and totals_only.versions["credit_risk@1"].calls == 4


def test_lineage_links_to_data_docs_only_when_built(gov: Governance) -> None:
    at = _login("rita", "lineage")
    assert not at.get("page_link")
    assert any("尚未生成 Data Docs" in c.value for c in at.caption)
    docs = Settings(home=gov.seed.home).docs_dir / gov.seed.pending_run_id
    docs.mkdir(parents=True)
    (docs / "index.html").write_text("<html></html>")
    at.run(timeout=30)
    (link,) = at.get("page_link")
    assert "quality" in link.proto.page and gov.seed.pending_run_id in link.proto.query_string


# --- 异议 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("user", ROLES)
def test_objections_show_counts_and_time_to_resolve(gov: Governance, user: str) -> None:
    at = _login(user, "objections")
    assert [t.value for t in at.title] == ["异议"]
    assert not at.error
    days = [d for _, _, d in OBJECTIONS.values() if d is not None]
    assert _metrics(at) == {
        "处理中": "1",
        "已解决": "2",
        "其中异议成立": "0",
        "解决用时中位数（天）": f"{statistics.median(days):.2f}",
        "最长解决用时（天）": f"{max(days):.2f}",
    }
    rows = at.dataframe[0].value.set_index("企业")
    assert set(rows.index) == {COMPANY_A, COMPANY_B, gov.pseudonym}
    assert INDIVIDUAL not in at.dataframe[0].value.to_string()  # never the person's code
    a = rows.loc[COMPANY_A]
    assert (a["异议数据项"], a["状态"], a["解决用时（天）"]) == (
        "tax_credit:year=2023",
        "已解决",
        2.0,
    )
    assert a["处理结果"] == "异议不成立（维持原数据）"
    assert a["提出时间（北京时间）"] == "2026-01-05 10:00:00"
    assert a["解决时间（北京时间）"] == "2026-01-07 10:00:00"
    assert a["产品"] == "中小企业信用风险评分（credit_risk）"
    individual = rows.loc[gov.pseudonym]
    assert (individual["状态"], individual["处理结果"]) == ("处理中", "—")
    assert individual["已等待（天）"] > 300
    weekly = _weekly(at)
    assert weekly == {
        ("2026-01-05", "提出"): 2,
        ("2026-01-12", "提出"): 1,
        ("2026-01-05", "解决"): 1,
        ("2026-01-12", "解决"): 1,
    }


def _weekly(at: AppTest) -> dict[tuple[str, str], int]:
    """The chart's data as (week, kind) → count, read back from the element's Arrow data."""
    import pyarrow as pa

    (chart,) = at.get("vega_lite_chart")
    (dataset,) = chart.proto.datasets
    raw = dataset.data.data
    frame = pa.ipc.open_stream(raw).read_all().to_pandas()
    return {
        (str(w)[:10], str(k)): int(n)
        for w, k, n in zip(frame["周（周一）"], frame["类别"], frame["件数"], strict=True)
    }


def test_objections_filter_by_status(gov: Governance) -> None:
    at = _login("olga", "objections")
    at.radio(key="objections-status").set_value("open").run(timeout=30)
    rows = at.dataframe[0].value
    assert list(rows["企业"]) == [gov.pseudonym]
    assert _metrics(at)["处理中"] == "1"  # the KPIs stay whole
    at.radio(key="objections-status").set_value("resolved").run(timeout=30)
    assert set(at.dataframe[0].value["企业"]) == {COMPANY_A, COMPANY_B}


def test_enterprises_are_shown_as_the_delivery_api_shows_them(gov: Governance) -> None:
    from dashboard.data.objections import entity
    from pdo.delivery.identity import shown_as

    assert entity(COMPANY_A) == shown_as(COMPANY_A) == COMPANY_A
    assert entity(INDIVIDUAL) == shown_as(INDIVIDUAL) != INDIVIDUAL  # masked, never shown
    assert entity(gov.pseudonym) == gov.pseudonym


# --- empty ledger --------------------------------------------------------------------------


def test_empty_ledger_says_what_to_do_next(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seed = seed_console(tmp_path / "empty", with_runs=False)
    _use_home(monkeypatch, seed.home)
    at = _login("regina", "lineage")
    assert any("暂无运行记录" in i.value for i in at.info)
    assert not at.get("graphviz_chart")
    at.switch_page("app_pages/objections.py").run(timeout=30)
    assert any("暂无异议" in i.value for i in at.info)
    assert not at.metric
    at.switch_page("app_pages/authorizations.py").run(timeout=30)
    assert _metrics(at)["授权总数"] == "1"  # the seed's one grant, still shown


def test_english_toggle_translates_the_pages(gov: Governance) -> None:
    at = _login("regina", "authorizations")
    at.toggle(key="pdo_lang_en").set_value(True).run(timeout=30)
    assert [t.value for t in at.title] == ["Authorizations"]
    assert _metrics(at)["Grants"] == "4"
    at.switch_page("app_pages/lineage.py").run(timeout=30)
    assert [t.value for t in at.title] == ["Runs & lineage"]
    assert "Authorization" in _dot(at)
    at.selectbox(key="lineage-run-en").select(gov.published_run_id).run(timeout=30)
    assert "Bank 示范银行\\n3 calls" in _dot(at)
    at.toggle(key="pdo_lang_en").set_value(False).run(timeout=30)  # the run chosen stays
    assert at.selectbox(key="lineage-run-zh").value == gov.published_run_id
    assert "银行 示范银行" in _dot(at)
    at.switch_page("app_pages/objections.py").run(timeout=30)
    assert _metrics(at)["处理中"] == "1"
    at.toggle(key="pdo_lang_en").set_value(True).run(timeout=30)
    assert _metrics(at)["Open"] == "1"
    assert "Enterprise" in at.dataframe[0].value.columns
