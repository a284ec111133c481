"""Market regulation: the enterprise registry and the abnormal-operation list (经营异常名录)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from pdo.gen.dirt import DirtKind as K
from pdo.gen.dirt import DirtSpec, Plant
from pdo.gen.enterprises import NEVER, Population
from pdo.gen.formats import AS_OF_DAY, day, iso_dates
from pdo.gen.job import TableJob, whole_table_job
from pdo.gen.rng import choice_index, sigmoid, stream
from pdo.sources.tables import ABNORMAL_OPERATIONS, ENTERPRISE_REGISTRY

REGISTRY_DIRT = DirtSpec(
    plants=(
        Plant(K.INVALID_USCC_CHECK, "uscc", 0.005, 2),
        Plant(K.INVALID_RESIDENT_ID_CHECK, "legal_rep_id", 0.005, 2),
        Plant(K.MISSING_VALUE, "legal_rep_mobile", 0.006, 1),
        Plant(K.MISSING_VALUE, "address", 0.004, 1),
        Plant(K.MISSING_VALUE, "registered_capital", 0.004, 1),
        Plant(K.MISSING_VALUE, "industry_division", 0.003, 1),
        Plant(K.MISSING_VALUE, "established_on", 0.0005, 1),
        Plant(K.FULL_WIDTH_DIGITS, "uscc", 0.002, 1),
        Plant(K.FULL_WIDTH_DIGITS, "established_on", 0.002, 1),
        Plant(K.FULL_WIDTH_DIGITS, "registered_capital", 0.002, 1),
        Plant(K.FULL_WIDTH_DIGITS, "legal_rep_mobile", 0.001, 1),
        Plant(K.MIXED_DATE_FORMAT, "established_on", 0.01, 2),
        Plant(K.UNPARSABLE_VALUE, "established_on", 0.0005, 1),
        Plant(K.UNPARSABLE_VALUE, "registered_capital", 0.0005, 1),
    ),
    duplicate_rate=0.003,
    duplicate_minimum=2,
)

ABNORMAL_DIRT = DirtSpec(
    plants=(
        Plant(K.MISSING_VALUE, "reason", 0.01, 1),
        Plant(K.FULL_WIDTH_DIGITS, "listed_on", 0.005, 1),
        Plant(K.MIXED_DATE_FORMAT, "listed_on", 0.015, 1),
        Plant(K.MIXED_DATE_FORMAT, "removed_on", 0.01, 1),
        Plant(K.UNPARSABLE_VALUE, "removed_on", 0.002, 1),
    ),
)

# Reasons of 《企业经营异常名录管理暂行办法》 as registries word them, with their shares.
REASONS = (
    ("未按规定报送年度报告", 0.62),
    ("通过登记的住所或者经营场所无法联系", 0.28),
    ("未在责令的期限内公示有关企业信息", 0.06),
    ("公示企业信息隐瞒真实情况、弄虚作假", 0.04),
)
LIST_START = day(dt.date(2014, 10, 1))  # the list exists since 1 October 2014


def registry_job(pop: Population) -> TableJob:
    """The registry as the market regulation bureau exports it."""
    return whole_table_job(ENTERPRISE_REGISTRY, REGISTRY_DIRT, lambda: pop.registry, pop.n)


def _july_first(years: np.ndarray) -> np.ndarray:
    table = {y: day(dt.date(y, 7, 1)) for y in range(1995, 2030)}
    return np.array([table[int(y)] for y in years], dtype=np.int64)


def abnormal_frame(pop: Population, seed: int) -> pl.DataFrame:
    """Listings: risky firms are listed more often and removed less often."""
    rng = stream(seed, "abnormal")
    lam = 0.085 * np.exp(0.9 * pop.risk)
    count = np.minimum(rng.poisson(lam), 4) + (pop.closed != NEVER).astype(np.int64) * (
        rng.random(pop.n) < np.where(pop.risk > 0.5, 0.6, 0.2)
    )
    firm = np.repeat(np.arange(pop.n), count)
    k = len(firm)
    reason = choice_index(rng, [w for _, w in REASONS], k)
    est = pop.established[firm]
    end = np.minimum(pop.closed[firm], AS_OF_DAY + 1)
    lo = np.maximum(est + 180, LIST_START)
    ok = lo < end
    est_year = est.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    end_year = (
        np.minimum(end, AS_OF_DAY).astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64)
        + 1970
    )
    first_year = np.maximum(est_year + 1, 2015)
    span = np.maximum(end_year - first_year + 1, 1)
    year = first_year + (rng.random(k) * span).astype(np.int64)
    report_day = _july_first(np.clip(year, 1995, 2029)) + rng.integers(0, 21, k)
    any_day = lo + (rng.random(k) * np.maximum(end - lo, 1)).astype(np.int64)
    listed = np.where(reason == 0, report_day, any_day)
    ok &= (listed >= lo) & (listed < end) & (listed <= AS_OF_DAY)
    firm, reason, listed = firm[ok], reason[ok], listed[ok]
    k = len(firm)

    order = np.lexsort((listed, firm))
    firm, reason, listed = firm[order], reason[order], listed[order]
    keep = np.ones(k, dtype=bool)
    keep[1:] = (firm[1:] != firm[:-1]) | (listed[1:] != listed[:-1])
    firm, reason, listed = firm[keep], reason[keep], listed[keep]
    k = len(firm)
    # A firm is listed again only after it was removed: earlier listings end before the next.
    has_next = np.zeros(k, dtype=bool)
    has_next[:-1] = firm[1:] == firm[:-1]
    next_listed = np.where(has_next, np.roll(listed, -1), NEVER)
    p_removed = np.where(pop.closed[firm] == NEVER, sigmoid(0.7 - 1.0 * pop.risk[firm]), 0.12)
    removed = listed + np.clip(np.exp(rng.normal(np.log(90), 0.9, k)), 10, 900).astype(np.int64)
    removed = np.where(has_next, np.minimum(removed, next_listed - 1), removed)
    keep_removed = has_next | (
        (rng.random(k) < p_removed) & (removed <= AS_OF_DAY) & (removed < pop.closed[firm])
    )
    valid = ~has_next | (removed > listed)
    firm, reason, listed, removed, keep_removed = (
        a[valid] for a in (firm, reason, listed, removed, keep_removed)
    )

    frame = pl.DataFrame(
        {
            "firm": firm,
            "uscc": pop.uscc[firm].astype(str),
            "listed_day": listed,
            "listed_on": iso_dates(listed),
            "reason": np.array([r for r, _ in REASONS])[reason],
            "removed_on": iso_dates(removed),
        }
    ).with_columns(pl.when(pl.Series(keep_removed)).then(pl.col("removed_on")).otherwise(None))
    return frame.sort(["listed_day", "firm"], maintain_order=True).select(
        ABNORMAL_OPERATIONS.column_names
    )


def abnormal_job(pop: Population, seed: int) -> TableJob:
    """The abnormal-operation list export."""
    return whole_table_job(
        ABNORMAL_OPERATIONS, ABNORMAL_DIRT, lambda: abnormal_frame(pop, seed), pop.n // 8
    )
