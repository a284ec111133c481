"""Monthly settlement (结算): bill each period's usage, split it by each version's revenue rule.

A period is a business month in Beijing time ("2026-11"). Settling it takes in every usage event
served before the period's end that no earlier settlement took in — including late ones from an
earlier month that committed after that month closed — marks them with the period, prices
refunds by each plan's terms, and allocates each product version's net revenue among its rule's
parties with the largest-remainder method (:func:`pdo.revenue.allocate`): the lines sum to the
net revenue exactly, to the fen. A closed period is never rewritten: settling it again returns it
unchanged, and usage that arrives later goes to the next period.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, text, update
from sqlalchemy import select as sql_select
from sqlmodel import Session, col, func, select

from pdo import audit
from pdo.delivery.periods import BUSINESS_TZ, month_after
from pdo.ledger.models import (
    Plan,
    ProductVersion,
    Settlement,
    SettlementLine,
    StatementLine,
    Subscription,
    UsageEvent,
)
from pdo.revenue import OPERATOR, allocate
from pdo.usage_chain import check_usage

# ASCII digits only: a full-width "２０２６-10" would be stored as another period's key, one
# that sorts after every real month and so blocks every later settlement.
PERIOD = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")
YEARS = range(1970, 9999)  # a month whose bounds exist in UTC
SETTLEMENT_LOCK = 7302  # PostgreSQL advisory lock: one settlement at a time


class SettlementError(ValueError):
    """A period that cannot be settled (malformed, still open, or before a closed one)."""


def period_bounds(period: str) -> tuple[dt.datetime, dt.datetime]:
    """The period's first and first-after instants (UTC) — months begin at 00:00 Beijing time."""
    m = PERIOD.fullmatch(period)
    if m is None or int(m.group(1)) not in YEARS:
        raise SettlementError(
            f"period must look like 2026-11 (ASCII digits, years {YEARS[0]}–{YEARS[-1]}), "
            f"not {period!r}"
        )
    year, month = int(m.group(1)), int(m.group(2))
    start = dt.datetime(year, month, 1, tzinfo=BUSINESS_TZ)
    next_year, next_month = map(int, month_after(period).split("-"))
    end = dt.datetime(next_year, next_month, 1, tzinfo=BUSINESS_TZ)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


@dataclass(frozen=True)
class VersionRevenue:
    """One product version's billed, refunded and net revenue in a period, split by its rule."""

    version_id: str
    events: int
    billed_fen: int
    refunded_fen: int
    weights: dict[str, int]
    parts: dict[str, int]

    @property
    def net_fen(self) -> int:
        return self.billed_fen - self.refunded_fen


@dataclass(frozen=True)
class StatementFigures:
    """One subscriber's usage of one subscription and kind in a period, priced."""

    subscriber_id: str
    subscription_id: int | None
    plan_id: str | None
    kind: str
    monthly_quota: int | None
    units: int
    overage_units: int
    withheld_units: int
    charged_fen: int
    refunded_fen: int

    @property
    def net_fen(self) -> int:
        return self.charged_fen - self.refunded_fen


@dataclass(frozen=True)
class PeriodFigures:
    """A period's revenue, allocations and statements, settled or as they stand."""

    period: str
    settled: bool
    versions: list[VersionRevenue] = field(default_factory=list)
    statements: list[StatementFigures] = field(default_factory=list)

    @property
    def events(self) -> int:
        return sum(v.events for v in self.versions)

    @property
    def billed_fen(self) -> int:
        return sum(v.billed_fen for v in self.versions)

    @property
    def refunded_fen(self) -> int:
        return sum(v.refunded_fen for v in self.versions)

    @property
    def net_fen(self) -> int:
        return self.billed_fen - self.refunded_fen

    def by_party(self) -> dict[str, int]:
        """Each party's total over all versions."""
        totals: dict[str, int] = {}
        for v in self.versions:
            for party, fen in v.parts.items():
                totals[party] = totals.get(party, 0) + fen
        return dict(sorted(totals.items(), key=lambda kv: (-kv[1], kv[0])))


