"""Append-only, hash-chained audit events: any later change to a row breaks the chain."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, col, select

from pdo.ledger.models import AuditEvent
from pdo.ledger.types import utcnow

GENESIS = "0" * 64


def _digest(event: AuditEvent) -> str:
    body = {
        "seq": event.seq,
        "at": event.at.isoformat(),
        "actor": event.actor,
        "action": event.action,
        "subject": event.subject,
        "details": event.details,
        "prev": event.prev_hash,
    }
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def record(session: Session, actor: str, action: str, subject: str, **details: Any) -> AuditEvent:
    """Append one event to the chain inside the caller's transaction."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(7301)"))
    last = session.exec(select(AuditEvent).order_by(col(AuditEvent.seq).desc()).limit(1)).first()
    event = AuditEvent(
        seq=(last.seq + 1) if last else 1,
        at=utcnow(),
        actor=actor,
        action=action,
        subject=subject,
        details=json.loads(json.dumps(details, default=str, ensure_ascii=False)),
        prev_hash=last.hash if last else GENESIS,
        hash="",
    )
    event.hash = _digest(event)
    session.add(event)
    session.flush()
    return event


@dataclass(frozen=True)
class ChainReport:
    """The outcome of verifying the chain: ok, how many events, and where it broke."""

    ok: bool
    events: int
    broken_at: int | None = None
    reason: str = ""


def verify(session: Session) -> ChainReport:
    """Recompute every hash in order; the first mismatch or gap is reported."""
    prev = GENESIS
    count = 0
    expected_seq = 1
    for event in session.exec(select(AuditEvent).order_by(col(AuditEvent.seq))):
        count += 1
        if event.seq != expected_seq:
            return ChainReport(False, count, event.seq, f"gap: expected seq {expected_seq}")
        if event.prev_hash != prev:
            return ChainReport(False, count, event.seq, "prev_hash does not match previous event")
        if _digest(event) != event.hash:
            return ChainReport(False, count, event.seq, "content does not match its hash")
        prev = event.hash
        expected_seq += 1
    return ChainReport(True, count)
