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
from pdo.review_report import render_review_html, run_review_html
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
    """Text of every table row and every h2, to assert on what a reader sees."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.headings: list[str] = []
        self._cell: list[str] | None = None
        self._h2: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
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

    def handle_data(self, data: str) -> None:
        for sink in (self._cell, self._h2):
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
    assert "采集时无法解析 × 1" in tax[6]
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
    residual = [r for r in rows if len(r) == 3 and r[1] == "✓ 0（通过）"]
    assert [r[0].split()[0] for r in residual] == ["enterprise_registry", "tax_credit"]
    assert "3f9a1c2b7d4e" in html  # the pseudonym key's id, never the key
    assert "k = 3（目标 ≥ 5）" in html and "⚠ 低于目标" in html
    assert "status（登记状态） = 2" in html
    assert "33.33%" in html  # 1 / smallest class of 3
    assert "未声明准标识符、不做评估的表：tax_credit" in html
    quality = {r[1]: r[2:] for r in rows if r[0] == "tax_credit 纳税信用等级" and len(r) == 7}
    assert quality["原始区"] == ["97.50%", "100.00%", "—", "98.32%", "100.00%"]
    assert quality["脱敏区"] == ["100.00%", "99.25%", "—", "—", "—"]
    suites = [r for r in rows if len(r) == 8 and r[0] != "数据表 Table"]
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
    datasets = [r for r in rows if len(r) == 4 and r[1] == "脱敏区"]
    assert [(r[0].split()[0], r[2], r[3]) for r in datasets] == [
        (d["table"], str(d["rows"]), d["id"]) for d in package["datasets"]
    ]


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
    changed["quality"]["tax_credit"]["raw"]["validity"] = None
    changed["tables"][0]["rows_out"] = 116  # one row lost
    html = render_review_html(run, changed, ["rita", "rosa"], 2)
    assert "✗ 2（未通过：grade：姓名 × 2）" in html
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
    rows = _parse(html).rows
    (product,) = [r for r in rows if r and r[0].startswith("credit_risk")]
    assert "credit_risk@1" in product and "auc_in_sample 0.781" in " ".join(product)
