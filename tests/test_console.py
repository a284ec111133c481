"""The authority console driven through Streamlit's AppTest against a real, seeded SQLite ledger."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import text
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from dashboard.model_card import CARD_TABS
from dashboard.queries import ACTION_LABELS, AUDIT_COLUMNS
from pdo.ledger.db import make_engine
from pdo.ledger.models import AuditEvent, PipelineRun, SignOff
from pdo.settings import Settings
from tests.console_seed import CALLS, PASSWORD, PRICE_FEN, Seed, credit_risk_build, seed_console

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboard" / "app.py"


def _use_home(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    monkeypatch.setenv("PDO_HOME", str(home))
    monkeypatch.delenv("PDO_DATABASE_URL", raising=False)
    monkeypatch.setenv("PDO_CONSOLE_CONTINUES_RUNS", "false")  # one test turns it on


@pytest.fixture
def seeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Seed:
    seed = seed_console(tmp_path / "home")
    _use_home(monkeypatch, seed.home)
    return seed


def _session(seed: Seed) -> Session:
    return Session(make_engine(Settings(home=seed.home).db_url))


def _app() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.run(timeout=30)
    assert not at.exception
    return at


def _login(
    at: AppTest, name: str, password: str = PASSWORD, page: str | None = "signoff"
) -> AppTest:
    """Log in, then open `page` (None: stay where the console lands this user)."""
    at.text_input(key="login_name").input(name)
    at.text_input(key="login_password").input(password)
    at.button(key="login_submit").click().run(timeout=30)
    assert not at.exception
    if page is not None and "pdo_user" in at.session_state:
        _open(at, page)
    return at


def _open(at: AppTest, page: str) -> AppTest:
    at.switch_page(f"app_pages/{page}.py").run(timeout=30)
    assert not at.exception
    return at


def _titles(at: AppTest) -> list[str]:
    return [t.value for t in at.title]


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: str(m.value) for m in at.metric}


def _fen(yuan_text: str) -> int:
    """Parse '1,234.56' back to fen without floats."""
    whole, cents = yuan_text.replace(",", "").split(".")
    return int(whole) * 100 + int(cents)


# --- login -------------------------------------------------------------------------------


def test_only_the_login_page_before_login(seeded: Seed) -> None:
    at = _app()
    assert _titles(at) == ["监管与运营控制台"]
    assert not at.metric and not at.dataframe
    with pytest.raises(ValueError):
        at.switch_page("app_pages/usage.py")  # not registered until someone logs in


def test_wrong_password_is_refused(seeded: Seed) -> None:
    at = _login(_app(), "rita", "not-the-password")
    assert any("用户名或密码错误" in e.value for e in at.error)
    assert _titles(at) == ["监管与运营控制台"]
    assert "pdo_user" not in at.session_state


def test_right_password_logs_in_and_shows_role_then_logs_out(seeded: Seed) -> None:
    at = _login(_app(), "regina", page=None)
    assert _titles(at) == ["总览"]  # the authority lands on the overview
    sidebar = " ".join(m.value for m in at.sidebar.markdown)
    assert "regina" in sidebar and "监管员" in sidebar
    at.button(key="logout").click().run(timeout=30)
    assert _titles(at) == ["监管与运营控制台"]


# --- sign-off queue ----------------------------------------------------------------------


def test_queue_shows_the_pending_run_read_only_for_an_operator(seeded: Seed) -> None:
    at = _login(_app(), "olga")
    assert at.subheader[0].value == f"运行 {seeded.pending_run_id[:12]}"
    assert _metrics(at) == {
        "发起人": "rick",
        "数据表": "2",
        "隔离行数": "3",
        "校验": "全部通过",
        "批准进度": "0/2",
    }
    text_shown = " ".join(m.value for m in at.markdown)
    assert "2026-01-05 10:00:00" in text_shown  # 02:00 UTC in Asia/Shanghai
    assert seeded.package_hash[:16] in text_shown
    tables, validation, datasets, decisions = (d.value for d in at.dataframe)
    tax = tables.set_index("数据表").loc["tax_credit"]
    assert (tax["输入行数"], tax["输出行数"], tax["隔离行数"]) == (120, 117, 3)
    assert validation.loc[0, "结果"] == "通过" and validation.loc[0, "告警项"] == 1
    assert datasets.loc[0, "哈希"] == seeded.dataset_id[:12]
    assert decisions.loc[0, "审核人"] == "rita" and decisions.loc[0, "决定"] == "批准"
    assert any("只读" in i.value for i in at.info)
    assert not [b for b in at.button if b.key and b.key.startswith("approve-")]


def _tab_table(at: AppTest, label: str) -> pd.DataFrame:
    """The one static table under a sign-off tab, by the tab's label."""
    (tab,) = [t for t in at.tabs if t.label == label]
    (table,) = tab.table
    return table.value


