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


def _registry(*codes: str | None) -> RunInputs:
    return RunInputs(references={"enterprise_registry.uscc": set(codes)})


def _referential(severity: str = "row", **kwargs: object) -> dict:
    return _suite(
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "uscc", **kwargs},
            "meta": {"severity": severity, "reference": "enterprise_registry.uscc"},
        }
    )


def test_a_reference_set_reaches_gx_as_a_key_and_reports_as_in_set() -> None:
    """The lent-value check gives exactly what GX's own in_set gives over the same values."""
    registry = ["A1", "A2", None, *(f"B{i}" for i in range(5000))]
    lent = run_suite(_referential(), TAX, _registry(*registry))
    plain_values = sorted({code for code in registry if code is not None})
    plain = run_suite(
        _suite(
            {
                "type": "expect_column_values_to_be_in_set",
                "kwargs": {"column": "uscc", "value_set": plain_values},
                "meta": {"severity": "row"},
            }
        ),
        TAX,
    )
    assert lent.quarantined == plain.quarantined == {4: ["expect_column_values_to_be_in_set(uscc)"]}
    (outcome,) = lent.outcomes
    (expected,) = plain.outcomes
    assert outcome.dimension is Dimension.CONSISTENCY
    assert {**outcome.to_dict(), "dimension": None} == {**expected.to_dict(), "dimension": None}
    (item,) = lent.gx_result["results"]
    (plain_item,) = plain.gx_result["results"]
    assert item["expectation_config"]["type"] == "expect_column_values_to_be_in_set"
    assert item["expectation_config"]["kwargs"]["value_set"] == [
        "〈5002 个值，取自本次运行 enterprise_registry.uscc 列〉"
    ]
    assert item["result"] == plain_item["result"]
    assert "reference" not in item["expectation_config"]["kwargs"]


def test_a_referential_check_keeps_mostly_and_blocks_like_in_set() -> None:
    inputs = _registry("A1")
    lax = run_suite(_referential("blocking", mostly=0.5), TAX, inputs)  # 3 of 4 non-null pass
    assert lax.success
    strict = run_suite(_referential("blocking"), TAX, inputs)
    assert [f.reason for f in strict.failures] == ["expect_column_values_to_be_in_set(uscc)"]
    assert strict.failures[0].unexpected_count == 2 and strict.failures[0].missing_count == 1
    empty = run_suite(_referential(), TAX, _registry())
    assert sorted(empty.quarantined) == [1, 2, 4, 5]  # an empty registry matches nothing


def test_resolve_without_lend_still_fills_the_value_set() -> None:
    from pdo.validation.runner import resolve

    (config,) = resolve(
        _referential()["expectations"],
        _registry("B", None, "A"),
    )
    assert config["type"] == "expect_column_values_to_be_in_set"
    assert config["kwargs"] == {"column": "uscc", "value_set": ["A", "B"]}


def test_reference_values_are_lent_only_while_their_validation_runs() -> None:
    from pdo.validation.expectations.in_reference import (
        ExpectColumnValuesToBeInReference,
        ReferenceValues,
        lend,
        lent,
    )
    from pdo.validation.runner import IN_REFERENCE

    assert ExpectColumnValuesToBeInReference.expectation_type == IN_REFERENCE
    values = ReferenceValues({"A1"})
    with lend(values) as key:
        assert lent(key) is values
    with pytest.raises(LookupError, match="no reference values"):
        lent(key)


def test_reference_values_isin_is_pandas_isin() -> None:
    """The Arrow shortcut gives pandas' own answer, on Arrow text and on everything else."""
    import pandas as pd

    from pdo.validation.expectations.in_reference import ReferenceValues

    text = ["A1", "a1", "Ａ1", "", "ZZ", None, "A1 "]
    columns = [
        pd.Series(text, dtype="str"),
        pd.Series(text, dtype="string[pyarrow]"),
        pd.Series(text, dtype=object),
        pd.Series([1, 2, 3], dtype="int64"),
        pd.Series(["1", "2"], dtype="str"),
    ]
    value_sets: list[set] = [{"A1", "", "Ａ1"}, set(), {None}, {1, "A1"}, {"1", 2}, {"ZZ"}]
    for column in columns:
        column.index = pd.Index(range(10, 10 + len(column)), name="__row__")
        for values in value_sets:
            prepared = ReferenceValues(values)
            got = prepared.isin(column)
            want = column.isin(prepared.values)
            pd.testing.assert_series_equal(got, want, check_names=True)


