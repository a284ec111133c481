"""Two pipelines, the API under load and a settlement at once, on one PostgreSQL ledger.

What a province's operator does on a busy day: two departments' deliveries are processed side
by side while banks call the API and last month is settled. Afterwards nothing is lost or
doubled: each run reached the gate with its own datasets, every answered lookup has exactly
one usage event and one chain record, the month closed once, and the audit chain verifies.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, select

from flows.pipeline import run_to_gate, start_run
from pdo import audit
from pdo.ledger.db import session_scope
from pdo.ledger.models import (
    AuditEvent,
    DatasetVersion,
    PipelineRun,
    Settlement,
    StageRun,
    UsageEvent,
)
from pdo.registration import grant_authorization
from pdo.settlement import settle
from pdo.sources.tables import SOURCE_TABLES
from pdo.workspace import Workspace
from tests.delivery_seed import (
    BANKS,
    COMPANIES,
    DeliveryLedger,
    all_at_once,
    delivery_ledger,
    lookups,
)
from tests.live_api import serve_api
from tests.test_chain_concurrency import BACKDATED, NOW, PERIOD, backdate_usage

A, _ = BANKS
CALLS = 400  # lookups during the runs


@pytest.mark.postgres
@pytest.mark.slow
def test_two_pipelines_the_api_and_a_settlement_at_once_lose_and_double_nothing(
    prefect_harness: None, tmp_path: Path
) -> None:
    from pdo.gen import generate

    with delivery_ledger(tmp_path / "home", "postgres") as ledger:
        billed = backdate_usage(ledger)
        for i in range(10):
            ledger.consent(A, COMPANIES[i], f"C-{i}")
        with session_scope(ledger.engine) as s:
            grant = grant_authorization(
                s,
                reference="数授〔2026〕并发号",
                tables=[t.name for t in SOURCE_TABLES],
                purposes=["贷前审查", "贷后管理"],
                products=["credit_risk"],
                days=365,
                actor="authority",
            )
            grant_id = grant.id
        ws = Workspace.open(ledger.settings)
        home, url = str(ledger.settings.resolved_home), ledger.settings.database_url
        run_ids = []
        for seed in (7, 8):
            source = tmp_path / f"delivery-{seed}"
            generate(source, enterprises=200, seed=seed, progress=False)
            run_ids.append(start_run(ws, source, "alice", grant_id).id)

        with serve_api(ledger.settings) as base:
            jobs: dict[str, Callable[[], Any]] = {
                f"run{i}": functools.partial(run_to_gate, r, home, url)
                for i, r in enumerate(run_ids)
            }
            jobs["settle"] = lambda: settle_twice(ledger)
            jobs["call"] = lambda: lookups(ledger, A, base, CALLS, workers=8, timeout=60)
            done = all_at_once(jobs, start_s=120, finish_s=900)
            statuses = [done[f"run{i}"] for i in range(len(run_ids))]
            answers = done["call"]

        assert statuses == ["awaiting_signoff", "awaiting_signoff"]
        assert {a.status_code for a in answers} == {200} and len(answers) == CALLS
        with Session(ledger.engine) as s:
            runs = {r.id: r.status for r in s.exec(select(PipelineRun))}
            stages = s.exec(
                select(StageRun.run_id, StageRun.stage, StageRun.table_name, StageRun.status).where(
                    col(StageRun.run_id).in_(run_ids)
                )
            ).all()
            outputs = [
                h
                for hashes in s.exec(
                    select(StageRun.output_hashes).where(col(StageRun.run_id).in_(run_ids))
                )
                for h in hashes
            ]
            datasets = set(s.exec(select(DatasetVersion.id)))
            usage_ids = set(s.exec(select(UsageEvent.id)))
            served = Counter(
                s.exec(select(AuditEvent.subject).where(AuditEvent.action == "query.serve"))
            )
            seqs = list(s.exec(select(AuditEvent.seq).order_by(col(AuditEvent.seq))))
            closed = s.exec(select(Settlement).where(Settlement.period == PERIOD)).all()
            chain = audit.verify(s)
    assert all(runs[r] == "awaiting_signoff" for r in run_ids)
    per_run = Counter(run for run, *_ in stages)
    assert per_run[run_ids[0]] == per_run[run_ids[1]] > 0  # the same stages for each run
    assert {status for *_, status in stages} == {"succeeded"}
    assert len(set(stages)) == len(stages)  # none recorded twice
    assert outputs and set(outputs) <= datasets  # every output recorded with its dataset
    answered = {a.json()["usage_id"] for a in answers}
    assert answered <= usage_ids and len(answered) == CALLS
    assert len(usage_ids) == CALLS + BACKDATED  # nothing else was billed
    assert set(served) == usage_ids and set(served.values()) == {1}
    assert seqs == list(range(1, len(seqs) + 1))  # no gap, no fork
    assert len(closed) == 1 and closed[0].net_fen == billed  # closed once, as billed
    assert chain.ok, chain


def settle_twice(ledger: DeliveryLedger) -> None:
    """Two operators settle the month at once: it must close once."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        for done in [pool.submit(_settle, ledger) for _ in range(2)]:
            done.result()


def _settle(ledger: DeliveryLedger) -> None:
    with session_scope(ledger.engine) as s:
        settle(s, PERIOD, "operator", NOW + dt.timedelta(seconds=1))
