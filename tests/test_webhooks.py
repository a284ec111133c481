"""Alerts pushed to a real local webhook receiver (signed, retried, dead-lettered) and pulled.

The receiver (tests/webhook_receiver.py) is a real HTTP server on localhost that verifies the
HMAC signature the way the module docstring of pdo.delivery.webhooks tells banks to; metering is
counted in the ledger.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, col, func, select
from typer.testing import CliRunner

from pdo.cli import app
from pdo.delivery.egress import Egress
from pdo.delivery.identity import shown_as
from pdo.delivery.watchlists import valid_webhook_url
from pdo.delivery.webhooks import (
    ALERT_ID_HEADER,
    REFUSAL_RECHECK_S,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    DispatchReport,
    dispatch_due,
    sign,
    verify_signature,
    webhook_secret,
)
from pdo.ledger.db import session_scope
from pdo.ledger.models import (
    Alert,
    AuditEvent,
    Authorization,
    Subscription,
    UsageEvent,
    Watchlist,
    WebhookAttempt,
)
from pdo.ledger.types import utcnow
from pdo.privacy.analyzer import build_analyzer
from pdo.privacy.entity_key import entity_key
from pdo.privacy.fastscan import FastScanner
from pdo.registration import revoke_authorization
from pdo.settings import Settings
from tests.live_api import serve_api
from tests.test_watchlists import (
    FALLING,
    INDIVIDUAL,
    STEADY,
    Home,
    call,
    create,
    dispute,
    publish_v2,
    seed_home,
    watch_all,
)
from tests.webhook_receiver import (
    LOOPBACK,
    LOOPBACK_CIDRS,
    LOOPBACK_ENV,
    Receiver,
    allowing_loopback,
    receiver,
)


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return seed_home(tmp_path)


@pytest.fixture
def api(home: Home) -> Iterator[str]:
    with serve_api(allowing_loopback(home.settings)) as base:
        yield base


@pytest.fixture(scope="module")
def scanner(tmp_path_factory: pytest.TempPathFactory) -> FastScanner:
    return FastScanner(build_analyzer(tmp_path_factory.mktemp("models")))


def server_key(home: Home) -> bytes:
    return home.settings.read_pseudonym_key()[1]


def subscribe_hook(home: Home, api: str, hook: Receiver, members: list[str] | None = None) -> str:
    """A webhook watchlist (its secret handed to the receiver) holding the given members."""
    created = create(api, home.bank_key, webhook_url=hook.url).json()
    hook.secret = created["webhook_secret"]
    wid = str(created["id"])
    if members is None:
        watch_all(api, home.bank_key, wid)
    else:
        body = [{"uscc": m} for m in members]
        call("PUT", f"{api}/v1/watchlists/{wid}/members", home.bank_key, body)
    return wid


def metered(home: Home) -> list[UsageEvent]:
    with Session(home.engine) as s:
        return list(s.exec(select(UsageEvent).where(UsageEvent.kind == "alert")))


def the_alert(home: Home) -> Alert:
    with Session(home.engine) as s:
        return s.exec(select(Alert)).one()


def test_signatures() -> None:
    """The secret is derived per watchlist; changing body, secret, timestamp or header fails."""
    key = b"k" * 32
    secret = webhook_secret(key, "wl-1")
    assert secret == webhook_secret(key, "wl-1") != webhook_secret(key, "wl-2")
    assert secret != webhook_secret(b"other", "wl-1") and len(secret) == 64
    body = b'{"id":"a1","enterprise":"91310000MA1K4A0B1X"}'
    ts = utcnow().isoformat()
    header = sign(secret, body, ts)
    assert header.startswith("sha256=") and verify_signature(secret, body, ts, header)
    assert not verify_signature(secret, body + b" ", ts, header)
    assert not verify_signature(webhook_secret(key, "wl-2"), body, ts, header)
    assert not verify_signature(secret, body, ts, None)
    assert not verify_signature(secret, body, None, header)
    assert not verify_signature(secret, body, ts, header.replace("sha256=", "sha1="))


def test_a_replayed_push_does_not_verify(home: Home, api: str) -> None:
    """The genuine push verifies; replayed with a new timestamp, or late with its own, it fails."""
    with receiver() as hook:
        subscribe_hook(home, api, hook, members=[STEADY])
        publish_v2(home)
        assert dispatch_due(home.engine, server_key(home), egress=LOOPBACK).delivered == 1
    ((headers, body),) = hook.received
    sent, signature = headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER]
    assert verify_signature(hook.secret, body, sent, signature)
    later = dt.datetime.fromisoformat(sent) + dt.timedelta(days=365)
    assert not verify_signature(hook.secret, body, later.isoformat(), signature, now=later)
    assert not verify_signature(hook.secret, body, sent, signature, now=later)


def test_alerts_are_pushed_signed_and_metered_once(
    home: Home, api: str, scanner: FastScanner
) -> None:
    """Every alert of a new version reaches the receiver, verified, each billed exactly once."""
    with receiver() as hook:
        wid = subscribe_hook(home, api, hook)
        assert hook.secret == webhook_secret(server_key(home), wid)
        raised = publish_v2(home)
        report = dispatch_due(home.engine, server_key(home), egress=LOOPBACK)
        assert (report.due, report.delivered, report.failed, report.dead) == (raised, raised, 0, 0)
        assert dispatch_due(home.engine, server_key(home), egress=LOOPBACK).due == 0  # nothing left

    bodies = hook.bodies()
    assert len(bodies) == raised == 8
    for headers, body in hook.received:
        stamp, signature = headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER]
        assert verify_signature(hook.secret, body, stamp, signature)
        assert headers[ALERT_ID_HEADER] == json.loads(body)["id"]
        assert dt.datetime.fromisoformat(headers[TIMESTAMP_HEADER]).tzinfo is not None
    assert {b["watchlist"] for b in bodies} == {wid}
    assert {b["kind"] for b in bodies} == {
        "new_version", "grade_drop", "dishonest_debtor", "abnormal_listing",
    }  # fmt: skip
    drop = next(b for b in bodies if b["kind"] == "grade_drop" and b["enterprise"] == FALLING)
    assert drop["reference"] == "LN-1" and drop["payload"]["new_grade"] == "D"
    assert drop["product_version"] == "credit_risk@2"

    usage = metered(home)
    assert sorted(u.delivery_key or "" for u in usage) == sorted(f"alert:{b['id']}" for b in bodies)
    assert {(u.purpose, u.units, u.product_version_id) for u in usage} == {
        ("贷后管理", 1, "credit_risk@2")
    }
    with Session(home.engine) as s:
        assert set(s.exec(select(Alert.status))) == {"delivered"}
        assert s.exec(select(func.count()).select_from(WebhookAttempt)).one() == raised

    texts = [body.decode() for _, body in hook.received]
    pseudonym = entity_key(INDIVIDUAL, home.pseudo)
    assert any(shown_as(INDIVIDUAL) in t for t in texts)  # there, masked
    assert all(INDIVIDUAL not in t and pseudonym not in t for t in texts)
    assert scanner.count_personal([f"统一社会信用代码 {INDIVIDUAL}"])  # the scan can see one
    assert scanner.count_personal(texts) == {}


def test_nothing_is_pushed_or_billed_while_the_grant_is_revoked(home: Home, api: str) -> None:
    """Alerts carry results: with the operator's authorization revoked, no byte leaves."""
    with receiver() as hook:
        subscribe_hook(home, api, hook)
        raised = publish_v2(home)
        with session_scope(home.engine) as s:
            grant = s.exec(select(Authorization)).one()
            revoke_authorization(s, grant.id, "authority", "超范围使用")
        report = dispatch_due(home.engine, server_key(home), egress=LOOPBACK)
    assert report.due == report.refused == raised > 0 and report.delivered == 0
    assert hook.received == [] and metered(home) == []
    with Session(home.engine) as s:
        errors = set(s.exec(select(WebhookAttempt.error)))
        assert set(s.exec(select(Alert.status))) == {"pending"}  # retried once reinstated
        assert set(s.exec(select(Alert.attempts))) == {0}  # the bank's endpoint was never tried
    assert len(errors) == 1 and next(iter(errors), "").startswith("authorization_revoked")


