"""总览 page data: a period's key figures beside the period before it, the daily trend, the to-dos.

Usage is aggregated in SQL: per period one pass for calls, billed fen and COUNT(DISTINCT …)
banks and enterprises, and a count and sum per Beijing day of the period shown for the trend;
refusals likewise.
Figures that are states rather than flows — runs awaiting sign-off, open objections, events on
the audit chain — are taken as they stood at each period's end (or now, for a period still
running). The audit chain is counted, not verified (verifying it is the audit page's job): its
events are appended in time order, so the number before an instant is found by a binary search
over ``seq`` on the primary key instead of a scan of the whole chain.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl
from sqlalchemy import ColumnElement, and_, case, distinct, func, literal_column, or_
from sqlalchemy import select as sql_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from dashboard.data.usage import Window, beijing_today, concurrently, last_days
from pdo.delivery.periods import business_month
from pdo.ledger.db import read_scope
from pdo.ledger.models import (
    AuditEvent,
    Objection,
    PipelineRun,
    RefusedCall,
    Settlement,
    SignOff,
    UsageEvent,
)
from pdo.review_report import local_time
from pdo.settlement import period_bounds
from pdo.signoff import pending, progress

Text = Callable[[str, str], str]

PERIODS: dict[str, tuple[str, str]] = {
    "month": ("本月", "This month"),
    "last_month": ("上月", "Last month"),
    "7d": ("近 7 天", "Last 7 days"),
    "30d": ("近 30 天", "Last 30 days"),
    "custom": ("自定义", "Custom"),
}
DECIDED = ("approved", "rejected", "published")  # runs that left the gate with a decision


# --- periods ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """The period shown and the one it is compared with."""

    current: Window
    previous: Window


def _month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _previous_month(first: dt.date) -> dt.date:
    return _month_start(first - dt.timedelta(days=1))


def period(
    kind: str, today: dt.date | None = None, custom: tuple[dt.date, dt.date] | None = None
) -> Period:
    """本月 is month to date against the same days of last month; 上月 the whole last month
    against the month before; the others against as many days just before."""
    today = today or beijing_today()
    if kind == "month":
        first = _month_start(today)
        prev_first = _previous_month(first)
        prev_last = min(prev_first + dt.timedelta(days=today.day - 1), first - dt.timedelta(days=1))
        return Period(Window(first, today), Window(prev_first, prev_last))
    if kind == "last_month":
        first = _previous_month(_month_start(today))
        current = Window(first, _month_start(today) - dt.timedelta(days=1))
        before = _previous_month(first)
        return Period(current, Window(before, first - dt.timedelta(days=1)))
    if kind in ("7d", "30d"):
        current = last_days(7 if kind == "7d" else 30, today)
        return Period(current, current.previous())
    if kind == "custom" and custom is not None:
        current = Window(*custom)
        return Period(current, current.previous())
    raise ValueError(f"unknown period {kind!r}")


# --- key figures ------------------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    """One period's key figures."""

    calls: int
    billed_fen: int
    banks: int
    enterprises: int
    refused: int
    flagged: int
    pending_signoffs: int
    open_objections: int
    audit_events: int


def _within(column: Any, w: Window) -> ColumnElement[bool]:
    return and_(column >= w.start, column < w.end)


def _span(column: Any, p: Period) -> ColumnElement[bool]:
    """Either window: one index range when they touch, else two (the gap is not read)."""
    first, second = sorted((p.previous, p.current), key=lambda w: w.start)
    if first.end >= second.start:
        return and_(column >= first.start, column < max(first.end, second.end))
    return or_(_within(column, first), _within(column, second))


def daily(session: Session, w: Window) -> pl.DataFrame:
    """Calls and billed fen per Beijing day of one window (days without calls are 0).

    A count and a sum per day on the ``served_at`` index: no GROUP BY, so SQLite sorts nothing.
    """
    served = col(UsageEvent.served_at)
    measures = (
        func.count(literal_column("*")),
        func.coalesce(func.sum(col(UsageEvent.price_fen)), 0),
    )
    rows = []
    for day in w.dates():
        calls, fen = session.execute(
            sql_select(*measures).where(_within(served, Window(day, day)))
        ).one()
        rows.append((day.isoformat(), int(calls), int(fen)))
    return pl.DataFrame(
        rows, schema={"day": pl.String, "calls": pl.Int64, "fen": pl.Int64}, orient="row"
    )


