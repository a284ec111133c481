"""Billing evidence: usage events served through the real API match their audit-chain records,
and any change, insertion or deletion in `usage_event` afterwards is found."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from pdo.ledger.models import UsageEvent
from pdo.usage_chain import check_usage
from tests.delivery_seed import BANKS, COMPANIES, DeliveryLedger, seed_delivery
from tests.live_api import serve_api

A = BANKS[0]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeliveryLedger]:
    """Three answered lookups through the API; each test then tampers with a copy."""
    ledger = seed_delivery(tmp_path_factory.mktemp("usage-chain"))
    for i, uscc in enumerate(COMPANIES[:3]):
        ledger.consent(A, uscc, f"C-{i}")
    with serve_api(ledger.settings) as base:
        for i, uscc in enumerate(COMPANIES[:3]):
            r = httpx.get(
                f"{base}/v1/products/credit_risk/scores/{uscc}",
                params={"purpose": "贷前审查", "consent": f"C-{i}"},
                headers={"X-API-Key": ledger.keys[A]},
            )
            assert r.status_code == 200, r.text
    yield ledger


def _usage_ids(ledger: DeliveryLedger) -> list[str]:
    with Session(ledger.engine) as s:
        return sorted(s.exec(select(UsageEvent.id)).all())


def _check(ledger: DeliveryLedger) -> tuple[bool, int, list[tuple[str, str]]]:
    with Session(ledger.engine) as s:
        report = check_usage(s)
    return report.ok, report.matched, report.problems


def test_served_usage_matches_the_chain(served: DeliveryLedger) -> None:
    assert _check(served) == (True, 3, [])


def _tamper(ledger: DeliveryLedger, sql: str, **params: object) -> None:
    with ledger.engine.begin() as conn:
        conn.execute(text(sql), params)


Tamper = Callable[[DeliveryLedger, str], None]
CASES: list[tuple[str, Tamper, str]] = [
    (
        "price lowered",
        lambda led, uid: _tamper(led, "UPDATE usage_event SET price_fen = 1 WHERE id = :u", u=uid),
        "differs from its audit record in: price_fen",
    ),
    (
        "purpose rewritten",
        lambda led, uid: _tamper(
            led, "UPDATE usage_event SET purpose = '贷后管理' WHERE id = :u", u=uid
        ),
        "differs from its audit record in: purpose",
    ),
    (
        "event deleted",
        lambda led, uid: _tamper(led, "DELETE FROM usage_event WHERE id = :u", u=uid),
        "on the audit chain but missing from usage_event",
    ),
    (
        "event inserted outside the API",
        lambda led, uid: _tamper(
            led,
            "INSERT INTO usage_event (id, subscriber_id, api_key_id, subscription_id, "
            "product_version_id, kind, status, uscc, purpose, consent_id, units, price_fen, "
            "overage, delivery_key, served_at, settled_period) SELECT 'forged', subscriber_id, "
            "api_key_id, subscription_id, product_version_id, kind, status, uscc, purpose, "
            "consent_id, units, price_fen, overage, NULL, served_at, NULL FROM usage_event "
            "WHERE id = :u",
            u=uid,
        ),
        "no record on the audit chain",
    ),
    (
        "its audit record made unreadable",
        lambda led, uid: _tamper(
            led, "UPDATE audit_event SET details = '{not json' WHERE subject = :u", u=uid
        ),
        "differs from its audit record in: consent, entity",
    ),
]


@pytest.mark.parametrize(("case", "tamper", "finding"), CASES, ids=[c[0] for c in CASES])
def test_a_change_to_billed_usage_is_found(
    served: DeliveryLedger, tmp_path: Path, case: str, tamper: Tamper, finding: str
) -> None:
    copy = seed_copy(served, tmp_path)
    target = _usage_ids(copy)[1]
    tamper(copy, target)
    ok, matched, problems = _check(copy)
    forged = case == "event inserted outside the API"
    assert not ok and matched == (3 if forged else 2)
    ((usage_id, what),) = problems
    assert usage_id == ("forged" if forged else target)
    assert what.startswith(finding)


def seed_copy(ledger: DeliveryLedger, tmp_path: Path) -> DeliveryLedger:
    """A byte copy of the module's SQLite ledger, so each tamper starts from the clean one."""
    import dataclasses
    import sqlite3

    from pdo.ledger.db import make_engine
    from pdo.settings import Settings

    source = ledger.settings.db_url.removeprefix("sqlite:///")
    target = tmp_path / "ledger.db"
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    settings = Settings(home=tmp_path)
    return dataclasses.replace(ledger, settings=settings, engine=make_engine(settings.db_url))
