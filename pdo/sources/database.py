"""Read a department's database table as text, in bounded chunks, by SQLAlchemy URL.

A database source is delivered the way a file is: the contract's columns only (extra ones are
ignored, missing ones refused), every value as the text a CSV export would hold (ints "123",
decimals "12.50", dates "2026-01-31", NULL as null), rows numbered from 1 in a deterministic
order (the contract's key, then its other columns). Rows stream through a server-side cursor
(``stream_results`` + ``yield_per``), so memory is bounded by the chunk, and the content hash,
a SHA-256 over the CSV text polars would write for the whole table (one header, then every
chunk's rows), is computed while streaming: it does not depend on the chunk size.

The URL's password never appears in an error: URLs are shown through ``display_url``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    Text,
    cast,
    column,
    create_engine,
    func,
    inspect,
    select,
)
from sqlalchemy import table as sql_table
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import NoSuchTableError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from pdo.delivery.periods import BUSINESS_TZ
from pdo.driver_errors import driver_error_code
from pdo.sources.contract import SourceTable

ROW = "source_row"  # the same 1-based row number column flows.ingest gives a file's rows
DEFAULT_CHUNK_ROWS = 100_000
CONNECT_TIMEOUT_S = 15  # an unreachable PostgreSQL host must fail, not hang


class DatabaseSourceError(ValueError):
    """A database source cannot be read (unreachable, no such table, missing columns)."""


# libpq reads these from the URL's query too (?password=...): as secret as user:password@.
# Query parameters that hold a secret, by name (libpq's password and sslpassword, MySQL's passwd,
# tokens) or by content (an ODBC connection string's PWD=...), for any driver; not a parameter
# that names where a secret is kept (libpq's passfile) or how to authenticate (auth_plugin).
SECRET_QUERY_NAME = re.compile(r"^(?:.*password|passwd|pwd|.*secret|.*token|credentials?)$", re.I)
SECRET_IN_VALUE = re.compile(r"(?:pwd|passw(?:or)?d|secret|token)\s*=", re.I)


def _values(value: str | tuple[str, ...]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def secret_parameter(key: str, value: str | tuple[str, ...]) -> bool:
    """Whether a URL query parameter may carry a secret, by its name or by what it holds."""
    return bool(SECRET_QUERY_NAME.search(key)) or any(
        SECRET_IN_VALUE.search(v) for v in _values(value)
    )


def url_secrets(url: URL) -> list[str]:
    """Every secret the URL carries: its password, and any secret query parameter's values."""
    found = [str(url.password)] if url.password else []
    for key, value in url.query.items():
        if secret_parameter(key, value):
            found.extend(_values(value))
    return [secret for secret in found if secret]


def display_url(url: str | URL) -> str:
    """The URL as it may be shown in messages and logs: password and secret parameters hidden."""
    try:
        parsed = make_url(url)
        hidden = {k: "***" for k, v in parsed.query.items() if secret_parameter(k, v)}
        shown = parsed.update_query_dict(hidden).render_as_string(hide_password=True)
        return shown.replace("%2A%2A%2A", "***")
    except Exception:  # an unparsable URL may still hold a password: never echo it
        return "<unparsable database URL>"


def _scrub(message: str, url: URL) -> str:
    """Drivers do not echo passwords, but make sure: replace each secret wherever it appears."""
    for secret in url_secrets(url):
        message = message.replace(secret, "***")
    return message


def _driver_message(exc: BaseException) -> str:
    """The driver's own words (first lines), without SQLAlchemy's statement dump and links."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return " ".join(lines[:3]) or type(exc).__name__


def _read_failure(exc: BaseException, names: Sequence[str]) -> str:
    """Why rows could not be read, without the driver's words: they may quote a cell's value."""
    orig = getattr(exc, "orig", None) or exc
    parts = [type(orig).__name__]
    code = driver_error_code(exc)
    if code:
        parts.append(str(code))
    column = _named_column(str(orig), names)
    if column is not None:
        parts.append(f"column {column!r}")
    return ", ".join(parts)


_COLUMN_IN_MESSAGE = re.compile(r"column ['\"]?([^'\"\s]+)")


def _named_column(message: str, names: Sequence[str]) -> str | None:
    """The contract column a driver's message names (SQLite's decode error does), if any."""
    found = [m for m in _COLUMN_IN_MESSAGE.findall(message) if m in names]
    return found[0] if found else None


def render_value(value: Any) -> str | None:
    """One database value as the text a CSV export delivers (None stays null)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -2:
            with contextlib.suppress(InvalidOperation):  # beyond 28 digits: left as it is
                if value == round(value, 2):
                    value = round(value, 2)  # numeric(18,4)'s 1234.5000: its yuan and fen
        return format(value, "f")  # keeps the column's scale ("12.50"), never "1E+3"
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:  # the wall-clock time in Beijing it names (no offset)
            value = value.astimezone(BUSINESS_TZ).replace(tzinfo=None)
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()  # PostgreSQL's bytea text form
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)


