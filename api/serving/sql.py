"""The serving transaction's statements, run on the driver's cursor.

SQLAlchemy's per-statement machinery (compile-cache lookup, parameter and result processing)
cost more than the statements themselves on the lookup path, so the handful of statements a
batch runs are plain SQL on the DBAPI cursor of the transaction SQLAlchemy opened. The column
encodings follow the ledger's types: on SQLite, timestamps are naive UTC text and JSON is text;
on PostgreSQL, psycopg returns aware timestamps and parsed JSON.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection


class Driver:
    """Plain SQL with ? placeholders on the transaction's cursor, and the column conversions."""

    def __init__(self, conn: Connection) -> None:
        self.sqlite = conn.dialect.name == "sqlite"
        raw = conn.connection.dbapi_connection
        assert raw is not None
        self.raw: Any = raw
        self.cursor = raw.cursor()
        self._writes: list[tuple[str, tuple[Any, ...]]] = []

    def _sql(self, sql: str) -> str:
        return sql if self.sqlite else sql.replace("?", "%s")

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self.cursor.execute(self._sql(sql), tuple(params))
        return list(self.cursor.fetchall())

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        """A write; on PostgreSQL held back and sent with the others in one pipeline (flush)."""
        if self.sqlite:
            self.cursor.execute(sql, tuple(params))
        else:
            self._writes.append((self._sql(sql), tuple(params)))

    def rows_all(self, queries: Sequence[tuple[str, Sequence[Any]]]) -> list[list[tuple[Any, ...]]]:
        """Several reads; on PostgreSQL pipelined: one round trip for all, run in order."""
        if self.sqlite:
            return [self.rows(sql, params) for sql, params in queries]
        cursors = []
        with self.raw.pipeline():
            for sql, params in queries:
                cursor = self.raw.cursor()
                cursor.execute(self._sql(sql), tuple(params))
                cursors.append(cursor)
        return [list(c.fetchall()) if c.description else [] for c in cursors]

    def flush(self) -> None:
        """Send the held-back writes in one pipeline (PostgreSQL); errors surface here."""
        if not self._writes:
            return
        with self.raw.pipeline():
            for sql, params in self._writes:
                self.raw.cursor().execute(sql, params)
        self._writes.clear()

    def isin(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """`column IN (...)` and its parameters.

        On PostgreSQL `= ANY(?)` with one array parameter: the statement's text stays the same
        whatever the batch size, so psycopg prepares it once instead of PostgreSQL planning
        every batch afresh (planning cost more than running these indexed lookups).
        """
        if self.sqlite:
            return f"{column} IN ({self.marks(len(values))})", list(values)
        return f"{column} = ANY(?)", [list(values)]

    def insert(
        self, table: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Insert rows; `columns` are (name, PostgreSQL array type) pairs.

        SQLite: executemany (its loop runs in C). PostgreSQL: one `INSERT ... SELECT FROM
        unnest(arrays)`: one round trip and one prepared statement for any number of rows.
        """
        if not rows:
            return
        names = ", ".join(name for name, _ in columns)
        if self.sqlite:
            self.cursor.executemany(
                f"INSERT INTO {table} ({names}) VALUES ({self.marks(len(columns))})", rows
            )
            return
        arrays = ", ".join(f"?::{kind}[]" for _, kind in columns)
        self.run(
            f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays})",
            [list(column) for column in zip(*rows, strict=True)],
        )

    def ts_in(self, value: dt.datetime) -> Any:
        """A timestamp as the ledger stores it."""
        utc = value.astimezone(dt.UTC)
        return utc.strftime("%Y-%m-%d %H:%M:%S.%f") if self.sqlite else utc

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
