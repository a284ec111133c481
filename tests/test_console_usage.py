"""总览, 使用审计 and 异常告警 driven through AppTest for every role, against a seeded ledger.

The console seed (`tests.console_seed`) gives users, a published credit_risk@1, a pending run
and four calls made now; this module adds a week of back-dated traffic in March 2026 (Beijing
time) through the ledger's own tables and functions: a steady bank, a bank with one spiking
hour, a bank querying at night, a call under a registered consent, a 个体工商户's call under its
pseudonym, refusals and objections. Every figure asserted below is computed from that list.
"""

from __future__ import annotations

import datetime as dt
import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from sqlalchemy import func
from sqlmodel import Session, select
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from dashboard.data import anomalies
from dashboard.data.usage import Window
from pdo import audit
from pdo.delivery.consents import register_consent
from pdo.delivery.metering import USAGE_ACTIONS, details_of
from pdo.ledger.db import make_engine, session_scope
from pdo.ledger.models import (
    AuditEvent,
    Objection,
    PipelineRun,
    Product,
    ProductVersion,
    RefusedCall,
    SignOff,
    Subscriber,
    UsageEvent,
)
from pdo.privacy.entity_key import entity_key
from pdo.privacy.pseudonym import Pseudonymizer
from pdo.revenue import RevenueRule
from pdo.settings import Settings
from pdo.settlement import settle
from pdo.subscribers import add_subscriber
from tests.console_seed import PASSWORD, PRICE_FEN, Seed, seed_console

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboard" / "app.py"
BJ = ZoneInfo("Asia/Shanghai")

FIRST, LAST = dt.date(2026, 3, 2), dt.date(2026, 3, 6)  # the seeded week (Beijing days)
STEADY, SPIKY, NIGHTLY = "平稳银行", "突增银行", "夜间银行"
DEMO, SECOND = "示范银行", "第二银行"  # the console seed's banks
OPS_VERSION, OPS_PRICE = "operating_status@1", 50
CONSENT_REF = "同意书〔2026〕示范-001"
COMPANY = "91310000MA1K000123"
INDIVIDUAL = "92310115MA1K23456X"  # a 个体工商户's code: personal data, never on a page
PSEUDO = Pseudonymizer("test-key", b"console-usage-test-key-0123456789")
SPIKE_HOUR = (dt.date(2026, 3, 4), 14)
SPIKE_CALLS = 80
NIGHT_CALLS = 25


def bj(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    """A Beijing wall-clock time as the UTC instant the ledger stores."""
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=BJ).astimezone(dt.UTC)


@dataclass(frozen=True)
class Call:
    bank: str
    version: str
    purpose: str
    at: dt.datetime
    price: int
    uscc: str | None = "91310000MA1K000999"
    kind: str = "query"
    status: str = "served"
    consent: bool = False


def _week() -> list[Call]:
    """The back-dated week: every call the March figures are computed from."""
    calls: list[Call] = []
    days = [FIRST + dt.timedelta(days=i) for i in range((LAST - FIRST).days + 1)]
    for day in days:  # the steady bank: 10 calls an hour in office hours
        for hour in range(9, 18):
            calls += [
                Call(STEADY, "credit_risk@1", "贷前审查", bj(day, hour, m), PRICE_FEN)
                for m in range(10)
            ]
        for hour in range(10, 16):  # the spiky bank: 10 an hour, 80 in one hour
            n = SPIKE_CALLS if (day, hour) == SPIKE_HOUR else 10
            calls += [
                Call(SPIKY, OPS_VERSION, "贷后管理", bj(day, hour, m % 60), OPS_PRICE, kind=k)
                for m, k in zip(range(n), ["query"] * (n - 1) + ["alert"], strict=True)
            ]
    # a few late calls by the steady bank: below the night rule's threshold
    calls += [
        Call(STEADY, "credit_risk@1", "贷前审查", bj(dt.date(2026, 3, 3), 23, m), PRICE_FEN)
        for m in range(3)
    ]
    night = dt.date(2026, 3, 4)  # 02:00 on the 4th: the night of the 3rd
    calls += [
        Call(NIGHTLY, "credit_risk@1", "贷后管理", bj(night, 2, m), PRICE_FEN)
        for m in range(NIGHT_CALLS)
    ]
    calls += [
        Call(NIGHTLY, "credit_risk@1", "贷后管理", bj(dt.date(2026, 3, 3), 11, m), PRICE_FEN)
        for m in range(10)
    ]
    calls.append(
        Call(DEMO, "credit_risk@1", "贷前审查", bj(dt.date(2026, 3, 5), 12), PRICE_FEN,
             uscc=COMPANY, consent=True)
    )  # fmt: skip
    calls.append(
        Call(SECOND, "credit_risk@1", "贷后管理", bj(dt.date(2026, 3, 5), 15), PRICE_FEN,
             uscc=entity_key(INDIVIDUAL, PSEUDO), status="withheld")
    )  # fmt: skip
    return calls


