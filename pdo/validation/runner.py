"""Run a reviewed suite through Great Expectations and turn its results into decisions.

Each expectation's ``meta.severity`` says what a failure means:

- ``row``: the failing rows are quarantined with the expectation as the reason; the rest go on;
- ``blocking`` (the default): the table fails and the run stops before sign-off;
- ``warning``: recorded and shown, nothing stops.

Suites stay declarative: what only the run knows is filled in at run time from ``meta``:
``meta.reference = "table.column"`` gives ``expect_column_values_to_be_in_set`` the values of that
column in this run (referential integrity; GX gets them by key, see
:mod:`pdo.validation.expectations.in_reference`), and ``meta.freshness = "authorization"`` bounds a
date column by the authorization's validity window, widened back by ``meta.max_age_days``
(data may predate the grant, but not by more than that, and never postdate its end);
``meta.freshness = "run_month"`` bounds a YYYY-MM month column by the run's month (Beijing time)
or the month the authorization ends, whichever is earlier (history of any age; a mistyped future
month is caught before packaging would refuse to date products by it).

Nothing returned or stored here holds a data value: GX's COMPLETE results carry the failing
values, so only row ids and counts are read from them.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import os
import threading
from collections.abc import Callable, Collection, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import polars as pl

from pdo.delivery.periods import business_month

if TYPE_CHECKING:
    import pandas as pd

    from pdo.validation.expectations.in_reference import ReferenceValues

ROW_ID = "__row__"  # the pandas index GX sees: each row's source line, the quarantine key


class Severity(StrEnum):
    ROW = "row"
    BLOCKING = "blocking"
    WARNING = "warning"


class Dimension(StrEnum):
    """The quality dimensions dataset evaluations grade (GB/T 36344 names them likewise)."""

    COMPLETENESS = "completeness"
    VALIDITY = "validity"
    UNIQUENESS = "uniqueness"
    CONSISTENCY = "consistency"
    TIMELINESS = "timeliness"


_DIMENSION_BY_TYPE = {
    "expect_column_values_to_not_be_null": Dimension.COMPLETENESS,
    "expect_column_values_to_be_unique": Dimension.UNIQUENESS,
    "expect_compound_columns_to_be_unique": Dimension.UNIQUENESS,
    "expect_select_column_values_to_be_unique_within_record": Dimension.UNIQUENESS,
}


IN_SET = "expect_column_values_to_be_in_set"
IN_REFERENCE = "expect_column_values_to_be_in_reference"  # IN_SET over lent values, GX-side only
# Built-in types GX is handed as a twin with a vectorized metric (results reported back under the
# built-in type); see pdo.validation.expectations.pair_in_set.
TWINS = {"expect_column_pair_values_to_be_in_set": "expect_column_pair_values_to_be_in_pair_set"}


# A frame of at least this many cells is validated one column group at a time (see _groups).
SPLIT_FROM_CELLS = 20_000_000
# After each group of a frame this large, what GX made for it is collected at once (it is a
# reference cycle, left to itself it waits for the next full collection); a collection costs
# about 0.1 s, more than a small frame's validation.
COLLECT_FROM_CELLS = 1_000_000
# Table-level types that read the row count only, or the column names only.
_ROW_COUNT_TYPES = frozenset(
    {"expect_table_row_count_to_be_between", "expect_table_row_count_to_equal"}
)
_SCHEMA_TYPES = frozenset(
    {
        "expect_table_columns_to_match_ordered_list",
        "expect_table_columns_to_match_set",
        "expect_table_column_count_to_be_between",
        "expect_table_column_count_to_equal",
    }
)
ROW_COUNT, SCHEMA, WHOLE = "row count", "schema", "whole"  # groups that are not column lists


class SuiteError(ValueError):
    """A suite that cannot run as written (unknown severity, missing run-time input)."""


@dataclass(frozen=True)
class RunInputs:
    """What a suite may ask of the run: reference columns, the authorization window and when the
    run started (None outside a run: months are then bounded by the authorization alone)."""

    references: Mapping[str, Collection[Any]] = field(default_factory=dict)
    window: tuple[dt.date, dt.date] | None = None
    run_at: dt.datetime | None = None


@dataclass(frozen=True)
class ExpectationOutcome:
    """One expectation's verdict, with counts only (never values)."""

    expectation: str
    column: str | None
    severity: Severity
    dimension: Dimension
    success: bool
    element_count: int | None
    unexpected_count: int | None
    missing_count: int | None  # nulls, which map expectations other than not-null skip
    observed: str | None  # an aggregate's observed value (row counts, means), never a cell
    failed_rows: tuple[int, ...] = ()

    @property
    def reason(self) -> str:
        """The quarantine reason: the expectation and its column."""
        return f"{self.expectation}({self.column})" if self.column else self.expectation

    def to_dict(self) -> dict[str, Any]:
        return {
            "expectation": self.expectation,
            "column": self.column,
            "severity": self.severity.value,
            "dimension": self.dimension.value,
            "success": self.success,
            "element_count": self.element_count,
            "unexpected_count": self.unexpected_count,
            "missing_count": self.missing_count,
            "observed": self.observed,
        }


