"""Serving batches on PostgreSQL over an asyncio connection: two round trips, loop kept free.

A batch's round trips (its reads, then its writes and COMMIT) are awaited, so the event loop
reads and parses the next requests while PostgreSQL works: on a small machine the API process
and the database share the cores, and blocking the loop on every round trip left both idle in
turn. The transaction is spelled out (`BEGIN` goes with the first reads, `COMMIT` with the
writes) on an autocommit connection, so no round trip is spent on either.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from sqlalchemy.engine import URL

from api.serving.batch import ServingBatch
from api.serving.requests import RefusedElsewhere, ScoreLookup
from api.serving.snapshot import GENERATION_SQL, Snapshot
from api.serving.sql import Query, Rows, advance
from pdo.ledger.types import utcnow

# A snapshot that keeps changing under a batch is reloaded this often before the batch fails.
MAX_RELOADS = 5


def conninfo(url: URL) -> str:
    """A libpq URI for the ledger's SQLAlchemy URL (the `+psycopg` driver suffix dropped)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def connect(url: URL) -> psycopg.AsyncConnection[Any]:
    """The serving connection; its statements keep one generic plan once prepared.

    psycopg prepares a statement from its fifth run; PostgreSQL would still re-plan it for
    every batch's array parameters, and planning cost more than running (pg_stat_statements:
    about 0.4 ms a batch). Each statement is written so that its only plan is index probes.
    """
    return await psycopg.AsyncConnection.connect(
        conninfo(url), autocommit=True, options="-c plan_cache_mode=force_generic_plan"
    )


async def pipelined(conn: psycopg.AsyncConnection[Any], queries: Sequence[Query]) -> list[Rows]:
    """Run queries in one round trip, in order; the rows of each (empty for a write)."""
    cursors = []
    async with conn.pipeline():
        for sql, params in queries:
            cursor = conn.cursor()
            await cursor.execute(sql, tuple(params) if params else None)
            cursors.append(cursor)
    return [await c.fetchall() if c.description else [] for c in cursors]


async def serve(
    conn: psycopg.AsyncConnection[Any],
    jobs: list[ScoreLookup | RefusedElsewhere],
    snapshot: Snapshot,
    reload: Callable[[dt.datetime], Snapshot],
) -> Snapshot:
    """Decide, meter and commit one batch; the snapshot it was decided on.

    The batch is planned on the held snapshot and its first reads carry the serving
    generation: when a change committed since (a revoked key, a new version), the transaction
    is rolled back before anything was written and the batch decided again on a fresh one.
    """
    for _ in range(MAX_RELOADS):
        batch = ServingBatch(False, snapshot, utcnow())
        plan = batch.plan(jobs)
        reads = advance(plan, None)
        head: list[Query] = [("BEGIN", ()), (GENERATION_SQL, ())]
        results = await pipelined(conn, head + (reads or []))
        generation = int(results[1][0][0]) if results[1] else 0
        if generation != snapshot.generation:
            await conn.execute("ROLLBACK")
            snapshot = reload(utcnow())
            continue
        if reads is not None:
            reads = advance(plan, results[len(head) :])
        while reads is not None:
            reads = advance(plan, await pipelined(conn, reads))
        writes: list[Query] = [(w.sql, w.params) for w in batch.db.writes]
        await pipelined(conn, [*writes, ("COMMIT", ())])
        return snapshot
    raise RuntimeError(f"the serving snapshot changed {MAX_RELOADS} times under one batch")