WEEK = _week()
WEEK_START, WEEK_END = bj(FIRST, 0), bj(LAST + dt.timedelta(days=1), 0)


def _sum(calls: list[Call]) -> tuple[int, int]:
    return len(calls), sum(c.price for c in calls)


def yuan(fen: int) -> str:
    return f"{fen // 100:,}.{fen % 100:02d}"


@dataclass(frozen=True)
class Ledger:
    seed: Seed
    banks: dict[str, str]  # name → subscriber id
    usage_ids: dict[str, str]  # "consent" / "individual" → the usage id of that call


def _add_week(s: Session) -> tuple[dict[str, str], dict[str, str]]:
    banks = {b.name: b.id for b in s.exec(select(Subscriber))}
    for name in (STEADY, SPIKY, NIGHTLY):
        subscriber, _ = add_subscriber(s, name, "admin", ["credit_risk"])
        banks[name] = subscriber.id
    published = s.exec(select(PipelineRun).where(PipelineRun.status == "published")).one()
    approval = s.exec(select(SignOff).where(SignOff.run_id == published.id)).one()
    assert approval.id is not None
    s.add(
        Product(
            name="operating_status",
            title_zh="经营状态核验",
            title_en="Operating status",
            purposes=["贷前审查", "贷后管理"],
            price_fen=OPS_PRICE,
        )
    )
    s.flush()
    drift = {"against": "operating_status@0", "psi": 0.31, "threshold": 0.25, "flagged": True}
    s.add(
        ProductVersion(
            id=OPS_VERSION,
            product_name="operating_status",
            version=1,
            run_id=published.id,
            signoff_id=approval.id,
            output_hash="c" * 64,
            as_of=dt.date(2026, 2, 28),
            metrics={"drift": drift},
            revenue_weights=RevenueRule(departments_bp={"market": 3000}).weights([]),
        )
    )
    s.flush()
    demo = s.get(Subscriber, banks[DEMO])
    assert demo is not None
    consent = register_consent(
        s,
        subscriber=demo,
        entity=COMPANY,
        reference=CONSENT_REF,
        purposes=["贷前审查"],
        valid_from=bj(dt.date(2026, 1, 1), 0),
        valid_until=bj(dt.date(2027, 1, 1), 0),
        actor="示范银行",
    )
    ids: dict[str, str] = {}
    for c in WEEK:
        event = UsageEvent(
            subscriber_id=banks[c.bank],
            product_version_id=c.version,
            kind=c.kind,
            status=c.status,
            uscc=c.uscc,
            purpose=c.purpose,
            consent_id=consent.id if c.consent else None,
            price_fen=c.price,
            served_at=c.at,
        )
        s.add(event)
        s.flush()  # on the audit chain as the API would have put it: settling checks it
        audit.record(
            s,
            f"subscriber:{event.subscriber_id}",
            USAGE_ACTIONS[c.kind],
            event.id,
            **details_of(event),
        )
        if c.consent:
            ids["consent"] = event.id
        if c.uscc and c.uscc.startswith("p_"):
            ids["individual"] = event.id
    refusals = [  # (bank, code, flagged, Beijing time)
        (DEMO, "consent_not_found", True, bj(dt.date(2026, 3, 3), 10)),
        (DEMO, "not_in_portfolio", True, bj(dt.date(2026, 3, 3), 11)),
        (DEMO, "consent_already_revoked", False, bj(dt.date(2026, 3, 3), 12)),  # not flagged
        (STEADY, "disclosure_budget_exceeded", True, bj(dt.date(2026, 3, 5), 16)),
        (STEADY, "disclosure_budget_exceeded", True, bj(dt.date(2026, 3, 5), 17)),
        (STEADY, "unknown_enterprise", False, bj(dt.date(2026, 3, 5), 9)),
    ]
    for bank, code, flagged, at in refusals:
        s.add(
            RefusedCall(
                at=at,
                subscriber_id=banks[bank],
                endpoint="/v1/scores",
                product_name="credit_risk",
                uscc=entity_key(INDIVIDUAL, PSEUDO) if code == "not_in_portfolio" else COMPANY,
                purpose="贷后管理",
                status=403,
                code=code,
                flagged=flagged,
            )
        )
    s.add(
        Objection(
            uscc=COMPANY,
            product_name="credit_risk",
            item="tax_credit:2023",
            reason="纳税等级有误",
            raised_by="示范银行",
            raised_at=bj(dt.date(2026, 3, 3), 9),
        )
    )
    s.add(
        Objection(
            uscc=COMPANY,
            product_name="credit_risk",
            item="tax_credit:2022",
            reason="已更正",
            raised_by="示范银行",
            raised_at=bj(dt.date(2026, 3, 2), 9),
            status="resolved",
            outcome="rejected",
            resolved_by="olga",
            resolved_at=bj(dt.date(2026, 3, 4), 9),
        )
    )
    return banks, ids


