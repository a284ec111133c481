"""expect_column_values_to_be_valid_uscc: GB 32100-2015 alphabet and MOD 31-3 check character."""

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

from pdo.privacy.checksums import USCC_ALPHABET, is_valid_uscc
from pdo.validation.expectations._columns import fixed_width, per_distinct
from pdo.validation.expectations._render import Described

METRIC = "column_values.pdo_valid_uscc"

# GB 32100-2015 MOD 31-3: weight 3^i mod 31; character values index USCC_ALPHABET.
_WEIGHTS = np.array([pow(3, i, 31) for i in range(17)], dtype=np.int64)
_VALUE = np.full(129, -1, dtype=np.int64)  # ASCII code point → value; slot 128: non-ASCII
_VALUE[[ord(c) for c in USCC_ALPHABET]] = np.arange(len(USCC_ALPHABET))


def is_valid(value: object) -> bool:
    """Exactly is_valid_uscc for text; non-text values are invalid."""
    return isinstance(value, str) and is_valid_uscc(value)


def judge(values: np.ndarray) -> np.ndarray:
    """is_valid over an object array, as numpy arithmetic (the alphabet is ASCII: no fallback)."""
    ok = np.zeros(len(values), dtype=bool)
    positions, points = fixed_width(values, 18)
    value = _VALUE[np.minimum(points, 128)]
    in_alphabet = (value >= 0).all(axis=1)
    expected = (31 - (value[:, :17] @ _WEIGHTS) % 31) % 31
    ok[positions] = in_alphabet & (value[:, 17] == expected)
    return ok


class ColumnValuesPdoValidUscc(ColumnMapMetricProvider):
    """The row-wise condition behind the expectation (pandas only: polars frames convert)."""

    condition_metric_name = METRIC

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return per_distinct(column, judge)


class ExpectColumnValuesToBeValidUscc(Described, ColumnMapExpectation):
    """Each non-null value is an 18-character Unified Social Credit Code that passes GB 32100.

    The rule is :func:`pdo.privacy.checksums.is_valid_uscc`: only characters of
    ``0123456789ABCDEFGHJKLMNPQRTUWXY`` (uppercase; lowercase and full-width fail) and the
    MOD 31-3 check character. Non-string values fail; nulls are skipped, as in every GX map
    expectation.
    """

    map_metric: ClassVar[str] = METRIC
    sentence: ClassVar[str] = (
        "values must be Unified Social Credit Codes that pass GB 32100 "
        "(alphabet and MOD 31-3 check character)."
    )
    success_keys: ClassVar[tuple[str, ...]] = ("mostly",)
    args_keys: ClassVar[tuple[str, ...]] = ("column",)
