"""Subscribing again mid-month carries the month's calls over, even those a serving batch is
counting at that moment (PostgreSQL, where both run at once)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from pdo import audit
from pdo.delivery.periods import business_month
from pdo.delivery.plans import add_plan
from pdo.ledger.db import session_scope
from pdo.ledger.models import ServingCounter
from pdo.ledger.types import utcnow
from pdo.subscribers import find_subscriber, subscribe
from tests.delivery_seed import delivery_ledger

pytestmark = pytest.mark.postgres


def test_a_call_counted_while_the_bank_subscribes_again_still_counts(tmp_path: Path) -> None:
    with delivery_ledger(tmp_path, "postgresql") as ledger:
        month = business_month(utcnow())
        with session_scope(ledger.engine) as s:
            plan = add_plan(
                s,
                product_name="credit_risk",
                name="trial",
                title_zh="试用套餐",
                price_fen=50,
                monthly_quota=10,
                validity_days=30,
                refund_withheld=True,
                actor="operator",
            )
            first = subscribe(s, find_subscriber(s, "甲银行"), plan.id, "operator")
            s.add(ServingCounter(counter=f"quota:{first.id}", period=month, used=1))

        batch = Session(ledger.engine)  # a serving batch counting one more call, not committed
        audit.hold_chain(batch)
        batch.execute(
            text("UPDATE serving_counter SET used = used + 1 WHERE counter = :c AND period = :p"),
            {"c": f"quota:{first.id}", "p": month},
        )
        replaced: dict[str, int] = {}

        def subscribe_again() -> None:
            with session_scope(ledger.engine) as s:
                again = subscribe(
                    s, find_subscriber(s, "甲银行"), plan.id, "operator", ["贷前审查"]
                )
                replaced["id"] = again.id or 0

        thread = threading.Thread(target=subscribe_again)
        thread.start()
        time.sleep(0.5)  # the subscription waits for the batch or reads before it commits
        batch.commit()
        batch.close()
        thread.join(30)
        with Session(ledger.engine) as s:
            carried = s.exec(
                select(ServingCounter.used).where(
                    ServingCounter.counter == f"quota:{replaced['id']}",
                    ServingCounter.period == month,
                )
            ).one()
        assert carried == 2
