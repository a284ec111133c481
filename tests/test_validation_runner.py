"""Suites run through real GX: row failures quarantine, blocking failures stop, warnings show."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest

from pdo.validation.runner import (
    Dimension,
    RunInputs,
    Severity,
    SuiteError,
    run_suite,
)

TAX = pl.DataFrame(
    {
        "uscc": ["A1", "A2", None, "ZZ", "A1"],
        "year": [2023, 2023, 2024, 2024, 2025],
        "phone": ["13812345678", "x", "y", "z", "w"],
        "filed_on": [dt.date(2024, 1, 5)] * 4 + [dt.date(2027, 1, 1)],
    }
)


def _suite(*expectations: dict) -> dict:
    return {"name": "tax_credit.test", "expectations": list(expectations)}


def test_row_failures_quarantine_exactly_the_failing_rows() -> None:
    run = run_suite(
        _suite(
            {
                "type": "expect_column_values_to_not_be_null",
                "kwargs": {"column": "uscc"},
                "meta": {"severity": "row"},
            },
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": "year", "max_value": 2024},
                "meta": {"severity": "row"},
            },
        ),
        TAX,
    )
    assert run.success  # row failures quarantine, they do not block
    assert run.quarantined == {
        3: ["expect_column_values_to_not_be_null(uscc)"],
        5: ["expect_column_values_to_be_between(year)"],
    }
    assert run.rows - len(run.quarantined) == 3


def test_source_lines_name_the_quarantined_rows() -> None:
    run = run_suite(
        _suite(
            {
                "type": "expect_column_values_to_not_be_null",
                "kwargs": {"column": "uscc"},
                "meta": {"severity": "row"},
            }
        ),
        TAX,
        row_ids=pl.Series([101, 102, 103, 104, 105]),
    )
    assert list(run.quarantined) == [103]


def test_a_row_may_carry_several_reasons() -> None:
    frame = pl.DataFrame({"a": [None, 1], "b": [None, 2]})
    run = run_suite(
        _suite(
            *(
                {
                    "type": "expect_column_values_to_not_be_null",
                    "kwargs": {"column": c},
                    "meta": {"severity": "row"},
                }
                for c in ("a", "b")
            )
        ),
        frame,
    )
    assert run.quarantined == {
        1: [
            "expect_column_values_to_not_be_null(a)",
            "expect_column_values_to_not_be_null(b)",
        ]
    }


def test_blocking_failures_stop_and_warnings_are_only_recorded() -> None:
    run = run_suite(
        _suite(
            {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 10}},
            {
                "type": "expect_column_values_to_be_unique",
                "kwargs": {"column": "uscc"},
                "meta": {"severity": "warning"},
            },
        ),
        TAX,
    )
    assert not run.success
    assert [f.expectation for f in run.failures] == ["expect_table_row_count_to_be_between"]
    assert run.failures[0].observed == "5"
    assert [w.expectation for w in run.warnings] == ["expect_column_values_to_be_unique"]
    assert run.quarantined == {}


def test_all_passing_suite_succeeds() -> None:
    run = run_suite(
        _suite({"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}}), TAX
    )
    assert run.success and not run.failures and not run.warnings


def test_reference_values_come_from_the_run() -> None:
    suite = _suite(
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "uscc"},
            "meta": {"severity": "row", "reference": "enterprise_registry.uscc"},
        }
    )
    run = run_suite(suite, TAX, RunInputs(references={"enterprise_registry.uscc": {"A1", "A2"}}))
    assert run.quarantined == {4: ["expect_column_values_to_be_in_set(uscc)"]}
    assert run.outcomes[0].dimension is Dimension.CONSISTENCY
    with pytest.raises(SuiteError, match=r"enterprise_registry\.uscc"):
        run_suite(suite, TAX)


def test_freshness_is_bounded_by_the_authorization_window() -> None:
    suite = _suite(
        {
            "type": "expect_column_max_to_be_between",
            "kwargs": {"column": "filed_on"},
            "meta": {"freshness": "authorization"},
        }
    )
    window = (dt.date(2023, 1, 1), dt.date(2026, 12, 31))
    run = run_suite(suite, TAX, RunInputs(window=window))
    assert not run.success
    assert run.failures[0].dimension is Dimension.TIMELINESS
    fresh = run_suite(suite, TAX.head(4), RunInputs(window=window))
    assert fresh.success
    with pytest.raises(SuiteError, match="authorization window"):
        run_suite(suite, TAX)


def test_unknown_severity_is_refused_before_running() -> None:
    with pytest.raises(SuiteError, match="severity 'fatal'"):
        run_suite(
            _suite(
                {
                    "type": "expect_column_values_to_not_be_null",
                    "kwargs": {"column": "uscc"},
                    "meta": {"severity": "fatal"},
                }
            ),
            TAX,
        )


def test_row_severity_needs_a_row_level_expectation() -> None:
    with pytest.raises(SuiteError, match="map over rows"):
        run_suite(
            _suite(
                {
                    "type": "expect_table_row_count_to_be_between",
                    "kwargs": {"min_value": 10},
                    "meta": {"severity": "row"},
                }
            ),
            TAX,
        )


def test_quality_dimensions_are_computed_from_the_results() -> None:
    run = run_suite(
        _suite(
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "uscc"}},
            {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "uscc"}},
            {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}},
        ),
        TAX,
    )
    quality = run.quality()
    assert quality["completeness"] == pytest.approx(0.8)  # 1 null in 5
    assert quality["uniqueness"] == pytest.approx(0.5)  # A1 twice among 4 non-null values
    assert quality["validity"] == 1.0
    assert quality["consistency"] is None and quality["timeliness"] is None
    assert {o.severity for o in run.outcomes} == {Severity.BLOCKING}


def test_results_hold_counts_never_cell_values() -> None:
    run = run_suite(
        _suite(
            {
                "type": "expect_column_values_to_match_regex",
                "kwargs": {"column": "phone", "regex": "^[a-z]$"},
                "meta": {"severity": "row"},
            },
            {
                "type": "expect_column_values_to_be_in_set",
                "kwargs": {"column": "phone", "value_set": ["x"]},
            },
        ),
        TAX,
    )
    assert run.quarantined == {1: ["expect_column_values_to_match_regex(phone)"]}
    stored = json.dumps([o.to_dict() for o in run.outcomes], ensure_ascii=False)
    assert "13812345678" not in stored and "13812345678" not in repr(run)
