"""An alert's `queued_at` is stamped as its transaction commits, so pull cursors never skip one.

Banks page alerts by `queued_at` (`since=`, `after=`). Stamped when a transaction raised or
released an alert, a long transaction (a publish raising a portfolio's alerts) could commit
after a shorter one stamped later: a bank polling in between moved its cursor past the long
one's alerts, which were then never listed. So every transaction that queues alerts stamps
them again just before it commits, holding the audit chain's lock to its end (PostgreSQL; on
SQLite the write lock, already held, serializes the writers). Stamps then follow commit order:
the stamps of a transaction still open are later than every stamp a bank can read.

The lock is taken last, after the transaction's row locks, in the order an ack takes them (its
alert's row, then the chain), so the two cannot wait on each other. The time is the database
server's clock on PostgreSQL, one clock for every API and CLI process.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import event, text, update
from sqlmodel import Session, col

from pdo import audit
from pdo.ledger.models import Alert
from pdo.ledger.types import utcnow

_TO_STAMP = "pdo.alerts_queued"  # Session.info key: ids of the alerts this transaction queued
_CHUNK = 5000  # ids per UPDATE (PostgreSQL takes at most 65,535 parameters a statement)


def queue_on_commit(session: Session, alert_ids: Iterable[str]) -> None:
    """Stamp these alerts' `queued_at` when the session's transaction commits."""
    session.info.setdefault(_TO_STAMP, set()).update(alert_ids)


def _stamp_queued(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint's release: the stamp waits for the commit
        return
    ids = session.info.pop(_TO_STAMP, None)
    if not ids:
        return
    session.flush()  # alerts added but not yet inserted get their rows first
    audit.hold_chain(session)
    if session.get_bind().dialect.name == "postgresql":
        now = session.execute(text("SELECT clock_timestamp()")).scalar_one()
    else:
        now = utcnow()
    ordered = sorted(ids)
    for start in range(0, len(ordered), _CHUNK):
        session.execute(
            update(Alert)
            .where(col(Alert.id).in_(ordered[start : start + _CHUNK]))
            .values(queued_at=now)
        )


def _forget(session: Session, *_: Any) -> None:
    session.info.pop(_TO_STAMP, None)


# Registered on the Session class: every session that queues an alert imported this module.
event.listen(Session, "before_commit", _stamp_queued)
event.listen(Session, "after_rollback", _forget)
