"""异常告警 page data: spikes, off-hours bulk, out-of-scope attempts, budget breaches, drift.

The two usage rules read one SQL aggregate — calls per bank per Beijing hour over the window
(``time_bucket``: integer hours from epoch seconds, on SQLite and PostgreSQL alike) — and apply
the rules to that small frame. Refusals are aggregated in SQL per bank and code (or day); the
latest attempts are read with LIMIT. Drift is read from the versions' recorded metrics.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl
from sqlalchemy import ColumnElement, func, literal_column, or_
from sqlalchemy import select as sql_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from dashboard.data.usage import (
    WORKERS,
    Window,
    bucket_text,
    concurrently,
    entity_label,
    named,
    time_bucket,
)
from dashboard.queries import each
from pdo.delivery.periods import BUSINESS_TZ
from pdo.ledger.db import read_scope
from pdo.ledger.models import Product, ProductVersion, RefusedCall, Subscriber, UsageEvent
from pdo.review_report import local_time

Text = Callable[[str, str], str]

# --- the rules' thresholds ---------------------------------------------------------------

SPIKE_FACTOR = 3  # an hour above 3× the bank's median hourly calls …
SPIKE_MIN_CALLS = 50  # … and with at least 50 calls
NIGHT_START_HOUR = 22  # off hours, Beijing time: 22:00 …
NIGHT_END_HOUR = 6  # … to 06:00 the next morning
NIGHT_MIN_CALLS = 20  # calls by one bank in one night that count as bulk
OUT_OF_SCOPE_PREFIXES = ("consent_",)  # flagged refusals: no or an unfit consent …
OUT_OF_SCOPE_CODES = ("not_in_portfolio",)  # … or post-loan queries outside the loan book
BUDGET_CODE = "disclosure_budget_exceeded"  # the bank's daily enterprise budget was used up
DRIFT_PSI = 0.25  # a version whose scores moved this much (PSI) from its predecessor's
LATEST_ATTEMPTS = 100  # single refused attempts listed under their summary

REFUSAL_ZH: dict[str, tuple[str, str]] = {
    "consent_required": ("未提供同意书", "No consent named"),
    "consent_not_found": ("同意书未登记", "Consent not registered"),
    "consent_other_enterprise": ("同意书属于其他企业", "Consent is for another enterprise"),
    "consent_revoked": ("同意书已撤回", "Consent withdrawn"),
    "consent_purpose": ("同意书未覆盖该用途", "Consent does not cover the purpose"),
    "consent_expired": ("同意书不在有效期内", "Consent not valid at the time"),
    "not_in_portfolio": ("企业不在贷后名单内", "Enterprise not in the loan book"),
    BUDGET_CODE: ("超出每日披露额度", "Daily disclosure budget exceeded"),
}


def refusal_label(code: str, t: Text) -> str:
    zh, en = REFUSAL_ZH.get(code, (code, code))
    return f"{t(zh, en)}（{code}）"


# --- usage rules: spikes and off-hours bulk ----------------------------------------------

_HOURLY = {"bank_id": pl.String, "hour": pl.Int64, "calls": pl.Int64}


def _hourly_rows(session: Session, w: Window) -> list[tuple[Any, ...]]:
    served = col(UsageEvent.served_at)
    hour = time_bucket(session, served, "hour").label("hour")
    stmt = (
        select(UsageEvent.subscriber_id, hour, func.count(literal_column("*")))
        .where(served >= w.start, served < w.end)
        .group_by(col(UsageEvent.subscriber_id), hour)
    )
    return [tuple(r) for r in session.exec(stmt).all()]


def hourly(engine: Engine, w: Window) -> pl.DataFrame:
    """Calls per bank per Beijing hour ("2026-11-30 14") in the window, hours with calls only.

    The window's days are split in :data:`~dashboard.data.usage.WORKERS` parts aggregated at
    once on their own connections (an hour never straddles two days).
    """
    dates = w.dates()
    size = -(-len(dates) // WORKERS)
    parts = [
        Window(dates[i], dates[min(i + size, len(dates)) - 1]) for i in range(0, len(dates), size)
    ]
    jobs = [functools.partial(_hourly_rows, w=part) for part in parts]
    rows = [row for part in concurrently(engine, jobs) for row in part]
    return pl.DataFrame(rows, schema=_HOURLY, orient="row").with_columns(
        bucket_text("hour", "hour")
    )


def spikes(frame: pl.DataFrame) -> pl.DataFrame:
    """Hours in which a bank called more than SPIKE_FACTOR× its median hour and ≥ SPIKE_MIN_CALLS.

    The median is over the bank's hours with calls in the window (hours without any would make
    the median of a bank that works by day zero, and every busy hour a spike).
    """
    medians = frame.group_by("bank_id").agg(pl.col("calls").median().alias("median"))
    return (
        frame.join(medians, on="bank_id")
        .filter(
            (pl.col("calls") > SPIKE_FACTOR * pl.col("median"))
            & (pl.col("calls") >= SPIKE_MIN_CALLS)
        )
        .with_columns((pl.col("calls") / pl.col("median")).round(1).alias("ratio"))
        .sort(["hour", "calls"], descending=[True, True])
    )


def nights(frame: pl.DataFrame, w: Window | None = None) -> pl.DataFrame:
    """Nights (22:00–06:00 Beijing) in which a bank made at least NIGHT_MIN_CALLS calls.

    A night is named by the evening it starts on: 01:00 on the 2nd belongs to the night of the 1st.
    With a window, only the nights starting on its days, whole: `frame` must then also hold
    the morning after its last day.
    """
    hours = frame.with_columns(
        pl.col("hour").str.slice(0, 10).str.to_date("%Y-%m-%d").alias("date"),
        pl.col("hour").str.slice(11, 2).cast(pl.Int64).alias("h"),
    ).filter((pl.col("h") >= NIGHT_START_HOUR) | (pl.col("h") < NIGHT_END_HOUR))
    return (
        hours.with_columns(
            pl.when(pl.col("h") < NIGHT_END_HOUR)
            .then(pl.col("date") - pl.duration(days=1))
            .otherwise(pl.col("date"))
            .alias("night")
        )
        .filter(
            pl.lit(True)
            if w is None
            else pl.col("night").is_between(pl.lit(w.first), pl.lit(w.last), closed="both")
        )
        .group_by("bank_id", "night")
        .agg(
            pl.col("calls").sum(),
            pl.col("hour").min().alias("first_hour"),
            pl.col("hour").max().alias("last_hour"),
        )
        .filter(pl.col("calls") >= NIGHT_MIN_CALLS)
        .sort(["night", "calls"], descending=[True, True])
    )


# --- refusals: out of consent or loan book, budget breaches ------------------------------


def _out_of_scope() -> ColumnElement[bool]:
    code = col(RefusedCall.code)
    return or_(
        *(code.startswith(p, autoescape=True) for p in OUT_OF_SCOPE_PREFIXES),
        code.in_(OUT_OF_SCOPE_CODES),
    )


def _in_window(w: Window) -> list[ColumnElement[bool]]:
    return [col(RefusedCall.at) >= w.start, col(RefusedCall.at) < w.end]


def out_of_scope_summary(session: Session, w: Window) -> pl.DataFrame:
    """Flagged out-of-consent / out-of-portfolio attempts per bank and code."""
    stmt = (
        select(
            RefusedCall.subscriber_id,
            RefusedCall.code,
            func.count(literal_column("*")),
            func.max(RefusedCall.at),
        )
        .where(*_in_window(w), col(RefusedCall.flagged).is_(True), _out_of_scope())
        .group_by(col(RefusedCall.subscriber_id), col(RefusedCall.code))
    )
    rows = [tuple(r) for r in session.exec(stmt).all()]
    return pl.DataFrame(
        rows,
        schema={
            "bank_id": pl.String,
            "code": pl.String,
            "calls": pl.Int64,
            "last": pl.Datetime("us", "UTC"),
        },
        orient="row",
    ).sort(["calls", "bank_id"], descending=[True, False])


def out_of_scope_latest(session: Session, w: Window, limit: int = LATEST_ATTEMPTS) -> list[Any]:
    """The latest flagged out-of-scope attempts, newest first."""
    stmt = (
        sql_select(
            col(RefusedCall.at),
            col(RefusedCall.subscriber_id),
            col(RefusedCall.code),
            col(RefusedCall.product_name),
            col(RefusedCall.purpose),
            col(RefusedCall.uscc),
            col(RefusedCall.endpoint),
        )
        .where(*_in_window(w), col(RefusedCall.flagged).is_(True), _out_of_scope())
        .order_by(col(RefusedCall.at).desc(), col(RefusedCall.id).desc())
        .limit(limit)
    )
    return [tuple(r) for r in session.execute(stmt).all()]


def budget_breaches(session: Session, w: Window) -> pl.DataFrame:
    """Refusals for the daily disclosure budget, per bank and Beijing day."""
    day = time_bucket(session, col(RefusedCall.at), "day").label("day")
    stmt = (
        select(RefusedCall.subscriber_id, day, func.count(literal_column("*")))
        .where(*_in_window(w), col(RefusedCall.code) == BUDGET_CODE)
        .group_by(col(RefusedCall.subscriber_id), day)
    )
    rows = [tuple(r) for r in session.exec(stmt).all()]
    return (
        pl.DataFrame(
            rows, schema={"bank_id": pl.String, "day": pl.Int64, "calls": pl.Int64}, orient="row"
        )
        .with_columns(bucket_text("day", "day"))
        .sort(["day", "calls"], descending=[True, True])
    )


# --- drift -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Drift:
    version: str
    product: str
    status: str
    psi: float | None
    threshold: float
    against: str | None
    published_at: str


def drift_flags(session: Session) -> list[Drift]:
    """Versions whose build drifted: PSI ≥ DRIFT_PSI against their predecessor, or flagged."""
    titles = dict(session.exec(select(Product.name, Product.title_zh)).all())
    rows = session.execute(
        sql_select(
            col(ProductVersion.id),
            col(ProductVersion.product_name),
            col(ProductVersion.status),
            col(ProductVersion.metrics),
            col(ProductVersion.published_at),
        ).order_by(col(ProductVersion.published_at).desc())
    ).all()
    out = []
    for vid, name, status, metrics, published in rows:
        drift = (metrics or {}).get("drift") or {}
        psi = drift.get("psi")
        value = float(psi) if isinstance(psi, int | float) else None
        if not drift.get("flagged") and (value is None or value < DRIFT_PSI):
            continue
        out.append(
            Drift(
                version=vid,
                product=titles.get(name, name),
                status=status,
                psi=value,
                threshold=float(drift.get("threshold") or DRIFT_PSI),
                against=drift.get("against"),
                published_at=local_time(published),
            )
        )
    return out


# --- everything the page shows ------------------------------------------------------------


@dataclass(frozen=True)
class Anomalies:
    """Each rule's findings as display tables (their row counts are the section counts)."""

    spikes: pl.DataFrame
    nights: pl.DataFrame
    out_of_scope: pl.DataFrame  # per bank and code
    out_of_scope_calls: int
    out_of_scope_latest: pl.DataFrame
    budget: pl.DataFrame  # per bank and day
    budget_calls: int
    drift: pl.DataFrame