def _seed(home: Path) -> Ledger:
    seed = seed_console(home)
    engine = make_engine(Settings(home=home).db_url)
    try:
        with session_scope(engine) as s:
            banks, ids = _add_week(s)
    finally:
        engine.dispose()
    return Ledger(seed, banks, ids)


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    return _seed(tmp_path_factory.mktemp("usage") / "home")


def _use(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    monkeypatch.setenv("PDO_HOME", str(home))
    monkeypatch.delenv("PDO_DATABASE_URL", raising=False)
    monkeypatch.setenv("PDO_CONSOLE_CONTINUES_RUNS", "false")


@pytest.fixture
def home(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> Ledger:
    _use(monkeypatch, ledger.seed.home)
    return ledger


# --- driving the console ------------------------------------------------------------------


def _app() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run(timeout=60)
    assert not at.exception
    return at


def _as(name: str, page: str) -> AppTest:
    at = _app()
    at.text_input(key="login_name").input(name)
    at.text_input(key="login_password").input(PASSWORD)
    at.button(key="login_submit").click().run(timeout=60)
    assert "pdo_user" in at.session_state
    at.switch_page(f"app_pages/{page}.py").run(timeout=60)
    assert not at.exception, [e.value for e in at.exception]
    return at


def _run(at: AppTest) -> AppTest:
    at.run(timeout=60)
    assert not at.exception, [e.value for e in at.exception]
    return at


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: str(m.value) for m in at.metric}


def _deltas(at: AppTest) -> dict[str, str]:
    return {m.label: str(m.delta) for m in at.metric}


def _text(at: AppTest) -> str:
    """Everything a user reads on the page: text elements and every table cell."""
    parts = [e.value for kind in ("markdown", "caption", "info", "success", "warning") for e in
             getattr(at, kind)]  # fmt: skip
    parts += [str(m.value) for m in at.metric]
    parts += [d.value.to_csv() for d in at.dataframe]
    return "\n".join(parts)


def _week_window(at: AppTest, key: str, first: dt.date = FIRST, last: dt.date = LAST) -> AppTest:
    at.date_input(key=key).set_value((first, last))
    return _run(at)


def _refused(at: AppTest) -> None:
    assert any("无权访问" in e.value for e in at.error)
    assert not at.metric and not at.dataframe and not at.get("download_button")


# --- 总览 ----------------------------------------------------------------------------------


@pytest.mark.parametrize("user", ["olga", "rita", "regina"])
def test_overview_shows_this_month_to_every_role(home: Ledger, user: str) -> None:
    at = _as(user, "overview")
    assert [t.value for t in at.title] == ["总览"]
    figures = _metrics(at)
    # this month: the console seed's four calls, made now by two banks
    assert figures["调用次数"] == "4"
    assert figures["计费金额（元）"] == yuan(4 * PRICE_FEN)
    assert figures["调用银行数"] == "2"
    assert figures["待签核运行"] == "1"  # the seed's run at the gate
    assert figures["未结异议"] == "1"
    with Session(make_engine(Settings(home=home.seed.home).db_url)) as s:
        chain = s.exec(select(func.count()).select_from(AuditEvent)).one()
    assert figures["审计链事件"] == f"{chain:,}"
    assert at.get("vega_lite_chart") or at.get("arrow_vega_lite_chart")
    todo = _text(at)
    assert f"`{home.seed.pending_run_id[:12]}`" in todo
    assert "2026-03" in todo and "pdo settle --period 2026-03" in todo  # March is not settled
    assert "未结异议" in todo


def test_overview_for_a_chosen_period_compares_with_the_one_before(home: Ledger) -> None:
    at = _as("regina", "overview")
    at.selectbox(key="overview_period").set_value("custom")
    _run(at)
    _week_window(at, "overview_dates")
    calls, fen = _sum(WEEK)
    figures, deltas = _metrics(at), _deltas(at)
    assert figures["调用次数"] == f"{calls:,}"
    assert deltas["调用次数"] == f"+{calls:,}"  # nothing in the five days before
    assert figures["计费金额（元）"] == yuan(fen)
    assert deltas["计费金额（元）"] == f"+{yuan(fen)}"
    assert figures["调用银行数"] == "5"
    assert figures["涉及企业数"] == str(len({c.uscc for c in WEEK if c.uscc}))
    assert figures["拒绝调用"] == "6"
    assert figures["其中被标记"] == "4"
    assert figures["未结异议"] == "1"  # one still open on 6 March; the other resolved on the 4th
    # at the end of 6 March two runs were at the gate: the pending one (started in January) and
    # the published one (started in December 2025, its approval recorded when the seed ran)
    assert figures["待签核运行"] == "2"
    assert figures["审计链事件"] == "0"  # the chain began when the ledger was seeded (now)
    assert "2026-03-02 ~ 2026-03-06" in _text(at) and "2026-02-25 ~ 2026-03-01" in _text(at)


def test_overview_todo_drops_a_month_once_settled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = _seed(tmp_path / "home")
    _use(monkeypatch, ledger.seed.home)
    engine = make_engine(Settings(home=ledger.seed.home).db_url)
    with session_scope(engine) as s:
        settle(s, "2026-03", "olga", dt.datetime.now(dt.UTC))
    at = _as("olga", "overview")
    assert "pdo settle --period 2026-03" not in _text(at)


# --- 使用审计 -------------------------------------------------------------------------------


@pytest.mark.parametrize("user", ["rita", "regina"])
def test_usage_defaults_to_the_last_30_days(home: Ledger, user: str) -> None:
    at = _as(user, "usage")
    assert [t.value for t in at.title] == ["使用审计"]
    assert _metrics(at) == {"调用总次数": "4", "计费总额（元）": yuan(4 * PRICE_FEN)}
    by_bank = at.dataframe[0].value.set_index("银行")
    assert list(at.dataframe[0].value.columns) == ["银行", "调用次数", "计费金额（元）"]
    assert by_bank.loc[DEMO, "调用次数"] == 3 and by_bank.loc[SECOND, "调用次数"] == 1


def _week_frames(at: AppTest) -> dict[str, Any]:
    names = ("bank", "version", "purpose", "department", "day", "calls")
    return dict(zip(names, (d.value for d in at.dataframe), strict=True))


def test_usage_breaks_the_week_down_every_way(home: Ledger) -> None:
    at = _week_window(_as("regina", "usage"), "usage_dates")
    calls, fen = _sum(WEEK)
    assert _metrics(at) == {"调用总次数": f"{calls:,}", "计费总额（元）": yuan(fen)}
    frames = _week_frames(at)
    banks = frames["bank"].set_index("银行")
    for bank in (STEADY, SPIKY, NIGHTLY, DEMO, SECOND):
        n, f = _sum([c for c in WEEK if c.bank == bank])
        assert (banks.loc[bank, "调用次数"], banks.loc[bank, "计费金额（元）"]) == (n, yuan(f))
    versions = frames["version"].set_index("版本")
    n, f = _sum([c for c in WEEK if c.version == OPS_VERSION])
    assert versions.loc[OPS_VERSION, "调用次数"] == n
    assert versions.loc[OPS_VERSION, "产品"] == "经营状态核验"
    purposes = frames["purpose"].set_index("用途")
    assert purposes.loc["贷后管理", "调用次数"] == len([c for c in WEEK if c.purpose == "贷后管理"])
    departments = frames["department"].set_index("代码")
    assert departments.loc["market", "调用次数"] == calls  # feeds both versions
    assert departments.loc["market", "部门"] == "市场监督管理局"
    assert departments.loc["tax", "调用次数"] == calls - n  # credit_risk only
    days = frames["day"].set_index("日期")
    spike_day = [c for c in WEEK if c.at.astimezone(BJ).date() == SPIKE_HOUR[0]]
    assert days.loc[SPIKE_HOUR[0].isoformat(), "调用次数"] == len(spike_day)
    assert at.get("vega_lite_chart") or at.get("arrow_vega_lite_chart")


@pytest.mark.parametrize(
    ("widget", "value", "keep"),
    [
        ("usage_banks", "SPIKY", lambda c: c.bank == SPIKY),
        ("usage_products", "operating_status", lambda c: c.version == OPS_VERSION),
        ("usage_purposes", "贷后管理", lambda c: c.purpose == "贷后管理"),
        ("usage_departments", "tax", lambda c: c.version == "credit_risk@1"),
        ("usage_kinds", "alert", lambda c: c.kind == "alert"),
        ("usage_statuses", "withheld", lambda c: c.status == "withheld"),
    ],
)
def test_usage_filters_change_the_figures(
    home: Ledger, widget: str, value: str, keep: Callable[[Call], bool]
) -> None:
    at = _week_window(_as("rita", "usage"), "usage_dates")
    chosen = home.banks[SPIKY] if value == "SPIKY" else value
    at.multiselect(key=widget).set_value([chosen])
    _run(at)
    calls, fen = _sum([c for c in WEEK if keep(c)])
    assert 0 < calls < len(WEEK)
    assert _metrics(at) == {"调用总次数": f"{calls:,}", "计费总额（元）": yuan(fen)}
    assert int(at.dataframe[0].value["调用次数"].sum()) == calls


def test_a_filter_matching_nothing_says_what_to_do(home: Ledger) -> None:
    at = _week_window(_as("rita", "usage"), "usage_dates", dt.date(2026, 2, 1), dt.date(2026, 2, 7))
    assert _metrics(at)["调用总次数"] == "0"
    assert any("所选条件下没有调用" in i.value for i in at.info)
    assert not at.dataframe


def test_drill_down_shows_a_call_with_its_consent_reference(home: Ledger) -> None:
    at = _as("regina", "usage")
    at.multiselect(key="usage_banks").set_value([home.banks[DEMO]])
    _week_window(at, "usage_dates")
    calls = _week_frames(at)["calls"]
    (row,) = calls.to_dict("records")  # the demo bank's one call that week
    assert row["用量编号"] == home.usage_ids["consent"]
    assert row["同意书编号"] == CONSENT_REF
    assert row["时间（北京时间）"] == "2026-03-05 12:00:00"  # 04:00 UTC
    assert (row["企业"], row["用途"], row["产品版本"]) == (COMPANY, "贷前审查", "credit_risk@1")
    assert (row["状态"], row["金额（元）"], row["类型"]) == (
        "已返回结果",
        yuan(PRICE_FEN),
        "单笔查询",
    )


def test_drill_down_pages_newest_first(home: Ledger) -> None:
    at = _week_window(_as("rita", "usage"), "usage_dates")
    newest = sorted(WEEK, key=lambda c: c.at, reverse=True)
    first_page = _week_frames(at)["calls"]
    assert len(first_page) == 100
    assert first_page.iloc[0]["时间（北京时间）"] == newest[0].at.astimezone(BJ).strftime(
        "%Y-%m-%d %H:%M:%S"
    )
    at.number_input(key="usage_page").set_value(2)
    second = _week_frames(_run(at))["calls"]
    assert second.iloc[0]["时间（北京时间）"] == newest[100].at.astimezone(BJ).strftime(
        "%Y-%m-%d %H:%M:%S"
    )
    last_page = -(-len(WEEK) // 100)
    at.number_input(key="usage_page").set_value(last_page)
    assert len(_week_frames(_run(at))["calls"]) == len(WEEK) - 100 * (last_page - 1)


def test_a_sole_proprietor_shows_as_its_pseudonym_only(home: Ledger) -> None:
    at = _as("regina", "usage")
    at.multiselect(key="usage_banks").set_value([home.banks[SECOND]])
    _week_window(at, "usage_dates")
    (row,) = _week_frames(at)["calls"].to_dict("records")
    assert row["用量编号"] == home.usage_ids["individual"]
    assert row["企业"] == entity_key(INDIVIDUAL, PSEUDO) and row["企业"].startswith("p_")
    assert row["状态"] == "异议暂缓（无评分）"
    assert INDIVIDUAL not in _text(at) and INDIVIDUAL[:8] not in _text(at)


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Callable[[], Any]]]:
    """The files the page's download buttons would build on click, by file name."""
    made: dict[str, Callable[[], Any]] = {}
    original = MediaFileManager.add_deferred

    def record(self: MediaFileManager, data: Callable[[], Any], *args: Any, **kw: Any) -> str:
        made[str(kw.get("file_name"))] = data
        return original(self, data, *args, **kw)

    monkeypatch.setattr(MediaFileManager, "add_deferred", record)
    yield made


