"""The review package as one HTML page: every section, the package's figures, nothing else."""

from __future__ import annotations

import copy
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner, Result

from dashboard import queries
from pdo.cli import app
from pdo.lake import Lake
from pdo.ledger.db import make_engine, session_scope
from pdo.ledger.models import PipelineRun
from pdo.review_report import MISSING_BIN_SHOWN, render_review_html, run_review_html
from pdo.settings import Settings
from pdo.signoff import decide
from tests.console_seed import Seed, seed_console

SECTIONS = [
    "审核要点",
    "授权",
    "各表行数与隔离",
    "字段与脱敏策略",
    "残留个人信息扫描",
    "重识别风险",
    "数据质量",
    "校验结果",
    "数据集哈希",
    "数据产品",
]


class _Cells(HTMLParser):
    """Text of every table row (also by section) and every heading, as a reader sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.by_section: dict[str, list[list[str]]] = {}
        self.headings: list[str] = []
        self.subheadings: list[str] = []  # h3–h5
        self.facts: dict[str, dict[str, list[str]]] = {}  # section → label → values, in order
        self._section = ""
        self._cell: list[str] | None = None
        self._h2: list[str] | None = None
        self._sub: list[str] | None = None
        self._dt: list[str] | None = None
        self._dd: list[str] | None = None
        self._label = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "section":
            self._section = dict(attrs).get("id") or ""
        elif tag == "tr":
            self.rows.append([])
            self.by_section.setdefault(self._section, []).append(self.rows[-1])
        elif tag in ("h3", "h4", "h5"):
            self._sub = []
        elif tag == "dt":
            self._dt = []
        elif tag == "dd":
            self._dd = []
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "h2":
            self._h2 = []
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "h2" and self._h2 is not None:
            self.headings.append("".join(self._h2))
            self._h2 = None
        elif tag in ("h3", "h4", "h5") and self._sub is not None:
            self.subheadings.append(" ".join("".join(self._sub).split()))
            self._sub = None
        elif tag == "dt" and self._dt is not None:
            self._label, self._dt = "".join(self._dt).strip(), None
        elif tag == "dd" and self._dd is not None:
            section = self.facts.setdefault(self._section, {})
            section.setdefault(self._label, []).append(" ".join("".join(self._dd).split()))
            self._dd = None

    def handle_data(self, data: str) -> None:
        for sink in (self._cell, self._h2, self._sub, self._dt, self._dd):
            if sink is not None:
                sink.append(data)


def _parse(html: str) -> _Cells:
    parser = _Cells()
    parser.feed(html)
    return parser


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seed:
    """One seeded ledger for the read-only tests of this module."""
    return seed_console(tmp_path_factory.mktemp("review") / "home")


@pytest.fixture
def fresh(tmp_path: Path) -> Seed:
    """A ledger of its own, for a test that records decisions."""
    return seed_console(tmp_path / "home")


def _engine(seed: Seed) -> Engine:
    return make_engine(Settings(home=seed.home).db_url)


def _run(seed: Seed) -> tuple[PipelineRun, dict[str, Any]]:
    with Session(_engine(seed)) as s:
        run = s.get(PipelineRun, seed.pending_run_id)
        assert run is not None
        s.expunge(run)
    return run, run.review_package


def _page(seed: Seed) -> str:
    with Session(_engine(seed)) as s:
        return run_review_html(s, seed.pending_run_id)


def test_every_section_has_its_chinese_heading_in_reading_order(seeded: Seed) -> None:
    headings = _parse(_page(seeded)).headings
    numbered = [h.split("、", 1)[1] for h in headings]
    assert [h.split(" ")[0] for h in numbered] == SECTIONS
    assert headings[0].startswith("一、") and headings[-1].startswith("十、")


def test_header_names_the_run_its_starter_local_time_and_full_package_hash(seeded: Seed) -> None:
    html = _page(seeded)
    assert '<html lang="zh-CN">' in html and "数据审核包" in html
    assert seeded.pending_run_id in html
    assert seeded.package_hash in html  # the full hash, not a prefix
    assert "2026-01-05 10:00:00" in html  # 02:00 UTC in Asia/Shanghai
    assert "待签核" in html and "rick" in html
    assert "<strong>0/2</strong>" in html and "还需 2 名审核员批准" in html
    assert "✓ 一致" in html  # the package still matches the hash it is bound to


def test_authorization_and_rows_come_from_the_package(seeded: Seed) -> None:
    html = _page(seeded)
    rows = _parse(html).rows
    assert "授权〔2026〕1号" in html and "贷前审查、贷后管理" in html
    assert "2027-01-05 10:00:00" in html  # valid_until in Beijing time
    assert "tax_credit（纳税信用等级）" in html
    tax = next(r for r in rows if r[0] == "tax_credit 纳税信用等级" and r[1] == "一般")
    assert tax[1:6] == ["一般", "120", "117", "3", "✓ 平衡"]
    assert "采集：year: cannot parse as integer × 1" in tax[6]  # each ingest reason, counted
    assert (
        "统一社会信用代码校验位不正确（expect_column_values_to_be_valid_uscc(uscc)） × 2" in tax[6]
    )
    registry = next(r for r in rows if r[0].startswith("enterprise_registry") and r[1] == "重要")
    assert registry[1:6] == ["重要", "100", "100", "0", "✓ 平衡"] and registry[6] == "—"


def test_each_field_shows_its_policy_in_chinese(seeded: Seed) -> None:
    rows = _parse(_page(seeded)).rows
    policies = {r[0]: r[1:] for r in rows if len(r) == 4 and r[0] != "字段 Field"}
    assert policies["legal_rep_mobile"] == ["法定代表人手机号", "删除 drop", "否"]
    assert policies["legal_rep_id"] == ["法定代表人身份证号", "假名化 pseudonymize", "是"]
    assert policies["legal_rep_name"] == ["法定代表人姓名", "掩码 mask", "是"]
    assert policies["address"] == ["住所", "泛化 generalize", "是"]
    assert policies["name"] == ["企业名称", "保留 keep", "是"]
    assert policies["uscc"][1] == "主体标识 entity_key"
    assert policies["tax_paid"][1] == "保留 keep"


def test_privacy_risk_quality_validation_and_hashes(seeded: Seed) -> None:
    html = _page(seeded)
    _, package = _run(seeded)
    rows = _parse(html).rows
    residual = [r for r in rows if len(r) == 4 and r[1] == "✓ 0（通过）"]
    assert [r[0].split()[0] for r in residual] == ["enterprise_registry", "tax_credit"]
    assert [r[2] for r in residual] == ["—", "—"]  # nothing needed redacting a second time
    assert "3f9a1c2b7d4e" in html  # the pseudonym key's id, never the key
    assert "k = 3（目标 ≥ 5）" in html and "⚠ 低于目标" in html
    assert "status（登记状态） = 2" in html
    assert "33.33%" in html  # 1 / smallest class of 3
    assert "未声明准标识符、不做评估的表：tax_credit" in html
    quality = {r[1]: r[2:] for r in rows if r[0] == "tax_credit 纳税信用等级" and len(r) == 7}
    assert quality["原始区"] == ["97.50%", "100.00%", "—", "98.32%", "100.00%"]
    assert quality["脱敏区"] == ["100.00%", "99.25%", "—", "—", "—"]
    validation = _parse(html).by_section["validation"]
    suites = [r for r in validation if len(r) == 8 and r[0] != "数据表 Table"]
    assert [(r[0], r[1], r[2]) for r in suites] == [
        ("tax_credit", "原始区", "tax_credit.raw"),
        ("enterprise_registry", "原始区", "enterprise_registry.raw"),
        ("tax_credit", "脱敏区", "tax_credit"),
        ("enterprise_registry", "脱敏区", "enterprise_registry.desensitized"),
    ]
    assert suites[2][3:] == ["✓ 通过", "7", "6", "0", "1"]
    warning = next(r for r in rows if "⚠ 告警" in r)
    assert warning[0] == "tax_credit" and warning[-1] == "2 / 117"
    for d in package["datasets"]:
        assert re.fullmatch(r"[0-9a-f]{64}", d["id"]) and d["id"] in html
    datasets = [
        r for r in _parse(html).by_section["datasets"] if len(r) == 4 and r[0] != "数据表 Table"
    ]
    assert [(r[0].split()[0], r[2].replace(",", ""), r[3]) for r in datasets] == [
        (d["table"], str(d["rows"]), d["id"]) for d in package["datasets"]
    ]
    assert [r[1] for r in datasets] == ["脱敏区", "脱敏区", "产品区"]
    assert datasets[2][0] == "credit_risk 中小企业信用风险评分"  # a product dataset by its title


def test_the_page_is_self_contained(seeded: Seed) -> None:
    html = _page(seeded)
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html.lower() and "<link" not in html.lower()
    assert "@import" not in html and "url(" not in html
    assert html.count("<style>") == 1


def test_no_value_of_the_reviewed_datasets_appears(seeded: Seed) -> None:
    """Counts, column names and hashes only: no cell of any dataset the package covers."""
    text = re.sub(r"<style>.*?</style>", "", _page(seeded), flags=re.S)
    _, package = _run(seeded)
    lake = Lake(Settings(home=seeded.home).lake_dir)
    checked = 0
    for d in package["datasets"]:
        frame = lake.read(lake.manifest(d["zone"], d["table"], d["id"]))
        for name in frame.select(pl.col(pl.String)).columns:
            for value in frame[name].unique().to_list():
                # single letters (grades, sections) occur in any text, short codes in any hash
                if len(value) >= 2 and not (value.isdigit() and len(value) < 4):
                    assert value not in text, (d["table"], name)
                    checked += 1
    assert checked >= 10  # USCCs, districts and statuses were all looked for


def test_everything_from_the_package_is_escaped(seeded: Seed) -> None:
    run, package = _run(seeded)
    hostile = copy.deepcopy(package)
    hostile["tables"][0]["label_zh"] = "<script>alert(1)</script>"
    hostile["authorization"]["reference"] = '"><img src=x onerror=alert(1)>'
    hostile["tables"][0]["policies"] = {"<b>col</b>": "drop"}
    html = render_review_html(run, hostile, ["<i>rita</i>"], 2)
    assert "<script>" not in html and "<img" not in html and "<b>col" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;i&gt;rita&lt;/i&gt;" in html
    assert "✗ 审核包内容与哈希不一致" in html  # a changed package no longer matches its hash


def test_findings_missing_figures_and_progress_read_plainly(seeded: Seed) -> None:
    run, package = _run(seeded)
    changed = copy.deepcopy(package)
    changed["privacy"]["tax_credit"]["residual_pii"] = {"grade": {"PERSON": 2}}
    changed["privacy"]["enterprise_registry"]["redacted_again"] = {"scope": 3, "name": 0}
    changed["quality"]["tax_credit"]["raw"]["validity"] = None
    changed["tables"][0]["rows_out"] = 116  # one row lost
    html = render_review_html(run, changed, ["rita", "rosa"], 2)
    assert "✗ 2（未通过：grade：姓名 × 2）" in html
    residual = _parse(html).by_section["residual"]
    again = [r for r in residual if r[0].startswith("enterprise_registry")]
    assert [r[2] for r in again] == ["scope：3 个值"]
    assert "✗ 不平衡" in html and "✗ 有表不平衡" in html
    quality = {r[1]: r[2:] for r in _parse(html).rows if len(r) == 7 and r[1] == "原始区"}
    assert quality["原始区"][1] == "—"
    assert "<strong>2/2</strong>（已批准：rita、rosa），已满足" in html


def test_approvals_recorded_in_the_ledger_show_in_the_page(fresh: Seed) -> None:
    settings = Settings(home=fresh.home)
    with session_scope(_engine(fresh)) as s:
        decide(s, Lake(settings.lake_dir), fresh.pending_run_id, "rita", True, "核对无误")
    html = _page(fresh)
    assert "<strong>1/2</strong>（已批准：rita），还需 1 名审核员批准" in html


# --- CLI -----------------------------------------------------------------------------------


def _pdo(seed: Seed, *args: str) -> Result:
    env = {"PDO_HOME": str(seed.home), "PDO_DATABASE_URL": None}
    return CliRunner().invoke(app, list(args), env=env)


def test_cli_export_writes_the_page_the_console_serves(seeded: Seed, tmp_path: Path) -> None:
    out = tmp_path / "out" / "package.html"
    out.parent.mkdir()
    result = _pdo(seeded, "signoff", "export", seeded.pending_run_id, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out.resolve())
    written = out.read_text(encoding="utf-8")
    assert written == _page(seeded)
    with Session(_engine(seeded)) as s:
        (pending,) = queries.pending_runs(s)
    assert pending.review_html == written  # the console's download button serves the same


def test_cli_export_defaults_to_the_run_id_in_the_current_dir(
    seeded: Seed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = _pdo(seeded, "signoff", "export", seeded.pending_run_id)
    assert result.exit_code == 0, result.output
    expected = tmp_path / f"review-{seeded.pending_run_id[:12]}.html"
    assert result.stdout.strip() == str(expected)
    assert "数据审核包" in expected.read_text(encoding="utf-8")


def test_cli_export_refuses_unknown_runs_and_runs_without_a_package(
    seeded: Seed, tmp_path: Path
) -> None:
    result = _pdo(seeded, "signoff", "export", "no-such-run", "--out", str(tmp_path / "x.html"))
    assert result.exit_code == 1 and "no run no-such-run" in result.stderr
    with Session(_engine(seeded)) as s:
        published = s.exec(select(PipelineRun).where(PipelineRun.status == "published")).one()
    result = _pdo(seeded, "signoff", "export", published.id, "--out", str(tmp_path / "y.html"))
    assert result.exit_code == 1
    assert "has no review package (status: published)" in result.stderr
    assert not (tmp_path / "x.html").exists() and not (tmp_path / "y.html").exists()
    result = _pdo(
        seeded, "signoff", "export", seeded.pending_run_id, "--out", str(tmp_path / "no" / "z.html")
    )
    assert result.exit_code == 1 and "cannot write" in result.stderr


def test_the_grant_s_rights_and_the_products_it_feeds_are_shown(seeded: Seed) -> None:
    html = _page(seeded)
    assert "数据资源持有权" in html and "数据加工使用权" in html and "数据产品经营权" in html
    assert "市场监督管理局" in html  # the department keeps holding its data
    cells = _parse(html)
    assert "中小企业信用风险评分 credit_risk" in cells.subheadings
    facts = cells.facts["products"]
    live = _card(seeded, live=True)
    assert facts["现行版本 Live version"] == ["credit_risk@1（基准日 2025-12-31）"]
    assert facts["现行版本指标 Live figures"] == [
        f"跨时验证 AUC {live['out_of_time']['auc']:.4f}，KS {live['out_of_time']['ks']:.4f}，"
        f"样本 {live['out_of_time']['n']} 笔"
    ]
    assert facts["单价（每次调用） Price per call"] == ["2.00 元"]
    assert "授权运营单位 40.00%" in facts["收益分成 Revenue shares"][0]  # 100% − 60% to departments
    assert "bank_loans（合作银行历史贷款表现）" in facts["输入表 Inputs"][0]


# --- the products section: this run's build and its model card ------------------------------


def _card(seed: Seed, *, live: bool = False) -> dict[str, Any]:
    """The credit-risk card the package carries: the candidate's, or the live version's."""
    _, package = _run(seed)
    (product,) = package["products"]
    return product["live_version"]["metrics"] if live else product["candidate"]["model_card"]


def _product_rows(html: str, first: str) -> list[list[str]]:
    """Rows of the products section whose first cell is `first`."""
    return [r for r in _parse(html).by_section["products"] if r and r[0] == first]


def test_the_build_the_sign_off_covers_is_named_by_its_hashes(seeded: Seed) -> None:
    _, package = _run(seeded)
    candidate = package["products"][0]["candidate"]
    facts = _parse(_page(seeded)).facts["products"]
    assert facts["产品数据集哈希（SHA-256） Product dataset"] == [candidate["dataset"]]
    assert facts["模型哈希（SHA-256） Model hash"] == [candidate["model_sha256"]]
    assert facts["行数（企业数） Rows"] == [f"{candidate['rows']:,}"]
    assert facts["基准日 As of"] == [candidate["as_of"]]
    assert facts["产品规则集校验 Product suite"] == ["✓ 通过（7/7）"]
    drift = candidate["drift"]
    sign, relation = ("⚠", ">") if drift["flagged"] else ("✓", "≤")
    (shown,) = facts["与现行版本的漂移 Drift against live"]
    assert shown.startswith(f"{sign} PSI {drift['psi']:.4f} {relation} 0.25（对比 credit_risk@1）")


def test_the_scorecard_s_discrimination_and_calibration_are_the_card_s_figures(
    seeded: Seed,
) -> None:
    html = _page(seeded)
    card, live = _card(seeded), _card(seeded, live=True)
    subheadings = _parse(html).subheadings
    for heading in (
        "模型概况 Model",
        "样本与区分能力 Samples and discrimination",
        "分等级校准（跨时验证样本） Calibration by grade, out of time",
        "稳定性（PSI 与 CSI） Stability",
        "分群表现：所属区县 Segments: District",
        "分群表现：行业门类 Segments: Industry section",
        "分群表现：企业规模（参保人数） Segments: Firm size by insured headcount",
        "特征字典 Feature dictionary",
        "否决规则 Knock-out rules",
        "评分结果 Scoring",
        "分箱表 Bin tables",
    ):
        assert heading in subheadings
    for name, sample in (("开发样本", "development"), ("跨时验证样本", "out_of_time")):
        (row,) = _product_rows(html, name)
        figures, period = card[sample], card["sample"][sample]
        assert row[1] == f"{period['from']} 至 {period['to']}"
        assert row[2:] == [
            str(figures["n"]),
            str(period["bads"]),
            f"{figures['bad_rate'] * 100:.2f}%",
            f"{figures['auc']:.4f}",
            f"{figures['gini']:.4f}",
            f"{figures['ks']:.4f}",
        ]
    (against_live,) = _product_rows(html, "现行版本 credit_risk@1 跨时验证")
    assert against_live[5] == f"{live['out_of_time']['auc']:.4f}"
    for c in card["calibration_out_of_time"]:
        (row,) = _product_rows(html, c["grade"])[:1]  # the first table keyed by grade
        assert row[2:] == [
            str(c["n"]),
            f"{c['observed_bad_rate'] * 100:.2f}%",
            f"{c['predicted_pd'] * 100:.2f}%",
        ]


def _stability(value: float) -> str:
    """The verdict the page gives a PSI or CSI: stable, minor shift, or past the drift threshold."""
    if value <= 0.1:
        return "✓ 稳定"
    return "✓ 轻微变化（≤ 0.25）" if value <= 0.25 else "⚠ 显著变化（> 0.25）"


def test_stability_segments_and_scaling_are_shown(seeded: Seed) -> None:
    html = _page(seeded)
    card = _card(seeded)
    cells = _parse(html)
    (psi_row,) = _product_rows(html, "score")
    psi = card["psi_out_of_time"]
    assert psi_row[1:3] == ["总分（PSI）", f"{psi:.4f}"]
    assert psi_row[3] == _stability(psi)
    for variable, value in card["csi_out_of_time"].items():
        (row,) = _product_rows(html, variable)[:1]
        assert row[2:] == [f"{value:.4f}", _stability(value)]
    segments = [r for r in cells.by_section["products"] if len(r) == 5]
    for dimension in ("district", "industry_section", "size"):
        for s in card["segments_out_of_time"][dimension]:
            shown = [s["segment"], str(s["n"]), f"{s['approval_rate'] * 100:.2f}%"]
            assert any(r[:3] == shown for r in segments), (dimension, s)
    facts = cells.facts["products"]
    assert facts["基准分与基准好坏比 Base score at base odds"] == ["600 分时好坏比为 50:1"]
    assert facts["PDO（好坏比翻倍所需分数） Points to double the odds"] == ["20"]
    assert "good:bad" in facts["好坏比约定 Odds convention"][0]
    assert facts["评分卡哈希（SHA-256） Scorecard hash"] == [card["scorecard_sha256"]]
    grades = facts["等级划分（分数） Grades by score"][0]
    assert all(f"{g['grade']} " in grades for g in card["grades"]) and "E < " in grades


def test_every_bin_table_and_every_feature_is_shown(seeded: Seed) -> None:
    html = _page(seeded)
    card = _card(seeded)
    cells = _parse(html)
    rows = cells.by_section["products"]
    for table in card["bin_tables"]:
        assert f"{table['label_zh']} {table['variable']}" in cells.subheadings
        for b in table["bins"]:
            label = MISSING_BIN_SHOWN if b["bin"] == "Missing" else b["bin"]
            shown = [label, f"{b['count']:,}", f"{b['event_rate'] * 100:.2f}%"]
            assert any(r[:3] == shown and r[4] == str(b["points"]) for r in rows), b
    left_out = card["variables_left_out"]
    for f in card["feature_dictionary"]:
        (row,) = _product_rows(html, f["code"])
        assert row[1:4] == [f["name"], f["label_zh"], f["definition_zh"]]
        assert row[5] == f["direction"] and row[6].startswith("是" if f["used"] else "否")
        if left_out.get(f["name"]) == "constant":
            assert row[6] == "否：样本中取值恒定（constant）"  # why it was left out
    registry = _product_rows(html, "R01")[0][4]
    assert registry == "市场监督管理局（market）"  # the department, by its Chinese name
    knockouts = [r[:2] for r in rows if r and r[0].startswith("KO")]
    assert knockouts == [[k["code"], k["label_zh"]] for k in card["knockouts"]]


def test_at_a_glance_checks_product_drift_and_out_of_time_auc(seeded: Seed) -> None:
    run, package = _run(seeded)
    card = _card(seeded)
    facts = _parse(render_review_html(run, package, [], 2)).facts["summary"]
    drift = package["products"][0]["candidate"]["drift"]
    (shown,) = facts["产品漂移（相对现行版本） Product drift"]
    assert shown.startswith("⚠" if drift["flagged"] else "✓")
    assert f"credit_risk PSI {drift['psi']:.4f}" in shown
    auc = card["out_of_time"]["auc"]
    assert facts["跨时验证 AUC Out-of-time AUC"] == [f"✓ credit_risk {auc:.4f}"]

    changed = copy.deepcopy(package)
    candidate = changed["products"][0]["candidate"]
    candidate["drift"] |= {"psi": 0.31, "flagged": True}
    candidate["model_card"]["out_of_time"]["auc"] = None
    html = render_review_html(run, changed, [], 2)
    facts = _parse(html).facts["summary"]
    assert facts["产品漂移（相对现行版本） Product drift"] == ["⚠ credit_risk PSI 0.3100 > 0.25"]
    assert facts["跨时验证 AUC Out-of-time AUC"] == ["⚠ credit_risk 缺少跨时验证 AUC"]
    (build_drift,) = _parse(html).facts["products"]["与现行版本的漂移 Drift against live"]
    assert build_drift == "⚠ PSI 0.3100 > 0.25（对比 credit_risk@1）：分布显著变化"