def _zh(zh: str, en: str) -> str:
    return zh


def _bank_names(session: Session) -> dict[str, str]:
    return dict(session.exec(select(Subscriber.id, Subscriber.name)).all())


def _bank(frame: pl.DataFrame, banks: dict[str, str]) -> pl.DataFrame:
    return frame.with_columns(
        pl.col("bank_id")
        .replace_strict(banks, default=pl.col("bank_id"))
        .fill_null("—")
        .alias("bank")
    )


def _hour_span(hour: str) -> str:
    """ "2026-11-30 14" as "2026-11-30 14:00–15:00"."""
    h = int(hour[11:13])
    return f"{hour[:10]} {h:02d}:00–{(h + 1) % 24:02d}:00"


def _night_span(first: str, last: str) -> str:
    """The first and last hour with calls in a night: "2026-11-30 23:00 – 2026-12-01 03:00"."""
    end = dt.datetime.strptime(last, "%Y-%m-%d %H") + dt.timedelta(hours=1)
    return f"{first}:00 – {end:%Y-%m-%d %H:%M}"


def find(engine: Engine, w: Window, t: Text = _zh) -> Anomalies:
    """Every rule's findings in the window (drift: every version, whatever the window).

    The hours are read to the morning after the window's last day: the night that starts on
    that evening is the window's, whole (and the night before its first day is the previous
    window's: its morning hours in this window are not counted here).
    """
    per_hour = hourly(engine, Window(w.first, w.last + dt.timedelta(days=1)))
    with read_scope(engine) as session:
        return _find(session, w, per_hour, t)