def test_export_parses_back_to_the_filtered_calls(
    home: Ledger, downloads: dict[str, Callable[[], Any]]
) -> None:
    at = _as("rita", "usage")
    at.multiselect(key="usage_banks").set_value([home.banks[NIGHTLY], home.banks[DEMO]])
    _week_window(at, "usage_dates")
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["下载 CSV", "下载 XLSX"]
    wanted = [c for c in WEEK if c.bank in (NIGHTLY, DEMO)]
    stem = "usage-2026-03-02_2026-03-06"

    data = downloads[f"{stem}.csv"]()
    assert data.startswith(b"\xef\xbb\xbf")  # a BOM, so spreadsheets read the Chinese
    csv = pl.read_csv(io.BytesIO(data[3:]), infer_schema=False)
    assert csv.height == len(wanted)
    assert csv.columns[:3] == ["时间（北京时间）", "银行", "产品版本"]
    assert sorted(csv["银行"].unique()) == sorted({NIGHTLY, DEMO})
    assert csv.filter(pl.col("用量编号") == home.usage_ids["consent"])["同意书编号"].to_list() == [
        CONSENT_REF
    ]
    assert sum(int(v.replace(".", "")) for v in csv["金额（元）"]) == _sum(wanted)[1]

    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(downloads[f"{stem}.xlsx"]()), read_only=True)
    (sheet,) = book.worksheets
    rows = list(sheet.iter_rows(values_only=True))
    assert list(rows[0]) == csv.columns
    assert len(rows) - 1 == len(wanted)
    assert sorted(str(r[-1]) for r in rows[1:]) == sorted(csv["用量编号"])
    engine = make_engine(Settings(home=home.seed.home).db_url)
    with session_scope(engine) as s:  # who took which calls is on the audit chain
        taken = s.exec(select(AuditEvent).where(AuditEvent.action == "export.usage")).all()
        assert [(e.actor, e.subject, e.details["format"], e.details["rows"]) for e in taken] == [
            ("rita", stem, fmt, len(wanted)) for fmt in ("csv", "xlsx")
        ]
    engine.dispose()