@dataclass(frozen=True)
class _Usage:
    calls: int
    billed_fen: int
    banks: int
    enterprises: int


def _usage(session: Session, w: Window) -> _Usage:
    """Calls, billed fen, banks and enterprises of one window (one index range scan).

    One plain query per window: on SQLite that is about twice as fast as one pass over both
    windows with every aggregate wrapped in a CASE.
    """
    served = col(UsageEvent.served_at)
    row = session.execute(
        sql_select(
            func.count(literal_column("*")),
            func.coalesce(func.sum(col(UsageEvent.price_fen)), 0),
            func.count(distinct(col(UsageEvent.subscriber_id))),
            func.count(distinct(col(UsageEvent.uscc))),
        ).where(_within(served, w))
    ).one()
    return _Usage(*(int(v) for v in row))


def _refused(session: Session, p: Period) -> tuple[tuple[int, int], tuple[int, int]]:
    """(refused, flagged) calls in the current and in the previous window."""
    at = col(RefusedCall.at)
    flagged = col(RefusedCall.flagged).is_(True)

    def counted(w: Window, *extra: ColumnElement[bool]) -> ColumnElement[int]:
        return func.coalesce(func.sum(case((and_(_within(at, w), *extra), 1), else_=0)), 0)

    row = session.exec(
        select(
            counted(p.current),
            counted(p.current, flagged),
            counted(p.previous),
            counted(p.previous, flagged),
        ).where(_span(at, p))
    ).one()
    return (int(row[0]), int(row[1])), (int(row[2]), int(row[3]))


def awaiting_signoff_at(session: Session, at: dt.datetime) -> int:
    """Runs waiting at the gate at an instant: started before it and not yet decided by then."""
    last = (
        select(SignOff.run_id, func.max(SignOff.decided_at).label("last"))
        .group_by(col(SignOff.run_id))
        .subquery()
    )
    waiting = or_(
        col(PipelineRun.status) == "awaiting_signoff",
        and_(col(PipelineRun.status).in_(DECIDED), last.c.last >= at),
    )
    stmt = (
        select(func.count(literal_column("*")))
        .select_from(PipelineRun)
        .outerjoin(last, last.c.run_id == col(PipelineRun.id))
        .where(col(PipelineRun.started_at) < at, waiting)
    )
    return int(session.exec(stmt).one())


def open_objections_at(session: Session, at: dt.datetime) -> int:
    """Objections raised before an instant and not resolved by then."""
    stmt = select(func.count(literal_column("*"))).where(
        col(Objection.raised_at) < at,
        or_(col(Objection.resolved_at).is_(None), col(Objection.resolved_at) >= at),
    )
    return int(session.exec(stmt).one())


def audit_events_before(session: Session, at: dt.datetime) -> int:
    """Events on the audit chain before an instant, by binary search over seq (no scan)."""
    # Two queries: SQLite answers a lone min() or max() from the key, both together by a scan.
    first = session.exec(select(func.min(AuditEvent.seq))).one()
    last = session.exec(select(func.max(AuditEvent.seq))).one()
    if first is None or last is None:
        return 0

    def stamp(seq: int) -> tuple[int, dt.datetime]:
        found = session.exec(
            select(AuditEvent.seq, AuditEvent.at)
            .where(col(AuditEvent.seq) >= seq)
            .order_by(col(AuditEvent.seq))
            .limit(1)
        ).one()
        return int(found[0]), found[1]

    if stamp(last)[1] < at:
        return int(last) - int(first) + 1
    if stamp(first)[1] >= at:
        return 0
    lo, hi = int(first), int(last)  # at(lo) < at <= at(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        seq, stamped = stamp(mid)
        if stamped < at:
            lo = seq
        else:
            hi = seq
    return lo - int(first) + 1


