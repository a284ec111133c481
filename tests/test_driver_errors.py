"""Driver error codes read from real sqlite3 and psycopg errors, bare and wrapped by SQLAlchemy."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from pdo.driver_errors import (
    SQLITE_LOCK_HELD,
    SQLITE_RETRYABLE,
    driver_error_code,
    sqlite_error_name,
)


def test_a_sqlite_error_is_named_bare_and_wrapped(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(OperationalError) as wrapped, engine.connect() as conn:
        conn.execute(text("SELECT * FROM no_such_table"))
    assert driver_error_code(wrapped.value) == "SQLITE_ERROR"
    assert driver_error_code(wrapped.value.orig) == "SQLITE_ERROR"  # type: ignore[arg-type]
    assert sqlite_error_name(wrapped.value) == "SQLITE_ERROR"
    assert "SQLITE_ERROR" not in SQLITE_RETRYABLE  # a schema error does not pass by waiting
    engine.dispose()


def test_a_held_write_lock_is_busy_and_worth_retrying(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError) as busy:
        other.execute("BEGIN IMMEDIATE")
    holder.close()
    other.close()
    assert sqlite_error_name(busy.value) in SQLITE_LOCK_HELD
    assert driver_error_code(busy.value) in SQLITE_RETRYABLE


def test_an_error_of_no_driver_has_no_code() -> None:
    assert driver_error_code(ValueError("x")) is None
    assert sqlite_error_name(ValueError("x")) is None


@pytest.mark.postgres
def test_a_postgresql_error_gives_its_sqlstate_and_no_sqlite_name() -> None:
    engine = create_engine(os.environ["PDO_TEST_POSTGRES_URL"])
    with pytest.raises(ProgrammingError) as wrapped, engine.connect() as conn:
        conn.execute(text("SELECT * FROM no_such_table"))
    engine.dispose()
    assert driver_error_code(wrapped.value) == "42P01"  # undefined_table
    assert sqlite_error_name(wrapped.value) is None