def test_a_lapsed_subscription_spends_no_attempts_and_delivers_once_renewed(
    home: Home, api: str
) -> None:
    """Refused by our own rules for more passes than max_attempts: nothing dead-lettered, every
    refusal recorded, and the first pass after renewal delivers everything."""
    with receiver() as hook:
        subscribe_hook(home, api, hook)
        raised = publish_v2(home)
        _set_cancelled(home, utcnow())
        at = utcnow()
        reports = []
        for _ in range(5):
            reports.append(
                dispatch_due(home.engine, server_key(home), egress=LOOPBACK, now=at, max_attempts=3)
            )
            at += dt.timedelta(seconds=REFUSAL_RECHECK_S + 1)
        assert [(r.refused, r.failed, r.dead) for r in reports] == [(raised, 0, 0)] * 5
        with Session(home.engine) as s:
            assert set(s.exec(select(Alert.status))) == {"pending"}
            assert set(s.exec(select(Alert.attempts))) == {0}
            refusals = s.exec(select(WebhookAttempt)).all()
        assert len(refusals) == 5 * raised and not any(a.ok for a in refusals)
        assert {(a.error or "").split(":")[0] for a in refusals} == {"no_subscription"}

        _set_cancelled(home, None)
        renewed = dispatch_due(
            home.engine, server_key(home), egress=LOOPBACK, now=at, max_attempts=3
        )
    assert (renewed.due, renewed.delivered) == (raised, raised)
    assert len(hook.received) == raised == len(metered(home))


