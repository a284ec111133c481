"""Append-only, hash-chained audit events: any later change to a row breaks the chain."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, col, select

from pdo.ledger.models import AuditEvent
from pdo.ledger.types import utcnow

GENESIS = "0" * 64


CHAIN_LOCK = 7301  # PostgreSQL advisory lock serializing appends: one tail, no fork


def digest(
    seq: int,
    at: dt.datetime,
    actor: str,
    action: str,
    subject: str,
    details: Any,
    prev_hash: str,
) -> str:
    """The hash of one event: canonical JSON of its fields and the previous event's hash."""
    body = {
        "seq": seq,
        "at": at.isoformat(),
        "actor": actor,
        "action": action,
        "subject": subject,
        "details": details,
        "prev": prev_hash,
    }
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _digest(event: AuditEvent) -> str:
    return digest(
        event.seq,
        event.at,
        event.actor,
        event.action,
        event.subject,
        event.details,
        event.prev_hash,
    )


def plain(details: Mapping[str, Any]) -> dict[str, Any]:
    """Details as they read back from the ledger's JSON column (dates and ids as text)."""
    loaded: dict[str, Any] = json.loads(json.dumps(details, default=str, ensure_ascii=False))
    return loaded


@dataclass(frozen=True)
class Entry:
    """One consequential action to append: who, what, on which subject, with what details."""

    actor: str
    action: str
    subject: str
    details: dict[str, Any]


@dataclass(frozen=True)
class Linked:
    """An entry placed on the chain: its sequence number, previous hash and own hash."""

    seq: int
    at: dt.datetime
    entry: Entry
    prev_hash: str
    hash: str


def link(tail: tuple[int, str] | None, at: dt.datetime, entries: Sequence[Entry]) -> list[Linked]:
    """Chain entries after the tail (seq, hash) of the chain; a pure function of its inputs."""
    seq, prev = tail if tail is not None else (0, GENESIS)
    linked = []
    for e in entries:
        seq += 1
        h = digest(seq, at, e.actor, e.action, e.subject, e.details, prev)
        linked.append(Linked(seq, at, e, prev, h))
        prev = h
    return linked


def record(session: Session, actor: str, action: str, subject: str, **details: Any) -> AuditEvent:
    """Append one event to the chain inside the caller's transaction."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(text(f"SELECT pg_advisory_xact_lock({CHAIN_LOCK})"))
    last = session.exec(select(AuditEvent).order_by(col(AuditEvent.seq).desc()).limit(1)).first()
    (placed,) = link(
        (last.seq, last.hash) if last else None,
        utcnow(),
        [Entry(actor, action, subject, plain(details))],
    )
    event = AuditEvent(
        seq=placed.seq,
        at=placed.at,
        actor=actor,
        action=action,
        subject=subject,
        details=placed.entry.details,
        prev_hash=placed.prev_hash,
        hash=placed.hash,
    )
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