def _find(session: Session, w: Window, per_hour: pl.DataFrame, t: Text) -> Anomalies:
    banks = _bank_names(session)
    in_window = per_hour.filter(pl.col("hour").str.slice(0, 10) <= w.last.isoformat())
    spike = _bank(spikes(in_window), banks)
    spike = spike.with_columns(each(spike["hour"], _hour_span, "span"), pl.col("median").round(1))
    night = _bank(nights(per_hour, w), banks)
    night = night.with_columns(
        pl.col("night").dt.strftime("%Y-%m-%d"),
        pl.Series(
            "span",
            [_night_span(a, b) for a, b in night.select("first_hour", "last_hour").iter_rows()],
            dtype=pl.String,
        ),
    )
    summary = _bank(out_of_scope_summary(session, w), banks)
    summary = summary.with_columns(
        each(summary["code"], lambda c: refusal_label(c, t), "code"),
        pl.col("last").dt.convert_time_zone(BUSINESS_TZ.key).dt.strftime("%Y-%m-%d %H:%M:%S"),
    )
    latest = pl.DataFrame(
        [
            {
                "time": local_time(at),
                "bank": banks.get(bank or "", bank or "—"),
                "code": refusal_label(code, t),
                "product": product or "—",
                "purpose": purpose or "—",
                "enterprise": entity_label(uscc),
                "endpoint": endpoint,
            }
            for at, bank, code, product, purpose, uscc, endpoint in out_of_scope_latest(session, w)
        ],
        schema=dict.fromkeys(
            ("time", "bank", "code", "product", "purpose", "enterprise", "endpoint"), pl.String
        ),
    )
    budget = _bank(budget_breaches(session, w), banks)
    drift = pl.DataFrame(
        [
            {
                "product": d.product,
                "version": d.version,
                "status": t("现行", "Live")
                if d.status == "published"
                else t("已被取代", "Superseded"),
                "psi": "—" if d.psi is None else f"{d.psi:.4f}",
                "threshold": f"{d.threshold:g}",
                "against": d.against or "—",
                "published_at": d.published_at,
            }
            for d in drift_flags(session)
        ],
        schema=dict.fromkeys(
            ("product", "version", "status", "psi", "threshold", "against", "published_at"),
            pl.String,
        ),
    )
    bank_col = ("bank", "银行", "Bank")
    return Anomalies(
        spikes=named(
            spike,
            [
                bank_col,
                ("span", "时段（北京时间）", "Hour (Beijing)"),
                ("calls", "调用次数", "Calls"),
                ("median", "该行小时调用中位数", "Bank's median calls per hour"),
                ("ratio", "倍数", "Times the median"),
            ],
            t,
        ),
        nights=named(
            night,
            [
                bank_col,
                ("night", "夜间（起始日期）", "Night of"),
                ("span", "有调用的时段", "Hours with calls"),
                ("calls", "调用次数", "Calls"),
            ],
            t,
        ),
        out_of_scope=named(
            summary,
            [
                bank_col,
                ("code", "拒绝原因", "Refusal"),
                ("calls", "次数", "Attempts"),
                ("last", "最近一次（北京时间）", "Latest (Beijing)"),
            ],
            t,
        ),
        out_of_scope_calls=int(summary["calls"].sum()),
        out_of_scope_latest=named(
            latest,
            [
                ("time", "时间（北京时间）", "Time (Beijing)"),
                bank_col,
                ("code", "拒绝原因", "Refusal"),
                ("product", "产品", "Product"),
                ("purpose", "用途", "Purpose"),
                ("enterprise", "企业", "Enterprise"),
                ("endpoint", "接口", "Endpoint"),
            ],
            t,
        ),
        budget=named(
            budget,
            [bank_col, ("day", "日期", "Day"), ("calls", "超限次数", "Refusals")],
            t,
        ),
        budget_calls=int(budget["calls"].sum()),
        drift=named(
            drift,
            [
                ("product", "产品", "Product"),
                ("version", "版本", "Version"),
                ("status", "状态", "Status"),
                ("psi", "PSI", "PSI"),
                ("threshold", "阈值", "Threshold"),
                ("against", "对比版本", "Compared with"),
                ("published_at", "发布时间（北京时间）", "Published (Beijing)"),
            ],
            t,
        ),
    )