def test_runs_with_different_references_on_many_threads_do_not_mix() -> None:
    from concurrent.futures import ThreadPoolExecutor

    def check(i: int) -> tuple[int, list[int]]:
        codes = ["A1", "A2", "ZZ"]
        codes.pop(i % 3)
        run = run_suite(_referential(), TAX, _registry(*codes))
        return i, sorted(run.quarantined)

    expected = {0: [1, 5], 1: [2], 2: [4]}  # rows holding the code each run leaves out
    with ThreadPoolExecutor(max_workers=4) as pool:
        for i, rows in pool.map(check, range(12)):
            assert rows == expected[i % 3]


# (status, label, allowed?) against PAIRS; GX ignores a row whose two values are both missing.
PAIRS = [["active", "在营"], ["abnormal", "经营异常"], ["cancelled", None]]
PAIR_CASES = [
    ("active", "在营", True),
    ("abnormal", "经营异常", True),
    ("cancelled", None, True),  # an allowed pair may hold a missing value
    ("active", "吊销", False),
    ("abnormal", "在营", False),
    ("ACTIVE", "在营", False),
    ("active ", "在营", False),
    (None, "在营", False),
    ("active", None, False),
    ("revoked", "吊销", False),
    (None, None, True),  # ignored (both missing)
]


def _builtin_pair_failures(frame: pl.DataFrame, pairs: list) -> list[int]:
    """Row positions GX's own expect_column_pair_values_to_be_in_set (iterrows) fails."""
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    batch = (
        context.data_sources.add_pandas("pairs")
        .add_dataframe_asset("frame")
        .add_batch_definition_whole_dataframe("whole")
        .get_batch(batch_parameters={"dataframe": frame.to_pandas()})
    )
    result = batch.validate(
        gx.expectations.ExpectColumnPairValuesToBeInSet(
            column_A="status", column_B="label", value_pairs_set=[tuple(p) for p in pairs]
        ),
        result_format="COMPLETE",
    )
    return sorted(result.result["unexpected_index_list"])


@pytest.mark.parametrize("arrow", [False, True], ids=["object", "arrow"])
def test_the_pair_check_fails_exactly_the_rows_gx_itself_fails(arrow: bool) -> None:
    """The vectorized twin quarantines the rows GX's built-in does, reported under its type."""
    from pdo.validation.expectations.pair_in_set import pairs_in_set

    frame = pl.DataFrame(
        {"status": [c[0] for c in PAIR_CASES], "label": [c[1] for c in PAIR_CASES]}
    )
    expected = [i for i, case in enumerate(PAIR_CASES) if not case[2]]
    assert _builtin_pair_failures(frame, PAIRS) == expected
    pandas_frame = frame.to_pandas(use_pyarrow_extension_array=arrow)
    ours = pairs_in_set(pandas_frame["status"], pandas_frame["label"], PAIRS)
    both_missing = pandas_frame["status"].isna() & pandas_frame["label"].isna()
    assert sorted((~ours & ~both_missing).to_numpy().nonzero()[0]) == expected
    run = run_suite(
        _suite(
            {
                "type": "expect_column_pair_values_to_be_in_set",
                "kwargs": {"column_A": "status", "column_B": "label", "value_pairs_set": PAIRS},
                "meta": {"severity": "row"},
            }
        ),
        frame,
    )
    assert sorted(run.quarantined) == [i + 1 for i in expected]  # row ids count from 1
    (item,) = run.gx_result["results"]
    assert item["expectation_config"]["type"] == "expect_column_pair_values_to_be_in_set"
    assert item["result"]["unexpected_count"] == len(expected)


