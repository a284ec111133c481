"""Billing evidence: every usage event must match its record on the audit chain, field for field.

The chain proves its own records were not rewritten; this check extends that proof to the
`usage_event` table that billing and settlement read, so a price, a bank or an event quietly
changed, added or deleted there is found, not billed; and each closed month's usage rows must
still give the events and fen it billed, so an event moved out of billing is found too. It reads
the chain, then usage_event: give it a `snapshot_scope` session, or on PostgreSQL an event served
in between is a false finding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, type_coerce
from sqlalchemy.types import NullType
from sqlmodel import Session, col

from pdo.audit import Unreadable, decoder
from pdo.delivery.metering import USAGE_ACTIONS, details_of
from pdo.ledger.models import AuditEvent, Settlement, UsageEvent

CHUNK = 5_000


@dataclass
class UsageChainReport:
    """How many usage events match the chain; the first few that do not, and why."""

    events: int = 0
    matched: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)  # (usage id, what is wrong)
    problem_count: int = 0
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (usage id, column)
    unreadable_count: int = 0

    @property
    def ok(self) -> bool:
        return self.problem_count == 0


def _chained(session: Session) -> dict[str, dict[str, Any]]:
    """The chain's usage records by usage id (a duplicate is itself a finding: kept as None)."""
    found: dict[str, Any] = {}
    raw_details = type_coerce(col(AuditEvent.details), NullType())
    rows = session.execute(
        select(col(AuditEvent.subject), raw_details).where(
            col(AuditEvent.action).in_(list(USAGE_ACTIONS.values()))
        )
    )
    read = decoder(session, "details")  # unreadable details match nothing, not crash the check
    for subject, raw in rows:
        details = read(raw)
        details = {} if isinstance(details, Unreadable) else details
        found[subject] = None if subject in found else details
    return found


def _closed(session: Session) -> dict[str, tuple[int, int]]:
    """Each closed period's recorded event count and billed fen, what its usage must still give."""
    rows = session.execute(
        select(col(Settlement.period), col(Settlement.events), col(Settlement.billed_fen))
    )
    return {period: (int(events), int(billed)) for period, events, billed in rows}


def _settled_problems(
    closed: dict[str, tuple[int, int]], billed: dict[str, list[int]]
) -> Iterator[tuple[str, str]]:
    """Closed periods whose usage rows (by settled_period) no longer give the recorded totals:
    an event moved into or out of a billed month behind the ledger's back."""
    for period, (events, fen) in sorted(closed.items()):
        now_events, now_fen = billed.get(period, [0, 0])
        if (now_events, now_fen) != (events, fen):
            yield (
                f"settlement {period}",
                f"its usage events now give {now_events} events, {now_fen} fen; "
                f"it closed with {events} events, {fen} fen",
            )


_DECODED = ("served_at", "price_fen")  # read raw: SQLite keeps whatever text is written there


def _raw(column: Any) -> Any:
    """The column as selected: raw when it is decoded row by row, typed otherwise."""
    return type_coerce(column, NullType()).label(column.name) if column.name in _DECODED else column


def _usage(session: Session, where: Any = None) -> Iterator[tuple[str, UsageEvent | Unreadable]]:
    """Usage rows in served order by id, each decoded one by one: a stored value that cannot be
    read is Unreadable (a finding on that event), not an exception ending the check."""
    columns = UsageEvent.__table__.c  # type: ignore[attr-defined]
    query = select(*(_raw(c) for c in columns)).order_by(
        col(UsageEvent.served_at), col(UsageEvent.id)
    )
    if where is not None:
        query = query.where(where)
    decoders = {name: decoder(session, name, UsageEvent) for name in _DECODED}
    for row in session.execute(query.execution_options(yield_per=CHUNK)):
        values = dict(row._mapping)
        values.update({name: read(values[name]) for name, read in decoders.items()})
        bad = next((v for v in values.values() if isinstance(v, Unreadable)), None)
        yield values["id"], bad or UsageEvent.model_construct(**values)


def check_usage(
    session: Session,
    keep: int = 20,
    progress: Callable[[int], None] | None = None,
    where: Any = None,
    compared: Callable[[UsageEvent], bool] | None = None,
) -> UsageChainReport:
    """Compare each usage event with its chain record; missing, duplicated or altered are found.

    `where` limits the check to some usage rows; deleted rows are then left to the full check,
    which alone sees every row. `compared` narrows the comparison further, in the same pass (a
    settlement compares the month it bills but must see every unsettled row); an unreadable row
    is reported whatever it says, since no filter can tell which rows it belongs with.
    """
    chained = _chained(session)
    closed = _closed(session)
    billed: dict[str, list[int]] = {}  # settled_period → [events, fen] as the rows give them now
    report = UsageChainReport()

    def problem(usage_id: str, what: str) -> None:
        report.problem_count += 1
        if len(report.problems) < keep:
            report.problems.append((usage_id, what))

    seen: set[str] = set()
    for usage_id, usage in _usage(session, where):
        report.events += 1
        seen.add(usage_id)
        if progress is not None and report.events % CHUNK == 0:
            progress(CHUNK)
        if isinstance(usage, Unreadable):
            report.unreadable_count += 1
            if len(report.unreadable) < keep:
                report.unreadable.append((usage_id, usage.column))
            problem(usage_id, f"unreadable {usage.column}: not a valid stored value (changed?)")
            continue
        if compared is not None and not compared(usage):
            continue
        if usage.settled_period is not None:
            tally = billed.setdefault(usage.settled_period, [0, 0])
            tally[0] += 1
            tally[1] += usage.price_fen
            if usage.settled_period not in closed:
                problem(
                    usage.id, f"marked as billed in {usage.settled_period}, a period never closed"
                )
                continue
        if usage.id not in chained:
            problem(usage.id, "no record on the audit chain (inserted outside the API?)")
            continue
        record = chained[usage.id]
        if record is None:
            problem(usage.id, "recorded more than once on the audit chain")
            continue
        expected = details_of(usage)
        changed = sorted(k for k, v in expected.items() if record.get(k) != v)
        if changed:
            problem(usage.id, f"differs from its audit record in: {', '.join(changed)}")
        else:
            report.matched += 1
    if where is None:
        for usage_id in sorted(set(chained) - seen):
            problem(usage_id, "on the audit chain but missing from usage_event (deleted?)")
        for subject, what in _settled_problems(closed, billed):
            problem(subject, what)
    if progress is not None:
        progress(report.events % CHUNK)
    return report
