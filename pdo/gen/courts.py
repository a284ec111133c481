"""Courts: enforcement cases (执行案件) and dishonest-debtor entries (失信被执行人)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from pdo.gen.city import DISTRICTS, INTERMEDIATE_COURT
from pdo.gen.dirt import DirtKind as K
from pdo.gen.dirt import DirtSpec, Plant
from pdo.gen.enterprises import Population
from pdo.gen.formats import AS_OF_DAY, day, iso_dates, money
from pdo.gen.job import TableJob, whole_table_job
from pdo.gen.rng import sigmoid, stream
from pdo.sources.tables import COURT_CASES

WINDOW_START = day(dt.date(2019, 1, 1))
ENFORCEMENT, DISHONEST = "执行案件", "失信被执行人"

COURT_DIRT = DirtSpec(
    plants=(
        Plant(K.MISSING_VALUE, "amount", 0.01, 1),
        Plant(K.MISSING_VALUE, "status", 0.008, 1),
        Plant(K.MISSING_VALUE, "filed_on", 0.002, 1),
        Plant(K.FULL_WIDTH_DIGITS, "filed_on", 0.004, 1),
        Plant(K.FULL_WIDTH_DIGITS, "amount", 0.004, 1),
        Plant(K.MIXED_DATE_FORMAT, "filed_on", 0.02, 1),
        Plant(K.MIXED_DATE_FORMAT, "published_on", 0.02, 1),
        Plant(K.UNPARSABLE_VALUE, "published_on", 0.002, 1),
        Plant(K.UNPARSABLE_VALUE, "amount", 0.002, 1),
    ),
)


def _enforcement_status(
    rng: np.random.Generator, age_days: np.ndarray, z: np.ndarray
) -> np.ndarray:
    done = rng.random(len(z)) < sigmoid(0.8 - 0.9 * z)
    old = age_days > 240
    terminated = rng.random(len(z)) < 0.85
    return np.where(
        ~old,
        "执行中",
        np.where(done, "执行完毕", np.where(terminated, "终结本次执行程序", "终结执行")),
    )


def court_frame(pop: Population, seed: int) -> pl.DataFrame:
    """Cases 2019–2026; risky firms end up in enforcement, the riskiest on the dishonest list."""
    rng = stream(seed, "courts")
    lo = np.maximum(pop.established + 180, WINDOW_START)
    hi = np.minimum(pop.closed + 365, AS_OF_DAY - 20)
    years = np.maximum(hi - lo, 0) / 365.25
    rate = 0.02 * np.exp(1.2 * pop.risk)
    n_enf = np.minimum(rng.poisson(rate * years), 12)
    dishonest_p = sigmoid(-1.6 + 1.3 * pop.risk)
    n_dis = np.where(
        (n_enf > 0) & (rng.random(pop.n) < dishonest_p), 1 + (rng.random(pop.n) < 0.25), 0
    )
    n_dis = np.where(years > 0, n_dis, 0)
    firm = np.concatenate([np.repeat(np.arange(pop.n), n_enf), np.repeat(np.arange(pop.n), n_dis)])
    kind = np.concatenate(
        [np.full(int(n_enf.sum()), ENFORCEMENT), np.full(int(n_dis.sum()), DISHONEST)]
    )
    k = len(firm)
    z = pop.risk[firm]
    filed = lo[firm] + (rng.random(k) * np.maximum(hi[firm] - lo[firm], 1)).astype(np.int64)
    is_dis = kind == DISHONEST
    delay = np.where(is_dis, rng.integers(60, 300, k), rng.integers(1, 15, k))
    filed = np.where(is_dis, np.minimum(filed, AS_OF_DAY - 20 - delay), filed)
    ok = filed >= lo[firm]  # a dishonest entry pushed back before the firm could be sued
    firm, kind, z, filed, is_dis, delay = (
        firm[ok],
        kind[ok],
        z[ok],
        filed[ok],
        is_dis[ok],
        delay[ok],
    )
    k = len(firm)
    published = np.minimum(filed + delay, AS_OF_DAY)
    amount = np.round(np.exp(rng.normal(np.log(90000), 1.2, k)) * 100).astype(np.int64)
    amount = np.where(rng.random(k) < 0.3, (amount // 100_000) * 100_000 + 100_000, amount)
    enf_status = _enforcement_status(rng, AS_OF_DAY - filed, z)
    dis_status = np.where(
        rng.random(k) < 0.62,
        "全部未履行",
        np.where(rng.random(k) < 0.8, "部分未履行", "已全部履行"),
    )
    status = np.where(is_dis, dis_status, enf_status)
    intermediate = rng.random(k) < 0.1
    court = np.where(
        intermediate, INTERMEDIATE_COURT, np.array([d.court for d in DISTRICTS])[pop.district[firm]]
    )
    year = filed.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    frame = pl.DataFrame(
        {
            "firm": firm,
            "filed_day": filed,
            "court": court,
            "year_n": year,
            "gap": rng.integers(1, 40, k),
            "uscc": pop.uscc[firm].astype(str),
            "kind": kind,
            "filed_on": iso_dates(filed),
            "published_on": iso_dates(published),
            "amount": money(amount),
            "status": status,
        },
        schema_overrides={"court": pl.String, "kind": pl.String, "status": pl.String},
    )
    frame = frame.sort(["filed_day", "firm", "kind"], maintain_order=True).with_columns(
        pl.col("gap").cum_sum().over(["court", "year_n"]).alias("seq")
    )
    frame = frame.with_columns(
        pl.concat_str(
            pl.lit("("),
            pl.col("year_n").cast(pl.String),
            pl.lit(")"),
            pl.col("court"),
            pl.lit("执"),
            pl.col("seq").cast(pl.String),
            pl.lit("号"),
        ).alias("case_no")
    )
    return frame.select(COURT_CASES.column_names)


def courts_job(pop: Population, seed: int) -> TableJob:
    """The intermediate court's city-wide enforcement and dishonest-debtor export."""
    return whole_table_job(COURT_CASES, COURT_DIRT, lambda: court_frame(pop, seed), pop.n // 10)
