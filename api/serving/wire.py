"""The serving connection to PostgreSQL, driven through libpq's pipeline mode directly.

psycopg's cursors cost the API process about 60 µs of Python per statement (its pipeline
bookkeeping, adapters and result objects), more than the rest of a serving batch's database
work together. The serving worker sends few statements of a fixed shape, so it drives the
connection psycopg opened through psycopg's own libpq binding (`psycopg.pq`) instead: each
round's statements are queued with a Sync and their results read when the socket is readable,
with the event loop free meanwhile. Measured on 2 000 batches of two rounds (five
statements): 540 µs of CPU a batch through psycopg's async pipeline, 225 µs here.

Statements are prepared on first use (named, so PostgreSQL keeps one generic plan for each:
the connection sets `plan_cache_mode=force_generic_plan`), up to `MAX_PREPARED`, the least
recently used released after that. Parameters go as text: strings as they are, numbers and
dates in their text form, lists of strings as `text[]` literals. Rows come back as text
(the serving reads return JSON, which the caller parses).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors, pq

MAX_PREPARED = 128
TEXT_ARRAY_OID = 1009  # text[]
UNKNOWN_OID = 0  # PostgreSQL infers the type from where the parameter is used

WireQuery = tuple[str, Sequence[Any]]
TextRows = list[tuple[str | None, ...]]


@dataclass(frozen=True)
class Sent:
    """A round queued on the connection: per result group, whether it is one of its queries'."""

    wanted: list[bool]


def numbered(sql: str) -> str:
    """`%b` placeholders (as `api.serving.sql.Statements` writes them) as `$1`, `$2`, …."""
    parts = sql.split("%b")
    out = [parts[0]]
    for i, part in enumerate(parts[1:], start=1):
        out.append(f"${i}{part}")
    return "".join(out)


