"""Engines and sessions for the ledger: SQLite under PDO_HOME, or PostgreSQL by URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, create_engine

from pdo.ledger import models  # noqa: F401  (registers the tables on SQLModel.metadata)


def make_engine(url: str) -> Engine:
    """An engine for the ledger URL with schema created on first use."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # transactions begin where SQLAlchemy says (below)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # A unit of work takes the write lock up front and waits its turn behind other
            # writers; a deferred one would fail when its read snapshot turned stale at its first
            # write (the audit chain's tail, a settlement, a counter). Readers begin deferred.
            read_only = conn.get_execution_options().get(READ_ONLY, False)
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
    else:
        engine = create_engine(url, pool_pre_ping=True)
    SQLModel.metadata.create_all(engine)
    return engine


READ_ONLY = "pdo_read_only"


@contextmanager
def read_scope(engine: Engine) -> Iterator[Session]:
    """A session that only reads (console pages, reports): never takes SQLite's write lock."""
    # Closing (not rolling back) ends the transaction and keeps what was read usable after it.
    with Session(engine.execution_options(**{READ_ONLY: True})) as session:
        yield session


@contextmanager
def snapshot_scope(engine: Engine) -> Iterator[Session]:
    """A read session whose statements all see one snapshot, for checks that compare tables
    written together (usage events and their chain records) while the API keeps serving.

    PostgreSQL: one REPEATABLE READ, read-only transaction (READ COMMITTED would give each
    statement its own snapshot). SQLite: a deferred read transaction is one snapshot already.
    """
    options: dict[str, Any] = {READ_ONLY: True}
    if engine.dialect.name == "postgresql":
        options |= {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
    with Session(engine.execution_options(**options)) as session:
        yield session


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