def test_usage_reads_in_english_and_keeps_the_filters(home: Ledger) -> None:
    at = _week_window(_as("regina", "usage"), "usage_dates")
    at.multiselect(key="usage_kinds").set_value(["alert"])
    _run(at)
    at.toggle(key="pdo_lang_en").set_value(True)
    _run(at)
    assert [t.value for t in at.title] == ["Usage audit"]
    assert list(at.dataframe[0].value.columns) == ["Bank", "Calls", "Billed (CNY)"]
    alerts = len([c for c in WEEK if c.kind == "alert"])
    assert _metrics(at)["Calls"] == str(alerts)  # the kind chosen in Chinese still applies
    assert set(_week_frames(at)["calls"]["Kind"]) == {"Alert"}


def test_periods_compare_like_with_like() -> None:
    from dashboard.data.overview import period
    from dashboard.data.usage import Window

    end_of_march = period("month", dt.date(2026, 3, 31))  # month to date: all of March
    assert end_of_march.current == Window(dt.date(2026, 3, 1), dt.date(2026, 3, 31))
    assert end_of_march.previous == Window(dt.date(2026, 2, 1), dt.date(2026, 2, 28))
    mid = period("month", dt.date(2026, 3, 10))  # the same ten days of February
    assert mid.previous == Window(dt.date(2026, 2, 1), dt.date(2026, 2, 10))
    january = period("last_month", dt.date(2026, 1, 15))
    assert january.current == Window(dt.date(2025, 12, 1), dt.date(2025, 12, 31))
    assert january.previous == Window(dt.date(2025, 11, 1), dt.date(2025, 11, 30))
    week = period("7d", dt.date(2026, 3, 6))
    assert (week.current.first, week.previous.first, week.previous.last) == (
        dt.date(2026, 2, 28),
        dt.date(2026, 2, 21),
        dt.date(2026, 2, 27),
    )
    day = Window(dt.date(2026, 3, 2), dt.date(2026, 3, 2))  # a Beijing day in UTC
    assert (day.start, day.end) == (
        dt.datetime(2026, 3, 1, 16, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 2, 16, tzinfo=dt.UTC),
    )