@dataclass(frozen=True)
class SuiteRun:
    """A suite's outcomes over one frame, the rows it quarantines and the quality summary."""

    suite: str
    rows: int
    outcomes: tuple[ExpectationOutcome, ...]
    gx_result: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """GX's own result, scrubbed of anything a cell holds: what the run's Data Docs render."""

    @property
    def success(self) -> bool:
        """False when a blocking expectation failed (row failures only quarantine)."""
        return not self.failures

    @property
    def failures(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if o.severity is Severity.BLOCKING and not o.success]

    @property
    def warnings(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if o.severity is Severity.WARNING and not o.success]

    @property
    def quarantined(self) -> dict[int, list[str]]:
        """Row id → the reasons it is quarantined (a row may fail several expectations)."""
        out: dict[int, list[str]] = {}
        for o in self.outcomes:
            if o.severity is Severity.ROW:
                for row in o.failed_rows:
                    out.setdefault(row, []).append(o.reason)
        return out

    def quality(self) -> dict[str, float | None]:
        """Per dimension, the share of checked cells (or checks) that passed; None if unchecked.

        A map expectation scores the share of its non-null cells that passed (nulls count
        against completeness only); an aggregate one scores 1 or 0.
        """
        scores: dict[str, list[float]] = {d.value: [] for d in Dimension}
        for o in self.outcomes:
            checked = (o.element_count or 0) - (o.missing_count or 0)
            if o.element_count is not None and checked > 0:
                scores[o.dimension.value].append(1 - (o.unexpected_count or 0) / checked)
            else:
                scores[o.dimension.value].append(1.0 if o.success else 0.0)
        return {d: round(sum(v) / len(v), 6) if v else None for d, v in scores.items()}


