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
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection


class Driver:
    """Plain SQL with ? placeholders on the transaction's cursor, and the column conversions."""

    def __init__(self, conn: Connection) -> None:
        self.sqlite = conn.dialect.name == "sqlite"
        raw = conn.connection.dbapi_connection
        assert raw is not None
        self.cursor = raw.cursor()

    def _sql(self, sql: str) -> str:
        return sql if self.sqlite else sql.replace("?", "%s")

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self.cursor.execute(self._sql(sql), tuple(params))
        return list(self.cursor.fetchall())

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.cursor.execute(self._sql(sql), tuple(params))

    def many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.cursor.executemany(self._sql(sql), list(rows))

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
