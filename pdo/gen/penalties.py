"""Credit office: administrative penalty decisions, document numbers and free-text summaries."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from pdo.gen.city import (
    CITY_AUTHORITIES,
    DISTRICT_MARKET_SHARE,
    DISTRICTS,
    district_market_authority,
)
from pdo.gen.dirt import DirtKind as K
from pdo.gen.dirt import DirtSpec, Plant
from pdo.gen.enterprises import INDIVIDUAL, Population
from pdo.gen.formats import AS_OF_DAY, day, iso_dates, money, to_date
from pdo.gen.industries import SECTIONS
from pdo.gen.job import TableJob, whole_table_job
from pdo.gen.rng import stream
from pdo.gen.summaries import TEMPLATE_WEIGHTS, Facts, render, yuan
from pdo.gen.violations import CATALOGUE, by_field
from pdo.sources.tables import PENALTIES

WINDOW_START = day(dt.date(2021, 1, 1))
LAST_DECISION = AS_OF_DAY - 25  # decisions are published within 20 days

PENALTY_DIRT = DirtSpec(
    plants=(
        Plant(K.MISSING_VALUE, "published_on", 0.01, 1),
        Plant(K.MISSING_VALUE, "authority", 0.005, 1),
        Plant(K.MISSING_VALUE, "summary", 0.005, 1),
        Plant(K.MISSING_VALUE, "decided_on", 0.002, 1),
        Plant(K.FULL_WIDTH_DIGITS, "amount", 0.005, 1),
        Plant(K.FULL_WIDTH_DIGITS, "decided_on", 0.003, 1),
        Plant(K.MIXED_DATE_FORMAT, "decided_on", 0.02, 2),
        Plant(K.MIXED_DATE_FORMAT, "published_on", 0.015, 1),
        Plant(K.UNPARSABLE_VALUE, "amount", 0.003, 1),
        Plant(K.UNPARSABLE_VALUE, "published_on", 0.002, 1),
    ),
    duplicate_rate=0.006,
    duplicate_minimum=2,
)

# Relative chance that a firm of a section is punished by: district market bureau, then each
# of CITY_AUTHORITIES in order (city market, environment, safety, tax, urban management).
_FIELD_BIAS: dict[str, tuple[float, ...]] = {
    "A": (1.0, 0.5, 2.0, 1.0, 0.6, 0.2),
    "C": (0.8, 1.0, 3.0, 2.5, 1.0, 0.3),
    "E": (0.5, 0.6, 1.5, 3.0, 1.0, 1.0),
    "F": (1.4, 1.2, 0.1, 0.3, 1.0, 1.5),
    "G": (0.7, 0.5, 0.6, 2.5, 1.0, 0.8),
    "H": (1.6, 1.2, 0.4, 0.6, 0.6, 2.5),
    "I": (1.0, 1.0, 0.05, 0.1, 1.5, 0.1),
    "K": (1.0, 1.0, 0.3, 0.5, 1.5, 0.8),
    "L": (1.2, 1.2, 0.05, 0.1, 1.5, 0.6),
    "M": (1.0, 1.0, 0.4, 0.2, 1.2, 0.1),
    "O": (1.4, 1.0, 0.2, 0.3, 0.6, 2.0),
}


def _authority_probs() -> np.ndarray:
    base = np.array([DISTRICT_MARKET_SHARE] + [a.weight for a in CITY_AUTHORITIES])
    probs = np.array([base * np.array(_FIELD_BIAS[s.letter]) for s in SECTIONS])
    return probs / probs.sum(axis=1, keepdims=True)


def _draw_by_row(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row of a probability matrix."""
    cum = probs.cumsum(axis=1)
    return (rng.random(len(probs))[:, None] > cum).sum(axis=1).clip(0, probs.shape[1] - 1)