@lru_cache(maxsize=1)
def gx_context() -> Any:
    """One ephemeral GX context per process: no project files, no analytics, no progress bars."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx  # imported lazily: 5–6 s
    from great_expectations.data_context.types.base import ProgressBarsConfig

    for name in ("great_expectations", "great_expectations.data_context.types.base"):
        logging.getLogger(name).setLevel(logging.WARNING)  # base.py forces INFO on import
    from great_expectations.execution_engine import pandas_execution_engine

    # GX fingerprints every in-memory batch under 1 GB (hashing each cell, twice per run): a
    # third of a million-row validation, for a marker we never read (frames are not cached).
    pandas_execution_engine.HASH_THRESHOLD = 0
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def _severity(config: Mapping[str, Any]) -> Severity:
    raw = (config.get("meta") or {}).get("severity", Severity.BLOCKING.value)
    try:
        return Severity(raw)
    except ValueError:
        allowed = ", ".join(s.value for s in Severity)
        raise SuiteError(f"{config['type']}: severity {raw!r} is not one of {allowed}") from None


def _dimension(config: Mapping[str, Any]) -> Dimension:
    meta = config.get("meta") or {}
    if "dimension" in meta:
        return Dimension(meta["dimension"])
    if "reference" in meta:
        return Dimension.CONSISTENCY
    if "freshness" in meta:
        return Dimension.TIMELINESS
    return _DIMENSION_BY_TYPE.get(config["type"], Dimension.VALIDITY)


def resolve(
    expectations: list[dict[str, Any]],
    inputs: RunInputs,
    *,
    lend: Callable[[Collection[Any]], str] | None = None,
) -> list[dict[str, Any]]:
    """The suite's expectations with run-time kwargs filled in from meta (a copy).

    With ``lend``, a referential ``expect_column_values_to_be_in_set`` is handed to GX as
    ``expect_column_values_to_be_in_reference`` carrying the key lend gives its values, not the
    values themselves (see :mod:`pdo.validation.expectations.in_reference`), and a type in
    ``TWINS`` as its vectorized twin.
    """
    resolved: list[dict[str, Any]] = []
    for config in expectations:
        meta = config.get("meta") or {}
        kwargs = dict(config.get("kwargs") or {})
        _severity(config)  # refuse an unknown severity before anything runs
        if "reference" in meta:
            name = meta["reference"]
            if name not in inputs.references:
                raise SuiteError(f"{config['type']}: reference {name!r} is not available")
            if lend is not None and config["type"] == IN_SET:
                kwargs.pop("value_set", None)
                kwargs["reference"] = lend(inputs.references[name])
                config = {**config, "type": IN_REFERENCE}
            else:
                kwargs["value_set"] = sorted(set(inputs.references[name]) - {None})
        if lend is not None and config["type"] in TWINS:
            config = {**config, "type": TWINS[config["type"]]}
        if meta.get("freshness") in FRESHNESS:
            if inputs.window is None:
                raise SuiteError(f"{config['type']}: no authorization window to check freshness")
            kwargs |= FRESHNESS[meta["freshness"]](meta, inputs.window, inputs.run_at)
        resolved.append({**config, "kwargs": kwargs})
    return resolved


def _within_authorization(
    meta: Mapping[str, Any], window: tuple[dt.date, dt.date], run_at: dt.datetime | None
) -> dict[str, Any]:
    """Data may predate the grant by meta.max_age_days, never postdate its end."""
    start, end = window
    start -= dt.timedelta(days=int(meta.get("max_age_days", 0)))
    # pandas compares its datetime64 columns with datetimes, not dates
    return {
        "min_value": dt.datetime.combine(start, dt.time.min),
        "max_value": dt.datetime.combine(end, dt.time.max),
    }


def _month_by_run_and_authorization(
    meta: Mapping[str, Any], window: tuple[dt.date, dt.date], run_at: dt.datetime | None
) -> dict[str, Any]:
    """A YYYY-MM month (any history) after neither the grant's end month nor the run's month in
    Beijing time: packaging refuses to date products by a month after the run's, so such a row
    is quarantined here rather than failing the whole run."""
    months = [window[1].strftime("%Y-%m")]
    if run_at is not None:
        months.append(business_month(run_at))
    return {"max_month": min(months)}


Window = tuple[dt.date, dt.date]
Freshness = Callable[[Mapping[str, Any], Window, dt.datetime | None], dict[str, Any]]
FRESHNESS: dict[str, Freshness] = {
    "authorization": _within_authorization,
    "run_month": _month_by_run_and_authorization,
}


def _observed(result: Mapping[str, Any]) -> str | None:
    value = result.get("observed_value")
    return None if value is None or isinstance(value, dict | list) else str(value)


def _raised(info: Mapping[str, Any]) -> bool:
    """GX reports errors either at the top level or per metric."""
    if "raised_exception" in info:
        return bool(info["raised_exception"])
    return any(isinstance(v, dict) and v.get("raised_exception") for v in info.values())


def _failed_rows(found: list[Any]) -> tuple[int, ...]:
    """Row ids from GX's unexpected_index_list, in any of the shapes it returns.

    With exclude_unexpected_values a named index gives ``[{ROW_ID: [ids...]}]``; without, one
    ``{ROW_ID: id, column: value}`` per row; an unnamed index gives bare labels.
    """
    ids: set[int] = set()
    for entry in found:
        label = entry[ROW_ID] if isinstance(entry, dict) else entry
        if isinstance(label, list | tuple):
            ids.update(int(v) for v in label)
        else:
            ids.add(int(label))
    return tuple(sorted(ids))


def _outcome(item: Mapping[str, Any]) -> ExpectationOutcome:
    config = item["expectation_config"]
    result = item.get("result") or {}
    severity = _severity(config)
    rows: tuple[int, ...] = ()
    if severity is Severity.ROW and not item["success"]:
        if "unexpected_index_list" not in result:
            raise SuiteError(f"{config['type']}: a row-level expectation must map over rows")
        rows = _failed_rows(result["unexpected_index_list"])
    if _raised(item.get("exception_info") or {}):
        raise SuiteError(f"{config['type']} could not be evaluated (see the GX log)")
    return ExpectationOutcome(
        expectation=config["type"],
        column=(config.get("kwargs") or {}).get("column"),
        severity=severity,
        dimension=_dimension(config),
        success=bool(item["success"]),
        element_count=result.get("element_count"),
        unexpected_count=result.get("unexpected_count"),
        missing_count=result.get("missing_count"),
        observed=_observed(result),
        failed_rows=rows,
    )


def to_pandas(frame: pl.DataFrame, row_ids: pl.Series | None = None) -> pd.DataFrame:
    """The frame as GX's pandas input, indexed by row id (source lines, or positions from 1).

    An index, not a column, so that table-shape expectations see exactly the frame's columns.
    """
    import pandas as pd

    ids = row_ids if row_ids is not None else pl.int_range(1, frame.height + 1, eager=True)
    out = frame.to_pandas()
    out.index = pd.Index(ids.cast(pl.Int64).to_numpy(), name=ROW_ID)
    return out


# Per-row lists in a GX result: only a row-severity check needs them (its quarantine); Data Docs
# never show them (pdo.validation.docs.scrub drops them).
_ROW_LISTS = (
    "unexpected_index_list",
    "partial_unexpected_index_list",
    "unexpected_list",
    "partial_unexpected_list",
    "partial_unexpected_counts",
)
_sources_lock = threading.Lock()  # the context's data sources are process-wide


_suite_locks: dict[str, threading.Lock] = {}


def _suite_lock(suite_name: str) -> threading.Lock:
    """One validation of a suite at a time per process: its data source is named after it, and
    GX keys a batch's data and metrics by the batch id, which that name fixes (two runs of one
    table at once would read each other's rows). Different tables still validate side by side."""
    with _sources_lock:
        return _suite_locks.setdefault(suite_name, threading.Lock())


