"""The audit chain page's data: what can be checked within a page render, and what cannot.

A full verification recomputes every hash (about 40 µs an event), so on a long chain it is a
deliberate action, not part of drawing the page. On render the page checks the events after the
last signed checkpoint against that checkpoint's head hash, when they are few enough.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlmodel import Session, col, func, select

from pdo import audit
from pdo.checkpoints import ANNOUNCE, LedgerChecks, latest
from pdo.ledger.models import AuditCheckpoint, AuditEvent

RENDER_CHECK_LIMIT = 20_000  # events checked while drawing the page (well under a second)


@dataclass(frozen=True)
class TailCheck:
    """The events after the last checkpoint, checked link by link from its head hash."""

    first_seq: int
    last_seq: int
    checked: bool  # False when there were more than RENDER_CHECK_LIMIT
    broken_at: int | None = None
    reason: str = ""

    @property
    def events(self) -> int:
        return max(0, self.last_seq - self.first_seq + 1)

    @property
    def ok(self) -> bool:
        return self.checked and self.broken_at is None


@dataclass(frozen=True)
class ChainState:
    """Counts, the last checkpoint and the tail check: everything the page shows on render."""

    events: int
    head_seq: int
    checkpoint: AuditCheckpoint | None
    checkpoints: int
    tail: TailCheck
    last_full_check: AuditEvent | None


def tail_check(session: Session, checkpoint: AuditCheckpoint | None, head_seq: int) -> TailCheck:
    """Recompute the events after the checkpoint (all of them without one), if few enough."""
    first = checkpoint.last_seq + 1 if checkpoint is not None else 1
    if head_seq - first + 1 > RENDER_CHECK_LIMIT:
        return TailCheck(first, head_seq, checked=False)
    prev = checkpoint.head_hash if checkpoint is not None else audit.GENESIS
    if checkpoint is not None:  # the checkpoint's own last event must still be what it signed
        signed = session.get(AuditEvent, checkpoint.last_seq)
        if signed is None or signed.hash != checkpoint.head_hash:
            return TailCheck(
                first, head_seq, True, checkpoint.last_seq, "differs from the signed checkpoint"
            )
    expected = first
    announced: dict[str, int] = {}  # checkpoint id -> seq of its audit.checkpoint record
    for row in audit.events(session, first):
        problem = audit.check_link(row, expected, prev)
        if problem is not None:
            return TailCheck(first, head_seq, True, row[0], problem)
        if row[3] == ANNOUNCE:
            announced[row[4]] = row[0]
        prev, expected = row[7], expected + 1
    missing = _announcement_missing(session, checkpoint, expected - 1, announced)
    if missing is not None:
        return TailCheck(first, head_seq, True, missing.seq, missing.reason)
    return TailCheck(first, head_seq, True)


def _announcement_missing(
    session: Session,
    checkpoint: AuditCheckpoint | None,
    chain_last: int,
    announced: dict[str, int],
) -> audit.Finding | None:
    """The full check's rule on the tail: the checkpoint's own audit.checkpoint record must
    follow it, so deleting it together with the newest events is not an intact chain."""
    if checkpoint is None:
        return None
    rows = [(checkpoint.id or 0, checkpoint.last_seq)]
    found = LedgerChecks([], [], rows).tail(session, chain_last, announced)
    return found[0] if found else None


def chain_state(session: Session) -> ChainState:
    """What the page shows without a full verification."""
    events = int(session.exec(select(func.count()).select_from(AuditEvent)).one())
    head_seq = audit.head(session)
    checkpoint = latest(session)
    count = int(session.exec(select(func.count()).select_from(AuditCheckpoint)).one())
    last_full = session.exec(
        select(AuditEvent)
        .where(AuditEvent.subject == "chain", AuditEvent.action == "audit.verify")
        .order_by(col(AuditEvent.seq).desc())
        .limit(1)
    ).first()
    return ChainState(
        events, head_seq, checkpoint, count, tail_check(session, checkpoint, head_seq), last_full
    )


def beijing(at: dt.datetime) -> str:
    """A ledger timestamp in Beijing time, to the second."""
    from pdo.delivery.periods import BUSINESS_TZ

    return at.astimezone(BUSINESS_TZ).strftime("%Y-%m-%d %H:%M:%S")