def _set_cancelled(home: Home, at: dt.datetime | None) -> None:
    with session_scope(home.engine) as s:
        for sub in s.exec(select(Subscription).where(Subscription.subscriber_id == home.bank_id)):
            sub.cancelled_at = at
            s.add(sub)


def test_retried_with_backoff_and_delivered_on_the_third_attempt(home: Home, api: str) -> None:
    """500, 500, then 200: three attempts spaced by growing delays, one usage event."""
    with receiver(script=[500, 500]) as hook:
        subscribe_hook(home, api, hook, members=[STEADY])
        assert publish_v2(home) == 1
        t0 = utcnow()
        first = dispatch_due(
            home.engine, server_key(home), egress=LOOPBACK, now=t0, base_delay_s=10
        )
        assert (first.due, first.failed) == (1, 1)
        alert = the_alert(home)
        assert alert.next_attempt_at is not None
        first_delay = (alert.next_attempt_at - t0).total_seconds()
        assert 7.5 <= first_delay <= 12.5 and alert.attempts == 1
        assert alert.last_error == "HTTP 500"
        assert (
            dispatch_due(
                home.engine, server_key(home), egress=LOOPBACK, now=t0, base_delay_s=10
            ).due
            == 0
        )

        t1 = t0 + dt.timedelta(seconds=13)
        assert (
            dispatch_due(
                home.engine, server_key(home), egress=LOOPBACK, now=t1, base_delay_s=10
            ).failed
            == 1
        )
        alert = the_alert(home)
        assert alert.next_attempt_at is not None
        assert 15 <= (alert.next_attempt_at - t1).total_seconds() <= 25  # doubled
        t2 = t1 + dt.timedelta(seconds=26)
        third = dispatch_due(
            home.engine, server_key(home), egress=LOOPBACK, now=t2, base_delay_s=10
        )
        assert (third.due, third.delivered) == (1, 1)

    alert = the_alert(home)
    assert (alert.status, alert.attempts, alert.delivered_at) == ("delivered", 3, t2)
    with Session(home.engine) as s:
        attempts = s.exec(select(WebhookAttempt).order_by(col(WebhookAttempt.id))).all()
    assert [(a.status_code, a.ok) for a in attempts] == [(500, False), (500, False), (200, True)]
    assert len({json.loads(b)["id"] for _, b in hook.received}) == 1 and len(hook.received) == 3
    assert [u.served_at for u in metered(home)] == [t2]  # billed in the month it was delivered


def test_a_resend_after_a_crash_is_not_billed_twice(home: Home, api: str) -> None:
    """The commit after a successful POST is lost: the alert is sent again, billed once."""
    with receiver() as hook:
        subscribe_hook(home, api, hook, members=[STEADY])
        publish_v2(home)
        dispatch_due(home.engine, server_key(home), egress=LOOPBACK)
        with Session(home.engine) as s:  # as if the delivered mark had never been committed
            alert = s.exec(select(Alert)).one()
            alert.status, alert.next_attempt_at = "pending", utcnow()
            s.add(alert)
            s.commit()
        assert dispatch_due(home.engine, server_key(home), egress=LOOPBACK).delivered == 1
    ids = hook.alert_ids()
    assert len(ids) == 2 and len(set(ids)) == 1  # the receiver can deduplicate
    assert len(metered(home)) == 1


def test_a_failing_receiver_is_dead_lettered_then_requeued(home: Home, api: str) -> None:
    """Always 503 → dead after max_attempts, unbilled, audited; requeued from the CLI it goes."""
    env = {"PDO_HOME": str(home.settings.resolved_home), "PDO_DATABASE_URL": None} | LOOPBACK_ENV
    with receiver(default=503) as hook:
        subscribe_hook(home, api, hook, members=[STEADY])
        publish_v2(home)
        at = utcnow()
        outcomes = []
        for _ in range(3):
            r = dispatch_due(
                home.engine,
                server_key(home),
                egress=LOOPBACK,
                now=at,
                max_attempts=3,
                base_delay_s=1,
            )
            outcomes.append((r.failed, r.dead))
            at += dt.timedelta(seconds=10)
        assert outcomes == [(1, 0), (1, 0), (0, 1)]
        assert (
            dispatch_due(
                home.engine, server_key(home), egress=LOOPBACK, now=at + dt.timedelta(days=1)
            ).due
            == 0
        )
        alert = the_alert(home)
        assert (alert.status, alert.attempts, alert.next_attempt_at) == ("dead", 3, None)
        assert metered(home) == []
        with Session(home.engine) as s:
            dead = s.exec(select(AuditEvent).where(AuditEvent.action == "alert.dead")).one()
        assert dead.subject == alert.id and dead.details["attempts"] == 3

        runner = CliRunner()
        shown = runner.invoke(app, ["alerts", "dead", "--json"], env=env)
        assert shown.exit_code == 0, shown.output
        assert [(d["id"], d["attempts"]) for d in json.loads(shown.output)] == [(alert.id, 3)]

        hook.default = 200
        requeued = runner.invoke(app, ["alerts", "requeue", alert.id, "--as", "olga"], env=env)
        assert requeued.exit_code == 0, requeued.output
        again = runner.invoke(app, ["alerts", "requeue", alert.id, "--as", "olga"], env=env)
        assert again.exit_code != 0  # no longer dead
        sent = runner.invoke(app, ["alerts", "dispatch", "--once", "--json"], env=env)
        assert sent.exit_code == 0, sent.output
        assert json.loads(sent.output)["delivered"] == 1
    assert the_alert(home).status == "delivered" and len(metered(home)) == 1
    assert len(hook.received) == 4


