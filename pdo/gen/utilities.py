"""Water and power utilities: monthly bills, payments and arrears, delivered as Parquet."""

from __future__ import annotations

import numpy as np
import polars as pl

from pdo.gen.dirt import DirtKind as K
from pdo.gen.dirt import DirtSpec, Plant
from pdo.gen.enterprises import COMPANY, INDIVIDUAL, Population
from pdo.gen.formats import WINDOW_MONTHS, WINDOW_START, money, month_labels, month_start_days
from pdo.gen.industries import ENERGY_HEAVY, SECTIONS
from pdo.gen.job import TableJob, per_enterprise_job
from pdo.gen.rng import sigmoid, stream
from pdo.sources.tables import UTILITY_PAYMENTS

UTILITIES = ("water", "electricity")

UTILITY_DIRT = DirtSpec(
    plants=(
        Plant(K.MISSING_VALUE, "amount_paid", 0.0005, 1),
        Plant(K.MISSING_VALUE, "arrears", 0.0003, 1),
        Plant(K.FULL_WIDTH_DIGITS, "amount_due", 0.0003, 1),
        Plant(K.MIXED_DATE_FORMAT, "month", 0.0003, 1),
        Plant(K.UNPARSABLE_VALUE, "amount_due", 0.0001, 1),
    ),
)


def bills(pop: Population, rng: np.random.Generator, idx: np.ndarray) -> dict[str, np.ndarray]:
    """Amounts in fen by firm × utility × month; due < 0 marks 'no bill'."""
    n = len(idx)
    z = pop.risk[idx]
    kind = pop.kind[idx]
    size = pop.size[idx]
    heavy = np.isin(
        pop.section[idx], [i for i, s in enumerate(SECTIONS) if s.letter in ENERGY_HEAVY]
    )
    has = np.stack(
        [
            rng.random(n) < np.select([kind == COMPANY, kind == INDIVIDUAL], [0.70, 0.60], 0.5),
            rng.random(n) < np.select([kind == COMPANY, kind == INDIVIDUAL], [0.86, 0.78], 0.6),
        ],
        axis=1,
    )
    base = np.stack(
        [
            30 + size * 45 * np.exp(rng.normal(0, 0.6, n)),
            80 + size * 380 * np.where(heavy, 3.5, 1.0) * np.exp(rng.normal(0, 0.6, n)),
        ],
        axis=1,
    )
    starts = month_start_days()
    t = np.arange(WINDOW_MONTHS)
    calendar_month = (WINDOW_START.month - 1 + t) % 12 + 1
    season = np.stack(
        [
            1 + 0.12 * np.sin(2 * np.pi * (calendar_month - 4) / 12),
            1 + 0.15 * np.cos(4 * np.pi * (calendar_month - 1.5) / 12),
        ]
    )
    growth = -0.3 * z + rng.normal(0, 0.15, n)
    trend = np.exp(growth[:, None] * t[None, :] / (WINDOW_MONTHS - 1))
    due = (
        base[:, :, None]
        * season[None, :, :]
        * trend[:, None, :]
        * np.exp(rng.normal(0, 0.12, (n, 2, WINDOW_MONTHS)))
    )
    active = (pop.established[idx, None] < starts[None, 1:]) & (
        pop.closed[idx, None] > starts[None, :-1]
    )
    exists = has[:, :, None] & active[:, None, :]
    due_fen = np.where(exists, np.round(due * 100), -1).astype(np.int64)
    worsening = np.maximum(z, 0)[:, None, None] * t[None, None, :] / (WINDOW_MONTHS - 1)
    short = rng.random(due.shape) < sigmoid(-3.7 + 1.25 * z[:, None, None] + 0.9 * worsening)
    share = np.where(rng.random(due.shape) < 0.3, 0.0, rng.uniform(0.0, 0.85, due.shape))
    paid_fen = np.where(short, np.floor(due_fen * share), due_fen).astype(np.int64)
    return {"due": due_fen, "paid": paid_fen}


def utilities_chunk(pop: Population, seed: int, chunk: int, start: int, stop: int) -> pl.DataFrame:
    """Rows for firms [start, stop) in firm, utility, month order."""
    rng = stream(seed, "utilities", chunk)
    idx = np.arange(start, stop)
    b = bills(pop, rng, idx)
    firm, util, month = np.nonzero(b["due"] >= 0)
    due = b["due"][firm, util, month]
    paid = b["paid"][firm, util, month]
    return pl.DataFrame(
        {
            "uscc": pop.uscc[idx[firm]].astype(str),
            "utility": np.array(UTILITIES)[util],
            "month": np.array(month_labels())[month],
            "amount_due": money(due),
            "amount_paid": money(paid),
            "arrears": money(due - paid),
        },
        schema=dict.fromkeys(UTILITY_PAYMENTS.column_names, pl.String),
    )


def utilities_job(pop: Population, seed: int) -> TableJob:
    """The utilities' billing export."""
    return per_enterprise_job(
        UTILITY_PAYMENTS, UTILITY_DIRT, pop.n, lambda c, a, b: utilities_chunk(pop, seed, c, a, b)
    )
