"""expect_column_values_to_hold_no_personal_information: desensitized text stays free of PII.

GX builds metrics itself and cannot pass them our Settings, so the scanner is module state:
the pipeline's composition root calls :func:`configure` once with the scanner it built over
its models dir; until then a default one is built lazily under the temp dir.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation
from great_expectations.expectations.metrics import (
    ColumnMapMetricProvider,
    column_condition_partial,
)

from pdo.validation.expectations._columns import per_distinct
from pdo.validation.expectations._render import Described

if TYPE_CHECKING:
    from pdo.privacy.fastscan import FastScanner

METRIC = "column_values.pdo_no_personal_information"
DEFAULT_MODELS_DIR = Path(tempfile.gettempdir()) / "pdo-models"

_lock = threading.Lock()
_scanner: FastScanner | None = None


def configure(scanner: FastScanner) -> None:
    """Use this scanner (the pipeline's, over its models dir) for every later validation."""
    global _scanner
    with _lock:
        _scanner = scanner


def get_scanner() -> FastScanner:
    """The configured scanner, or a pattern-only one over DEFAULT_MODELS_DIR built once."""
    global _scanner
    with _lock:
        if _scanner is None:
            from pdo.privacy.analyzer import build_analyzer  # presidio loads only when needed
            from pdo.privacy.fastscan import FastScanner

            _scanner = FastScanner(build_analyzer(DEFAULT_MODELS_DIR))
        return _scanner


def judge(values: np.ndarray) -> np.ndarray:
    """True per value when the scanner finds no personal entity (kept entities do not count)."""
    from pdo.privacy.redact import kept_entities

    texts = [v if isinstance(v, str) else str(v) for v in values]  # a number can be a mobile
    keep = kept_entities()  # enterprise USCCs, organization codes: public, not personal
    found = get_scanner().scan_many(texts)
    return np.fromiter(
        (all(r.entity_type in keep for r in results) for results in found),
        dtype=bool,
        count=len(texts),
    )


class ColumnValuesPdoNoPersonalInformation(ColumnMapMetricProvider):
    """The row-wise condition behind the expectation (pandas only: polars frames convert)."""

    condition_metric_name = METRIC

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return per_distinct(column, judge)


class ExpectColumnValuesToHoldNoPersonalInformation(Described, ColumnMapExpectation):
    """No non-null value contains a personal entity the PRC pattern/checksum recognizers find.

    Findings come from :class:`pdo.privacy.fastscan.FastScanner` (Presidio's pattern
    recognizers replayed exactly; no NER), minus ``pdo.privacy.redact.kept_entities()``
    (enterprise USCCs and organization codes are public). Non-string values are scanned as
    ``str(value)``; nulls are skipped, as in every GX map expectation.
    """

    map_metric: ClassVar[str] = METRIC
    sentence: ClassVar[str] = "values must hold no personal information the PRC recognizers find."
    success_keys: ClassVar[tuple[str, ...]] = ("mostly",)
    args_keys: ClassVar[tuple[str, ...]] = ("column",)
