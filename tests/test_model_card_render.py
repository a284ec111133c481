"""The model card, rendered twice from one set of rows: the HTML review package and the console."""

from __future__ import annotations

import copy
from html.parser import HTMLParser
from typing import Any

import pytest

from dashboard import queries
from pdo.ledger.models import PipelineRun
from pdo.review_report import (
    MISSING_BIN_SHOWN,
    Code,
    Verdict,
    bin_tables,
    card_tables,
    cell_text,
    drift_verdict,
    render_review_html,
)
from tests.console_seed import credit_risk_build

OPERATING_STATUS_CARD = {
    "as_of": "2026-06-30",
    "n_verified": 400,
    "status_counts": {"active": 331, "abnormal": 41, "revoked": 17, "cancelled": 11},
    "status_labels_zh": {
        "active": "在营",
        "abnormal": "经营异常",
        "revoked": "吊销",
        "cancelled": "注销",
    },
}


class _Rows(HTMLParser):
    """The text of every table row in the page."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _rows(html: str) -> list[list[str]]:
    parser = _Rows()
    parser.feed(html)
    return parser.rows


def _run() -> PipelineRun:
    return PipelineRun(
        id="0" * 32, source_dir="/deliveries", authorization_id="a", started_by="olga"
    )


def _product(name: str, title: str, card: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    """A package's product entry around a card (None: the run did not build the product)."""
    candidate = None
    if card is not None:
        candidate = {
            "product": name,
            "dataset": "d" * 64,
            "rows": 400,
            "as_of": "2026-06-30",
            "model_card": card,
            "model": None,
            "model_sha256": None,
            "validation": {"success": True, "evaluated": 5, "successful": 5, "failures": []},
            "drift": {"against": None, "psi": None, "flagged": False},
        }
    entry = {"product": name, "title_zh": title, "inputs": ["enterprise_registry"]}
    return entry | {"live_version": None, "candidate": candidate} | extra


@pytest.fixture(scope="module")
def card() -> dict[str, Any]:
    return copy.deepcopy(credit_risk_build().card)


def test_the_console_shows_the_same_rows_as_the_page(card: dict[str, Any]) -> None:
    """Every row of every console table is a row of the HTML page, cell for cell."""
    package = {"products": [_product("credit_risk", "中小企业信用风险评分", card)]}
    page = _rows(render_review_html(_run(), package, [], 2))
    shown = queries.model_card(card)
    assert shown.scorecard and len(shown.bins) == len(card["bin_tables"])
    frames = [s.frame for s in shown.sections + shown.bins]
    assert len(frames) == len(card_tables(card)) + len(bin_tables(card))
    for frame in frames:
        for row in frame.rows():
            assert list(row) in page, row
    assert [s.key for s in shown.part("segments")] == ["segments"] * 3


def test_the_missing_bin_is_named_for_reviewers_in_both_renderings(card: dict[str, Any]) -> None:
    """The scorecard stores its last bin as "Missing"; reviewers read it in Chinese too."""
    package = {"products": [_product("credit_risk", "中小企业信用风险评分", card)]}
    page = _rows(render_review_html(_run(), package, [], 2))
    shown = queries.model_card(card)
    last_rows = [b.frame.row(-1)[0] for b in shown.bins]
    assert last_rows == [MISSING_BIN_SHOWN] * len(card["bin_tables"])
    assert all(t["bins"][-1]["bin"] == "Missing" for t in card["bin_tables"])  # stored as it was
    assert not any(row and row[0] == "Missing" for row in page)


def test_a_rule_product_s_card_is_shown_as_its_counts() -> None:
    package = {"products": [_product("operating_status", "经营状态核验", OPERATING_STATUS_CARD)]}
    html = render_review_html(_run(), package, [], 2)
    assert "产品说明卡" in html and "分箱表" not in html and "模型概况" not in html
    rows = _rows(html)
    assert ["active", "在营", "331"] in rows and ["cancelled", "注销", "11"] in rows
    assert "无模型（规则产品）" in html
    assert "—（没有评分卡产品）" in html  # no out-of-time AUC to look for
    assert "—（尚无可比较的现行版本）" in html
    shown = queries.model_card(OPERATING_STATUS_CARD)
    assert not shown.scorecard and not shown.bins
    facts = dict(zip(shown.overview["项目"], shown.overview["内容"], strict=True))
    assert facts == {"基准日": "2026-06-30", "核验企业数": "400"}
    (counts,) = shown.sections
    assert counts.title == "各状态企业数" and counts.frame.row(3) == ("cancelled", "注销", "11")


def test_products_not_built_and_partial_cards_still_render(card: dict[str, Any]) -> None:
    partial = {"scorecard_sha256": "f" * 64, "bin_tables": card["bin_tables"][:1]}
    package = {
        "products": [
            _product("credit_risk", "中小企业信用风险评分", partial),
            _product("operating_status", "经营状态核验", None),
        ]
    }
    html = render_review_html(_run(), package, [], 2)
    assert "本次运行未构建该产品。" in html
    assert "模型卡未提供该项。" in html  # calibration, stability, … are missing from the card
    assert "⚠ credit_risk 缺少跨时验证 AUC" in html
    assert "审核包未列出数据产品。" in render_review_html(_run(), {"products": []}, [], 2)
    assert "—（本次未构建数据产品）" in render_review_html(_run(), {}, [], 2)


def test_card_values_are_escaped(card: dict[str, Any]) -> None:
    hostile = copy.deepcopy(card)
    hostile["bin_tables"][0]["bins"][0]["bin"] = "<script>alert(1)</script>"
    hostile["feature_dictionary"][0]["definition_zh"] = '"><img src=x onerror=alert(1)>'
    hostile["method"] = "<b>method</b>"
    package = {"products": [_product("credit_risk", "<i>评分</i>", hostile)]}
    html = render_review_html(_run(), package, [], 2)
    assert "<script>" not in html and "<img" not in html and "<b>method" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;i&gt;评分&lt;/i&gt;" in html


def test_drift_reads_the_same_in_both_renderings() -> None:
    assert drift_verdict(None) == "—"
    assert drift_verdict({"against": None, "psi": None, "flagged": False}).startswith("—")
    assert "未计算" in cell_text(drift_verdict({"against": "x@1", "psi": None}))
    flagged = drift_verdict({"against": "x@1", "psi": 0.3, "threshold": 0.25, "flagged": True})
    assert isinstance(flagged, Verdict) and not flagged.ok and flagged.warn
    assert cell_text(flagged) == "⚠ PSI 0.3000 > 0.25（对比 x@1）：分布显著变化"
    steady = drift_verdict({"against": "x@1", "psi": 0.01, "threshold": 0.25, "flagged": False})
    assert cell_text(steady) == "✓ PSI 0.0100 ≤ 0.25（对比 x@1）"
    assert cell_text(Code("")) == "—" and cell_text("") == "—"
