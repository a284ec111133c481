"""The serving worker: group-commits lookups on the event loop.

Requests that arrive in the same turn of the event loop are decided and metered in one
transaction; every answer is sent only after the transaction that metered it committed.

On SQLite the batch runs on the loop's own thread, right after that turn: a separate writer
thread measured 3x slower here, each of its many short database calls waiting for the GIL
behind the request-parsing thread (a convoy), while every call is in-process anyway. On
PostgreSQL the batch is a task whose two round trips are awaited (`api.serving.pg`): the loop
keeps reading requests meanwhile, and they make up the next batch.

On PostgreSQL the next batch's first round (BEGIN, locks, reads) is queued on the connection
right behind the COMMIT of the one before, so PostgreSQL starts on it as soon as that one
committed, while the API process reads the COMMIT's answer and answers its requests. Without
that, the two took turns: measured under load, the API process 25% idle and PostgreSQL 55%.
(That overlap replaced splitting each batch in halves, which gave the loop work while half of the
open requests were being written: both together measured no better than the overlap alone.)
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sqlite3
import threading
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from api.errors import LedgerUnavailable
from api.serving import pg
from api.serving.batch import ServingBatch, current_snapshot
from api.serving.requests import RefusedElsewhere, ScoreLookup
from api.serving.snapshot import Snapshot, read_generation
from api.serving.sql import run_plan
from api.serving.wire import WireConnection
from pdo.driver_errors import SQLITE_LOCK_HELD, sqlite_error_name
from pdo.ledger.db import make_engine
from pdo.ledger.types import utcnow

log = logging.getLogger(__name__)
# SQLite: a batch finding another writer's lock tries again after 1 ms, doubling to 50 ms, and
# fails (nobody served or billed) after 30 s without it, the ledger's own busy timeout.
LOCK_RETRY_S, LOCK_RETRY_MAX_S, LOCK_WAIT_S = 0.001, 0.05, 30.0


def _busy(exc: OperationalError) -> bool:
    """SQLite refused the write lock because another connection holds it."""
    return sqlite_error_name(exc) in SQLITE_LOCK_HELD


Job = ScoreLookup | RefusedElsewhere
Batch = list[tuple[Job, "asyncio.Future[Job]"]]


def serving_engine(url: str) -> Engine:
    """The worker's own engine; on SQLite every transaction takes the write lock up front.

    BEGIN IMMEDIATE makes a batch wait its turn behind other writers (CLI, pipeline, another API
    process) instead of failing when its read snapshot turns stale at the first write. It does
    not wait inside SQLite (busy timeout 0): the worker waits on the event loop instead (see
    ServingWorker._flush), since the writer it waits for may be this API's own request thread,
    whose answer only the loop can send.
    """
    engine = make_engine(url)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _serving_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # No checkpoint inside a serving commit (it stalls every answer waiting on it): the
            # Checkpointer thread copies the WAL back in the background instead.
            dbapi_conn.execute("PRAGMA wal_autocheckpoint=0")
            dbapi_conn.execute("PRAGMA busy_timeout=0")

        engine.dispose()  # the schema check's pooled connection predates these settings
    return engine


class Checkpointer:
    """Passive WAL checkpoints every `interval` seconds on a connection of its own (SQLite)."""

    def __init__(self, path: str, interval: float = 1.0) -> None:
        self.path, self.interval = path, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pdo-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, timeout=30)
        try:
            while not self._stop.wait(self.interval):
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error:
            log.exception("WAL checkpoint failed; writers fall back to their own checkpoints")
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


class ServingWorker:
    """Owns the serving transaction; the endpoints await its answers."""

    def __init__(self, engine: Engine, max_batch: int = 512, max_wait_turns: int = 4) -> None:
        self.engine, self.max_batch, self.max_wait_turns = engine, max_batch, max_wait_turns
        self.snapshot: Snapshot | None = None
        database = engine.url.database if engine.dialect.name == "sqlite" else None
        self._checkpointer = Checkpointer(database) if database else None
        self._conn: Connection | None = None
        self._async = engine.dialect.name == "postgresql"
        self._aconn: WireConnection | None = None
        self._drainer: asyncio.Task[None] | None = None
        self._pending: Batch = []
        self._scheduled = False
        self._seen = 0  # pending jobs at the last look: the batch waits while it still grows
        self._waited = 0
        self._lock_tries, self._lock_wait_from = 0, 0.0  # waiting for SQLite's write lock

    async def submit(self, job: Job) -> Job:
        """Queue a job for this turn's batch and wait until that batch committed."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Job] = loop.create_future()
        self._pending.append((job, done))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await done

    def _connection(self) -> Connection:
        """The worker's one connection, kept open: a pool checkout per batch cost more than it."""
        if self._conn is None:
            self._conn = self.engine.connect()
        return self._conn

    def _close_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # already broken; the engine replaces it
                log.debug("closing a failed serving connection", exc_info=True)
            self._conn = None

    def stop(self) -> None:
        self._close_connection()
        if self._aconn is not None:
            self._aconn.finish()  # the loop is closing: no round trip to say goodbye
            self._aconn = None
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self.engine.dispose()

    def _flush(self) -> None:
        if len(self._pending) > self._seen and self._waited < self.max_wait_turns:
            # Requests read in this turn of the loop reach us in the next ones: wait a turn
            # while the batch is still growing (microseconds when idle, a full batch under load).
            self._seen, self._waited = len(self._pending), self._waited + 1
            asyncio.get_running_loop().call_soon(self._flush)
            return
        self._scheduled, self._seen, self._waited = False, 0, 0
        if self._async:
            if self._drainer is None or self._drainer.done():
                self._drainer = asyncio.get_running_loop().create_task(self._drain())
            return
        pending, self._pending = self._pending, []
        for start in range(0, len(pending), self.max_batch):
            if not self._process(pending[start : start + self.max_batch]):
                self._pending[:0] = pending[start:]
                self._scheduled = True  # new requests join these; nobody else schedules
                delay = min(LOCK_RETRY_MAX_S, LOCK_RETRY_S * 2 ** min(self._lock_tries, 8))
                asyncio.get_running_loop().call_later(delay, self._flush)
                return

    def _process(self, batch: Batch) -> bool:
        """Serve a batch (SQLite); False when another writer holds the lock: try again later."""
        jobs = [job for job, _ in batch]
        error: BaseException | None = None
        try:
            now = utcnow()
            conn = self._connection()
            try:
                transaction = conn.begin()
            except OperationalError as exc:
                if self._lock_tries == 0:
                    self._lock_wait_from = time.monotonic()
                if not _busy(exc) or time.monotonic() - self._lock_wait_from > LOCK_WAIT_S:
                    raise
                self._close_connection()  # a failed BEGIN leaves no transaction to reuse
                self._lock_tries += 1
                return False
            with transaction:
                self.snapshot = current_snapshot(conn, self.snapshot, now)
                decided = ServingBatch(True, self.snapshot, now)
                raw = conn.connection.dbapi_connection
                assert raw is not None
                run_plan(raw.cursor(), decided.plan(jobs), decided.db)
        except Exception as exc:  # the whole batch rolled back: nobody was served or billed
            log.exception("serving batch of %d failed", len(batch))
            error = exc
            self._close_connection()  # start the next batch on a fresh connection
        self._lock_tries = 0
        self._answer(batch, error)
        return True

    async def _drain(self) -> None:
        """Serve pending jobs batch after batch until none are left (PostgreSQL).

        The next batch's first round is queued right behind this one's COMMIT: PostgreSQL
        starts on it as soon as this one committed, while this process is still reading that
        COMMIT's answer and sending the answers of its requests.
        """
        behind: tuple[Batch, pg.Opened] | None = None
        while self._pending or behind is not None:
            opened: pg.Opened | None = None
            if behind is None:
                batch = self._take()
            else:
                (batch, opened), behind = behind, None
            error: BaseException | None = None
            try:
                if self._aconn is None or self._aconn.closed:
                    self._aconn = await pg.connect(self.engine.url)
                conn = self._aconn
                if opened is None:
                    held = self.snapshot or self._load_snapshot(utcnow())
                    opened = pg.open_batch(conn, [job for job, _ in batch], held)
                    await conn.flush()
                self.snapshot, commit = await pg.decide(conn, opened, self._load_snapshot)
                behind = self._open_behind(conn, self.snapshot)
                await conn.flush()
                await conn.receive(commit)
            except Exception as exc:  # the whole batch rolled back: nobody was served or billed
                log.exception("serving batch of %d failed", len(batch))
                error = exc
                if behind is not None:  # not decided yet: it waits for the next connection
                    self._pending[:0] = behind[0]
                    behind = None
                if self._aconn is not None:  # start the next batch on a fresh connection
                    await self._aconn.close()
                    self._aconn = None
            self._answer(batch, error)

    def _take(self) -> Batch:
        """The next batch: the jobs pending, up to `max_batch`."""
        batch = self._pending[: self.max_batch]
        del self._pending[: self.max_batch]
        return batch

    def _open_behind(
        self, conn: WireConnection, snapshot: Snapshot
    ) -> tuple[Batch, pg.Opened] | None:
        """The next batch with its first round queued; None when no job waits (or when it
        could not be planned: then it failed, and nobody in it was served or billed)."""
        if not self._pending:
            return None
        batch = self._take()
        try:
            return batch, pg.open_batch(conn, [job for job, _ in batch], snapshot)
        except Exception as exc:
            log.exception("serving batch of %d failed", len(batch))
            self._answer(batch, exc)
            return None

    def _load_snapshot(self, now: dt.datetime) -> Snapshot:
        """Keys, subscriptions and live versions as committed, with their generation."""
        with self.engine.connect() as conn, conn.begin():
            return Snapshot.load(conn, read_generation(conn), now)

    @staticmethod
    def _answer(batch: Batch, error: BaseException | None) -> None:
        for job, done in batch:
            if done.cancelled():
                continue
            if error is None:
                done.set_result(job)
            else:
                failed = LedgerUnavailable()
                failed.__cause__ = error
                done.set_exception(failed)
