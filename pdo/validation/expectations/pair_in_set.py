"""expect_column_pair_values_to_be_in_pair_set: GX's pair check, one column operation per pair.

GX 1.24 runs ``expect_column_pair_values_to_be_in_set`` on pandas with ``DataFrame.iterrows``:
81 s for one 250k-row product table, growing with every enterprise of the province. This twin
inherits that expectation whole (arguments, ``ignore_row_if``, ``mostly``, rendering) and only
swaps its metric for one that compares the columns against each allowed pair at once, with the
same notion of a match: a missing value is ``None``, and (A, B) must equal an allowed pair.

The runner hands suites' checks of the built-in type to GX as this one and reports the results
under the built-in type again (stored suites never name this type).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.core.expect_column_pair_values_to_be_in_set import (
    ExpectColumnPairValuesToBeInSet,
)
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnPairMapMetricProvider,
    column_pair_condition_partial,
)

METRIC = "column_pair_values.pdo_in_pair_set"


def _equal(column: pd.Series, value: Any) -> np.ndarray:
    """Where the (object) column equals value as GX's tuple membership would: None ⇔ missing."""
    if value is None:
        return column.isna().to_numpy()
    return (column.notna() & (column == value)).to_numpy(dtype=bool)


def pairs_in_set(column_a: pd.Series, column_b: pd.Series, pairs: Any) -> pd.Series:
    """Row by row, whether (A, B) is one of the pairs (no pairs given: every row passes)."""
    if pairs is None:
        return pd.Series(np.ones(len(column_a), dtype=np.bool_), index=column_a.index)
    a, b = column_a.astype(object), column_b.astype(object)
    found = np.zeros(len(a), dtype=np.bool_)
    for x, y in {(x, y) for x, y in pairs}:
        found |= _equal(a, x) & _equal(b, y)
    return pd.Series(found, index=column_a.index)


class ColumnPairValuesPdoInPairSet(ColumnPairMapMetricProvider):
    """column_pair_values.in_set's pandas answer, without a Python step per row."""

    condition_metric_name = METRIC
    condition_value_keys = ("value_pairs_set",)
    condition_domain_keys = ("batch_id", "table", "column_A", "column_B", "ignore_row_if")

    @column_pair_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_A: pd.Series, column_B: pd.Series, **kwargs: Any) -> pd.Series:
        return pairs_in_set(column_A, column_B, kwargs.get("value_pairs_set"))


class ExpectColumnPairValuesToBeInPairSet(ExpectColumnPairValuesToBeInSet):
    """expect_column_pair_values_to_be_in_set, measured by the vectorized metric above."""

    map_metric: ClassVar[str] = METRIC