def test_queue_tabs_show_authorization_policies_privacy_and_quality(seeded: Seed) -> None:
    at = _login(_app(), "regina")
    assert [t.label for t in at.tabs] == [
        "各表行数",
        "校验结果",
        "数据集哈希",
        "授权",
        "字段策略",
        "隐私与风险",
        "质量维度",
        "数据产品",
        *CARD_TABS,  # the candidate's model card, inside 数据产品
    ]
    grant = dict(zip(*(_tab_table(at, "授权")[c] for c in ("项目", "内容")), strict=True))
    assert grant == {
        "授权文号": "授权〔2026〕1号",
        "授权表": "enterprise_registry（企业登记信息）、tax_credit（纳税信用等级）",
        "用途": "贷前审查、贷后管理",
        "有效期至（北京时间）": "2027-01-05 10:00:00",
    }
    fields = _tab_table(at, "字段策略").set_index(["数据表", "字段"])
    registry = fields.loc["enterprise_registry"]
    assert registry.loc["legal_rep_mobile", "脱敏策略"] == "删除"
    assert registry.loc["legal_rep_mobile", "是否发布"] == "否（删除）"
    assert registry.loc["legal_rep_id", "脱敏策略"] == "假名化"
    assert registry.loc["legal_rep_name", "脱敏策略"] == "掩码"
    assert registry.loc["address", ["中文名", "脱敏策略"]].tolist() == ["住所", "泛化"]
    assert registry.loc["uscc", "脱敏策略"] == "主体标识"
    assert fields.loc[("tax_credit", "grade"), "脱敏策略"] == "保留"
    privacy = _tab_table(at, "隐私与风险").set_index("数据表")
    assert list(privacy.index) == ["enterprise_registry", "tax_credit"]
    assert set(privacy["残留个人信息"]) == {"0（通过）"}
    assert set(privacy["假名密钥编号"]) == {"3f9a1c2b7d4e"}
    registry_risk = privacy.loc["enterprise_registry"]
    assert (registry_risk["k"], registry_risk["目标 k"]) == (3, 5)
    assert registry_risk["k-匿名"] == "低于目标"
    assert registry_risk["l-多样性"] == "status（登记状态） = 2"
    assert registry_risk["最大重识别概率"] == "33.33%"
    assert privacy.loc["tax_credit", "k-匿名"] == "未评估（无准标识符）"
    quality = _tab_table(at, "质量维度").set_index("区域")
    assert quality.loc["原始区", "完整性"] == "97.50%"
    assert quality.loc["原始区", "一致性"] == "98.32%"
    assert quality.loc["脱敏区", "有效性"] == "99.25%"
    assert quality.loc["脱敏区", "唯一性"] == "—"


def test_each_queued_run_offers_its_review_package_as_html(seeded: Seed) -> None:
    at = _login(_app(), "olga")  # read-only roles may export too
    (download,) = at.get("download_button")
    assert download.proto.label == "导出审核包（HTML）"
    assert download.proto.id.endswith(f"export-{seeded.pending_run_id}")
    assert "单个 HTML 文件" in download.proto.help


def _tab(at: AppTest, label: str) -> Any:
    (tab,) = [t for t in at.tabs if t.label == label]
    return tab


