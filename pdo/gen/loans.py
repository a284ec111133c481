"""Partner bank: historical loan outcomes, the label a credit scorecard is trained on."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from pdo.gen.dirt import DirtKind as K
from pdo.gen.dirt import DirtSpec, Plant
from pdo.gen.enterprises import COMPANY, INDIVIDUAL, Population
from pdo.gen.formats import day, iso_dates, money
from pdo.gen.job import TableJob, whole_table_job
from pdo.gen.rng import sigmoid, stream
from pdo.sources.tables import BANK_LOANS

ISSUE_FROM = day(dt.date(2023, 1, 1))
ISSUE_TO = day(dt.date(2025, 6, 30))
SAMPLE_SHARE = 0.30  # share of all firms with a loan at the partner bank
DEFAULT_INTERCEPT = -3.1  # calibrated for an overall default rate near 8%
DEFAULT_SLOPE = 1.35

LOAN_DIRT = DirtSpec(
    plants=(
        Plant(K.MISSING_VALUE, "amount", 0.003, 1),
        Plant(K.FULL_WIDTH_DIGITS, "amount", 0.003, 1),
        Plant(K.MIXED_DATE_FORMAT, "issued_on", 0.01, 1),
        Plant(K.UNPARSABLE_VALUE, "amount", 0.001, 1),
    ),
)


def default_probability(z: np.ndarray, closes_within_year: np.ndarray) -> np.ndarray:
    """P(90+ days past due within 12 months) from latent risk; failing firms default more."""
    return sigmoid(DEFAULT_INTERCEPT + DEFAULT_SLOPE * z + 1.2 * closes_within_year)


def loan_frame(pop: Population, seed: int) -> pl.DataFrame:
    """About 30% of firms borrowed once (some twice) between 2023-01 and 2025-06."""
    rng = stream(seed, "loans")
    lo = np.maximum(pop.established + 180, ISSUE_FROM)
    hi = np.minimum(pop.closed - 60, ISSUE_TO)
    eligible = hi > lo
    appetite = np.where(pop.kind == COMPANY, 1.25, np.where(pop.kind == INDIVIDUAL, 0.7, 0.8))
    p = SAMPLE_SHARE * pop.n / max(float((appetite * eligible).sum()), 1.0) * appetite
    chosen = eligible & (rng.random(pop.n) < np.minimum(p, 1.0))
    twice = chosen & (rng.random(pop.n) < 0.08) & (hi - lo > 400)
    firm = np.concatenate([np.flatnonzero(chosen), np.flatnonzero(twice)])
    k = len(firm)
    issued = lo[firm] + (rng.random(k) * (hi[firm] - lo[firm])).astype(np.int64)
    size = pop.size[firm]
    yuan = np.where(
        pop.kind[firm] == COMPANY,
        np.exp(rng.normal(np.log(600_000), 0.8, k)) * np.clip(size / 7, 0.3, 30) ** 0.4,
        np.exp(rng.normal(np.log(150_000), 0.6, k)),
    )
    amount = np.clip(np.round(yuan / 10_000) * 10_000, 10_000, 30_000_000).astype(np.int64) * 100
    closes = (pop.closed[firm] - issued) < 365
    defaulted = rng.random(k) < default_probability(pop.risk[firm], closes)
    frame = pl.DataFrame(
        {
            "firm": firm,
            "issued_day": issued,
            "uscc": pop.uscc[firm].astype(str),
            "issued_on": iso_dates(issued),
            "amount": money(amount),
            "defaulted": defaulted.astype(np.int64).astype(str),
        }
    ).sort(["issued_day", "firm"], maintain_order=True)
    frame = frame.with_columns(
        pl.concat_str(
            pl.lit("HZB"),
            pl.col("issued_on").str.slice(0, 4),
            pl.col("issued_on").str.slice(5, 2),
            pl.int_range(1, pl.len() + 1).cast(pl.String).str.zfill(7),
        ).alias("loan_id")
    )
    return frame.select(BANK_LOANS.column_names)


def loans_job(pop: Population, seed: int) -> TableJob:
    """The partner bank's loan-outcome extract."""
    return whole_table_job(BANK_LOANS, LOAN_DIRT, lambda: loan_frame(pop, seed), pop.n // 3)