def _array_item(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _text_array(items: Sequence[Any]) -> str:
    """A `text[]` literal; items without quotes or backslashes (nearly all) are joined in one go."""
    try:
        flat = "\x1f".join(items)  # also checks that every item is a string
    except TypeError:
        raise TypeError("only lists of strings are sent as arrays") from None
    if not items:
        return "{}"
    if '"' in flat or "\\" in flat:
        return "{" + ",".join(_array_item(item) for item in items) + "}"
    return '{"' + '","'.join(items) + '"}'


def encoded(value: Any) -> tuple[bytes | None, int]:
    """A parameter's text form and the type PostgreSQL is told it has."""
    if value is None:
        return None, UNKNOWN_OID
    if isinstance(value, bool):
        return (b"t" if value else b"f"), UNKNOWN_OID
    if isinstance(value, str):
        return value.encode(), UNKNOWN_OID
    if isinstance(value, int | float):
        return str(value).encode(), UNKNOWN_OID
    if isinstance(value, dt.date):  # datetime too, with its offset
        return value.isoformat().encode(), UNKNOWN_OID
    if isinstance(value, list | tuple):
        return _text_array(value).encode(), TEXT_ARRAY_OID
    raise TypeError(f"no text form for a {type(value).__name__} parameter")


class WireConnection:
    """An autocommit psycopg connection held in libpq's pipeline mode for the serving worker."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.conn = conn
        self.pgconn = conn.pgconn
        self.pgconn.enter_pipeline_mode()
        self._prepared: OrderedDict[str, bytes] = OrderedDict()
        self._released: list[bytes] = []
        self._names = 0

    @property
    def closed(self) -> bool:
        return self.conn.closed

    async def close(self) -> None:
        await self.conn.close()

    def finish(self) -> None:
        """Drop the connection without a round trip (the event loop is closing)."""
        self.pgconn.finish()

    def _statement(self, sql: str, types: list[int]) -> tuple[bytes, bool]:
        """The prepared statement's name for this text, and whether it is new."""
        name = self._prepared.get(sql)
        if name is not None:
            self._prepared.move_to_end(sql)
            return name, False
        self._names += 1
        name = f"pdo_serving_{self._names}".encode()
        self._prepared[sql] = name
        if len(self._prepared) > MAX_PREPARED:
            _, old = self._prepared.popitem(last=False)
            self._released.append(old)
        return name, True

    async def round(self, queries: Sequence[WireQuery]) -> list[TextRows]:
        """Run the queries in order in one round trip; the rows of each (empty for the others)."""
        sent = self.send(queries)
        await self.flush()
        return await self.receive(sent)

    def send(self, queries: Sequence[WireQuery]) -> Sent:
        """Queue the queries and a Sync without waiting; `receive` reads their results.

        Rounds queued one after another run in that order, and their results are received in
        that order: a round can be queued before the results of the one ahead of it arrive.
        """
        encoded_queries = []  # every parameter encoded before anything is queued
        for sql, params in queries:
            values: list[bytes | None] = []
            types: list[int] = []
            for value in params:
                text, oid = encoded(value)
                values.append(text)
                types.append(oid)
            encoded_queries.append((sql, values, types))
        pg = self.pgconn
        wanted: list[bool] = []  # per result group sent: is it one of the queries' rows?
        for name in self._released:
            pg.send_query_params(b"DEALLOCATE " + name, None)
            wanted.append(False)
        self._released.clear()
        for sql, values, types in encoded_queries:
            if not values:  # BEGIN, COMMIT, a lock: nothing worth preparing
                pg.send_query_params(numbered(sql).encode(), None)
            else:
                name, new = self._statement(sql, types)
                if new:
                    pg.send_prepare(name, numbered(sql).encode(), types)
                    wanted.append(False)
                pg.send_query_prepared(name, values)
            wanted.append(True)
        pg.pipeline_sync()
        return Sent(wanted)

    async def _socket_ready(self, *, write: bool) -> None:
        """Until the connection's socket can be written (write) or read, the loop free meanwhile."""
        loop, socket = asyncio.get_running_loop(), self.pgconn.socket
        ready: asyncio.Future[None] = loop.create_future()
        (loop.add_writer if write else loop.add_reader)(socket, ready.set_result, None)
        try:
            await ready
        finally:
            (loop.remove_writer if write else loop.remove_reader)(socket)

    async def flush(self) -> None:
        """Until everything queued has been handed to the socket."""
        while self.pgconn.flush():  # 1: the socket's buffer is full, the rest goes as it drains
            await self._socket_ready(write=True)

    async def receive(self, sent: Sent) -> list[TextRows]:
        """The results of a round queued by `send`, once every round queued before it was read.

        The first failing statement's error is raised (PostgreSQL skips the rest up to the
        Sync); the caller drops the connection then, as its transaction is lost anyway.
        """
        pg, wanted = self.pgconn, sent.wanted
        out: list[TextRows] = []
        rows: TextRows = []
        failure: errors.Error | None = None
        group = 0
        while True:
            while pg.is_busy():
                await self._socket_ready(write=False)
                pg.consume_input()
            result = pg.get_result()
            if result is None:  # the end of one statement's results
                if group < len(wanted) and wanted[group]:
                    out.append(rows)
                rows, group = [], group + 1
                continue
            status = result.status
            if status == pq.ExecStatus.PIPELINE_SYNC:
                if failure is not None:
                    raise failure
                return out
            if status == pq.ExecStatus.TUPLES_OK:
                rows = [
                    tuple(
                        None if (v := result.get_value(r, c)) is None else v.decode()
                        for c in range(result.nfields)
                    )
                    for r in range(result.ntuples)
                ]
            elif status == pq.ExecStatus.FATAL_ERROR and failure is None:
                failure = errors.error_from_result(result)
            elif status == pq.ExecStatus.PIPELINE_ABORTED and failure is None:
                failure = errors.OperationalError("pipeline aborted")