def _rows(tab: Any) -> dict[str, list[str]]:
    """Every static table row under a tab, keyed by its first cell (first occurrence wins)."""
    rows: dict[str, list[str]] = {}
    for table in tab.table:
        for row in table.value.astype(str).values.tolist():
            rows.setdefault(row[0], row[1:])
    return rows


def _facts(tab: Any, index: int) -> dict[str, str]:
    table = tab.table[index].value
    return dict(zip(table["项目"], table["内容"], strict=True))


def test_queue_shows_the_candidate_build_and_its_model_card(seeded: Seed) -> None:
    at = _login(_app(), "rita")
    built = credit_risk_build()
    card = built.card
    products = _tab(at, "数据产品")
    assert any(
        "中小企业信用风险评分" in m.value and "credit_risk" in m.value for m in products.markdown
    )
    spec = _facts(products, 0)
    assert spec["现行版本"] == "credit_risk@1（基准日 2025-12-31）"
    assert spec["单价（每次调用）"] == "2.00 元"
    build = _facts(products, 1)
    assert build["模型哈希（SHA-256）"] == f"{built.model_sha256[:16]}…"  # as elsewhere
    assert build["基准日"] == built.as_of
    assert build["与现行版本的漂移"].startswith(f"✓ PSI {built.drift['psi']:.4f} ≤ 0.25")
    assert not products.warning  # no drift past the threshold in this build
    overview = _facts(_tab(at, "模型概况"), 0)
    assert overview["评分卡哈希（SHA-256）"] == f"{card['scorecard_sha256'][:16]}…"
    assert overview["基准分与基准好坏比"] == "600 分时好坏比为 50:1"
    performance = _rows(_tab(at, "区分能力与校准"))
    oot = card["out_of_time"]
    assert performance["跨时验证样本"][4:] == [
        f"{oot['auc']:.4f}",
        f"{oot['gini']:.4f}",
        f"{oot['ks']:.4f}",
    ]
    assert performance["开发样本"][4] == f"{card['development']['auc']:.4f}"
    stability = _rows(_tab(at, "稳定性"))
    assert stability["score"][1] == f"{card['psi_out_of_time']:.4f}"
    segments = _rows(_tab(at, "分群表现"))
    first = card["segments_out_of_time"]["district"][0]
    assert segments[first["segment"]][0] == str(first["n"])
    bins = [e.label for e in _tab(at, "分箱表").expander]
    assert len(bins) == len(card["bin_tables"])
    for table, label in zip(card["bin_tables"], bins, strict=True):
        assert label.startswith(f"{table['label_zh']}（{table['variable']}）")
    features = _rows(_tab(at, "特征字典与否决规则"))
    assert features["R01"][:2] == ["firm_age_years", "成立年限"]
    assert features["KO03"][0] == "失信被执行人"


def test_a_drifting_build_is_flagged_in_the_queue(seeded: Seed) -> None:
    with _session(seeded) as s:
        run = s.get(PipelineRun, seeded.pending_run_id)
        assert run is not None
        package = copy.deepcopy(run.review_package)
        package["products"][0]["candidate"]["drift"] |= {"psi": 0.4123, "flagged": True}
        run.review_package = package
        s.add(run)
        s.commit()
    products = _tab(_login(_app(), "rita"), "数据产品")
    (warning,) = products.warning
    assert "PSI 0.4123 > 0.25" in warning.value and "请审核员判断" in warning.value


