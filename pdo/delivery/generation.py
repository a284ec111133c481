"""The serving generation: the API reloads what it caches when a change bumps this counter."""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import Session, col

from pdo.ledger.models import ServingGeneration


def bump(session: Session) -> None:
    """Mark keys, subscriptions, versions or grants changed, inside the caller's transaction."""
    done = session.exec(
        update(ServingGeneration)
        .where(col(ServingGeneration.id) == 1)
        .values(n=col(ServingGeneration.n) + 1)
    )
    if done.rowcount == 0:
        session.add(ServingGeneration(id=1, n=1))
        session.flush()


def current(session: Session) -> int:
    """The generation the caller's snapshot must match."""
    row = session.get(ServingGeneration, 1)
    return row.n if row is not None else 0