def test_a_dead_lettered_alert_stays_pullable_and_is_billed_once_listed(
    home: Home, api: str
) -> None:
    """The push gave up; the bank pulls the alert instead: listed, it is delivered and metered."""
    with receiver(default=503) as hook:
        subscribe_hook(home, api, hook, members=[STEADY])
        publish_v2(home)
        assert (
            dispatch_due(home.engine, server_key(home), egress=LOOPBACK, max_attempts=1).dead == 1
        )
    assert metered(home) == []
    listed = call("GET", f"{api}/v1/alerts", home.bank_key).json()
    again = call("GET", f"{api}/v1/alerts", home.bank_key).json()
    alert = the_alert(home)
    assert (
        [(a["id"], a["status"]) for a in listed]
        == [(alert.id, "delivered")]
        == [(a["id"], a["status"]) for a in again]
    )
    assert [u.delivery_key for u in metered(home)] == [f"alert:{alert.id}"]


def test_a_parallel_dispatcher_skips_a_pass_still_in_progress(home: Home, api: str) -> None:
    """Dispatcher A is held on its first push; B runs when A could still be posting its last
    alert (later than the old fixed lease): B claims nothing, and no alert is sent twice."""
    timeout_s = 30.0
    with receiver(script=["hold"]) as hook:
        subscribe_hook(home, api, hook)
        raised = publish_v2(home)
        t0 = utcnow()
        first: list[DispatchReport] = []
        a = threading.Thread(
            target=lambda: first.append(
                dispatch_due(
                    home.engine, server_key(home), egress=LOOPBACK, now=t0, timeout_s=timeout_s
                )
            )
        )
        a.start()
        assert hook.holding.wait(10)
        midway = t0 + dt.timedelta(seconds=timeout_s * 4 + 60 + 1)
        b = dispatch_due(
            home.engine, server_key(home), egress=LOOPBACK, now=midway, timeout_s=timeout_s
        )
        hook.release.set()
        a.join(timeout=60)
    assert raised * timeout_s > (midway - t0).total_seconds()  # A may still be posting then
    assert b.due == 0 and (first[0].due, first[0].delivered) == (raised, raised)
    assert len(hook.received) == len(set(hook.alert_ids())) == raised  # none sent twice


def _dispatch_holding_first_push(
    home: Home, hook: Receiver, meanwhile: Callable[[], None]
) -> DispatchReport:
    """A pass whose first POST the receiver holds open while `meanwhile` happens."""
    out: list[DispatchReport] = []
    pass_ = threading.Thread(
        target=lambda: out.append(
            dispatch_due(home.engine, server_key(home), egress=LOOPBACK, timeout_s=60)
        )
    )
    pass_.start()
    assert hook.holding.wait(20)
    meanwhile()
    hook.release.set()
    pass_.join(60)
    return out[0]


def test_an_objection_mid_pass_stops_the_claimed_pushes_of_the_disputed_result(
    home: Home, api: str
) -> None:
    """FALLING's result is disputed while a pass is posting: its alerts claimed by that pass
    are not sent afterwards, spend no attempt and are not billed."""
    with receiver(script=["hold"]) as hook:
        subscribe_hook(home, api, hook, members=[STEADY, FALLING])
        assert publish_v2(home) == 3  # STEADY new_version; FALLING new_version + grade_drop
        report = _dispatch_holding_first_push(home, hook, lambda: dispute(home, FALLING))
    assert [b for b in hook.bodies()[1:] if b["enterprise"] == FALLING] == []
    with Session(home.engine) as s:
        falling = [a for a in s.exec(select(Alert)) if a.payload["enterprise"] == FALLING]
        tried = set(s.exec(select(WebhookAttempt.alert_id)))
    results = [a for a in falling if a.kind != "dispute_opened"]
    assert {(a.status, a.attempts) for a in results} == {("withdrawn", 0)}
    assert tried.isdisjoint(a.id for a in results)
    assert report.skipped >= 1 and len(metered(home)) == report.delivered


