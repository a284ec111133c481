"""The enterprise population: one latent risk per firm drives every department's signals."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

from pdo.gen import ids
from pdo.gen.city import (
    CITY,
    CITY_SHORT,
    DISTRICTS,
    LOCAL_ID_REGIONS,
    OTHER_ID_REGIONS,
    PROVINCE,
    PROVINCE_ID_REGIONS,
)
from pdo.gen.formats import AS_OF_DAY, day, iso_dates, money
from pdo.gen.industries import SECTIONS
from pdo.gen.pools import Pools
from pdo.gen.rng import choice_index, sigmoid, stream

COMPANY, INDIVIDUAL, COOPERATIVE = 0, 1, 2
KIND_SHARES = (0.58, 0.38, 0.04)
NEVER = np.iinfo(np.int64).max // 4  # "closed on" for firms still open
FIRST_YEAR, LAST_YEAR = 1995, 2026
MODERN_CODES_FROM = day(dt.date(2015, 10, 1))  # USCCs with 'MA' organization codes

_NICE_CAPITAL = np.array([10, 30, 50, 100, 200, 300, 500, 800, 1000, 2000, 3000, 5000, 10000.0])
_NICE_SMALL = np.array([1, 2, 3, 5, 8, 10, 20, 30, 50.0])
_SUFFIXES = ("有限公司", "有限责任公司", "股份有限公司", "集团有限公司")
_SHOPS = {  # what a 个体工商户 calls itself, by section
    "F": ("店", "商行", "经营部", "便利店"),
    "H": ("店", "馆", "小吃店", "餐馆"),
    "O": ("店", "服务部", "工作室"),
    "G": ("车队", "经营部"),
    "E": ("经营部", "工作室"),
}
_SHOP_DEFAULT = ("经营部", "工作室", "店")


@dataclass
class Population:
    """Per-enterprise attributes as aligned arrays, plus the clean registry text."""

    n: int
    risk: np.ndarray  # latent risk z (higher = worse)
    kind: np.ndarray  # COMPANY | INDIVIDUAL | COOPERATIVE
    district: np.ndarray  # index into DISTRICTS
    section: np.ndarray  # index into SECTIONS
    established: np.ndarray  # day numbers
    closed: np.ndarray  # day numbers, NEVER when open
    size: np.ndarray  # typical insured headcount
    uscc: np.ndarray  # object array of str
    legal_rep_name: np.ndarray
    legal_rep_id: np.ndarray
    legal_rep_mobile: np.ndarray
    address: np.ndarray
    name: np.ndarray
    registry: pl.DataFrame  # the registry as delivered before dirt, contract columns


def _established(rng: np.random.Generator, n: int) -> np.ndarray:
    years = np.arange(FIRST_YEAR, LAST_YEAR + 1)
    weights = np.exp(0.09 * (years - FIRST_YEAR))
    weights[-1] *= 0.5  # half a year so far
    year = years[choice_index(rng, weights, n)]
    start = np.array([day(dt.date(int(y), 1, 1)) for y in years])
    end = np.array([min(day(dt.date(int(y) + 1, 1, 1)), AS_OF_DAY + 1) for y in years])
    i = year - FIRST_YEAR
    return start[i] + (rng.random(n) * (end[i] - start[i])).astype(np.int64)


def _snap(
    values: np.ndarray, nice: np.ndarray, rng: np.random.Generator, share: float
) -> np.ndarray:
    """Round a share of amounts to the 'nice' values people actually register."""
    nearest = nice[np.abs(np.log(values[:, None]) - np.log(nice[None, :])).argmin(axis=1)]
    return np.where(rng.random(len(values)) < share, nearest, np.round(values, 2))


def _pick_words(
    rng: np.random.Generator, section: np.ndarray, division_idx: np.ndarray
) -> np.ndarray:
    out = np.empty(len(section), dtype=object)
    for s, sec in enumerate(SECTIONS):
        for d, div in enumerate(sec.divisions):
            m = (section == s) & (division_idx == d)
            k = int(m.sum())
            if k:
                out[m] = np.array(div.words, dtype=object)[rng.integers(0, len(div.words), k)]
    return out


def _names(
    rng: np.random.Generator,
    pools: Pools,
    kind: np.ndarray,
    district: np.ndarray,
    words: np.ndarray,
    section: np.ndarray,
    rep_names: np.ndarray,
    size: np.ndarray,
) -> np.ndarray:
    """Realistic registered names: region prefix + 字号 + industry word + organizational form."""
    n = len(kind)
    trade = pools.trade_names[rng.integers(0, len(pools.trade_names), n)]
    dnames = np.array([d.name for d in DISTRICTS], dtype=object)[district]
    dshort = np.array([d.name[:-1] for d in DISTRICTS], dtype=object)[district]
    tech = np.isin(section, [i for i, s in enumerate(SECTIONS) if s.letter in "CIM"])
    tech_word = np.where(
        tech
        & (rng.random(n) < 0.35)
        & ~np.char.endswith(words.astype(str), "科技")
        & ~np.char.endswith(words.astype(str), "技术"),
        "科技",
        "",
    )
    big = size > 150
    suffix_idx = choice_index(rng, [0.76, 0.18, 0.04, 0.0], n)
    suffix_idx = np.where(big & (rng.random(n) < 0.3), 3, suffix_idx)
    suffix = np.array(_SUFFIXES, dtype=object)[suffix_idx]
    style = rng.random(n)
    body = trade + words + tech_word.astype(object)
    company = np.where(
        style < 0.62,
        CITY_SHORT + body + suffix,
        np.where(
            style < 0.74,
            trade + f"（{CITY_SHORT}）" + words + tech_word.astype(object) + suffix,
            np.where(style < 0.88, PROVINCE + body + suffix, CITY_SHORT + dshort + body + suffix),
        ),
    )
    surname_brand = np.array([s[0] + "记" for s in rep_names], dtype=object)
    brand = np.where(rng.random(n) < 0.3, surname_brand, trade)
    shop = np.empty(n, dtype=object)
    for s, sec in enumerate(SECTIONS):
        m = section == s
        options = np.array(_SHOPS.get(sec.letter, _SHOP_DEFAULT), dtype=object)
        shop[m] = options[rng.integers(0, len(options), int(m.sum()))]
    tag = np.where(rng.random(n) < 0.5, "（个体工商户）", "").astype(object)
    individual = CITY + dnames + brand + words + shop + tag
    coop = CITY + dnames + trade + words + "专业合作社"
    return np.where(kind == COMPANY, company, np.where(kind == INDIVIDUAL, individual, coop))


def _addresses(
    rng: np.random.Generator, pools: Pools, district: np.ndarray, kind: np.ndarray
) -> np.ndarray:
    n = len(district)
    street = np.empty(n, dtype=object)
    for i, streets in enumerate(pools.streets_by_district):
        m = district == i
        street[m] = streets[rng.integers(0, len(streets), int(m.sum()))]
    number = np.clip(np.exp(rng.normal(np.log(80), 1.0, n)), 1, 1999).astype(np.int64)
    building = rng.integers(1, 30, n)
    room = rng.integers(1, 30, n) * 100 + rng.integers(1, 20, n)
    floor = rng.integers(1, 25, n)
    u = rng.random(n)
    extra = np.where(
        u < 0.35,
        "",
        np.where(
            u < 0.65,
            building.astype(str).astype(object) + "幢" + room.astype(str) + "室",
            np.where(
                u < 0.85,
                floor.astype(str).astype(object) + "楼",
                room.astype(str).astype(object) + "室",
            ),
        ),
    )
    extra = np.where((kind == INDIVIDUAL) & (u < 0.5), "一楼商铺", extra)
    dnames = np.array([d.name for d in DISTRICTS], dtype=object)[district]
    return CITY + dnames + street + number.astype(str).astype(object) + "号" + extra


def _unique_names(make: Callable[[np.ndarray], np.ndarray], n: int) -> np.ndarray:
    """Redraw names that collide with an earlier one (names are unique within a city)."""
    names = make(np.arange(n))
    for _ in range(30):
        dup = ids.later_duplicates(names)
        if not dup.any():
            return names
        names[dup] = make(np.flatnonzero(dup))
    raise RuntimeError("could not draw unique enterprise names")


POPULATION_STEPS = 5


def build_population(
    seed: int, n: int, pools: Pools, tick: Callable[[str], None] | None = None
) -> Population:
    """Draw N enterprises with coherent attributes and a latent risk that drives the rest.

    `tick(next_step)` is called after each of POPULATION_STEPS steps, for a progress bar.
    """
    step = tick or (lambda _: None)
    rng = stream(seed, "population")
    kind = choice_index(rng, KIND_SHARES, n).astype(np.int8)
    district = choice_index(rng, [d.weight for d in DISTRICTS], n).astype(np.int16)
    section = np.zeros(n, dtype=np.int16)
    for k, attr in ((COMPANY, "company_weight"), (INDIVIDUAL, "individual_weight")):
        m = kind == k
        section[m] = choice_index(rng, [getattr(s, attr) for s in SECTIONS], int(m.sum()))
    section[kind == COOPERATIVE] = 0  # agriculture
    division_idx = np.zeros(n, dtype=np.int16)
    division = np.empty(n, dtype=object)
    for s, sec in enumerate(SECTIONS):
        m = section == s
        idx = choice_index(rng, [d.weight for d in sec.divisions], int(m.sum()))
        division_idx[m] = idx
        division[m] = np.array([d.code for d in sec.divisions], dtype=object)[idx]

    established = _established(rng, n)
    age_years = (AS_OF_DAY - established) / 365.25
    shift = np.array([s.risk_shift for s in SECTIONS])[section]
    risk = rng.normal(0.0, 1.0, n) + shift + np.where(age_years < 3, 0.25, 0.0) - 0.1

    revoked = rng.random(n) < sigmoid(-4.2 + 1.1 * risk)
    cancelled = ~revoked & (rng.random(n) < sigmoid(-2.5 + 0.6 * risk))
    closable = established < AS_OF_DAY - 120
    revoked &= closable
    cancelled &= closable
    gone = revoked | cancelled
    span = np.maximum(AS_OF_DAY - 1 - (established + 90), 1)
    # Most closures happen within a few years of founding; risky firms fail sooner.
    frac = np.clip(rng.beta(1.3, 2.2, n) * np.exp(-0.2 * risk), 0, 1)
    closed = np.where(gone, established + 90 + (frac * span).astype(np.int64), NEVER)
    status = np.where(
        revoked, "吊销", np.where(cancelled, "注销", np.where(rng.random(n) < 0.18, "在业", "存续"))
    ).astype(object)

    size = np.where(
        kind == COMPANY,
        np.clip(np.exp(rng.normal(np.log(7), 1.15, n) - 0.15 * risk), 1, 5000),
        np.where(kind == INDIVIDUAL, 1 + rng.poisson(0.7, n), 3 + rng.poisson(4, n)),
    ).astype(np.float64)
    capital = np.where(
        kind == COMPANY,
        _snap(
            np.clip(np.exp(rng.normal(np.log(60) + 0.45 * np.log(size), 1.0)), 1, 5e5),
            _NICE_CAPITAL,
            rng,
            0.7,
        ),
        np.where(
            kind == INDIVIDUAL,
            _snap(np.clip(np.exp(rng.normal(np.log(5), 0.9, n)), 0.5, 500), _NICE_SMALL, rng, 0.8),
            _snap(
                np.clip(np.exp(rng.normal(np.log(50), 1.0, n)), 1, 5000), _NICE_CAPITAL, rng, 0.7
            ),
        ),
    )
    capital_fen = np.round(capital * 100).astype(np.int64)

    regions = np.array([d.code for d in DISTRICTS], dtype=object)[district]
    step("USCCs")
    uscc = ids.unique_usccs(
        rng, kind.astype(np.int64) + 1, regions, established >= MODERN_CODES_FROM
    )

    step("legal representatives")
    rep_name, rep_id, rep_mobile = _legal_representatives(rng, pools, established)
    step("names")
    words = _pick_words(rng, section, division_idx)

    def make(idx: np.ndarray) -> np.ndarray:
        return _names(
            rng, pools, kind[idx], district[idx], words[idx], section[idx], rep_name[idx], size[idx]
        )

    name = _unique_names(make, n)
    step("addresses")
    address = _addresses(rng, pools, district, kind)
    registry = pl.DataFrame(
        {
            "uscc": uscc.astype(str),
            "name": name.astype(str),
            "legal_rep_name": rep_name.astype(str),
            "legal_rep_id": rep_id.astype(str),
            "legal_rep_mobile": rep_mobile.astype(str),
            "address": address.astype(str),
            "district": np.array([d.name for d in DISTRICTS])[district],
            "industry_section": np.array([s.letter for s in SECTIONS])[section],
            "industry_division": division.astype(str),
            "registered_capital": money(capital_fen),
            "established_on": iso_dates(established),
            "status": status.astype(str),
        },
        schema=dict.fromkeys(
            [
                "uscc",
                "name",
                "legal_rep_name",
                "legal_rep_id",
                "legal_rep_mobile",
                "address",
                "district",
                "industry_section",
                "industry_division",
                "registered_capital",
                "established_on",
                "status",
            ],
            pl.String,
        ),
    )
    step("done")
    return Population(
        n=n,
        risk=risk,
        kind=kind,
        district=district,
        section=section,
        established=established,
        closed=closed,
        size=size,
        uscc=uscc,
        legal_rep_name=rep_name,
        legal_rep_id=rep_id,
        legal_rep_mobile=rep_mobile,
        address=address,
        name=name,
        registry=registry,
    )


def _legal_representatives(
    rng: np.random.Generator, pools: Pools, established: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """People born 1955–2000, adult when the firm was founded; some run several firms."""
    n = len(established)
    people = 5 * n  # a large pool, so only some people run several firms
    lo, hi = day(dt.date(1955, 1, 1)), day(dt.date(2000, 12, 31))
    births = np.sort(rng.integers(lo, hi + 1, people))
    adult_limit = established - int(18 * 365.25) - 1
    eligible = np.searchsorted(births, adult_limit, side="right")
    person = np.minimum((rng.random(n) * eligible).astype(np.int64), np.maximum(eligible - 1, 0))
    used, inverse = np.unique(person, return_inverse=True)
    m = len(used)
    male = rng.random(m) < 0.72
    male_pick = pools.male_names[rng.integers(0, len(pools.male_names), m)]
    female_pick = pools.female_names[rng.integers(0, len(pools.female_names), m)]
    names = np.where(male, male_pick, female_pick)
    origin = rng.random(m)
    region = np.where(
        origin < 0.55,
        np.array(LOCAL_ID_REGIONS)[rng.integers(0, len(LOCAL_ID_REGIONS), m)],
        np.where(
            origin < 0.8,
            np.array(PROVINCE_ID_REGIONS)[rng.integers(0, len(PROVINCE_ID_REGIONS), m)],
            np.array(OTHER_ID_REGIONS)[rng.integers(0, len(OTHER_ID_REGIONS), m)],
        ),
    )
    rid = ids.unique_resident_ids(rng, region, births[used], male)
    mob = ids.mobiles(rng, m)
    return names[inverse], rid[inverse], mob[inverse]
