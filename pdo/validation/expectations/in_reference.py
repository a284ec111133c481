"""expect_column_values_to_be_in_reference: ``expect_column_values_to_be_in_set`` for big sets.

A referential check (``meta.reference``) fills ``value_set`` with a whole column of the run: every
registry code. GX rebuilds an expectation's configuration over and over while it validates
(``Expectation.configuration`` is a pydantic ``.dict()``, called about a hundred times per
expectation, plus deep copies and JSON ids of every metric), and each rebuild walks every value:
a 50k-code set cost 12 s per table, and the cost grows with the registry, not with the table.

This expectation carries a short key instead of the values. The runner lends the values under
that key for the one validation that uses them (:func:`lend`), and the metric answers exactly as
the one ``expect_column_values_to_be_in_set`` runs on pandas, ``column.isin(values)`` (see
:meth:`ReferenceValues.isin`). The runner reports its results under the suite's own type,
``expect_column_values_to_be_in_set``, with the values put back: stored suites never name this
type, and it is not one of ``CUSTOM_EXPECTATIONS``.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation
from great_expectations.expectations.metrics import (
    ColumnMapMetricProvider,
    column_condition_partial,
)
from pandas.arrays import ArrowStringArray

METRIC = "column_values.pdo_in_reference"


class ReferenceValues:
    """A run's reference column as a value set: its distinct non-null values, in no order.

    What ``expect_column_values_to_be_in_set`` would get as ``value_set`` (sorted there, which
    changes no membership), plus its Arrow form, built once, for text columns.
    """

    def __init__(self, values: Collection[Any]) -> None:
        distinct = set(values)
        distinct.discard(None)
        self.values: list[Any] = list(distinct)
        self.text = set(map(type, self.values)) <= {str}  # str subclasses take pandas' path
        self._arrow: dict[pa.DataType, pa.Array] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.values)

    def arrow(self, type_: pa.DataType) -> pa.Array:
        with self._lock:
            if type_ not in self._arrow:
                self._arrow[type_] = pa.array(self.values, type=type_)
            return self._arrow[type_]

    def isin(self, column: pd.Series) -> pd.Series:
        """Exactly ``column.isin(self.values)``, without its per-value Python loop on Arrow text.

        pandas' ``ArrowStringArray.isin`` turns every candidate value into an Arrow scalar in
        Python (13 s for a million codes), then runs ``pyarrow.compute.is_in``; with text values
        only, that filter keeps them all, so ``is_in`` on the prepared array gives the same bools.
        Any other column or value type goes through pandas itself.
        """
        array = column.array
        pandas_isin = getattr(ArrowStringArray, "isin", None)  # the method reproduced here
        same = pandas_isin is not None and getattr(type(array), "isin", None) is pandas_isin
        if not (self.text and same):
            return column.isin(self.values)
        if not self.values:
            found = np.zeros(len(column), dtype=np.bool_)
        else:
            data = array.__arrow_array__()
            found = np.array(pc.is_in(data, value_set=self.arrow(data.type)), dtype=np.bool_)
        return pd.Series(found, index=column.index, name=column.name)


_lock = threading.Lock()
_lent: dict[str, ReferenceValues] = {}


@contextmanager
def lend(values: ReferenceValues) -> Iterator[str]:
    """A fresh key under which the metric finds values until the block ends (thread-safe)."""
    key = uuid.uuid4().hex
    with _lock:
        _lent[key] = values
    try:
        yield key
    finally:
        with _lock:
            _lent.pop(key, None)


def lent(key: str) -> ReferenceValues:
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
        return lent(reference).isin(column)


class ExpectColumnValuesToBeInReference(ColumnMapExpectation):
    """Each non-null value is one of the values lent under ``reference`` (see :func:`lend`)."""

    reference: str

    map_metric: ClassVar[str] = METRIC
    success_keys: ClassVar[tuple[str, ...]] = ("reference", "mostly")
    args_keys: ClassVar[tuple[str, ...]] = ("column", "reference")
