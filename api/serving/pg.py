"""Serving batches on PostgreSQL over an asyncio connection: two round trips, loop kept free.

A batch's round trips (its locks and reads, then its writes and COMMIT) are awaited, so the event
loop reads and parses the next requests while PostgreSQL works: on a small machine the API
process and the database share the cores, and blocking the loop on every round trip left both
idle in turn. The transaction is spelled out (`BEGIN` goes with the first reads, `COMMIT` with
the writes) on an autocommit connection, so no round trip is spent on either.

Each round trip carries as few statements as it can, each costing the API process time to send
and read back (through psycopg's cursors about 70 µs; `api.serving.wire` drives libpq directly
instead). So a round's queries, which only read, go as one statement whose columns are their
rows as JSON (after the locks, which must come first and in order, each its own statement),
and a batch's writes as one statement of data-modifying CTEs.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from sqlalchemy.engine import URL

from api.serving.batch import ServingBatch
from api.serving.requests import RefusedElsewhere, ScoreLookup
from api.serving.snapshot import GENERATION_SQL, Snapshot
from api.serving.sql import Query, Reads, Rows, advance
from api.serving.wire import WireConnection
from pdo.ledger.types import utcnow

# A snapshot that keeps changing under a batch is reloaded this often before the batch fails.
MAX_RELOADS = 5


def conninfo(url: URL) -> str:
    """A libpq URI for the ledger's SQLAlchemy URL (the `+psycopg` driver suffix dropped)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def connect(url: URL) -> WireConnection:
    """The serving connection; its statements keep one generic plan once prepared.

    PostgreSQL would otherwise re-plan a prepared statement for every batch's array parameters,
    and planning cost more than running (pg_stat_statements: about 0.4 ms a batch). Each
    statement is written so that its only plan is index probes.
    """
    conn = await psycopg.AsyncConnection.connect(
        conninfo(url), autocommit=True, options="-c plan_cache_mode=force_generic_plan"
    )
    return WireConnection(conn)


def combined_reads(queries: Sequence[Query]) -> Query:
    """One SELECT of the serving generation and, per query, its rows as a JSON array."""
    columns = [f"({GENERATION_SQL})"]
    params: list[Any] = []
    for sql, args in queries:
        columns.append(f"(SELECT coalesce(json_agg(q), '[]') FROM ({sql}) q)")
        params.extend(args)
    return "SELECT " + ", ".join(columns), params


def read_back(row: tuple[str | None, ...]) -> tuple[int, list[Rows]]:
    """The generation and each query's rows from the combined SELECT's one row (as text).

    A JSON row keeps its columns in order (the queries name each column once); timestamps
    come back as ISO text, which the plan's `ts_out` reads.
    """
    generation, *columns = row
    return int(generation or 0), [
        [tuple(r.values()) for r in json.loads(rows or "[]")] for rows in columns
    ]


def combined_writes(writes: Sequence[Query]) -> list[Query]:
    """The batch's writes as one statement: all but the last as data-modifying CTEs.

    They touch different rows (one write per table or counter) and none reads another's
    effect, which is what CTEs sharing one snapshot allow.
    """
    if len(writes) <= 1:
        return list(writes)
    *ctes, (last_sql, last_args) = writes
    params: list[Any] = []
    parts = []
    for i, (sql, args) in enumerate(ctes):
        parts.append(f"w{i} AS ({sql})")
        params.extend(args)
    return [(f"WITH {', '.join(parts)} {last_sql}", [*params, *last_args])]


async def read_round(
    conn: WireConnection, reads: Reads, head: Sequence[Query] = ()
) -> tuple[int, list[Rows]]:
    """One round trip: `head`, the locks in order, then every query in one statement."""
    results = await conn.round([*head, *reads.locks, combined_reads(reads.queries)])
    return read_back(results[-1][0])


async def serve(
    conn: WireConnection,
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
        generation, rows = await read_round(conn, reads or Reads([]), [("BEGIN", ())])
        if generation != snapshot.generation:
            await conn.round([("ROLLBACK", ())])
            snapshot = reload(utcnow())
            continue
        while reads is not None:
            reads = advance(plan, rows)
            if reads is not None:
                _, rows = await read_round(conn, reads)
        writes = [(w.sql, w.params) for w in batch.db.writes]
        await conn.round([*combined_writes(writes), ("COMMIT", ())])
        return snapshot
    raise RuntimeError(f"the serving snapshot changed {MAX_RELOADS} times under one batch")
