"""HR & social security: monthly insured headcount per firm, delivered as XLSX."""

from __future__ import annotations

import numpy as np
import polars as pl

from pdo.gen.dirt import DirtKind as K
from pdo.gen.dirt import DirtSpec, Plant
from pdo.gen.enterprises import COMPANY, INDIVIDUAL, Population
from pdo.gen.formats import WINDOW_MONTHS, integers, month_labels, month_start_days
from pdo.gen.job import TableJob, per_enterprise_job
from pdo.gen.rng import stream
from pdo.sources.tables import SOCIAL_INSURANCE

HRSS_DIRT = DirtSpec(
    plants=(
        Plant(K.MISSING_VALUE, "insured_headcount", 0.0004, 1),
        Plant(K.FULL_WIDTH_DIGITS, "insured_headcount", 0.0005, 1),
        Plant(K.FULL_WIDTH_DIGITS, "uscc", 0.0002, 1),
        Plant(K.MIXED_DATE_FORMAT, "month", 0.001, 2),
        Plant(K.UNPARSABLE_VALUE, "insured_headcount", 0.0002, 1),
    ),
)


def headcount_matrix(pop: Population, rng: np.random.Generator, idx: np.ndarray) -> np.ndarray:
    """Insured headcount by firm × month (-1 where the firm has no record that month).

    Risky firms shrink over the window; firms about to close run down before they go.
    """
    n = len(idx)
    z = pop.risk[idx]
    kind = pop.kind[idx]
    insured = rng.random(n) < np.select([kind == COMPANY, kind == INDIVIDUAL], [0.82, 0.12], 0.35)
    starts = month_start_days()
    t = np.arange(WINDOW_MONTHS)[None, :]
    active = (pop.established[idx, None] < starts[None, 1:]) & (
        pop.closed[idx, None] > starts[None, :-1]
    )
    growth = -0.35 * z + rng.normal(0.0, 0.2, n)
    level = pop.size[idx, None] * np.exp(
        growth[:, None] * t / (WINDOW_MONTHS - 1) + rng.normal(0.0, 0.06, (n, WINDOW_MONTHS))
    )
    ramp = np.clip((starts[None, :-1] - pop.established[idx, None]) / 180.0, 0.0, 1.0)
    level *= 0.4 + 0.6 * ramp
    months_left = (pop.closed[idx, None] - starts[None, :-1]) / 30.4
    level *= np.where(months_left < 6, np.clip(months_left / 6.0, 0.1, 1.0), 1.0)
    heads = np.round(level).astype(np.int64)
    return np.where(active & insured[:, None], heads, -1)


def hrss_chunk(pop: Population, seed: int, chunk: int, start: int, stop: int) -> pl.DataFrame:
    """Rows for firms [start, stop) in firm, month order."""
    rng = stream(seed, "hrss", chunk)
    idx = np.arange(start, stop)
    heads = headcount_matrix(pop, rng, idx)
    firm, month = np.nonzero(heads >= 0)
    labels = np.array(month_labels())
    return pl.DataFrame(
        {
            "uscc": pop.uscc[idx[firm]].astype(str),
            "month": labels[month],
            "insured_headcount": integers(heads[firm, month]),
        },
        schema=dict.fromkeys(SOCIAL_INSURANCE.column_names, pl.String),
    )


def hrss_job(pop: Population, seed: int) -> TableJob:
    """The social-insurance headcount export."""
    return per_enterprise_job(
        SOCIAL_INSURANCE, HRSS_DIRT, pop.n, lambda c, a, b: hrss_chunk(pop, seed, c, a, b)
    )
