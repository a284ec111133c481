"""What a data product declares about itself; the pipeline needs nothing else to build it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from pdo.revenue import RevenueRule
from pdo.sources.tables import table


@dataclass(frozen=True)
class ProductBuild:
    """A built product: one row per enterprise (uscc + the spec's outputs), its model card, and
    the frozen model (if any) that produced it."""

    scores: pl.DataFrame
    metrics: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] | None = None


# The monthly tables, millions of rows per city: a build gets them as LazyFrames that scan the
# lake, so its query reads only the columns and rows it needs, batch by batch.
MONTHLY_TABLES = ("social_insurance", "utility_payments")
Inputs = Mapping[str, pl.DataFrame | pl.LazyFrame]  # the run's tables by name, as above


def eager(inputs: Inputs, name: str) -> pl.DataFrame:
    """One input as a DataFrame, collected if it came lazy."""
    frame = inputs[name]
    return frame.collect() if isinstance(frame, pl.LazyFrame) else frame


SERVED_COLUMNS = ("score", "grade")  # outputs the serving store keeps as columns, not details

# inputs (the version's datasets, with the disputed items excluded), as-of date, the version's
# frozen model JSON and an entity key → that enterprise's served-row fields, None when absent
Rescore = Callable[
    [Mapping[str, pl.DataFrame], dt.date, dict[str, Any], str], dict[str, Any] | None
]


def served_fields(outputs: tuple[str, ...], row: Mapping[str, Any]) -> dict[str, Any]:
    """A scored row as the serving store keeps it: score and grade, other outputs as details."""
    return {
        "score": row.get("score"),
        "grade": row.get("grade"),
        "details": {o: row[o] for o in outputs if o not in SERVED_COLUMNS},
    }


@dataclass(frozen=True)
class ProductSpec:
    """A product's inputs, outputs, lawful purposes, price and how its revenue flows back.

    outputs: the columns of each row served to a bank (besides uscc); ``score`` and ``grade``,
    when present, are also stored as columns for lookups and drift. drift_column: the numeric
    output compared (PSI) with the live version at each new build, if any.
    """

    name: str
    title_zh: str
    title_en: str
    inputs: tuple[str, ...]
    purposes: tuple[str, ...]
    price_fen: int
    revenue: RevenueRule  # who shares the billed revenue; the operator keeps the rest
    build: Callable[[Inputs, dt.date], ProductBuild]
    outputs: tuple[str, ...] = ("score", "grade")
    drift_column: str | None = None
    rescore: Rescore | None = None

    def revenue_weights(self) -> dict[str, int]:
        """The revenue rule resolved against the departments that supply this product's inputs."""
        return self.revenue.weights(table(t).department for t in self.inputs)
