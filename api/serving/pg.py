"""Serving batches on PostgreSQL over an asyncio connection: two round trips, loop kept free.

A batch's round trips (its locks and reads, then its writes and COMMIT) are awaited, so the event
loop reads and parses the next requests while PostgreSQL works: on a small machine the API
process and the database share the cores, and blocking the loop on every round trip left both
idle in turn. The transaction is spelled out (`BEGIN` goes with the first reads, `COMMIT` with
the writes) on an autocommit connection, so no round trip is spent on either. A batch is opened
(`open_batch` queues its first round) before the batch ahead of it has committed, and decided
(`decide` reads its rows and queues its writes) once that one did: the serving worker keeps the
connection's rounds in that order.

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
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy.engine import URL

from api.serving.batch import ServingBatch
from api.serving.requests import RefusedElsewhere, ScoreLookup
from api.serving.snapshot import GENERATION_SQL, Snapshot
from api.serving.sql import Plan, Query, Reads, Rows, advance
from api.serving.wire import Sent, WireConnection
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


def reading(reads: Reads, head: Sequence[Query] = ()) -> list[Query]:
    """A round of reads: `head`, the locks in order, then every query in one statement."""
    return [*head, *reads.locks, combined_reads(reads.queries)]


async def read_round(conn: WireConnection, reads: Reads) -> tuple[int, list[Rows]]:
    """One round trip of reads: the generation and each query's rows."""
    return read_back((await conn.round(reading(reads)))[-1][0])


@dataclass
class Opened:
    """A batch whose BEGIN, locks and first reads are queued on the connection."""

    jobs: list[ScoreLookup | RefusedElsewhere]
    snapshot: Snapshot
    batch: ServingBatch
    plan: Plan
    first_reads: Sent


def open_batch(
    conn: WireConnection, jobs: list[ScoreLookup | RefusedElsewhere], snapshot: Snapshot
) -> Opened:
    """Plan a batch on the held snapshot and queue its first round (not flushed, not awaited)."""
    batch = ServingBatch(False, snapshot, utcnow())
    plan = batch.plan(jobs)
    reads = advance(plan, None) or Reads([])
    sent = conn.send(reading(reads, [("BEGIN", ())]))
    return Opened(jobs, snapshot, batch, plan, sent)


async def decide(
    conn: WireConnection, opened: Opened, reload: Callable[[dt.datetime], Snapshot]
) -> tuple[Snapshot, Sent]:
    """Read an opened batch's rows, decide it and queue its writes and COMMIT; the snapshot
    it was decided on and the queued commit, whose `receive` says it committed.

    The first reads carry the serving generation: when a change committed since the held
    snapshot was loaded (a revoked key, a new version), the transaction is rolled back before
    anything was written and the batch decided again on a fresh snapshot.
    """
    for _ in range(MAX_RELOADS):
        generation, rows = read_back((await conn.receive(opened.first_reads))[-1][0])
        if generation == opened.snapshot.generation:
            break
        await conn.round([("ROLLBACK", ())])
        opened = open_batch(conn, opened.jobs, reload(utcnow()))
        await conn.flush()
    else:
        raise RuntimeError(f"the serving snapshot changed {MAX_RELOADS} times under one batch")
    while (reads := advance(opened.plan, rows)) is not None:
        _, rows = await read_round(conn, reads)
    writes = [(w.sql, w.params) for w in opened.batch.db.writes]
    return opened.snapshot, conn.send([*combined_writes(writes), ("COMMIT", ())])