@dataclass(frozen=True)
class Summary:
    """What the overview shows for a period: its figures, the previous period's, the trend."""

    current: Figures
    previous: Figures
    days: pl.DataFrame  # the current window's calls and billed fen per day


def summary(engine: Engine, p: Period, now: dt.datetime | None = None) -> Summary:
    """The current and the previous period's key figures, and the current one's days.

    The two periods' usage and the daily trend are read at once on their own connections
    (:func:`dashboard.data.usage.concurrently`); the rest are a few indexed lookups.
    """
    now = now or dt.datetime.now(dt.UTC)
    jobs: list[Callable[[Session], Any]] = [
        functools.partial(_usage, w=p.current),
        functools.partial(_usage, w=p.previous),
        functools.partial(daily, w=p.current),
    ]
    usage_now, usage_before, days = concurrently(engine, jobs)
    out = []
    with read_scope(engine) as session:
        refused_now, refused_before = _refused(session, p)
        for w, used, (refused, flagged) in (
            (p.current, usage_now, refused_now),
            (p.previous, usage_before, refused_before),
        ):
            at = min(w.end, now)
            out.append(
                Figures(
                    calls=used.calls,
                    billed_fen=used.billed_fen,
                    banks=used.banks,
                    enterprises=used.enterprises,
                    refused=refused,
                    flagged=flagged,
                    pending_signoffs=awaiting_signoff_at(session, at),
                    open_objections=open_objections_at(session, at),
                    audit_events=audit_events_before(session, at),
                )
            )
    return Summary(out[0], out[1], days)


# --- to-dos -----------------------------------------------------------------------------


@dataclass(frozen=True)
class WaitingRun:
    id: str
    started_by: str
    started_at: str  # Beijing time
    approvals: int
    needed: int


@dataclass(frozen=True)
class Todos:
    """What is waiting on someone right now (not tied to the period shown)."""

    runs: list[WaitingRun]
    open_objections: int
    oldest_objection: str | None  # Beijing time it was raised
    unsettled_months: list[str]

    @property
    def empty(self) -> bool:
        return not self.runs and not self.open_objections and not self.unsettled_months


def _next_month(period: str) -> str:
    year, month = int(period[:4]), int(period[5:])
    return f"{year + month // 12:04d}-{month % 12 + 1:02d}"


def unsettled_months(session: Session, now: dt.datetime | None = None) -> list[str]:
    """Business months that are over, had usage, and no settlement has closed yet.

    Settling a month takes in every earlier unsettled event, so only months after the last
    settlement can be waiting (each checked by one indexed lookup).
    """
    current = business_month(now or dt.datetime.now(dt.UTC))
    latest = session.exec(select(func.max(Settlement.period))).one()
    if latest is not None:
        month = _next_month(str(latest))
    else:
        first = session.exec(select(func.min(UsageEvent.served_at))).one()
        if first is None:
            return []
        if first.tzinfo is None:  # min() over a column comes back without the column's type
            first = dt.datetime.fromisoformat(str(first)).replace(tzinfo=dt.UTC)
        month = business_month(first)
    out = []
    while month < current:
        start, end = period_bounds(month)
        used = session.exec(
            select(UsageEvent.id)
            .where(col(UsageEvent.served_at) >= start, col(UsageEvent.served_at) < end)
            .limit(1)
        ).first()
        if used is not None:
            out.append(month)
        month = _next_month(month)
    return out


def todos(session: Session, now: dt.datetime | None = None) -> Todos:
    runs = [
        WaitingRun(run.id, run.started_by, local_time(run.started_at), *progress(session, run))
        for run in pending(session)
    ]
    count, oldest = session.exec(
        select(func.count(literal_column("*")), func.min(Objection.raised_at)).where(
            col(Objection.status) == "open"
        )
    ).one()
    if oldest is not None and not isinstance(oldest, dt.datetime):
        oldest = dt.datetime.fromisoformat(str(oldest)).replace(tzinfo=dt.UTC)
    return Todos(
        runs=runs,
        open_objections=int(count),
        oldest_objection=local_time(oldest) if oldest is not None else None,
        unsettled_months=unsettled_months(session, now),
    )
