"""Data Docs built by real GX from real suite runs: one page per suite, never a cell value."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest

from pdo.validation.docs import StoredResult, build_site, pages, scrub
from pdo.validation.runner import RunInputs, run_suite

# Fake but well-formed personal values: what a raw-zone page must never show.
BAD_ID = "11010519491231002X"[:-1] + "5"  # wrong check character
GOOD_ID = "11010519491231002X"
BAD_USCC = "91350100M000100Y4A"
MOBILE = "13912345678"
REGISTRY = ["91350100M000100Y43", "91110000600037341L"]

RAW = pl.DataFrame(
    {
        "uscc": [REGISTRY[0], BAD_USCC, REGISTRY[1], REGISTRY[1]],
        "legal_rep_id": [GOOD_ID, BAD_ID, GOOD_ID, None],
        "legal_rep_mobile": [MOBILE, "13800000000", "x", MOBILE],
    }
)
SUITE = {
    "name": "enterprise_registry.docs_test",
    "expectations": [
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}},
        {
            "type": "expect_column_values_to_be_valid_resident_id",
            "kwargs": {"column": "legal_rep_id"},
            "meta": {"severity": "row"},
        },
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "uscc"},
            "meta": {"severity": "row", "reference": "enterprise_registry.uscc"},
        },
        {
            "type": "expect_column_values_to_match_regex",
            "kwargs": {"column": "legal_rep_mobile", "regex": r"^1[3-9]\d{9}$"},
            "meta": {"severity": "warning"},
        },
        {
            "type": "expect_column_values_to_be_unique",
            "kwargs": {"column": "uscc"},
            "meta": {"severity": "warning"},
        },
    ],
}
PERSONAL = {BAD_ID, GOOD_ID, BAD_USCC, MOBILE, "13800000000", *REGISTRY}


INPUTS = RunInputs(references={"enterprise_registry.uscc": REGISTRY})


@pytest.fixture(scope="module")
def raw_run() -> dict:
    return dict(run_suite(SUITE, RAW, INPUTS).gx_result)


def _stored(result: dict, zone: str = "raw", suite: str = SUITE["name"]) -> StoredResult:
    at = dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.UTC)
    return StoredResult(
        suite=suite, table="enterprise_registry", zone=zone, validated_at=at, result=result
    )


def _site_text(site: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in site.rglob("*.html"))


def test_a_runs_result_holds_verdicts_and_counts_but_no_value(raw_run: dict) -> None:
    text = json.dumps(raw_run, ensure_ascii=False)
    assert [v for v in PERSONAL if v in text] == []
    by_type = {r["expectation_config"]["type"]: r for r in raw_run["results"]}
    resident = by_type["expect_column_values_to_be_valid_resident_id"]
    assert resident["success"] is False and resident["result"]["unexpected_count"] == 1
    assert "unexpected_index_list" not in resident["result"]
    in_set = by_type["expect_column_values_to_be_in_set"]
    assert in_set["expectation_config"]["kwargs"]["value_set"] == [
        "〈2 个值，取自本次运行 enterprise_registry.uscc 列〉"
    ]
    assert in_set["result"]["unexpected_count"] == 1


def test_scrub_is_idempotent_and_keeps_short_listed_sets(raw_run: dict) -> None:
    assert scrub(raw_run) == raw_run
    listed = {
        "results": [
            {
                "success": True,
                "expectation_config": {
                    "type": "expect_column_values_to_be_in_set",
                    "kwargs": {"column": "grade", "value_set": ["A", "B", "C"]},
                },
                "result": {"unexpected_list": ["Z"], "partial_unexpected_counts": [{"value": "Z"}]},
            }
        ]
    }
    item = scrub(listed)["results"][0]
    assert item["expectation_config"]["kwargs"]["value_set"] == ["A", "B", "C"]
    assert item["result"] == {}


def test_the_site_has_one_page_per_suite_and_no_value(raw_run: dict, tmp_path: Path) -> None:
    clean = dict(run_suite(SUITE, RAW.filter(pl.col("legal_rep_id") == GOOD_ID), INPUTS).gx_result)
    stored = [_stored(raw_run), _stored(clean, zone="desensitized")]
    index = build_site(stored, tmp_path / "run-1", "run-1")
    assert index == tmp_path / "run-1" / "index.html" and index.is_file()
    found = pages(tmp_path / "run-1")
    assert sorted((p.suite, p.batch) for p in found) == [
        (SUITE["name"], "enterprise_registry-desensitized"),
        (SUITE["name"], "enterprise_registry-raw"),
    ]
    text = _site_text(tmp_path / "run-1")
    assert [v for v in PERSONAL if v in text] == []
    raw_page = next(p for p in found if p.batch.endswith("-raw")).path.read_text("utf-8")
    assert "values must be resident ID numbers that pass GB 11643" in raw_page
    assert "run-1" in raw_page


def test_a_second_run_in_the_same_process_shows_only_its_own_pages(
    raw_run: dict, tmp_path: Path
) -> None:
    build_site([_stored(raw_run)], tmp_path / "first", "first")
    build_site([_stored(raw_run, suite="tax_credit.docs_test")], tmp_path / "second", "second")
    assert [p.suite for p in pages(tmp_path / "second")] == ["tax_credit.docs_test"]
    assert [p.suite for p in pages(tmp_path / "first")] == [SUITE["name"]]
    rebuilt = build_site([_stored(raw_run)], tmp_path / "first", "first")  # idempotent
    assert rebuilt.is_file() and len(pages(tmp_path / "first")) == 1