def test_a_revocation_mid_pass_sends_nothing_more_and_spends_no_attempts(
    home: Home, api: str
) -> None:
    """The grant is revoked while the first push is in flight: nothing else is sent, and no
    alert counts a failed attempt (all wait, re-checked, as refused by our own rules)."""

    def revoke() -> None:
        with session_scope(home.engine) as s:
            grant = s.exec(select(Authorization)).one()
            revoke_authorization(s, grant.id, "authority", "超范围使用")

    with receiver(script=["hold"]) as hook:
        subscribe_hook(home, api, hook, members=[STEADY, FALLING])
        raised = publish_v2(home)
        report = _dispatch_holding_first_push(home, hook, revoke)
    assert len(hook.received) == 1  # only the push already in flight
    assert (report.refused, report.failed, report.delivered) == (raised, 0, 0)
    assert metered(home) == []
    with Session(home.engine) as s:
        assert {(a.status, a.attempts) for a in s.exec(select(Alert))} == {("pending", 0)}


@pytest.mark.parametrize(
    ("url", "valid"),
    [
        ("https://bank.example/hooks/pdo", True),
        ("http://127.0.0.1:9/hook", True),
        ("https://bank.example:8443/pdo?tenant=7", True),
        ("https://[::1]:8443/hook", True),
        ("https://银行.example/hook", True),
        ("http://host:abc/hook", False),  # port not a number
        ("http://127.0.0.1:99999/hook", False),  # port out of range
        ("http://host:0/hook", False),
        ("http://[::1/hook", False),  # unclosed bracket
        ("http://a..b/hook", False),  # empty label
        ("http://xn--/hook", False),  # malformed punycode
        ("http://" + "a" * 64 + ".example/", False),  # label too long
        ("http://exa mple/hook", False),
        ("http://127.0.0.1:1/hook\x7f", False),
        ("http:///hook", False),  # no host
        ("ftp://bank.example/", False),
        ("bank.example/hook", False),
        ("", False),
    ],
)
def test_webhook_urls_are_checked_as_the_sender_parses_them(url: str, valid: bool) -> None:
    """Only a URL the dispatcher can actually POST to is accepted at registration."""
    assert valid_webhook_url(url) is valid


def test_invalid_webhook_urls_are_refused_by_the_api(home: Home, api: str) -> None:
    """The API answers its usual 422 JSON error for a URL the dispatcher could not POST to."""
    for url in ["http://host:abc/hook", "http://[::1/hook", "http://a..b/hook", "http://xn--/x"]:
        response = create(api, home.bank_key, webhook_url=url)
        assert response.status_code == 422, (url, response.text)
        assert response.json()["error"]["code"] == "invalid_webhook_url"
    assert create(api, home.bank_key, webhook_url="https://银行.example/hook").status_code == 201


def test_a_bad_stored_url_fails_its_alert_and_spares_the_others(home: Home, api: str) -> None:
    """An old row with an unusable URL: its alert counts a failed attempt (then dead-letters);
    another bank's alert in the same pass is delivered."""
    with receiver() as hook:
        bad = subscribe_hook(home, api, hook, members=[STEADY])
        with session_scope(home.engine) as s:
            watchlist = s.get(Watchlist, bad)
            assert watchlist is not None
            watchlist.webhook_url = "http://host:abc/hook"  # as stored before URLs were checked
            s.add(watchlist)
        created = create(api, home.other_key, name="他行组合", webhook_url=hook.url).json()
        hook.secret = created["webhook_secret"]
        call("PUT", f"{api}/v1/watchlists/{created['id']}/members", home.other_key,
             [{"uscc": STEADY}])  # fmt: skip
        assert publish_v2(home) == 2
        at = utcnow()
        first = dispatch_due(home.engine, server_key(home), egress=LOOPBACK, now=at, max_attempts=2)
        second = dispatch_due(home.engine, server_key(home), egress=LOOPBACK,
                              now=at + dt.timedelta(hours=1), max_attempts=2)  # fmt: skip
    assert (first.due, first.delivered, first.failed) == (2, 1, 1)
    assert (second.due, second.dead) == (1, 1)
    assert [json.loads(b)["watchlist"] for _, b in hook.received] == [created["id"]]
    with Session(home.engine) as s:
        dead = s.exec(select(Alert).where(Alert.watchlist_id == bad)).one()
    assert dead.status == "dead" and (dead.last_error or "").startswith("InvalidURL")