# --- 异常告警 -------------------------------------------------------------------------------


@pytest.mark.parametrize("user", ["rita", "regina"])
def test_anomalies_find_the_seeded_week(home: Ledger, user: str) -> None:
    at = _week_window(_as(user, "anomalies"), "anomalies_dates")
    assert [t.value for t in at.title] == ["异常告警"]
    assert _metrics(at) == {
        "调用量突增（小时）": "1",
        "夜间批量（夜）": "1",
        "越权尝试（次）": "2",
        "披露额度超限（次）": "2",
        "评分漂移版本": "1",
    }
    spikes, nights, scope, latest, budget, drift = (d.value for d in at.dataframe)
    (spike,) = spikes.to_dict("records")
    assert spike["银行"] == SPIKY and spike["调用次数"] == SPIKE_CALLS
    assert spike["时段（北京时间）"] == "2026-03-04 14:00–15:00"
    assert spike["该行小时调用中位数"] == 10 and spike["倍数"] == SPIKE_CALLS / 10
    (night,) = nights.to_dict("records")  # the steady bank's three late calls are not bulk
    assert (night["银行"], night["夜间（起始日期）"], night["调用次数"]) == (
        NIGHTLY,
        "2026-03-03",
        NIGHT_CALLS,
    )
    assert night["有调用的时段"] == "2026-03-04 02:00 – 2026-03-04 03:00"
    codes = dict(zip(scope["拒绝原因"], scope["次数"], strict=True))
    assert codes == {
        "同意书未登记（consent_not_found）": 1,
        "企业不在贷后名单内（not_in_portfolio）": 1,
    }
    assert set(scope["银行"]) == {DEMO}
    assert len(latest) == 2 and latest.iloc[0]["拒绝原因"].endswith("（not_in_portfolio）")
    assert latest.iloc[0]["企业"].startswith("p_")  # the 个体工商户 by pseudonym
    assert INDIVIDUAL not in _text(at)
    assert budget.to_dict("records") == [{"银行": STEADY, "日期": "2026-03-05", "超限次数": 2}]
    assert drift["版本"].tolist() == [OPS_VERSION]  # credit_risk@1 did not drift
    assert drift.iloc[0]["PSI"] == "0.3100"