def _figures(session: Session, period: str, settled: bool, where: Any) -> PeriodFigures:
    """Aggregate the usage events matching `where` in one grouped pass (no per-row joins), then
    price the few groups by their plans' refund terms and split each version's net."""
    groups = session.execute(
        sql_select(
            col(UsageEvent.product_version_id),
            col(UsageEvent.subscriber_id),
            col(UsageEvent.subscription_id),
            col(UsageEvent.kind),
            col(UsageEvent.status),
            col(UsageEvent.overage),
            func.count(),
            func.coalesce(func.sum(UsageEvent.units), 0),
            func.coalesce(func.sum(UsageEvent.price_fen), 0),
        )
        .where(where)
        .group_by(
            col(UsageEvent.product_version_id),
            col(UsageEvent.subscriber_id),
            col(UsageEvent.subscription_id),
            col(UsageEvent.kind),
            col(UsageEvent.status),
            col(UsageEvent.overage),
        )
    ).all()
    sub_ids = sorted({g[2] for g in groups if g[2] is not None})
    terms: dict[int, tuple[str | None, int | None, bool]] = {}
    if sub_ids:
        for sid, plan_id, quota, refund in session.execute(
            sql_select(
                col(Subscription.id),
                col(Subscription.plan_id),
                col(Subscription.monthly_quota),
                col(Plan.refund_withheld),
            )
            .outerjoin(Plan, col(Plan.id) == col(Subscription.plan_id))
            .where(col(Subscription.id).in_(sub_ids))
        ):
            terms[sid] = (plan_id, quota, True if refund is None else bool(refund))
    by_version: dict[str, list[int]] = {}
    by_statement: dict[tuple[Any, ...], list[int]] = {}
    for version_id, subscriber_id, sub_id, kind, status, overage, n, units, price in groups:
        plan_id, quota, refunds = terms.get(sub_id, (None, None, True))
        refund = int(price) if status == "withheld" and refunds else 0
        v = by_version.setdefault(version_id, [0, 0, 0])
        v[0] += int(n)
        v[1] += int(price)
        v[2] += refund
        s = by_statement.setdefault((subscriber_id, sub_id, plan_id, kind, quota), [0] * 5)
        s[0] += int(units)
        s[1] += int(units) if overage else 0
        s[2] += int(units) if status == "withheld" else 0
        s[3] += int(price)
        s[4] += refund
    rules = {
        v.id: dict(v.revenue_weights)
        for v in session.exec(
            select(ProductVersion).where(col(ProductVersion.id).in_(list(by_version)))
        )
    }
    versions = []
    for version_id in sorted(by_version):
        events, billed, refunded = by_version[version_id]
        weights = rules.get(version_id) or {OPERATOR: 1}  # no rule on record: all to operator
        versions.append(
            VersionRevenue(
                version_id, events, billed, refunded, weights, allocate(billed - refunded, weights)
            )
        )
    statements = [
        StatementFigures(*key, *sums)
        for key, sums in sorted(
            by_statement.items(),
            key=lambda kv: (kv[0][0], kv[0][1] is not None, kv[0][1] or 0, kv[0][3]),
        )
    ]
    return PeriodFigures(period, settled, versions, statements)


def _unsettled_before(end: dt.datetime) -> Any:
    return and_(col(UsageEvent.settled_period).is_(None), col(UsageEvent.served_at) < end)


def refuse_if_before_a_closed_period(session: Session, period: str) -> None:
    """A month before a closed one can neither be settled nor shown as if it could: its usage
    was taken in by a later settlement, and late usage goes to the next open month."""
    latest = session.exec(select(func.max(Settlement.period))).one()
    if latest is not None and latest > period:
        raise SettlementError(
            f"period {latest} is already settled; a period before it cannot be settled any more "
            f"(its late usage will be billed in {month_after(latest)}, the next open period)"
        )


def refuse_usage_that_cannot_be_billed(session: Session, period: str) -> None:
    """One pass over the unsettled usage before a month is closed and signed:

    - an unsettled event whose month or price cannot be read escapes any period filter: no
      month is closed while one exists, or it would be signed without that event, never billed;
    - an event of this month its audit record does not vouch for (altered or inserted behind
      the API's back) is refused, not billed;
    - an event already marked as billed in this month, which was never closed, was marked
      behind the ledger's back: the close bills every row so marked, and it was checked by
      neither rule above (they read the unsettled rows).
    """
    _, end = period_bounds(period)
    in_period = col(UsageEvent.settled_period) == period
    marked = session.exec(select(func.count()).select_from(UsageEvent).where(in_period)).one()
    if marked:
        first = session.exec(
            select(UsageEvent.id).where(in_period).order_by(col(UsageEvent.id)).limit(3)
        ).all()
        raise SettlementError(
            f"period {period} was not settled: {marked} usage events are already marked as "
            f"billed in it, though it was never closed ({'; '.join(first)}); "
            "run `pdo audit verify`"
        )
    report = check_usage(
        session,
        keep=3,
        where=col(UsageEvent.settled_period).is_(None),
        compared=lambda usage: usage.served_at < end,
    )
    if report.unreadable_count:
        first = "; ".join(
            f"{usage_id}: unreadable {column}" for usage_id, column in report.unreadable
        )
        raise SettlementError(
            f"period {period} was not settled: {report.unreadable_count} unsettled usage events "
            f"cannot be read ({first}); run `pdo audit verify`"
        )
    if not report.ok:
        first = "; ".join(f"{usage_id}: {what}" for usage_id, what in report.problems)
        raise SettlementError(
            f"period {period} was not settled: {report.problem_count} of its usage events do not "
            f"match the audit chain ({first}); run `pdo audit verify`"
        )


def provisional(session: Session, period: str) -> PeriodFigures:
    """The open period as it stands: what settling it now would take in (nothing is written)."""
    _, end = period_bounds(period)
    refuse_if_before_a_closed_period(session, period)
    return _figures(session, period, False, _unsettled_before(end))