def test_each_push_is_billed_and_rescheduled_at_its_own_time(home: Home, api: str) -> None:
    """A pass takes as long as its receivers: a push is billed when it was delivered and a
    failed one waits its backoff from its own attempt, not from the pass's start."""
    with receiver(script=["slow", "slow", 500]) as hook:  # 'slow' answers 200 after 1.5 s
        subscribe_hook(home, api, hook, members=[STEADY, FALLING])
        assert publish_v2(home) == 3
        report = dispatch_due(home.engine, server_key(home), egress=LOOPBACK, base_delay_s=2.0)
    assert (report.delivered, report.failed) == (2, 1)
    sent = [dt.datetime.fromisoformat(h[TIMESTAMP_HEADER]) for h, _ in hook.received]
    assert sent[2] - sent[0] >= dt.timedelta(seconds=3)  # the third POST went out 3 s later
    billed = sorted(u.served_at for u in metered(home))
    assert len(billed) == 2  # each billed when its slow answer came back
    assert all(b >= t + dt.timedelta(seconds=1.5) for b, t in zip(billed, sent, strict=False))
    with Session(home.engine) as s:
        failed = s.exec(select(Alert).where(Alert.status == "pending")).one()
        (attempt,) = s.exec(select(WebhookAttempt).where(col(WebhookAttempt.ok).is_(False)))
    assert attempt.at >= sent[2]
    assert failed.next_attempt_at is not None
    assert failed.next_attempt_at - attempt.at >= dt.timedelta(seconds=1.5)  # 2 s ± 25%


def test_a_slow_receiver_times_out(home: Home, api: str) -> None:
    """No answer within the timeout counts as a failed attempt, with the reason kept."""
    with receiver(script=["slow"]) as hook:
        subscribe_hook(home, api, hook, members=[STEADY])
        publish_v2(home)
        report = dispatch_due(home.engine, server_key(home), egress=LOOPBACK, timeout_s=0.3)
    assert report.failed == 1
    alert = the_alert(home)
    assert alert.status == "pending" and "Timeout" in (alert.last_error or "")
    assert metered(home) == []


def test_pulled_alerts_are_delivered_and_metered_once_when_first_listed(
    home: Home, api: str, scanner: FastScanner
) -> None:
    """Listing hands over each alert's result: polled three times and never acked, each listed
    alert is billed once; acking it then bills nothing new (its usage id is the listing's)."""
    wid = create(api, home.bank_key).json()["id"]
    watch_all(api, home.bank_key, wid)
    other = create(api, home.other_key, name="他行组合").json()["id"]
    call("PUT", f"{api}/v1/watchlists/{other}/members", home.other_key, [{"uscc": FALLING}])
    publish_v2(home)

    first = call("GET", f"{api}/v1/alerts?limit=3", home.bank_key).json()
    rest = call("GET", f"{api}/v1/alerts?after={first[-1]['id']}", home.bank_key).json()
    for _ in range(3):  # the bank polls; it never acks
        listed = call("GET", f"{api}/v1/alerts", home.bank_key)
    alerts = listed.json()
    assert [a["id"] for a in first + rest] == [a["id"] for a in alerts] and len(alerts) == 8
    assert {a["watchlist"] for a in alerts} == {wid} and {a["status"] for a in alerts} == {
        "delivered"
    }
    assert any(a["payload"].get("score") is not None for a in alerts)
    usage = {u.delivery_key: u for u in metered(home) if u.subscriber_id == home.bank_id}
    assert sorted(usage) == sorted(f"alert:{a['id']}" for a in alerts)  # one each, not three
    theirs = call("GET", f"{api}/v1/alerts", home.other_key).json()
    assert len(theirs) == 2 and {a["watchlist"] for a in theirs} == {other}

    target = alerts[0]["id"]
    acked = call("POST", f"{api}/v1/alerts/{target}/ack", home.bank_key)
    assert acked.status_code == 200, acked.text
    assert acked.json()["alert"]["status"] == "delivered"
    assert acked.json()["usage_id"] == usage[f"alert:{target}"].id
    stolen = call("POST", f"{api}/v1/alerts/{target}/ack", home.other_key)
    assert stolen.status_code == 404 and stolen.json()["error"]["code"] == "alert_not_found"
    assert len(metered(home)) == 8 + 2  # this bank's listed alerts and the other bank's

    assert INDIVIDUAL not in listed.text and shown_as(INDIVIDUAL) in listed.text
    assert scanner.count_personal([listed.text, acked.text]) == {}


def test_a_listed_alert_is_not_pushed_or_billed_again(home: Home, api: str) -> None:
    """A webhook watchlist whose alerts the bank listed before the dispatcher ran: delivered
    then, so the push sends and bills nothing more."""
    with receiver() as hook:
        subscribe_hook(home, api, hook, members=[STEADY, FALLING])
        listed = call("GET", f"{api}/v1/alerts", home.bank_key).json()
        assert listed == [] and publish_v2(home) == 3
        listed = call("GET", f"{api}/v1/alerts", home.bank_key).json()
        report = dispatch_due(home.engine, server_key(home), egress=LOOPBACK)
    assert len(listed) == 3 and report.delivered == 0 and hook.received == []
    assert sorted(u.delivery_key or "" for u in metered(home)) == sorted(
        f"alert:{a['id']}" for a in listed
    )