def test_two_reviewers_approve_important_data_and_the_ledger_records_both(seeded: Seed) -> None:
    run_id = seeded.pending_run_id  # covers enterprise_registry: 重要 data, two approvals
    at = _login(_app(), "rita")
    assert _metrics(at)["批准进度"] == "0/2"
    at.text_area(key=f"comment-{run_id}").input("行数与校验结果核对无误")
    at.button(key=f"approve-{run_id}").click().run(timeout=30)
    assert not at.exception
    assert any("已批准" in s.value and "1/2" in s.value for s in at.success)
    assert _metrics(at)["批准进度"] == "1/2"  # still in the queue
    assert any("您已批准该运行" in c.value for c in at.caption)
    at.button(key=f"approve-{run_id}").click().run(timeout=30)
    assert any("已批准该运行" in e.value and "already approved" in e.value for e in at.error)
    with _session(seeded) as s:
        run = s.get(PipelineRun, run_id)
        assert run is not None and run.status == "awaiting_signoff"

    at = _login(_app(), "rosa")
    at.button(key=f"approve-{run_id}").click().run(timeout=30)
    assert any("已批准" in s.value and "1/2" not in s.value for s in at.success)
    assert any(i.value == "暂无待签核的运行。" for i in at.info)
    with _session(seeded) as s:
        run = s.get(PipelineRun, run_id)
        assert run is not None and run.status == "approved"
        decisions = s.exec(select(SignOff).where(SignOff.run_id == run_id)).all()
    assert sorted((d.reviewer, d.decision) for d in decisions) == [
        ("rita", "approved"),
        ("rosa", "approved"),
    ]
    rita = next(d for d in decisions if d.reviewer == "rita")
    assert rita.comment == "行数与校验结果核对无误"
    assert {d.covers_hash for d in decisions} == {seeded.package_hash}
    latest = at.dataframe[-1].value
    assert latest.loc[0, "运行"] == run_id[:12] and latest.loc[0, "审核人"] == "rosa"


def test_the_runs_starter_cannot_approve_it(seeded: Seed) -> None:
    at = _login(_app(), "rick")
    at.button(key=f"approve-{seeded.pending_run_id}").click().run(timeout=30)
    errors = [e.value for e in at.error]
    assert any("签核失败" in e and "发起人不能签核自己发起的运行" in e for e in errors), errors
    assert any("cannot decide" in e for e in errors)  # the gate's own message is kept
    with _session(seeded) as s:
        run = s.get(PipelineRun, seeded.pending_run_id)
        assert run is not None and run.status == "awaiting_signoff"


