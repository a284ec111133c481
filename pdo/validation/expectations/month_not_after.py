"""expect_column_values_to_be_month_not_after: a YYYY-MM month no later than a given month.

GX's own between check takes only numbers and dates; monthly tables carry their month as text
(YYYY-MM after normalization), which orders as the calendar does, so it is compared as text.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation
from great_expectations.expectations.metrics import (
    ColumnMapMetricProvider,
    column_condition_partial,
)

from pdo.validation.expectations._render import Described

METRIC = "column_values.pdo_month_not_after"


class ColumnValuesPdoMonthNotAfter(ColumnMapMetricProvider):
    """The row-wise condition behind the expectation (pandas only: polars frames convert)."""

    condition_metric_name = METRIC
    condition_value_keys = ("max_month",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, max_month: str, **kwargs: Any) -> pd.Series:
        text = column.astype(str)
        return text.str.fullmatch(r"\d{4}-\d{2}") & (text <= max_month)


class ExpectColumnValuesToBeMonthNotAfter(Described, ColumnMapExpectation):
    """Each non-null value is a YYYY-MM month no later than ``max_month`` (a mistyped future
    month fails; nulls are skipped, as in every GX map expectation)."""

    max_month: str

    map_metric: ClassVar[str] = METRIC
    sentence: ClassVar[str] = "values must be months (YYYY-MM) no later than the given month."
    success_keys: ClassVar[tuple[str, ...]] = ("max_month", "mostly")
    args_keys: ClassVar[tuple[str, ...]] = ("column", "max_month")