def test_since_filters_by_queued_time(home: Home, api: str) -> None:
    """`since` leaves out alerts queued (their raising committed) up to the instant."""
    wid = create(api, home.bank_key).json()["id"]
    watch_all(api, home.bank_key, wid)
    publish_v2(home)
    queued = call("GET", f"{api}/v1/alerts", home.bank_key).json()[0]["queued_at"]
    later = httpx.get(
        f"{api}/v1/alerts", params={"since": queued}, headers={"X-API-Key": home.bank_key}
    )
    assert later.status_code == 200 and later.json() == []
    earlier = (dt.datetime.fromisoformat(queued) - dt.timedelta(seconds=1)).isoformat()
    before = httpx.get(
        f"{api}/v1/alerts", params={"since": earlier}, headers={"X-API-Key": home.bank_key}
    )
    assert len(before.json()) == 8


def _cancel(sub: Subscription) -> None:
    sub.cancelled_at = utcnow()


def _drop_post_loan_purpose(sub: Subscription) -> None:
    sub.purposes = ["贷前审查"]


@pytest.mark.parametrize(
    "change", [_cancel, _drop_post_loan_purpose], ids=["lapsed", "purpose dropped"]
)
def test_a_subscription_no_longer_covering_the_watchlist_sees_no_more_alerts(
    home: Home, api: str, change: Callable[[Subscription], None]
) -> None:
    """Alerts carry results: pulled only while a subscription in force covers the 贷后管理
    watchlist's product and purpose."""
    wid = create(api, home.bank_key).json()["id"]
    watch_all(api, home.bank_key, wid)
    publish_v2(home)
    assert len(call("GET", f"{api}/v1/alerts", home.bank_key).json()) == 8
    with Session(home.engine) as s:
        for sub in s.exec(select(Subscription).where(Subscription.subscriber_id == home.bank_id)):
            change(sub)
            s.add(sub)
        s.commit()
    assert call("GET", f"{api}/v1/alerts", home.bank_key).json() == []


def _wait_until(done: Callable[[], bool], what: str, log: Path, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            said = log.read_text()
            raise AssertionError(f"no {what} within {timeout_s} s; dispatcher said:\n{said}")
        time.sleep(0.1)


DISPATCH = ("alerts", "dispatch")


def _json_documents(text: str) -> list[Any]:
    """Every JSON document written one after another; fails on anything else in between."""
    decoder, at = json.JSONDecoder(), 0
    found: list[Any] = []
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at == len(text):
            return found
        document, at = decoder.raw_decode(text, at)
        found.append(document)


def _cli_env(home: Home) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PDO_")}
    return env | {"PDO_HOME": str(home.settings.resolved_home)} | LOOPBACK_ENV


def test_a_failed_pass_does_not_stop_the_dispatcher(home: Home, api: str, tmp_path: Path) -> None:
    """The ledger fails a pass (here its alert table is away): one line on stderr, then the
    dispatcher tries again and delivers once the ledger is back; --once exits 1 instead.
    Stopped with Ctrl-C, its stdout holds only the JSON reports."""
    env = _cli_env(home)
    out, err = tmp_path / "dispatch.out", tmp_path / "dispatch.err"
    with receiver(default=200) as hook:
        subscribe_hook(home, api, hook, members=[STEADY])
        with out.open("wb") as stdout, err.open("wb") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "pdo.cli.entry", *DISPATCH, "--json", "--interval", "0.2"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
            )
        try:
            _wait_until(lambda: '"due": 0' in out.read_text(), "first pass", err)
            with home.engine.begin() as conn:
                conn.exec_driver_sql("ALTER TABLE alert RENAME TO alert_away")
            _wait_until(lambda: "failure 2 in a row" in err.read_text(), "second failure", err)
            once = CliRunner().invoke(app, [*DISPATCH, "--once"], env=env)
            assert once.exit_code == 1 and "Traceback" not in once.output
            assert "the dispatch pass failed: OperationalError (SQLITE_ERROR)" in once.output
            with home.engine.begin() as conn:
                conn.exec_driver_sql("ALTER TABLE alert_away RENAME TO alert")
            publish_v2(home)
            _wait_until(lambda: '"delivered": 1' in out.read_text(), "delivery", err)
            assert process.poll() is None, err.read_text()
        finally:
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=30) == 0
    reports = _json_documents(out.read_text())  # nothing but the reports
    assert sum(r["delivered"] for r in reports) == 1
    said = err.read_text()
    assert "Traceback" not in said and said.rstrip().endswith("stopped")
    assert "the dispatch pass failed: OperationalError (SQLITE_ERROR)" in said
    assert len(hook.received) == 1 and the_alert(home).status == "delivered"
    assert len(metered(home)) == 1


