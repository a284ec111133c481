"""Injected dependencies: a ledger session per request and the authenticated subscriber key."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Annotated, TypeVar

from fastapi import Depends, Header, Request
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from api.errors import ApiError, Caller
from api.text import refuse_nul
from pdo.ledger.db import read_scope
from pdo.ledger.models import ApiKey
from pdo.privacy.pseudonym import Pseudonymizer
from pdo.subscribers import resolve_key


def get_session(request: Request) -> Iterator[Session]:
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


T = TypeVar("T")
COMMIT_ATTEMPTS = 3


def committed(session: Session, work: Callable[[], T]) -> T:
    """Run `work` and commit it; on losing a unique key to a concurrent writer, again.

    Deliveries are keyed (a batch's id, a delivery's usage event, the audit chain's next seq):
    the loser of a race rolls back, runs again and then finds what the winner committed, so a
    repeated call answers like the first instead of failing.
    """
    for attempt in range(COMMIT_ATTEMPTS):
        try:
            result = work()
            session.commit()
            return result
        except IntegrityError:
            session.rollback()
            if attempt + 1 == COMMIT_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def get_read_session(request: Request) -> Iterator[Session]:
    """A session that only reads: it neither waits for nor holds SQLite's write lock."""
    with read_scope(request.app.state.engine) as session:
        yield session


ReadSessionDep = Annotated[Session, Depends(get_read_session)]


def get_pseudonymizer(request: Request) -> Pseudonymizer:
    """The same keyed pseudonymizer the pipeline used, to find a 个体工商户 by its key."""
    pseudo: Pseudonymizer = request.app.state.pseudonymizer
    return pseudo


PseudonymizerDep = Annotated[Pseudonymizer, Depends(get_pseudonymizer)]


def get_api_key(
    request: Request,
    x_api_key: Annotated[str | None, Header(alias="X-API-Key")] = None,
) -> ApiKey:
    """The caller's key record; refused with 401 when missing, unknown or revoked."""
    refuse_nul(request)
    if not x_api_key:
        raise ApiError(401, "missing_api_key", "send your API key in the X-API-Key header")
    # Its own short read, closed before the route's work: a session held for the whole request
    # would take a second pooled connection per write request, and concurrent calls then waited
    # on each other for the pool (measured: 16 of 40 simultaneous calls failed after 30 s).
    with read_scope(request.app.state.engine) as session:
        found = resolve_key(session, x_api_key)
    if found is None:
        raise ApiError(401, "invalid_api_key", "the API key is unknown or revoked")
    key, bank = found
    # refusals after this point are recorded against the bank (plain values: a handler's rollback
    # expires the key record, which is detached by the time the refusal is recorded)
    request.state.caller = Caller(key.subscriber_id, key.id)
    # one bucket per key for every endpoint, lookups included (api/routers/scores.py)
    wait = request.app.state.rate_limiter.take(key.id, bank.rate_limit_per_second)
    if wait:
        raise ApiError(
            429,
            "rate_limited",
            "too many calls per second for this key; retry after the Retry-After header",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
    return key


ApiKeyDep = Annotated[ApiKey, Depends(get_api_key)]