@pytest.mark.parametrize(
    ("first", "last", "found"),
    [
        ("2026-03-03", "2026-03-03", True),  # its evening is the window's last: read to 06:00
        ("2026-03-01", "2026-03-03", True),
        ("2026-03-04", "2026-03-10", False),  # its morning is in here, but it is the 3rd's night
        ("2026-03-03", "2026-03-04", True),
    ],
)
def test_a_night_belongs_whole_to_the_window_of_its_evening(
    ledger: Ledger, first: str, last: str, found: bool
) -> None:
    """The seeded bank's night of the 3rd (its calls at 02:00 on the 4th) is found in exactly
    the windows that hold the 3rd; the next morning's hours never count as spikes."""
    engine = make_engine(Settings(home=ledger.seed.home).db_url)
    w = Window(dt.date.fromisoformat(first), dt.date.fromisoformat(last))
    got = anomalies.find(engine, w)
    engine.dispose()
    shown = [(r["银行"], r["夜间（起始日期）"]) for r in got.nights.to_dicts()]
    assert shown == ([(NIGHTLY, "2026-03-03")] if found else [])
    spike_in_window = w.first <= dt.date(2026, 3, 4) <= w.last
    assert got.spikes.height == int(spike_in_window)


def test_a_normal_day_raises_nothing(home: Ledger) -> None:
    day = dt.date(2026, 3, 2)  # every bank at its usual pace, nothing refused
    at = _week_window(_as("regina", "anomalies"), "anomalies_dates", day, day)
    figures = _metrics(at)
    assert figures["调用量突增（小时）"] == "0" and figures["夜间批量（夜）"] == "0"
    assert figures["越权尝试（次）"] == "0" and figures["披露额度超限（次）"] == "0"
    assert any("未发现调用量突增" in s.value for s in at.success)
    assert any("未发现夜间批量查询" in s.value for s in at.success)