MIXED = [
    {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 10}},
    {
        "type": "expect_column_values_to_not_be_null",
        "kwargs": {"column": "uscc"},
        "meta": {"severity": "row"},
    },
    {"type": "expect_table_columns_to_match_set", "kwargs": {"column_set": ["uscc", "year"]}},
    {
        "type": "expect_column_values_to_be_between",
        "kwargs": {"column": "year", "max_value": 2024},
        "meta": {"severity": "row"},
    },
    {
        "type": "expect_column_values_to_be_in_set",
        "kwargs": {"column": "uscc"},
        "meta": {"reference": "registry.uscc", "severity": "warning"},
    },
    {
        "type": "expect_column_pair_values_to_be_in_set",
        "kwargs": {
            "column_A": "uscc",
            "column_B": "phone",
            "value_pairs_set": [["A1", "13812345678"], ["A2", "x"]],
        },
        "meta": {"severity": "warning"},
    },
    {"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["uscc", "year"]}},
    {"type": "expect_column_median_to_be_between", "kwargs": {"column": "year", "max_value": 2023}},
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "no_such_column"}},
]


@pytest.mark.parametrize(
    ("position", "group"),
    [
        (0, "row count"),
        (1, ("uscc",)),
        (2, "schema"),
        (3, ("year",)),
        (4, ("uscc",)),
        (5, ("phone", "uscc")),
        (6, ("uscc", "year")),
        (7, ("year",)),
        (8, "whole"),  # GX itself reports the missing column, on the whole frame
    ],
)
def test_each_expectation_is_validated_with_what_it_reads(
    position: int, group: str | tuple[str, ...]
) -> None:
    from pdo.validation.runner import _groups

    groups = _groups(MIXED, TAX, split=True)
    assert position in groups[group]
    assert _groups(MIXED, TAX, split=False) == {"whole": list(range(len(MIXED)))}


def test_a_large_frame_validated_by_column_groups_gives_the_same_results() -> None:
    suite = _suite(*MIXED[:-1])
    inputs = RunInputs(references={"registry.uscc": ["A1", "A2"]})
    ids = pl.Series([11, 12, 13, 14, 15])
    whole = run_suite(suite, TAX, inputs, row_ids=ids, split_from=10**12)
    grouped = run_suite(suite, TAX, inputs, row_ids=ids, split_from=0)
    assert grouped.outcomes == whole.outcomes
    assert grouped.quarantined == whole.quarantined == {
        13: ["expect_column_values_to_not_be_null(uscc)"],
        15: ["expect_column_values_to_be_between(year)"],
    }
    passed = [o.expectation for o in grouped.outcomes if o.success]
    assert passed == ["expect_compound_columns_to_be_unique"]  # a failure in every other group
    for key in ("results", "statistics", "success"):
        assert grouped.gx_result[key] == whole.gx_result[key], key


def test_no_batch_or_metric_outlives_its_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    """GX's execution engine holds every batch and computed metric (whole-column conditions) as
    long as its data source lives, about 2.5 GB after 29M rows: none may outlive run_suite."""
    import gc
    import weakref

    from great_expectations.execution_engine import PandasExecutionEngine

    from pdo.validation.runner import gx_context

    made: list[weakref.ref[PandasExecutionEngine]] = []
    original = PandasExecutionEngine.__init__

    def remembered(self: PandasExecutionEngine, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)
        made.append(weakref.ref(self))

    monkeypatch.setattr(PandasExecutionEngine, "__init__", remembered)
    inputs = RunInputs(references={"registry.uscc": ["A1"]})
    run = run_suite(_suite(*MIXED[:-1]), TAX, inputs)
    grouped = run_suite(_suite(*MIXED[:-1]), TAX, inputs, split_from=0)
    monkeypatch.undo()
    assert not run.success and not grouped.success  # they did validate the rows
    assert made, "GX validated without an execution engine"
    gc.collect()
    assert [ref for ref in made if ref() is not None] == []
    assert _suite(*MIXED[:-1])["name"] not in gx_context().data_sources.all()
