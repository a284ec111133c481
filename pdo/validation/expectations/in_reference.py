"""expect_column_values_to_be_in_reference: ``expect_column_values_to_be_in_set`` for big sets.

A referential check (``meta.reference``) fills ``value_set`` with a whole column of the run: every
registry code. GX rebuilds an expectation's configuration over and over while it validates
(``Expectation.configuration`` is a pydantic ``.dict()``, called about a hundred times per
expectation, plus deep copies and JSON ids of every metric), and each rebuild walks every value:
a 50k-code set cost 12 s per table, and the cost grows with the registry, not with the table.

This expectation carries a short key instead of the values. The runner lends the values under
that key for the one validation that uses them (:func:`lend`), and the metric is exactly the one
``expect_column_values_to_be_in_set`` runs on pandas, ``column.isin(values)``. The runner reports
its results under the suite's own type, ``expect_column_values_to_be_in_set``, with the values
put back: stored suites never name this type.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation
from great_expectations.expectations.metrics import (
    ColumnMapMetricProvider,
    column_condition_partial,
)

METRIC = "column_values.pdo_in_reference"

_lock = threading.Lock()
_lent: dict[str, Sequence[Any]] = {}


@contextmanager
def lend(values: Sequence[Any]) -> Iterator[str]:
    """A fresh key under which the metric finds values until the block ends (thread-safe)."""
    key = uuid.uuid4().hex
    with _lock:
        _lent[key] = values
    try:
        yield key
    finally:
        with _lock:
            _lent.pop(key, None)


def lent(key: str) -> Sequence[Any]:
    """The values lent under key; a key no validation lent is an error, never an empty set."""
    with _lock:
        try:
            return _lent[key]
        except KeyError:
            raise LookupError(f"no reference values are lent under {key!r}") from None


class ColumnValuesPdoInReference(ColumnMapMetricProvider):
    """GX's column_values.in_set over lent values (pandas only: polars frames convert)."""

    condition_metric_name = METRIC
    condition_value_keys = ("reference",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, reference: str, **kwargs: Any) -> pd.Series:
        return column.isin(lent(reference))


class ExpectColumnValuesToBeInReference(ColumnMapExpectation):
    """Each non-null value is one of the values lent under ``reference`` (see :func:`lend`)."""

    reference: str

    map_metric: ClassVar[str] = METRIC
    success_keys: ClassVar[tuple[str, ...]] = ("reference", "mostly")
    args_keys: ClassVar[tuple[str, ...]] = ("column", "reference")
