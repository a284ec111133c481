"""The serving worker: group-commits lookups on the event loop.

Requests that arrive in the same turn of the event loop are decided and metered in one
transaction, run right after that turn; every answer is sent only after the transaction that
metered it committed. The batch runs on the loop's own thread: a separate writer thread
measured 3× slower here, each of its many short database calls waiting for the GIL behind the
request-parsing thread (a convoy), while the requests could not proceed without it anyway.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from api.serving.batch import ServingBatch, current_snapshot
from api.serving.requests import RefusedElsewhere, ScoreLookup
from api.serving.snapshot import Snapshot
from pdo.ledger.db import make_engine
from pdo.ledger.types import utcnow

log = logging.getLogger(__name__)
Job = ScoreLookup | RefusedElsewhere


def serving_engine(url: str) -> Engine:
    """The worker's own engine; on SQLite every transaction takes the write lock up front.

    BEGIN IMMEDIATE makes a batch wait its turn behind other writers (CLI, pipeline, another API
    process) instead of failing when its read snapshot turns stale at the first write.
    """
    engine = make_engine(url)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _no_autocheckpoint(dbapi_conn: Any, _record: Any) -> None:
            # No checkpoint inside a serving commit (it stalls every answer waiting on it): the
            # Checkpointer thread copies the WAL back in the background instead.
            dbapi_conn.execute("PRAGMA wal_autocheckpoint=0")

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
        self._pending: list[tuple[Job, asyncio.Future[Job]]] = []
        self._scheduled = False
        self._seen = 0  # pending jobs at the last look: the batch waits while it still grows
        self._waited = 0

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
        pending, self._pending = self._pending, []
        for start in range(0, len(pending), self.max_batch):
            self._process(pending[start : start + self.max_batch])

    def _process(self, batch: list[tuple[Job, asyncio.Future[Job]]]) -> None:
        jobs = [job for job, _ in batch]
        error: BaseException | None = None
        try:
            now = utcnow()
            conn = self._connection()
            with conn.begin():
                self.snapshot = current_snapshot(conn, self.snapshot, now)
                ServingBatch(conn, self.snapshot, now).run(jobs)
        except Exception as exc:  # the whole batch rolled back: nobody was served or billed
            log.exception("serving batch of %d failed", len(batch))
            error = exc
            self._close_connection()  # start the next batch on a fresh connection
        for job, done in batch:
            if done.cancelled():
                continue
            if error is None:
                done.set_result(job)
            else:
                done.set_exception(error)
