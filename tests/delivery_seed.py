"""A ledger ready for delivery tests: a grant, a published credit_risk@1 with served rows, banks.

Seeded through the project's own functions and models on SQLite or PostgreSQL (by URL); the
served rows are fixed numbers, since these tests are about delivery, not about scoring. Also the
load the concurrency tests put on it: a bank's lookups from a thread pool, and jobs started
together in threads.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import Engine

from pdo.delivery.consents import register_consent
from pdo.delivery.plans import ensure_default_plan
from pdo.ledger.db import make_engine, session_scope
from pdo.ledger.models import PipelineRun, Product, ProductVersion, ServedScore, SignOff
from pdo.ledger.types import utcnow
from pdo.privacy.checksums import uscc_check_char
from pdo.privacy.entity_key import entity_key
from pdo.privacy.pseudonym import Pseudonymizer
from pdo.registration import grant_authorization, register_departments
from pdo.revenue import RevenueRule
from pdo.settings import Settings
from pdo.subscribers import add_subscriber, find_subscriber

VERSION = "credit_risk@1"
PRICE_FEN = 150
SHARES_BP = {"SAMR": 3000, "STA": 2000}
COMPANIES = [f"91310000MA1K{i:04d}X" + uscc_check_char(f"91310000MA1K{i:04d}X") for i in range(40)]
INDIVIDUAL = "92310000MA1P0001X8"  # a 个体工商户: its code is a natural person's
BANKS = ("甲银行", "乙银行")


@dataclass(frozen=True)
class DeliveryLedger:
    settings: Settings
    engine: Engine
    keys: dict[str, str]  # bank name → plaintext API key
    subscriber_ids: dict[str, str]
    pseudonymizer: Pseudonymizer

    def entity(self, uscc: str) -> str:
        return entity_key(uscc, self.pseudonymizer)

    def consent(
        self,
        bank: str,
        uscc: str,
        reference: str,
        purposes: tuple[str, ...] = ("贷前审查", "贷后管理"),
        days: int = 30,
        starts_days_ago: int = 1,
    ) -> None:
        """Register a consent through the operator's function, committed."""
        start = utcnow() - dt.timedelta(days=starts_days_ago)
        with session_scope(self.engine) as s:
            register_consent(
                s,
                subscriber=find_subscriber(s, bank),
                entity=self.entity(uscc),
                reference=reference,
                purposes=list(purposes),
                valid_from=start,
                valid_until=start + dt.timedelta(days=days),
                actor="operator",
            )


def seed_delivery(
    home: Path, database_url: str | None = None, **bank_limits: int
) -> DeliveryLedger:
    """Grant, published version with a score for every company and the 个体工商户, two banks."""
    settings = Settings(home=home, database_url=database_url)
    engine = make_engine(settings.db_url)
    pseudo = Pseudonymizer.from_settings(settings)
    keys, ids = {}, {}
    limits = {"rate_limit_per_second": 10_000} | bank_limits  # tests that hammer are not throttled
    with session_scope(engine) as s:
        register_departments(s, "admin")
        auth = grant_authorization(
            s,
            reference="授权〔2026〕7号",
            tables=["tax_credit", "enterprise_registry"],
            purposes=["贷前审查", "贷后管理"],
            days=365,
            actor="authority",
        )
        run = PipelineRun(
            source_dir="/deliveries/2026-11",
            authorization_id=auth.id,
            started_by="olga",
            status="published",
            review_package_hash="a" * 64,
        )
        s.add(run)
        s.flush()
        approval = SignOff(
            run_id=run.id,
            reviewer="rita",
            role="reviewer",
            decision="approved",
            covers_hash="a" * 64,
        )
        product = Product(
            name="credit_risk",
            title_zh="中小企业信用风险评分",
            title_en="SME credit-risk score",
            purposes=["贷前审查", "贷后管理"],
            price_fen=PRICE_FEN,
        )
        s.add_all([approval, product])
        s.flush()
        assert approval.id is not None
        s.add(
            ProductVersion(
                id=VERSION,
                product_name="credit_risk",
                version=1,
                run_id=run.id,
                signoff_id=approval.id,
                output_hash="b" * 64,
                as_of=dt.date(2026, 11, 1),
                revenue_weights=RevenueRule(departments_bp=SHARES_BP).weights([]),
            )
        )
        s.flush()
        for i, uscc in enumerate([*COMPANIES, INDIVIDUAL]):
            s.add(
                ServedScore(
                    product_version_id=VERSION,
                    uscc=entity_key(uscc, pseudo),
                    score=560 + i,
                    grade="ABCDE"[i % 5],
                    details={"reasons": [{"code": "R01", "points_lost": 12}], "knockouts": []},
                )
            )
        ensure_default_plan(s, product)
        for bank in BANKS:
            subscriber, key = add_subscriber(s, bank, "operator", ["credit_risk"], **limits)
            keys[bank], ids[bank] = key, subscriber.id
    return DeliveryLedger(settings, engine, keys, ids, pseudo)


@contextmanager
def delivery_ledger(tmp_path: Path, backend: str, **bank_limits: int) -> Iterator[DeliveryLedger]:
    """A seeded delivery ledger on SQLite or on a fresh PostgreSQL database, disposed after."""
    from tests.pg import fresh_database

    if backend == "sqlite":
        seeded = seed_delivery(tmp_path, **bank_limits)
        try:
            yield seeded
        finally:
            seeded.engine.dispose()
        return
    with fresh_database() as url:
        seeded = seed_delivery(tmp_path, url, **bank_limits)
        try:
            yield seeded
        finally:
            seeded.engine.dispose()


def lookups(
    ledger: DeliveryLedger,
    bank: str,
    base: str,
    calls: int,
    *,
    workers: int = 16,
    timeout: float = 5.0,
) -> list[httpx.Response]:
    """`calls` score lookups by `bank` from `workers` threads, in order: the i-th asks for
    COMPANIES[i % 10] under consent reference C-{i % 10} (which the test has registered)."""
    with httpx.Client(timeout=timeout) as client, ThreadPoolExecutor(max_workers=workers) as pool:

        def one(i: int) -> httpx.Response:
            return client.get(
                f"{base}/v1/products/credit_risk/scores/{COMPANIES[i % 10]}",
                params={"purpose": "贷前审查", "consent": f"C-{i % 10}"},
                headers={"X-API-Key": ledger.keys[bank]},
            )

        return list(pool.map(one, range(calls)))


def all_at_once(
    jobs: dict[str, Callable[[], Any]], *, start_s: float, finish_s: float
) -> dict[str, Any]:
    """Run each job in its own thread, all let go together; their results by name.

    Every thread waits at one barrier (broken after `start_s`) before its job. Each thread is
    given `finish_s` to end; a job that raised, or one still running, fails the caller."""
    start = threading.Barrier(len(jobs), timeout=start_s)
    results: dict[str, Any] = {}
    failures: list[BaseException] = []

    def guarded(name: str, work: Callable[[], Any]) -> Callable[[], None]:
        def run() -> None:
            try:
                start.wait()
                results[name] = work()
            except BaseException as exc:
                failures.append(exc)

        return run

    threads = [threading.Thread(target=guarded(n, w), daemon=True) for n, w in jobs.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=finish_s)
    assert not failures, failures
    assert not any(t.is_alive() for t in threads)
    return results
