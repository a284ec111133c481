"""Several writers at once never fork the audit chain or lose an event (SQLite and PostgreSQL).

While threads append audit records in their own sessions (as the pipeline and the CLI do), a
separate Python process appends its own, the real API serves concurrent lookups over HTTP, and
two operators settle a back-dated month at once. Afterwards the chain verifies, its seq runs
1..N without gaps, every writer's records are there exactly once and in its own order, every
usage event has exactly one query.serve record that matches it, and the month closed once.
"""

from __future__ import annotations

import datetime as dt
import functools
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, col, select

from pdo import audit
from pdo.delivery.metering import details_of
from pdo.ledger.db import session_scope
from pdo.ledger.models import AuditEvent, Settlement, Subscription, UsageEvent
from pdo.settlement import reconciles, settle
from tests.delivery_seed import (
    BANKS,
    COMPANIES,
    VERSION,
    DeliveryLedger,
    all_at_once,
    delivery_ledger,
    lookups,
)
from tests.live_api import serve_api

A, B = BANKS
ROOT = Path(__file__).resolve().parent.parent
THREADS, RECORDS = 4, 30  # in-process writers, records each
CHILD_RECORDS = 40  # appended by a separate process
CALLS = 150  # concurrent API lookups
BACKDATED = 24  # usage events in the month being settled
PERIOD = "2026-10"
NOW = dt.datetime(2026, 12, 1, 3, tzinfo=dt.UTC)

# A writer in its own process: imports first, says so, waits for "go", then appends.
CHILD = """
import sys
from pdo import audit
from pdo.ledger.db import make_engine, session_scope
engine = make_engine(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
for i in range(int(sys.argv[2])):
    with session_scope(engine) as s:
        audit.record(s, "child", "test.write", f"child:{i}", i=i)
engine.dispose()
"""


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[DeliveryLedger]:
    with delivery_ledger(tmp_path, request.param) as seeded:
        yield seeded


def backdate_usage(ledger: DeliveryLedger) -> int:
    """BACKDATED served lookups in PERIOD, stored and chained as the API would; their total."""
    start = dt.datetime(2026, 10, 1, 8, tzinfo=dt.UTC)
    with session_scope(ledger.engine) as s:
        sub = s.exec(
            select(Subscription).where(Subscription.subscriber_id == ledger.subscriber_ids[B])
        ).one()
        for i in range(BACKDATED):
            usage = UsageEvent(
                subscriber_id=sub.subscriber_id,
                subscription_id=sub.id,
                product_version_id=VERSION,
                uscc=ledger.entity(COMPANIES[i % len(COMPANIES)]),
                purpose="贷前审查",
                price_fen=sub.price_fen,
                served_at=start + dt.timedelta(hours=i),
            )
            s.add(usage)
            s.flush()
            audit.record(
                s, f"subscriber:{sub.subscriber_id}", "query.serve", usage.id, **details_of(usage)
            )
        return BACKDATED * sub.price_fen


def test_concurrent_writers_leave_one_valid_chain_with_every_event(
    ledger: DeliveryLedger,
) -> None:
    billed = backdate_usage(ledger)
    for i in range(10):
        ledger.consent(A, COMPANIES[i], f"C-{i}")
    with Session(ledger.engine) as s:
        head_before = audit.head(s)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, ledger.settings.db_url, str(CHILD_RECORDS)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        with serve_api(ledger.settings) as base:
            answers = _all_at_once(ledger, base, child)
        _, errors = child.communicate(timeout=60)
        assert child.returncode == 0, errors
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert {a.status_code for a in answers} == {200}
    served = {a.json()["usage_id"] for a in answers}
    assert len(served) == CALLS

    with Session(ledger.engine) as s:
        report = audit.verify(s)
        chain = s.exec(select(AuditEvent).order_by(col(AuditEvent.seq))).all()
        usage = s.exec(select(UsageEvent)).all()
        closed = s.get(Settlement, PERIOD)
        assert closed is not None and reconciles(s, closed)
    assert report.ok, report.reason
    assert [e.seq for e in chain] == list(range(1, len(chain) + 1))  # no gap, no fork
    assert len(chain) == head_before + THREADS * RECORDS + CHILD_RECORDS + CALLS + 1

    writes: dict[str, list[tuple[int, int]]] = defaultdict(list)  # actor -> (seq, i)
    for e in chain:
        if e.action == "test.write":
            writes[e.actor].append((e.seq, e.details["i"]))
    expected = {f"writer-{n}": RECORDS for n in range(THREADS)} | {"child": CHILD_RECORDS}
    assert {actor: len(got) for actor, got in writes.items()} == expected
    for got in writes.values():  # each writer's records once each, in the order it wrote them
        assert [i for _, i in got] == list(range(len(got)))

    records: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in chain:
        if e.action == "query.serve":
            records[e.subject].append(e.details)
    assert {u.id for u in usage} == set(records) and served <= set(records)
    for u in usage:
        assert records[u.id] == [details_of(u)]  # exactly one record, and it matches

    assert (closed.events, closed.billed_fen, closed.net_fen) == (BACKDATED, billed, billed)
    taken = Counter(u.settled_period for u in usage)
    assert taken == Counter({PERIOD: BACKDATED, None: CALLS})  # today's calls stay open
    closes = [e for e in chain if e.action == "settlement.close"]
    assert [(e.subject, e.details["digest"]) for e in closes] == [(PERIOD, closed.digest)]
    assert {u.id for u in usage if u.settled_period is None} == served


def _all_at_once(
    ledger: DeliveryLedger, base: str, child: subprocess.Popen[str]
) -> list[httpx.Response]:
    """Start every writer together; return the API's answers once all are done."""

    def writer(n: int) -> None:
        for i in range(RECORDS):
            with session_scope(ledger.engine) as s:
                audit.record(s, f"writer-{n}", "test.write", f"writer-{n}:{i}", n=n, i=i)

    def settler() -> None:
        with session_scope(ledger.engine) as s:
            settle(s, PERIOD, "operator", NOW)

    def releaser() -> None:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()

    jobs: dict[str, Callable[[], Any]] = {
        f"writer-{n}": functools.partial(writer, n) for n in range(THREADS)
    }
    # two operators settle the same month at once: it closes once
    jobs |= {"settler-1": settler, "settler-2": settler, "releaser": releaser}
    jobs["caller"] = lambda: lookups(ledger, A, base, CALLS)
    answers: list[httpx.Response] = all_at_once(jobs, start_s=60, finish_s=120)["caller"]
    assert len(answers) == CALLS
    return answers