# --- refusals ---------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["usage", "anomalies"])
def test_the_operator_is_refused_the_supervision_pages(home: Ledger, page: str) -> None:
    at = _app()
    at.text_input(key="login_name").input("olga")
    at.text_input(key="login_password").input(PASSWORD)
    at.button(key="login_submit").click().run(timeout=60)
    with pytest.raises(ValueError):
        at.switch_page(f"app_pages/{page}.py")  # not in an operator's navigation
    # and the page's own check, for whoever reaches its script anyway
    direct = AppTest.from_file(str(ROOT / "dashboard" / "app_pages" / f"{page}.py"))
    direct.session_state["pdo_settings"] = Settings(home=home.seed.home)
    direct.session_state["pdo_user"] = {"name": "olga", "role": "operator", "exp": time.time() + 60}
    _run(direct)
    _refused(direct)
    assert "操作员" in direct.error[0].value
    assert COMPANY not in _text(direct) and SPIKY not in _text(direct)


def test_an_empty_ledger_says_what_happens_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed = seed_console(tmp_path / "empty", with_runs=False)
    _use(monkeypatch, seed.home)
    at = _as("regina", "overview")
    assert _metrics(at)["调用次数"] == "0" and _metrics(at)["计费金额（元）"] == "0.00"
    assert any(i.value.startswith("该期间暂无调用：银行通过 API 调用") for i in at.info)
    assert any(s.value.startswith("暂无待办") for s in at.success)
    at.switch_page("app_pages/usage.py")
    _run(at)
    assert any(i.value.startswith("暂无调用记录：银行通过 API") for i in at.info)
    assert not at.dataframe and not at.get("download_button")
    at.switch_page("app_pages/anomalies.py")
    _run(at)
    assert set(_metrics(at).values()) == {"0"}
    assert len(at.success) == 5 and not at.dataframe