def unsettled(session: Session) -> PeriodFigures:
    """All usage no settlement has taken in yet, allocated as it would be now."""
    return _figures(session, "open", False, col(UsageEvent.settled_period).is_(None))


def settled(session: Session, period: str) -> PeriodFigures | None:
    """A closed period exactly as it was billed (its frozen lines), or None if not settled."""
    closed = session.get(Settlement, period)
    if closed is None:
        return None
    lines = session.exec(
        select(SettlementLine)
        .where(SettlementLine.period == period)
        .order_by(col(SettlementLine.product_version_id), col(SettlementLine.party))
    ).all()
    versions = []
    for version_id, totals in sorted(closed.versions.items()):
        mine = [line for line in lines if line.product_version_id == version_id]
        versions.append(
            VersionRevenue(
                version_id,
                int(totals["events"]),
                int(totals["billed_fen"]),
                int(totals["refunded_fen"]),
                {line.party: line.weight for line in mine},
                {line.party: line.amount_fen for line in mine},
            )
        )
    statements = [
        StatementFigures(
            st.subscriber_id,
            st.subscription_id,
            st.plan_id,
            st.kind,
            st.monthly_quota,
            st.units,
            st.overage_units,
            st.withheld_units,
            st.charged_fen,
            st.refunded_fen,
        )
        for st in session.exec(
            select(StatementLine)
            .where(StatementLine.period == period)
            .order_by(
                col(StatementLine.subscriber_id),
                col(StatementLine.subscription_id),
                col(StatementLine.kind),
            )
        )
    ]
    return PeriodFigures(period, True, versions, statements)


def reconciles(session: Session, settlement: Settlement) -> bool:
    """Whether the events a closed period took in still give the lines it recorded (digest)."""
    again = _figures(
        session, settlement.period, True, col(UsageEvent.settled_period) == settlement.period
    )
    return lines_digest(settlement.period, again.versions) == settlement.digest


def figures(session: Session, period: str) -> PeriodFigures:
    """A period's figures: as settled if it is closed, else provisional."""
    return settled(session, period) or provisional(session, period)


def lines_digest(period: str, versions: Sequence[VersionRevenue]) -> str:
    """sha256 of a settlement's lines in canonical JSON: what the audit chain vouches for."""
    body = [
        {
            "version": v.version_id,
            "events": v.events,
            "billed_fen": v.billed_fen,
            "refunded_fen": v.refunded_fen,
            "parts": dict(sorted(v.parts.items())),
        }
        for v in versions
    ]
    canonical = json.dumps(
        {"period": period, "versions": body}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def settle(session: Session, period: str, actor: str, now: dt.datetime) -> Settlement:
    """Close a period once; settling it again returns the closed settlement unchanged."""
    _, end = period_bounds(period)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"SELECT pg_advisory_xact_lock({SETTLEMENT_LOCK})"))
    existing = session.get(Settlement, period)
    if existing is not None:
        return existing
    if end > now:
        closes = end.astimezone(BUSINESS_TZ).strftime("%Y-%m-%d %H:%M")
        raise SettlementError(f"period {period} is still open: it closes at {closes} 北京时间")
    refuse_if_before_a_closed_period(session, period)
    refuse_usage_that_cannot_be_billed(session, period)
    session.execute(update(UsageEvent).where(_unsettled_before(end)).values(settled_period=period))
    figures = _figures(session, period, True, col(UsageEvent.settled_period) == period)
    digest = lines_digest(period, figures.versions)
    settlement = Settlement(
        period=period,
        closed_at=now,
        closed_by=actor,
        events=figures.events,
        billed_fen=figures.billed_fen,
        refunded_fen=figures.refunded_fen,
        net_fen=figures.net_fen,
        digest=digest,
        versions={
            v.version_id: {
                "events": v.events,
                "billed_fen": v.billed_fen,
                "refunded_fen": v.refunded_fen,
            }
            for v in figures.versions
        },
    )
    session.add(settlement)
    session.flush()
    for v in figures.versions:
        for party, fen in v.parts.items():
            session.add(
                SettlementLine(
                    period=period,
                    product_version_id=v.version_id,
                    party=party,
                    weight=v.weights[party],
                    amount_fen=fen,
                )
            )
    for st in figures.statements:
        session.add(
            StatementLine(
                period=period,
                subscriber_id=st.subscriber_id,
                subscription_id=st.subscription_id,
                plan_id=st.plan_id,
                kind=st.kind,
                monthly_quota=st.monthly_quota,
                units=st.units,
                overage_units=st.overage_units,
                withheld_units=st.withheld_units,
                charged_fen=st.charged_fen,
                refunded_fen=st.refunded_fen,
                net_fen=st.net_fen,
            )
        )
    session.flush()
    audit.record(
        session,
        actor,
        "settlement.close",
        period,
        events=figures.events,
        billed_fen=figures.billed_fen,
        refunded_fen=figures.refunded_fen,
        net_fen=figures.net_fen,
        by_party=figures.by_party(),
        digest=digest,
    )
    return settlement