def _validated(context: Any, suite: Any, frame: pd.DataFrame) -> dict[str, Any]:
    """The suite's result on the frame (JSON, row lists dropped), from a data source named
    after the suite that is deleted after use; the caller holds the suite's lock.

    GX's execution engine (one per data source) keeps each batch's data and every metric it
    computed, whole-column conditions included, for as long as the data source lives: kept,
    they held about 2.5 GB after the 29M desensitized utility rows.
    """
    with _sources_lock:
        source = context.data_sources.add_pandas(suite.name)
        definition = source.add_dataframe_asset("frame").add_batch_definition_whole_dataframe(
            "whole"
        )
    try:
        validation = definition.get_batch(batch_parameters={"dataframe": frame}).validate(
            suite,
            result_format={
                "result_format": "COMPLETE",  # every failing row id, to quarantine
                "return_unexpected_index_query": False,
                "exclude_unexpected_values": True,  # ids only: never a cell value
            },
        )
        _drop_row_lists(validation.results)
        return validation.to_json_dict()
    finally:
        with _sources_lock:
            context.data_sources.delete(suite.name)


def _drop_row_lists(results: list[Any]) -> None:
    """Per-row lists out of the results of checks that are not row-level (in place).

    They are as long as the failures (every unknown enterprise of a big table), and GX copies
    them twice on the way to JSON, for nothing: only a row check's quarantine reads them.
    """
    for item in results:
        meta = (item.expectation_config.meta if item.expectation_config else None) or {}
        if meta.get("severity") != Severity.ROW.value:
            for key in _ROW_LISTS:
                item.result.pop(key, None)


