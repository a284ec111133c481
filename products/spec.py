"""What a data product declares about itself; the pipeline needs nothing else to build it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl


@dataclass(frozen=True)
class ProductBuild:
    """A built product: one row per enterprise (uscc, score, grade) plus model metrics."""

    scores: pl.DataFrame
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProductSpec:
    """A product's inputs, lawful purposes, price and how its revenue flows back."""

    name: str
    title_zh: str
    title_en: str
    inputs: tuple[str, ...]
    purposes: tuple[str, ...]
    price_fen: int
    revenue_shares_bp: Mapping[str, int]  # department code → basis points; operator keeps the rest
    build: Callable[[Mapping[str, pl.DataFrame], dt.date], ProductBuild]

    def __post_init__(self) -> None:
        if sum(self.revenue_shares_bp.values()) > 10_000:
            raise ValueError(f"{self.name}: revenue shares exceed 100%")