_FLOAT_WORDS = {"inf": "Infinity", "-inf": "-Infinity", "nan": "NaN"}


def _float_text(value: float) -> str:
    """A float as PostgreSQL's export writes it: shortest exact digits, 12 not 12.0."""
    text = repr(value)
    if text in _FLOAT_WORDS:
        return _FLOAT_WORDS[text]
    return text[:-2] if text.endswith(".0") else text


def _text_column(values: Sequence[Any]) -> list[str | None]:
    if all(v is None or type(v) is str for v in values):
        return list(values)
    return [render_value(v) for v in values]


def _split_name(source_table: str) -> tuple[str | None, str]:
    """``schema.table`` or ``table``."""
    schema, dot, name = source_table.rpartition(".")
    return (schema or None, name) if dot else (None, source_table)


@dataclass
class DatabaseTableReader:
    """Iterate to stream the table's text chunks; ``sha256`` and ``rows_read`` are set by then.

    Each chunk holds ``source_row`` (continuing across chunks, from 1) and the contract's
    columns as text, at most ``chunk_rows`` rows. Iterating again reads the table again.
    """

    url: str
    source_table: str
    table: SourceTable
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    rows_read: int = field(default=0, init=False)
    # contract columns the table stores as a date type (not a timestamp); known once read
    date_columns: frozenset[str] = field(default=frozenset(), init=False)
    _sha256: str | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.chunk_rows < 1:
            raise ValueError(f"chunk_rows must be at least 1, not {self.chunk_rows}")

    @property
    def shown_url(self) -> str:
        return display_url(self.url)

    @property
    def where(self) -> str:
        return f"{self.source_table} at {self.shown_url}"

    @property
    def sha256(self) -> str:
        """The content hash; known once the table has been read to its end."""
        if self._sha256 is None:
            raise RuntimeError(f"{self.where}: read every chunk before asking for the hash")
        return self._sha256

    def order_by(self) -> list[str]:
        """Key columns first, then the other contract columns: a total, repeatable order."""
        names = self.table.column_names
        key = [k for k in self.table.key if k in names]
        return key + [c for c in names if c not in key]

    def __iter__(self) -> Iterator[pl.DataFrame]:
        try:
            url = make_url(self.url)
        except Exception:
            raise DatabaseSourceError(
                f"{self.source_table}: not a valid SQLAlchemy database URL"
            ) from None
        missing = _missing_sqlite_file(url)
        if missing is not None:  # connecting would create an empty database there
            raise DatabaseSourceError(f"{self.source_table}: no database file at {missing}")
        self.rows_read = 0
        self._sha256 = None
        names = self.table.column_names
        digest = hashlib.sha256()
        digest.update(pl.DataFrame(schema=dict.fromkeys(names, pl.String)).write_csv().encode())
        try:
            engine = create_engine(url, poolclass=NullPool, **_engine_kwargs(url))
        except Exception as exc:  # unknown dialect, driver not installed, bad options
            raise DatabaseSourceError(
                f"{self.where}: cannot open ({type(exc).__name__}: {_scrub(str(exc), url)})"
            ) from None
        try:
            yield from self._stream(engine, url, names, digest)
        finally:
            engine.dispose()
        self._sha256 = digest.hexdigest()

    def _stream(
        self, engine: Engine, url: URL, names: list[str], digest: hashlib._Hash
    ) -> Iterator[pl.DataFrame]:
        schema, name = _split_name(self.source_table)
        try:
            conn = engine.connect()
        except SQLAlchemyError as exc:
            raise DatabaseSourceError(
                f"{self.shown_url}: cannot connect ({_scrub(_driver_message(exc), url)})"
            ) from None
        with conn:
            types = self._check_columns(conn, url, schema, name, names)
            self.date_columns = frozenset(
                c for c, t in types.items() if isinstance(t, Date) and not isinstance(t, DateTime)
            )
            dates_as_text = _reads_dates_as_text(conn)
            src = sql_table(name, *[column(c) for c in names], schema=schema)
            order = [
                # PostgreSQL cannot order json values: their text gives the same total order
                cast(src.c[c], Text) if isinstance(types[c], JSON) else src.c[c]
                for c in self.order_by()
            ]
            stmt = select(
                *[_calendar_text(src.c[c], types[c]) if dates_as_text else src.c[c] for c in names]
            ).order_by(*order)
            try:
                result = conn.execution_options(
                    stream_results=True, yield_per=self.chunk_rows
                ).execute(stmt)
                for rows in result.partitions(self.chunk_rows):
                    columns = list(zip(*rows, strict=True))
                    frame = pl.DataFrame(
                        {c: _text_column(v) for c, v in zip(names, columns, strict=True)},
                        schema=dict.fromkeys(names, pl.String),
                    )
                    digest.update(frame.write_csv(include_header=False).encode())
                    chunk = frame.with_row_index(ROW, offset=self.rows_read + 1)
                    self.rows_read += frame.height
                    yield chunk
            except (SQLAlchemyError, UnicodeError) as exc:
                raise DatabaseSourceError(
                    f"{self.where}: cannot be read ({_read_failure(exc, names)})"
                ) from None

    def _check_columns(
        self, conn: Connection, url: URL, schema: str | None, name: str, names: list[str]
    ) -> dict[str, Any]:
        """The contract columns' reflected types; refused when the table or a column is missing."""
        try:
            present = {c["name"]: c["type"] for c in inspect(conn).get_columns(name, schema=schema)}
        except NoSuchTableError:
            raise DatabaseSourceError(f"{self.where}: no such table") from None
        except SQLAlchemyError as exc:
            raise DatabaseSourceError(
                f"{self.where}: cannot be inspected ({_scrub(_driver_message(exc), url)})"
            ) from None
        if not present:  # some dialects answer an empty column list for a missing table
            raise DatabaseSourceError(f"{self.where}: no such table")
        missing = [c for c in names if c not in present]
        if missing:
            raise DatabaseSourceError(
                f"{self.where}: missing columns {missing} (contract {self.table.name})"
            )
        return {c: present[c] for c in names}


