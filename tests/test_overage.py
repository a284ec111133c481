"""Overage: calls beyond a plan's monthly quota are served at its overage price, and billed so.

A real ledger seeded by tests/delivery_seed.py (SQLite; PostgreSQL when PDO_TEST_POSTGRES_URL is
set), the plan added and subscribed through the operator's functions, the real API over HTTP,
the month then settled. A plan without an overage price still refuses with 429 quota_exceeded:
that is tested in tests/test_delivery_api.py.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, select

from pdo import audit
from pdo.delivery import generation
from pdo.delivery.metering import details_of
from pdo.delivery.plans import add_plan
from pdo.ledger.db import session_scope
from pdo.ledger.models import AuditEvent, Objection, StatementLine, UsageEvent
from pdo.settlement import settle
from pdo.subscribers import find_subscriber, subscribe
from tests.delivery_seed import BANKS, COMPANIES, DeliveryLedger, delivery_ledger
from tests.live_api import serve_api

A, _ = BANKS
PRICE, OVERAGE = 50, 80
BEIJING = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[DeliveryLedger]:
    with delivery_ledger(tmp_path, request.param) as seeded:
        yield seeded


def metered_plan(ledger: DeliveryLedger, quota: int, refund_withheld: bool = True) -> int:
    """Subscribe 甲银行 to a plan at PRICE a call, `quota` calls a month, OVERAGE beyond."""
    with session_scope(ledger.engine) as s:
        plan = add_plan(
            s,
            product_name="credit_risk",
            name="metered" if refund_withheld else "metered-no-refund",
            title_zh="按量套餐",
            price_fen=PRICE,
            monthly_quota=quota,
            overage_price_fen=OVERAGE,
            validity_days=30,
            refund_withheld=refund_withheld,
            actor="operator",
        )
        sub = subscribe(s, find_subscriber(s, A), plan.id, "operator")
        assert sub.id is not None
        return sub.id


def ask(
    base: str,
    key: str,
    uscc: str = COMPANIES[0],
    consent: str = "C-1",
    client: httpx.Client | None = None,
) -> httpx.Response:
    get = client.get if client is not None else httpx.get
    return get(
        f"{base}/v1/products/credit_risk/scores/{uscc}",
        params={"purpose": "贷前审查", "consent": consent},
        headers={"X-API-Key": key},
    )


def month_end(at: dt.datetime) -> tuple[str, dt.datetime]:
    """The business month (Beijing) of an instant, and the first instant after it."""
    local = at.astimezone(BEIJING)
    year, month = local.year, local.month
    end = dt.datetime(year + month // 12, month % 12 + 1, 1, tzinfo=BEIJING)
    return f"{year:04d}-{month:02d}", end.astimezone(dt.UTC)


def test_calls_beyond_the_quota_are_served_at_the_overage_price_and_billed_as_overage(
    ledger: DeliveryLedger,
) -> None:
    subscription = metered_plan(ledger, quota=2)
    ledger.consent(A, COMPANIES[0], "C-1")
    with serve_api(ledger.settings) as base:
        answers = [ask(base, ledger.keys[A]) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200], answers[-1].text
    assert [a.json()["price_fen"] for a in answers] == [PRICE, PRICE, OVERAGE]
    ids = [a.json()["usage_id"] for a in answers]
    with Session(ledger.engine) as s:
        usage = {u.id: u for u in s.exec(select(UsageEvent))}
        chained = {
            e.subject: e.details
            for e in s.exec(select(AuditEvent).where(AuditEvent.action == "query.serve"))
        }
        assert audit.verify(s).ok
    assert sorted(usage) == sorted(ids)
    assert [(usage[i].price_fen, usage[i].overage) for i in ids] == [
        (PRICE, False),
        (PRICE, False),
        (OVERAGE, True),
    ]
    assert {usage[i].subscription_id for i in ids} == {subscription}
    assert chained == {i: details_of(usage[i]) for i in ids}  # the chain says overage too
    period, end = month_end(usage[ids[0]].served_at)
    assert {month_end(u.served_at)[0] for u in usage.values()} == {period}
    with session_scope(ledger.engine) as s:
        settle(s, period, "operator", end + dt.timedelta(minutes=1))
    with Session(ledger.engine) as s:
        line = s.exec(select(StatementLine)).one()
    assert (line.period, line.subscription_id, line.plan_id) == (
        period,
        subscription,
        "credit_risk/metered",
    )
    assert (line.monthly_quota, line.units, line.overage_units) == (2, 3, 1)
    assert (line.charged_fen, line.refunded_fen, line.net_fen) == (
        2 * PRICE + OVERAGE,
        0,
        2 * PRICE + OVERAGE,
    )


@pytest.mark.parametrize("refunded", [True, False], ids=["refunds-withheld", "bills-withheld"])
def test_withheld_answers_a_plan_refunds_take_no_call_of_the_quota(
    ledger: DeliveryLedger, refunded: bool
) -> None:
    """Two answers withheld as disputed, then a scored one: on a plan that refunds withheld
    answers the scored one is still within a quota of 2; on one that bills them it is overage."""
    metered_plan(ledger, quota=2, refund_withheld=refunded)
    ledger.consent(A, COMPANIES[0], "C-1")
    ledger.consent(A, COMPANIES[1], "C-2")
    with session_scope(ledger.engine) as s:
        s.add(
            Objection(
                uscc=ledger.entity(COMPANIES[1]),
                product_name="credit_risk",
                item="tax_credit:2024",
                reason="企业称纳税信用等级有误",
                raised_by="olga",
            )
        )
        generation.bump(s)
    with serve_api(ledger.settings) as base:
        answers = [ask(base, ledger.keys[A], COMPANIES[1], "C-2") for _ in range(2)]
        answers.append(ask(base, ledger.keys[A]))
    assert [a.status_code for a in answers] == [200, 200, 200], answers[-1].text
    assert [a.json()["status"] for a in answers] == ["disputed_withheld"] * 2 + ["served"]
    assert answers[-1].json()["price_fen"] == (PRICE if refunded else OVERAGE)
    with Session(ledger.engine) as s:
        usage = {u.id: u for u in s.exec(select(UsageEvent))}
    assert [usage[a.json()["usage_id"]].overage for a in answers] == [False, False, not refunded]


def test_concurrent_calls_use_up_the_quota_exactly_once(ledger: DeliveryLedger) -> None:
    """Calls racing past the quota: exactly `quota` are billed at the plan price, the rest at the
    overage price, none refused."""
    quota, calls = 5, 40
    metered_plan(ledger, quota=quota)
    ledger.consent(A, COMPANIES[0], "C-1")
    with (
        serve_api(ledger.settings) as base,
        httpx.Client() as client,
        ThreadPoolExecutor(max_workers=12) as pool,
    ):
        answers = list(pool.map(lambda _: ask(base, ledger.keys[A], client=client), range(calls)))
    assert {a.status_code for a in answers} == {200}
    with Session(ledger.engine) as s:
        stored = Counter((u.price_fen, u.overage) for u in s.exec(select(UsageEvent)))
    assert stored == Counter({(PRICE, False): quota, (OVERAGE, True): calls - quota})
    assert Counter(a.json()["price_fen"] for a in answers) == Counter(
        {PRICE: quota, OVERAGE: calls - quota}
    )
