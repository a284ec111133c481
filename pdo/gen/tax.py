"""Tax bureau: yearly tax-credit grades (纳税信用等级) and tax paid, delivered as GBK CSV."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from pdo.gen.dirt import DirtKind as K
from pdo.gen.dirt import DirtSpec, Plant
from pdo.gen.enterprises import COMPANY, COOPERATIVE, INDIVIDUAL, Population
from pdo.gen.formats import day, integers, money
from pdo.gen.job import TableJob, per_enterprise_job
from pdo.gen.rng import stream
from pdo.sources.tables import TAX_CREDIT

YEARS = (2023, 2024, 2025)
# Score cut-offs (latent risk + yearly noise) between A | B | C | D; M goes to new/tiny taxpayers.
CUTS = (-0.95, 0.9, 1.75)
GRADES = np.array(["A", "B", "C", "D"])

TAX_DIRT = DirtSpec(
    plants=(
        Plant(K.INVALID_USCC_CHECK, "uscc", 0.001, 1),
        Plant(K.MISSING_VALUE, "tax_paid", 0.004, 1),
        Plant(K.MISSING_VALUE, "grade", 0.0005, 1),
        Plant(K.FULL_WIDTH_DIGITS, "tax_paid", 0.002, 1),
        Plant(K.FULL_WIDTH_DIGITS, "year", 0.0005, 1),
        Plant(K.FULL_WIDTH_DIGITS, "uscc", 0.0005, 1),
        Plant(K.UNPARSABLE_VALUE, "tax_paid", 0.0008, 1),
    ),
    duplicate_rate=0.002,
    duplicate_minimum=2,
)


def tax_chunk(pop: Population, seed: int, chunk: int, start: int, stop: int) -> pl.DataFrame:
    """Rows for firms [start, stop): one per firm and year it existed through year end."""
    rng = stream(seed, "tax", chunk)
    idx = np.arange(start, stop)
    n = len(idx)
    z = pop.risk[idx]
    kind = pop.kind[idx]
    covered = rng.random(n) < np.select(
        [kind == COMPANY, kind == COOPERATIVE, kind == INDIVIDUAL], [1.0, 0.9, 0.35]
    )
    base = np.select(
        [kind == COMPANY, kind == INDIVIDUAL],
        [
            pop.size[idx] * 9000 * np.exp(rng.normal(0, 0.7, n) - 0.3 * z),
            np.exp(rng.normal(np.log(3000), 0.8, n)),
        ],
        np.exp(rng.normal(np.log(2000), 1.0, n)),
    )
    growth = -0.15 * z + rng.normal(0, 0.1, n)
    frames = []
    for j, year in enumerate(YEARS):
        year_end = day(dt.date(year, 12, 31))
        alive = covered & (pop.established[idx] <= year_end) & (pop.closed[idx] > year_end)
        new = pop.established[idx] > day(dt.date(year, 1, 1))
        young = pop.established[idx] > day(dt.date(year - 1, 1, 1))
        tiny = (kind == INDIVIDUAL) & (rng.random(n) < 0.4)
        m_grade = new | (young & (rng.random(n) < 0.4)) | tiny
        score = 0.85 * z + 0.55 * rng.normal(0, 1, n)
        grade = np.where(m_grade, "M", GRADES[np.searchsorted(CUTS, score)])
        paid = base * np.exp(growth * j + rng.normal(0, 0.15, n))
        paid = np.where(grade == "D", paid * 0.3, np.where(grade == "M", paid * 0.5, paid))
        paid = np.where(m_grade & (rng.random(n) < 0.25), 0.0, paid)
        fen = np.round(paid * 100).astype(np.int64)
        frames.append(
            pl.DataFrame(
                {
                    "i": idx[alive],
                    "year_n": np.full(int(alive.sum()), year),
                    "grade": grade[alive],
                    "fen": fen[alive],
                }
            )
        )
    rows = pl.concat(frames).sort(["i", "year_n"], maintain_order=True)
    i = rows["i"].to_numpy()
    return pl.DataFrame(
        {
            "uscc": pop.uscc[i].astype(str),
            "year": integers(rows["year_n"].to_numpy()),
            "grade": rows["grade"],
            "tax_paid": money(rows["fen"].to_numpy()),
        },
        schema=dict.fromkeys(TAX_CREDIT.column_names, pl.String),
    )


def tax_job(pop: Population, seed: int) -> TableJob:
    """The tax-credit export."""
    return per_enterprise_job(
        TAX_CREDIT, TAX_DIRT, pop.n, lambda c, a, b: tax_chunk(pop, seed, c, a, b)
    )
