"""Listing alerts (which delivers them) against an ack on PostgreSQL: one lock order, no deadlock.

A bank's poller lists a page while the same bank acks an alert further down it. The ack takes its
alert's row, then the audit chain's lock; listing used to meter the first alert (the chain's lock)
and then wait for the second row, a cycle PostgreSQL broke by killing one of them.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import Session, func, select

from pdo import audit
from pdo.delivery import alerts as al
from pdo.ledger.db import session_scope
from pdo.ledger.models import Alert, UsageEvent, Watchlist, WatchlistMember
from pdo.ledger.types import utcnow
from tests.delivery_seed import COMPANIES, DeliveryLedger, delivery_ledger

pytestmark = pytest.mark.postgres


def _two_alerts(ledger: DeliveryLedger, bank: str) -> list[str]:
    with session_scope(ledger.engine) as s:
        watchlist = Watchlist(name="贷后组合", product_name="credit_risk", subscriber_id=bank)
        s.add(watchlist)
        s.flush()
        start, ids = utcnow(), []
        for i, code in enumerate(COMPANIES[:2]):
            member = WatchlistMember(
                watchlist_id=watchlist.id,
                uscc=ledger.entity(code),
                shown_as=code,
            )
            s.add(member)
            s.flush()
            alert = Alert(
                watchlist_id=watchlist.id,
                subscriber_id=bank,
                member_id=member.id,
                kind="new_version",
                product_version_id="credit_risk@1",
                payload={"enterprise": code, "score": 600},
                dedupe_key=f"k{i}",
                queued_at=start + dt.timedelta(seconds=i),
            )
            s.add(alert)
            s.flush()
            ids.append(alert.id)
    return ids


def test_listing_while_the_bank_acks_one_of_the_page_meters_each_alert_once(
    tmp_path: Path,
) -> None:
    with delivery_ledger(tmp_path, "postgresql") as ledger:
        bank = ledger.subscriber_ids["甲银行"]
        _, second = _two_alerts(ledger, bank)
        failures: dict[str, str] = {}
        row_taken = threading.Event()

        def ack() -> None:
            with Session(ledger.engine, expire_on_commit=False) as s:
                try:
                    s.get(Alert, second, with_for_update=True)  # as ack_alert starts
                    row_taken.set()
                    time.sleep(1.0)  # the listing meanwhile reaches the second row
                    al.ack_alert(s, bank, second)
                    s.commit()
                except Exception as exc:
                    s.rollback()
                    failures["ack"] = type(exc).__name__

        def list_page() -> None:
            row_taken.wait()
            with Session(ledger.engine, expire_on_commit=False) as s:
                try:
                    al.list_alerts(s, bank, limit=10)
                    s.commit()
                except Exception as exc:
                    s.rollback()
                    failures["list"] = type(exc).__name__

        threads = [threading.Thread(target=ack), threading.Thread(target=list_page)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        with Session(ledger.engine) as s:
            billed = s.exec(
                select(func.count()).select_from(UsageEvent).where(UsageEvent.kind == "alert")
            ).one()
        assert failures == {}
        assert billed == 2


def _watch(ledger: DeliveryLedger, bank: str, codes: list[str]) -> None:
    """A credit_risk watchlist of the bank holding these companies, committed."""
    with session_scope(ledger.engine) as s:
        watchlist = Watchlist(name="贷后组合", product_name="credit_risk", subscriber_id=bank)
        s.add(watchlist)
        s.flush()
        for code in codes:
            s.add(
                WatchlistMember(watchlist_id=watchlist.id, uscc=ledger.entity(code), shown_as=code)
            )


def test_an_alert_raised_before_but_committed_after_a_polled_one_is_still_listed(
    tmp_path: Path,
) -> None:
    """A bank pulling with `after=` moves its cursor past what it listed: an alert whose
    transaction was still open then must come after that cursor once it commits."""
    with delivery_ledger(tmp_path, "postgresql") as ledger:
        bank = ledger.subscriber_ids["甲银行"]
        _watch(ledger, bank, COMPANIES[:2])
        first, second = (ledger.entity(code) for code in COMPANIES[:2])

        def raise_on(s: Session, entity: str) -> list[Alert]:
            return al.raise_alerts_for(
                s, product_name="credit_risk", uscc=entity, kind="grade_drop", event_key="e1"
            )

        slow = Session(ledger.engine, expire_on_commit=False)  # a long publish, say
        try:
            (held,) = raise_on(slow, first)
            with session_scope(ledger.engine) as s:  # a short one raised after it, committed first
                (quick,) = raise_on(s, second)
            with session_scope(ledger.engine) as s:
                page = al.list_alerts(s, bank)
            assert [a.id for a in page] == [quick.id]
            slow.commit()
        finally:
            slow.close()
        with session_scope(ledger.engine) as s:
            resumed = al.list_alerts(s, bank, after=page[-1].id)
            since = al.list_alerts(s, bank, since=page[-1].queued_at)
        assert [a.id for a in resumed] == [held.id]
        assert [a.id for a in since] == [held.id]


def test_alerts_raised_in_a_savepoint_take_the_chain_lock_only_at_commit(tmp_path: Path) -> None:
    """The stamp waits for the real commit: a savepoint's release must not take the chain's
    lock while the transaction may still go on to lock alert rows (an ack's order is row, then
    chain)."""
    with delivery_ledger(tmp_path, "postgresql") as ledger:
        bank = ledger.subscriber_ids["甲银行"]
        _watch(ledger, bank, COMPANIES[:1])

        def chain_locks() -> int:
            with Session(ledger.engine) as probe:
                held = probe.execute(
                    text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = :k"
                    ),
                    {"k": audit.CHAIN_LOCK},
                ).scalar_one()
            return int(held)

        with Session(ledger.engine, expire_on_commit=False) as s:
            with s.begin_nested():
                (raised,) = al.raise_alerts_for(
                    s,
                    product_name="credit_risk",
                    uscc=ledger.entity(COMPANIES[0]),
                    kind="grade_drop",
                    event_key="e1",
                )
            assert chain_locks() == 0
            s.commit()
        with session_scope(ledger.engine) as s:
            stored = s.get(Alert, raised.id)
            assert stored is not None and stored.queued_at >= stored.created_at