def test_an_undecodable_alert_is_one_line_not_a_traceback(home: Home, api: str) -> None:
    """A stored alert whose JSON no longer decodes fails the pass with one line (the operator
    mends or drops the row); it is neither sent nor billed."""
    with receiver(default=200) as hook:
        subscribe_hook(home, api, hook, members=[STEADY])
        publish_v2(home)
        with home.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE alert SET payload = 'not json{'")
        once = CliRunner().invoke(app, [*DISPATCH, "--once"], env=_cli_env(home))
    assert once.exit_code == 1 and "Traceback" not in once.output
    assert "the dispatch pass failed: JSONDecodeError" in once.output
    assert hook.received == [] and metered(home) == []


def due_again_now(home: Home, url: str | None = None) -> None:
    """The refused alert due at once (not after its backoff), its watchlist's URL changed."""
    with Session(home.engine) as s:
        alert = s.exec(select(Alert)).one()
        alert.next_attempt_at = utcnow()
        s.add(alert)
        if url is not None:
            watchlist = s.get(Watchlist, alert.watchlist_id)
            assert watchlist is not None
            watchlist.webhook_url = url
            s.add(watchlist)
        s.commit()


def test_a_push_to_loopback_is_a_failed_attempt_unless_allowed(home: Home, api: str) -> None:
    """Refused: nothing reaches the receiver, the attempt says why, nothing is billed. Allowed,
    a URL naming the host is sent to the checked address under the name's Host header."""
    with receiver() as hook:
        subscribe_hook(home, api, hook, members=[STEADY])
        publish_v2(home)
        refused = dispatch_due(home.engine, server_key(home))
        assert (refused.due, refused.delivered, refused.failed) == (1, 0, 1)
        assert hook.received == [] and metered(home) == []
        with Session(home.engine) as s:
            (attempt,) = s.exec(select(WebhookAttempt)).all()
            assert s.exec(select(Alert)).one().status == "pending"
        assert attempt.error is not None and attempt.error.startswith("refused: ")
        assert "127.0.0.1" not in attempt.error

        named = hook.url.replace("127.0.0.1", "localhost")
        due_again_now(home, named)
        egress = Egress.allowing([*LOOPBACK_CIDRS, "::1/128"])  # localhost may also be ::1
        assert dispatch_due(home.engine, server_key(home), egress=egress).delivered == 1
        assert len(metered(home)) == 1
    ((headers, _),) = hook.received  # verified by the receiver's signature check too
    assert headers["Host"] == named.split("/")[2]


def test_the_dispatcher_reads_allowed_networks_from_settings(home: Home, api: str) -> None:
    """`pdo alerts dispatch` refuses loopback by default and reaches it once the operator allows
    it; a malformed network is refused when the settings are read."""
    with pytest.raises(ValueError, match="not a network"):
        Settings(webhook_allowed_networks=["10.8.0.0/33"])
    with receiver() as hook:
        subscribe_hook(home, api, hook, members=[STEADY])
        publish_v2(home)
        env = {"PDO_HOME": str(home.settings.resolved_home), "PDO_DATABASE_URL": None}
        closed = CliRunner().invoke(app, ["alerts", "dispatch", "--once", "--json"], env=env)
        assert closed.exit_code == 0, closed.output
        assert json.loads(closed.output)["failed"] == 1 and hook.received == []
        due_again_now(home)
        env["PDO_WEBHOOK_ALLOWED_NETWORKS"] = json.dumps(LOOPBACK_CIDRS)
        opened = CliRunner().invoke(app, ["alerts", "dispatch", "--once", "--json"], env=env)
        assert opened.exit_code == 0, opened.output
        assert json.loads(opened.output)["delivered"] == 1 and len(hook.received) == 1


def test_a_hanging_endpoint_holds_up_only_its_own_alerts(home: Home, api: str) -> None:
    """While one bank endpoint holds its push open, another endpoint's alert is delivered."""
    with receiver(script=["hold"]) as stuck, receiver() as fine:
        stuck_id = subscribe_hook(home, api, stuck, members=[STEADY])
        other = create(api, home.bank_key, name="第二组合", webhook_url=fine.url).json()
        fine.secret = other["webhook_secret"]
        members = [{"uscc": STEADY}]
        call("PUT", f"{api}/v1/watchlists/{other['id']}/members", home.bank_key, members)
        assert publish_v2(home) == 2
        with session_scope(home.engine) as s:  # the held endpoint's alert is first in the queue
            for alert in s.exec(select(Alert).where(Alert.watchlist_id == stuck_id)):
                alert.next_attempt_at = utcnow() - dt.timedelta(minutes=1)
                s.add(alert)
        seen: list[int] = []

        def meanwhile() -> None:  # the other endpoint's alert, while this push is held open
            deadline = time.monotonic() + 20
            while not fine.received and time.monotonic() < deadline:
                time.sleep(0.05)
            seen.append(len(fine.received))

        report = _dispatch_holding_first_push(home, stuck, meanwhile)
    assert seen == [1]
    assert (report.due, report.delivered) == (2, 2) and len(metered(home)) == 2