def _put_back(result: dict[str, Any], lent: Mapping[str, ReferenceValues]) -> None:
    """Results of lent-value and twin checks under the suite's own type, lent values put back
    (in place).

    Only counts of these values survive :func:`pdo.validation.docs.scrub`, as before.
    """
    builtin = {twin: own for own, twin in TWINS.items()}
    for item in result["results"]:
        config = item["expectation_config"]
        if config["type"] in builtin:
            config["type"] = builtin[config["type"]]
        if config["type"] != IN_REFERENCE or config["kwargs"].get("reference") not in lent:
            continue
        values = lent[config["kwargs"]["reference"]].values
        config["type"] = IN_SET
        config["kwargs"] = {
            ("value_set" if k == "reference" else k): (values if k == "reference" else v)
            for k, v in config["kwargs"].items()
        }


def _group_of(config: Mapping[str, Any], columns: Collection[str]) -> str | tuple[str, ...]:
    """What of the frame an expectation reads: its columns, the row count, the column names,
    or (unknown shape, or a column the frame lacks) the whole frame."""
    if config["type"] in _ROW_COUNT_TYPES:
        return ROW_COUNT
    if config["type"] in _SCHEMA_TYPES:
        return SCHEMA
    kwargs = config.get("kwargs") or {}
    named = [kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs]
    named += list(kwargs.get("column_list") or [])
    if not named or not all(isinstance(c, str) and c in columns for c in named):
        return WHOLE
    return tuple(sorted(set(named)))


def _groups(
    expectations: list[dict[str, Any]], frame: pl.DataFrame, split: bool
) -> dict[str | tuple[str, ...], list[int]]:
    """Positions of the expectations GX validates together, one group per part of the frame
    they read.

    GX's column-map metrics copy their batch's whole frame (its non-null rows) once per metric,
    and the pandas batch itself doubles a large frame: a 29M-row table took 9.3 GB for 1.8 GB
    of data. Each group's batch holds only what its expectations read, one at a time.
    """
    if not split:
        return {WHOLE: list(range(len(expectations)))}
    groups: dict[str | tuple[str, ...], list[int]] = {}
    for i, config in enumerate(expectations):
        groups.setdefault(_group_of(config, frame.columns), []).append(i)
    return groups


def _group_frame(
    group: str | tuple[str, ...], frame: pl.DataFrame, row_ids: pl.Series | None
) -> pd.DataFrame:
    """The pandas batch of one group: its columns by row id, the row ids alone, or no rows."""
    import pandas as pd

    if group == ROW_COUNT:
        ids = row_ids if row_ids is not None else pl.int_range(1, frame.height + 1, eager=True)
        return pd.DataFrame(index=pd.Index(ids.cast(pl.Int64).to_numpy(), name=ROW_ID))
    if group == SCHEMA:
        return to_pandas(frame.head(0), pl.Series([], dtype=pl.Int64))
    if group == WHOLE:
        return to_pandas(frame, row_ids)
    return to_pandas(frame.select(group), row_ids)