def _fines(
    rng: np.random.Generator, violation: np.ndarray, individual: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(fine fen, confiscated fen, punishment text) per decision; 个体 get the lower fines."""
    k = len(violation)
    fine = np.zeros(k, dtype=np.int64)
    conf = np.zeros(k, dtype=np.int64)
    text: list[str] = []
    warn_only = rng.random(k) < 0.04
    u = rng.random(k) * np.where(individual, 0.5, 1.0)
    gains = np.round(np.exp(rng.normal(np.log(8000), 1.1, k)) * 100).astype(np.int64)
    evaded = np.round(np.exp(rng.normal(np.log(60000), 1.0, k)) * 100).astype(np.int64)
    multiple = rng.choice(np.array([0.5, 0.5, 0.8, 1.0, 1.5]), k)
    styles = rng.random(k)
    for i, vi in enumerate(violation.tolist()):
        v = CATALOGUE[vi]
        if warn_only[i] and not v.evasion:
            text.append("给予警告")
            continue
        if v.evasion:
            fine[i] = round(float(evaded[i] * multiple[i]))
            text.append(
                f"追缴少缴的税款{yuan(int(evaded[i]))}，并处少缴税款{multiple[i]:g}倍的罚款"
                f"{yuan(int(fine[i]))}"
            )
            continue
        fine[i] = v.fines[int(u[i] * len(v.fines))] * 100
        if v.confiscation and styles[i] < 0.4:
            conf[i] = gains[i]
            text.append(f"没收违法所得{yuan(int(conf[i]))}，并处罚款{yuan(int(fine[i]))}")
        elif styles[i] < 0.6:
            text.append(f"给予警告，并处罚款{yuan(int(fine[i]))}")
        elif styles[i] < 0.8:
            text.append(f"处罚款人民币{yuan(int(fine[i]))}")
        else:
            text.append(f"罚款{yuan(int(fine[i]))}")
    return fine, conf, text


def penalty_frame(pop: Population, seed: int) -> pl.DataFrame:
    """Decisions 2021–2026: risky firms are punished more often."""
    rng = stream(seed, "penalties")
    lo = np.maximum(pop.established + 30, WINDOW_START)
    hi = np.minimum(pop.closed, LAST_DECISION)
    years = np.maximum(hi - lo, 0) / 365.25
    rate = 0.045 * np.exp(0.8 * pop.risk) * np.clip(pop.size / 7.0, 0.3, 20) ** 0.2
    rate = np.where(pop.kind == INDIVIDUAL, rate * 0.7, rate)
    count = np.minimum(rng.poisson(rate * years), 8)
    firm = np.repeat(np.arange(pop.n), count)
    k = len(firm)
    decided = lo[firm] + (rng.random(k) * np.maximum(hi[firm] - lo[firm], 1)).astype(np.int64)
    published = decided + rng.integers(3, 21, k)
    who = _draw_by_row(rng, _authority_probs()[pop.section[firm]])
    district_auth = [district_market_authority(d) for d in DISTRICTS]
    authorities = [
        district_auth[int(pop.district[f])] if w == 0 else CITY_AUTHORITIES[w - 1]
        for f, w in zip(firm.tolist(), who.tolist(), strict=True)
    ]
    fields = {f: by_field(f) for f in ("market", "env", "safety", "tax", "urban")}
    pick = rng.random(k)
    violation = np.array(
        [
            fields[a.field][int(p * len(fields[a.field]))]
            for a, p in zip(authorities, pick, strict=True)
        ],
        dtype=np.int64,
    )
    fine, conf, punishment = _fines(rng, violation, pop.kind[firm] == INDIVIDUAL)
    template = rng.choice(len(TEMPLATE_WEIGHTS), size=k, p=np.array(TEMPLATE_WEIGHTS))
    keep = rng.random((k, 4)) < np.array([0.4, 0.8, 0.7, 0.8])
    happened = decided - rng.integers(20, 200, k)
    summaries = []
    for i, f in enumerate(firm.tolist()):
        v = CATALOGUE[int(violation[i])]
        facts = Facts(
            firm=str(pop.name[f]),
            uscc=str(pop.uscc[f]),
            role="经营者" if pop.kind[f] == INDIVIDUAL else "法定代表人",
            person=str(pop.legal_rep_name[f]),
            resident_id=str(pop.legal_rep_id[f]),
            mobile=str(pop.legal_rep_mobile[f]),
            address=str(pop.address[f]),
            authority=authorities[i].name,
            happened=to_date(int(happened[i])),
            facts=v.facts,
            law=v.law,
            article=v.article,
            basis=v.basis,
            punishment=punishment[i],
        )
        summaries.append(render(int(template[i]), facts, keep[i]))

    year = decided.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    frame = pl.DataFrame(
        {
            "firm": firm,
            "decided_day": decided,
            "stem": [a.stem for a in authorities],
            "year_n": year,
            "gap": rng.integers(1, 16, k),
            "uscc": pop.uscc[firm].astype(str),
            "decided_on": iso_dates(decided),
            "published_on": iso_dates(published),
            "authority": [a.name for a in authorities],
            "amount": money(fine + conf),
            "summary": pl.Series(summaries, dtype=pl.String),
        },
        schema_overrides={"stem": pl.String, "authority": pl.String},
    )
    frame = frame.sort(["decided_day", "firm"], maintain_order=True).with_columns(
        pl.col("gap").cum_sum().over(["stem", "year_n"]).alias("seq")
    )
    frame = frame.with_columns(
        pl.concat_str(
            pl.col("stem"),
            pl.lit("〔"),
            pl.col("year_n").cast(pl.String),
            pl.lit("〕"),
            pl.col("seq").cast(pl.String),
            pl.lit("号"),
        ).alias("case_no")
    )
    return frame.select(PENALTIES.column_names)


def penalties_job(pop: Population, seed: int) -> TableJob:
    """The credit office's penalty publication export."""
    return whole_table_job(PENALTIES, PENALTY_DIRT, lambda: penalty_frame(pop, seed), pop.n // 6)
