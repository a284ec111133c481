"""Billing evidence: usage events served through the real API match their audit-chain records,
and any change, insertion or deletion in `usage_event` afterwards is found."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from pdo import settlement
from pdo.cli import app
from pdo.delivery.metering import meter_delivery
from pdo.delivery.periods import business_month
from pdo.ledger.db import session_scope, snapshot_scope
from pdo.ledger.models import Subscription, UsageEvent
from pdo.ledger.types import utcnow
from pdo.usage_chain import check_usage
from tests.delivery_seed import (
    BANKS,
    COMPANIES,
    VERSION,
    DeliveryLedger,
    delivery_ledger,
    seed_delivery,
)
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
        "marked as billed in a month never closed",
        lambda led, uid: _tamper(
            led, "UPDATE usage_event SET settled_period = '2000-01' WHERE id = :u", u=uid
        ),
        "marked as billed in 2000-01, a period never closed",
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
        "served_at made unreadable",
        lambda led, uid: _tamper(
            led, "UPDATE usage_event SET served_at = 'yesterday' WHERE id = :u", u=uid
        ),
        "unreadable served_at",
    ),
    (
        "price made text",
        lambda led, uid: _tamper(
            led, "UPDATE usage_event SET price_fen = 'x150' WHERE id = :u", u=uid
        ),
        "unreadable price_fen",
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


def test_an_event_moved_out_of_a_closed_month_is_found(
    served: DeliveryLedger, tmp_path: Path
) -> None:
    """A closed month's usage rows must still give what it billed: an event taken out of it (to
    be billed again, or never) is found, though each row still matches its chain record."""
    copy = seed_copy(served, tmp_path)
    period = business_month(utcnow())
    _, end = settlement.period_bounds(period)
    with session_scope(copy.engine) as s:
        closed = settlement.settle(s, period, "operator", end + dt.timedelta(days=1))
        events, billed = closed.events, closed.billed_fen
    target = _usage_ids(copy)[1]
    with Session(copy.engine) as s:
        moved = s.get(UsageEvent, target)
        assert moved is not None
        price = moved.price_fen
    _tamper(copy, "UPDATE usage_event SET settled_period = NULL WHERE id = :u", u=target)
    ok, matched, problems = _check(copy)
    assert not ok and matched == 3
    assert problems == [
        (
            f"settlement {period}",
            f"its usage events now give {events - 1} events, {billed - price} fen; "
            f"it closed with {events} events, {billed} fen",
        )
    ]


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


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _serve_one_alert(engine: Engine, subscriber_id: str, n: int) -> None:
    """What the API commits for one delivered alert: the usage event and its chain record."""
    with session_scope(engine) as s:
        sub = s.exec(select(Subscription).where(Subscription.subscriber_id == subscriber_id)).one()
        meter_delivery(
            s,
            subscription=sub,
            product_version_id=VERSION,
            kind="alert",
            purpose="贷后管理",
            units=1,
            delivery_key=f"alert:{n}",
            uscc=COMPANIES[n],
        )


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_delivery_served_while_verify_reads_is_not_a_finding(
    tmp_path: Path, backend: str
) -> None:
    with delivery_ledger(tmp_path, backend) as ledger:
        bank = ledger.subscriber_ids[A]
        _serve_one_alert(ledger.engine, bank, 0)
        served_between: list[int] = []

        def between_the_two_reads(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
            """The API commits one more delivery after verify has read the chain's records."""
            if not served_between and "FROM usage_event" in statement:
                served_between.append(1)
                _serve_one_alert(ledger.engine, bank, 1)

        env = {
            "PDO_HOME": str(ledger.settings.resolved_home),
            "PDO_DATABASE_URL": ledger.settings.database_url,
        }
        event.listen(Engine, "before_cursor_execute", between_the_two_reads)
        try:
            result = CliRunner().invoke(app, ["audit", "verify", "--json"], env=env)
        finally:
            event.remove(Engine, "before_cursor_execute", between_the_two_reads)
        assert served_between
        usage = json.loads(result.output)["usage"]
        assert result.exit_code == 0, usage["first_problems"]
        assert (usage["ok"], usage["matched"]) == (True, 1)  # as of the moment verify began
        with snapshot_scope(ledger.engine) as s:
            assert check_usage(s).matched == 2