def _in_gx_order(expectations: list[dict[str, Any]]) -> list[int]:
    """Positions in the order GX reports a suite's results: grouped by the ``column`` kwarg,
    groups in order of first appearance (``Validator.process_expectations_for_validation``)."""
    by_column: dict[str | None, list[int]] = {}
    for i, config in enumerate(expectations):
        column = (config.get("kwargs") or {}).get("column")
        by_column.setdefault(column if isinstance(column, str) else None, []).append(i)
    return [i for positions in by_column.values() for i in positions]


def _merged(
    expectations: list[dict[str, Any]], parts: list[tuple[list[int], dict[str, Any]]]
) -> dict[str, Any]:
    """One suite result from the groups' results, in the order and with the statistics GX gives
    the whole suite."""
    by_position: dict[int, Any] = {}
    for positions, part in parts:
        reported = _in_gx_order([expectations[p] for p in positions])
        for j, item in zip(reported, part["results"], strict=True):
            by_position[positions[j]] = item
    results = [by_position[i] for i in _in_gx_order(expectations)]
    if len(parts) == 1:
        return {**parts[0][1], "results": results}
    size, passed = len(results), sum(1 for item in results if item["success"])
    return {
        **parts[0][1],
        "results": results,
        "success": passed == size,
        "statistics": {
            "evaluated_expectations": size,
            "successful_expectations": passed,
            "unsuccessful_expectations": size - passed,
            "success_percent": 100.0 * passed / size if size else None,
        },
    }


def run_suite(
    spec: Mapping[str, Any],
    frame: pl.DataFrame,
    inputs: RunInputs | None = None,
    *,
    row_ids: pl.Series | None = None,
    split_from: int = SPLIT_FROM_CELLS,
) -> SuiteRun:
    """Validate frame against a suite spec ({"name", "expectations": [...]}) with real GX;
    a frame of split_from cells or more one column group at a time (same results)."""
    import great_expectations as gx

    from pdo.validation.docs import scrub
    from pdo.validation.expectations import register
    from pdo.validation.expectations.in_reference import ReferenceValues, lend

    register()
    context = gx_context()
    with ExitStack() as stack:
        lent: dict[str, ReferenceValues] = {}

        def lend_values(values: Collection[Any]) -> str:
            prepared = ReferenceValues(values)
            key = stack.enter_context(lend(prepared))
            lent[key] = prepared
            return key

        expectations = resolve(list(spec["expectations"]), inputs or RunInputs(), lend=lend_values)
        suite = gx.ExpectationSuite(name=spec["name"], expectations=expectations)
        if len(suite.expectations) != len(expectations):  # GX drops types it does not know
            known = {e.expectation_type for e in suite.expectations}
            unknown = sorted({e["type"] for e in expectations} - known)
            raise SuiteError(f"suite {spec['name']!r}: unknown expectation types {unknown}")
        stack.enter_context(_suite_lock(spec["name"]))
        parts: list[tuple[list[int], dict[str, Any]]] = []
        cells = frame.height * max(frame.width, 1)
        for group, positions in _groups(expectations, frame, cells >= split_from).items():
            part = gx.ExpectationSuite(
                name=spec["name"], expectations=[expectations[i] for i in positions]
            )
            batch = _group_frame(group, frame, row_ids)
            parts.append((positions, _validated(context, part, batch)))
            del batch
            if cells >= COLLECT_FROM_CELLS:  # the group's engine, batch and metrics: a cycle
                gc.collect()
    result = _merged(expectations, parts)
    _put_back(result, lent)
    outcomes = tuple(_outcome(item) for item in result["results"])
    return SuiteRun(
        suite=spec["name"], rows=frame.height, outcomes=outcomes, gx_result=scrub(result)
    )