def test_rejection_needs_a_comment_then_rejects_and_the_run_continues_in_background(
    seeded: Seed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PDO_CONSOLE_CONTINUES_RUNS", "true")
    at = _login(_app(), "rita")
    run_id = seeded.pending_run_id
    at.button(key=f"reject-{run_id}").click().run(timeout=30)
    assert any("驳回必须填写意见" in e.value for e in at.error)
    at.text_area(key=f"comment-{run_id}").input("隔离行数偏高，请复核")
    at.button(key=f"reject-{run_id}").click().run(timeout=30)
    assert any("已驳回" in s.value and "后台继续" in s.value for s in at.success)
    with _session(seeded) as s:
        run = s.get(PipelineRun, run_id)
        assert run is not None and run.status == "rejected"
    log = seeded.home / "logs" / f"continue-{run_id[:12]}.log"
    deadline = time.monotonic() + 120  # a detached `pdo signoff continue` picks the run up
    while f"continuing run {run_id} (rejected)" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, log.read_text() if log.exists() else "no log"
        time.sleep(0.5)


# --- quality report and Data Docs -------------------------------------------------------


@pytest.fixture
def seeded_with_docs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Seed:
    seed = seed_console(tmp_path / "home", with_docs=True)
    _use_home(monkeypatch, seed.home)
    return seed


def test_quality_page_shows_dimensions_and_opens_the_runs_data_docs(
    seeded_with_docs: Seed,
) -> None:
    run_id = seeded_with_docs.pending_run_id
    at = _open(_login(_app(), "regina"), "quality")
    assert _titles(at) == ["质量报告"]
    run_box, page_box = at.selectbox
    assert run_box.value == run_id
    assert "待签核" in run_box.format_func(run_box.value)
    quality = at.dataframe[0].value.set_index("区域")
    assert quality.loc["原始区", "完整性"] == "97.50%"
    assert quality.loc["脱敏区", "有效性"] == "99.25%"
    assert quality.loc["原始区", "唯一性"] == "—"
    label = page_box.format_func(page_box.value)
    assert label == "tax_credit · 脱敏区规则集（tax_credit.desensitized）"
    (frame,) = at.get("iframe")
    html = frame.proto.srcdoc
    assert "Expectation Validation Result" in html and "tax_credit.desensitized" in html
    assert run_id in html  # the page of this run, not another
    assert at.query_params["run"] == run_id


def test_the_signoff_queue_links_each_run_to_its_quality_report(seeded_with_docs: Seed) -> None:
    at = _login(_app(), "rita")
    (link,) = [p for p in at.get("page_link") if "质量报告" in p.proto.label]
    assert "quality" in link.proto.page
    assert seeded_with_docs.pending_run_id in link.proto.query_string


def test_quality_page_without_runs_says_so(seeded: Seed) -> None:
    at = _open(_login(_app(), "regina"), "quality")
    assert "暂无质量报告：运行完成校验后会在此生成。" in [i.value for i in at.info]


# --- products and model cards ------------------------------------------------------------


def test_products_page_shows_the_published_version_s_model_card(seeded: Seed) -> None:
    at = _open(_login(_app(), "regina"), "products")
    assert _titles(at) == ["数据产品"]
    catalog = at.table[0].value.set_index("产品")
    assert catalog.loc["credit_risk", "现行版本"] == "credit_risk@1"
    assert catalog.loc["credit_risk", "单价（元/次）"] == "2.00"
    (box,) = at.selectbox
    assert box.value == "credit_risk@1"
    assert (
        box.format_func(box.value)
        == "中小企业信用风险评分 · credit_risk@1 · 现行（已发布） · 基准日 2025-12-31"
    )
    facts = dict(zip(at.table[1].value["项目"], at.table[1].value["内容"], strict=True))
    assert facts["版本"] == "credit_risk@1" and facts["状态"] == "现行（已发布）"
    assert facts["相对前一版本的漂移"] == "—（尚无现行版本，不比较）"
    live = credit_risk_build().live_card
    assert [t.label for t in at.tabs] == list(CARD_TABS)
    overview = _facts(_tab(at, "模型概况"), 1)  # 评分结果: the version's own scoring date
    assert overview["评分日"] == "2025-12-31"
    assert overview["评分企业数"] == f"{live['scoring']['n_scored']:,}"
    performance = _rows(_tab(at, "区分能力与校准"))
    assert performance["跨时验证样本"][4] == f"{live['out_of_time']['auc']:.4f}"
    assert "现行版本 credit_risk@1 跨时验证" not in performance  # no comparison with itself


def test_products_page_without_versions_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed = seed_console(tmp_path / "empty", with_runs=False)
    _use_home(monkeypatch, seed.home)
    at = _open(_login(_app(), "regina"), "products")
    infos = [i.value for i in at.info]
    assert "暂无数据产品。" in infos
    assert any(i.startswith("暂无已发布的产品版本") for i in infos)


# --- usage and revenue -------------------------------------------------------------------


def test_usage_per_bank_in_yuan(seeded: Seed) -> None:
    at = _open(_login(_app(), "regina"), "usage")
    assert _titles(at) == ["使用审计"]
    assert _metrics(at) == {"调用总次数": "4", "计费总额（元）": "8.00"}
    by_bank, by_version, by_purpose = (d.value for d in at.dataframe[:3])
    banks = by_bank.set_index("银行")
    assert banks.loc["示范银行", "调用次数"] == 3
    assert banks.loc["示范银行", "计费金额（元）"] == "6.00"  # 3 calls × 2.00 元
    assert banks.loc["第二银行", "计费金额（元）"] == "2.00"
    assert by_version.loc[0, "版本"] == "credit_risk@1" and by_version.loc[0, "调用次数"] == 4
    purposes = dict(zip(by_purpose["用途"], by_purpose["计费金额（元）"], strict=True))
    assert purposes == {"贷前审查": "6.00", "贷后管理": "2.00"}
    assert sum(_fen(v) for v in by_bank["计费金额（元）"]) == seeded.billed_fen


def test_revenue_per_department_adds_up_to_billed_usage(seeded: Seed) -> None:
    at = _open(_login(_app(), "regina"), "revenue")
    assert _titles(at) == ["收益分配"]
    shown = _metrics(at)
    assert {k: shown[k] for k in ("计费总额（元）", "退款（元）", "分配合计（元）", "核对")} == {
        "计费总额（元）": "8.00",
        "退款（元）": "0.00",
        "分配合计（元）": "8.00",
        "核对": "一致",
    }
    parties = at.dataframe[0].value.set_index("分配方")
    calls = sum(n for n, _ in CALLS.values())
    assert parties.loc["授权运营单位", "金额（元）"] == "3.20"  # 40% of 4 × 200 fen
    assert parties.loc["市场监督管理局", "金额（元）"] == "1.20"
    assert parties.loc["税务局", "代码"] == "tax"
    assert sum(_fen(v) for v in parties["金额（元）"]) == calls * PRICE_FEN
    assert at.success and "一致" in at.success[0].value


# --- audit -------------------------------------------------------------------------------


def test_every_action_on_the_chain_is_named_in_both_languages(seeded: Seed) -> None:
    """The latest-events table names actions, never shows their codes, in either language."""
    with _session(seeded) as s:
        recorded = set(s.exec(select(AuditEvent.action).distinct()))
    assert {"query.serve", "authorization.grant", "user.add"} <= recorded
    assert recorded - set(ACTION_LABELS) == set()
    at = _open(_login(_app(), "regina"), "audit")
    zh = at.dataframe[0].value
    at.toggle(key="pdo_lang_en").set_value(True).run(timeout=30)
    en = at.dataframe[0].value
    assert list(en.columns) == list(AUDIT_COLUMNS.values())
    assert not any(a in recorded for a in [*zh["动作"], *en["Action"]])
    assert all(a.isascii() for a in en["Action"]) and not any(a.isascii() for a in zh["动作"])


def test_audit_chain_intact_then_broken(seeded: Seed) -> None:
    at = _open(_login(_app(), "regina"), "audit")
    assert _metrics(at)["审计链"] == "完整"
    events = at.dataframe[0].value
    assert events.loc[0, "序号"] == events["序号"].max()
    assert "新增用户" in set(events["动作"])
    engine = make_engine(Settings(home=seeded.home).db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_event SET actor = 'mallory' WHERE seq = 2"))
    at.run(timeout=30)
    assert _metrics(at)["审计链"] == "已损坏"
    assert any("第 2 条" in e.value and "内容与哈希不符" in e.value for e in at.error)


# --- empty states and start-up -----------------------------------------------------------


def test_empty_ledger_shows_chinese_empty_states(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed = seed_console(tmp_path / "empty", with_runs=False)
    _use_home(monkeypatch, seed.home)
    at = _login(_app(), "rita")
    infos = [i.value for i in at.info]
    assert "暂无待签核的运行。" in infos and "暂无签核记录。" in infos
    _open(at, "usage")
    assert _metrics(at)["计费总额（元）"] == "0.00"
    assert any(i.value.startswith("暂无调用记录") for i in at.info)
    at = _login(_app(), "regina", page="revenue")  # reviewers do not see revenue
    assert "暂无收益分配记录。" in [i.value for i in at.info]


def test_console_start_up_imports_neither_great_expectations_nor_prefect(seeded: Seed) -> None:
    """In a fresh interpreter: log in and visit every page, then look at sys.modules."""
    script = f"""
import sys
from streamlit.testing.v1 import AppTest
at = AppTest.from_file({str(APP)!r}, default_timeout=30).run()
at.text_input(key="login_name").input("regina")
at.text_input(key="login_password").input({PASSWORD!r})
at.button(key="login_submit").click().run()
for page in ("quality", "products", "usage", "revenue", "audit"):
    at.switch_page(f"app_pages/{{page}}.py").run()
    assert not at.exception, at.exception
slow = sorted({{m.split(".")[0] for m in sys.modules}} & {{"great_expectations", "prefect"}})
print("SLOW:" + ",".join(slow))
"""
    out = subprocess.run(
        [sys.executable, "-c", script],
        env=dict(os.environ),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("SLOW:")]
    assert lines == ["SLOW:"], out.stdout + out.stderr
