"""expect_column_values_to_be_valid_resident_id: GB 11643 check character and a real birth date."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation
from great_expectations.expectations.metrics import (
    ColumnMapMetricProvider,
    column_condition_partial,
)

from pdo.privacy.checksums import is_valid_resident_id
from pdo.validation.expectations._columns import fixed_width, per_distinct
from pdo.validation.expectations._render import Described

METRIC = "column_values.pdo_valid_resident_id"

# GB 11643 / ISO 7064 MOD 11-2: weight 2^(17-i) mod 11, check character by remainder.
_WEIGHTS = np.array([pow(2, 17 - i, 11) for i in range(17)], dtype=np.int64)
_CHECK = np.array([ord(c) for c in "10X98765432"], dtype=np.int64)
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def is_valid(value: object) -> bool:
    """Exactly is_valid_resident_id for text; non-text and values it cannot parse are invalid."""
    if not isinstance(value, str):
        return False  # an identifier stored as a number has lost its form (and any X)
    try:
        return is_valid_resident_id(value)
    except ValueError:  # str.isdigit accepts digits int() rejects, e.g. superscripts
        return False


def judge(values: np.ndarray) -> np.ndarray:
    """is_valid over an object array: numpy arithmetic for ASCII IDs, Python for the rest."""
    ok = np.zeros(len(values), dtype=bool)
    positions, points = fixed_width(values, 18)
    ascii_rows = (points < 128).all(axis=1)
    for i in positions[~ascii_rows]:  # full-width or other Unicode digits: rare, exact in Python
        ok[i] = is_valid(values[i])
    points = points[ascii_rows].astype(np.int16)  # ASCII: small ints, a quarter the memory
    digits = points[:, :17] - ord("0")
    all_digits = ((digits >= 0) & (digits <= 9)).all(axis=1)
    year = digits[:, 6:10] @ np.array([1000, 100, 10, 1])
    month = digits[:, 10:12] @ np.array([10, 1])
    day = digits[:, 12:14] @ np.array([10, 1])
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    last_day = _MONTH_DAYS[np.clip(month, 0, 12)] + ((month == 2) & leap)
    real_date = ((year >= 1900) & (year <= 2100) & (month >= 1) & (month <= 12) & (day >= 1)) & (
        day <= last_day
    )
    check = np.where(points[:, 17] == ord("x"), ord("X"), points[:, 17])  # str.upper()
    expected = _CHECK[(digits @ _WEIGHTS) % 11]
    ok[positions[ascii_rows]] = all_digits & real_date & (check == expected)
    return ok


class ColumnValuesPdoValidResidentId(ColumnMapMetricProvider):
    """The row-wise condition behind the expectation (pandas only: polars frames convert)."""

    condition_metric_name = METRIC

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return per_distinct(column, judge)


class ExpectColumnValuesToBeValidResidentId(Described, ColumnMapExpectation):
    """Each non-null value is an 18-character PRC resident ID that passes GB 11643.

    The rule is :func:`pdo.privacy.checksums.is_valid_resident_id`: 17 digits, a check
    character from ``10X98765432`` (a lowercase ``x`` is accepted), a birth date that exists
    in 1900–2100, and the ISO 7064 MOD 11-2 check. 15-digit legacy IDs fail. Non-string
    values fail; nulls are skipped, as in every GX map expectation.
    """

    map_metric: ClassVar[str] = METRIC
    sentence: ClassVar[str] = (
        "values must be resident ID numbers that pass GB 11643 "
        "(MOD 11-2 check character and a real birth date)."
    )
    success_keys: ClassVar[tuple[str, ...]] = ("mostly",)
    args_keys: ClassVar[tuple[str, ...]] = ("column",)
