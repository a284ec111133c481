"""The serving transaction's statements, and the two ways of running them.

SQLAlchemy's per-statement machinery (compile-cache lookup, parameter and result processing)
cost more than the statements themselves on the lookup path, so the handful of statements a
batch runs are plain SQL on a DBAPI connection. A batch is planned without doing any I/O
(`Statements` collects its writes; its reads are handed out by the batch's plan), so the same
plan runs on SQLite's cursor in place (`run_plan`) and on an asyncio PostgreSQL connection
whose round trips leave the event loop free (`api.serving.pg`). The column encodings follow the
ledger's types: on SQLite, timestamps are naive UTC text and JSON is text; on PostgreSQL,
psycopg returns aware timestamps and parsed JSON.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

Query = tuple[str, Sequence[Any]]
Rows = list[tuple[Any, ...]]


@dataclass(frozen=True)
class Reads:
    """One round of a plan's reads: the locks to take first, in order, then the queries."""

    queries: list[Query]
    locks: list[Query] = field(default_factory=list)


# A batch's plan yields the reads it needs next and is sent the rows of their queries; its
# writes wait in `Statements.writes` until it has finished.
Plan = Generator[Reads, list[Rows], None]


@dataclass(frozen=True)
class Write:
    sql: str
    params: Sequence[Any]
    many: bool = False  # params is a sequence of rows (SQLite's executemany)


class Statements:
    """Plain SQL with ? placeholders for one dialect, the held-back writes, the conversions."""

    def __init__(self, sqlite: bool) -> None:
        self.sqlite = sqlite
        self.writes: list[Write] = []

    def sql(self, text: str) -> str:
        """? placeholders for the dialect. PostgreSQL parameters go binary (`%b`): psycopg
        dumps arrays in text format element by element with regex escaping, which measured a
        quarter of the serving worker's time."""
        return text if self.sqlite else text.replace("?", "%b")

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        """A write, sent with the others once the batch has decided everything."""
        self.writes.append(Write(self.sql(sql), tuple(params)))

    def isin(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """`column IN (...)` and its parameters.

        On PostgreSQL `= ANY(?)` with one array parameter: the statement's text stays the same
        whatever the batch size, so psycopg prepares it once instead of PostgreSQL planning
        every batch afresh (planning cost more than running these indexed lookups).
        """
        if self.sqlite:
            return f"{column} IN ({self.marks(len(values))})", list(values)
        return f"{column} = ANY(?)", [list(values)]

    @staticmethod
    def probe_each(
        names: tuple[str, str], pairs: Sequence[tuple[str, str]], lookup: str
    ) -> tuple[str, list[Any]]:
        """PostgreSQL: `lookup` (a SELECT of one row by a unique key, naming the pair's fields
        `k.<name>`) run once per key pair, and the two arrays the pairs are sent as.

        Whatever plan is cached, this can only be an index probe per pair: `= ANY(?)` on each
        column left PostgreSQL filtering one of them over a scan, and a plain join's generic
        plan hashed a scan of the whole table. LIMIT 1 keeps PostgreSQL from flattening the
        LATERAL subquery back into such a join (seen with auto_explain).
        """
        first, second = names
        return (
            f"SELECT r.* FROM unnest(?::text[], ?::text[]) AS k({first}, {second}) "
            f"CROSS JOIN LATERAL ({lookup} LIMIT 1) AS r",
            [[p[0] for p in pairs], [p[1] for p in pairs]],
        )

    def insert(
        self, table: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Insert rows; `columns` are (name, PostgreSQL type) pairs.

        SQLite: executemany (its loop runs in C). PostgreSQL: one statement and one prepared
        plan for any number of rows, whose one parameter is the rows as a JSON array of arrays:
        `json.dumps` runs in C, where psycopg dumped a parameter array per column element by
        element in Python (measured: 9% of the API process's time under load).
        """
        if not rows:
            return
        names = ", ".join(name for name, _ in columns)
        if self.sqlite:
            marks = self.marks(len(columns))
            self.writes.append(
                Write(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows, many=True)
            )
            return
        fields = ", ".join(f"(r->>{i})::{kind}" for i, (_, kind) in enumerate(columns))
        self.run(
            f"INSERT INTO {table} ({names}) SELECT {fields} FROM jsonb_array_elements(?::jsonb) r",
            [json.dumps(rows, default=_json_scalar, separators=(",", ":"))],
        )

    def ts_in(self, value: dt.datetime) -> str:
        """A timestamp as a written row carries it: SQLite's stored text, or ISO text that
        PostgreSQL's cast reads back exactly (once per batch, not per row in `json.dumps`)."""
        utc = value.astimezone(dt.UTC)
        return utc.strftime("%Y-%m-%d %H:%M:%S.%f") if self.sqlite else utc.isoformat()

    def ts_out(self, value: Any) -> dt.datetime | None:
        """A stored timestamp, timezone-aware UTC."""
        if value is None:
            return None
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        assert isinstance(value, dt.datetime)
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)

    def day_in(self, value: dt.date) -> Any:
        return value.isoformat() if self.sqlite else value

    def json_out(self, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str | bytes) else value

    @staticmethod
    def marks(n: int) -> str:
        """`?, ?, ?` for an IN list of n values."""
        return ", ".join("?" * n)


def _json_scalar(value: Any) -> str:
    """Timestamps and days as ISO text, which PostgreSQL's casts read back exactly."""
    if isinstance(value, dt.date):  # datetime too: offset and microseconds kept
        return value.isoformat()
    raise TypeError(f"no JSON form for {type(value).__name__}")


def advance(plan: Plan, rows: list[Rows] | None) -> Reads | None:
    """The plan's next reads after handing it `rows` (None to start it); None once it is done."""
    try:
        return next(plan) if rows is None else plan.send(rows)
    except StopIteration:
        return None


def run_plan(cursor: Any, plan: Plan, statements: Statements) -> None:
    """Run a plan statement by statement on a DBAPI cursor (SQLite: every call is in-process)."""
    reads = advance(plan, None)
    while reads is not None:
        for sql, params in reads.locks:
            cursor.execute(sql, tuple(params))
        results = []
        for sql, params in reads.queries:
            cursor.execute(sql, tuple(params))
            results.append(list(cursor.fetchall()))
        reads = advance(plan, results)
    for write in statements.writes:
        if write.many:
            cursor.executemany(write.sql, write.params)
        else:
            cursor.execute(write.sql, tuple(write.params))
    statements.writes.clear()