def _reads_dates_as_text(conn: Connection) -> bool:
    """On PostgreSQL, dates and timestamps are read as its ISO text: the driver cannot load
    infinity or a BC date, which must be quarantined like a file's unparsable date, not fail
    the table."""
    if conn.dialect.name != "postgresql":
        return False
    conn.exec_driver_sql("SET DateStyle TO ISO, YMD")  # the server's default may be another
    return True


def _calendar_text(value: Any, type_: Any) -> Any:
    """A date or timestamp column as its ISO text (other columns as they are); a timestamp with
    time zone as the wall-clock time in Beijing it names, without an offset (which is +09 in
    the daylight-saving summers of 1986-1991), whatever the server's TimeZone."""
    if not _is_calendar(type_):
        return value
    if isinstance(type_, DateTime) and type_.timezone:
        value = func.timezone(BUSINESS_TZ.key, value)
    return cast(value, Text)


def _is_calendar(type_: Any) -> bool:
    """A date or timestamp column (as reflected)."""
    return isinstance(type_, Date | DateTime)


def _missing_sqlite_file(url: URL) -> str | None:
    """A SQLite source's file when it does not exist (a mistyped path), else None."""
    if url.get_backend_name() != "sqlite" or url.query.get("uri"):
        return None
    database = url.database or ""
    if database in ("", ":memory:") or Path(database).exists():
        return None
    return database


def _engine_kwargs(url: URL) -> dict[str, Any]:
    libpq = url.get_backend_name() == "postgresql" and url.get_driver_name() in (
        "psycopg",
        "psycopg2",
    )
    if libpq and "connect_timeout" not in url.query:
        return {"connect_args": {"connect_timeout": CONNECT_TIMEOUT_S}}
    return {}


def read_table_chunks(
    url: str, source_table: str, table: SourceTable, *, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> DatabaseTableReader:
    """A reader of ``source_table``'s contract columns; iterate it for the text chunks."""
    return DatabaseTableReader(url, source_table, table, chunk_rows)


def table_sha256(
    url: str, source_table: str, table: SourceTable, *, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> str:
    """The content hash alone (reads the whole table, keeps one chunk at a time)."""
    reader = read_table_chunks(url, source_table, table, chunk_rows=chunk_rows)
    for _ in reader:
        pass
    return reader.sha256
