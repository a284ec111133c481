"""Webhook push of alerts: HMAC-signed, retried with exponential backoff, dead-lettered.

Delivery is at-least-once (a crash between the POST and the commit may resend an alert); the
usage event is keyed by the alert id, so a resend is never billed twice.

Receiver recipe (for banks). Each POST carries a JSON body and three headers:

- ``X-PDO-Timestamp`` — when this attempt was sent (ISO 8601, UTC);
- ``X-PDO-Signature: sha256=<hex>`` — HMAC-SHA256, under the watchlist's signing secret (returned
  once when the watchlist was created), of the timestamp header's value, a ``.``, then the exact
  body bytes: a captured push replayed with another timestamp does not verify;
- ``X-PDO-Alert-Id`` — the alert's id, for routing. It is not signed: deduplicate on the
  verified body's ``id`` (store it and ignore an alert you have already seen), never on the
  header, which a replayed push could carry changed.

Verify before parsing, on the raw bytes (not on re-serialized JSON), and refuse a timestamp more
than five minutes from your clock (a replay of an old push)::

    from pdo.delivery.webhooks import verify_signature
    ok = verify_signature(secret, request_body_bytes, headers["X-PDO-Timestamp"],
                          headers["X-PDO-Signature"])

or, without pdo: ``hmac.compare_digest("sha256=" + hmac.new(secret.encode(),
timestamp.encode() + b"." + body, hashlib.sha256).hexdigest(), header)``, then the age check.
Answer 2xx once stored; anything else (or no answer within a few seconds) is retried later, and
after the last attempt the alert is dead-lettered and stays available to pull (``GET
/v1/alerts``). A push our own rules forbid (subscription lapsed, grant revoked) is not an attempt:
it waits, re-checked, until delivery is lawful again. Each alert is checked again just before its
POST, so one withdrawn by an objection, or held back by a revocation, while a pass runs is not sent.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import random
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from pdo import audit
from pdo.delivery.alerts import alert_view, delivery_refusal, disputed_now, mark_delivered
from pdo.delivery.egress import PUBLIC_ONLY, Egress, EgressRefused
from pdo.delivery.watchlists import Refusal
from pdo.ledger.models import Alert, Watchlist, WebhookAttempt
from pdo.ledger.types import utcnow

SIGNATURE_HEADER = "X-PDO-Signature"
TIMESTAMP_HEADER = "X-PDO-Timestamp"
ALERT_ID_HEADER = "X-PDO-Alert-Id"
MAX_ATTEMPTS = 6
BASE_DELAY_S = 30.0
TIMEOUT_S = 5.0
TOLERANCE_S = 300.0  # how far a receiver lets X-PDO-Timestamp stray from its clock
LEASE_MARGIN_S = 60.0
# A lapse or a revocation is lifted by people, not by retrying: re-check at a fixed, unhurried pace.
REFUSAL_RECHECK_S = 300.0
BATCH = 100
# Endpoints (a webhook URL's host and port) pushed to at once in a pass. Alerts for one endpoint
# go one after another in queue order, so a slow or dead bank endpoint holds up only its own.
PARALLEL_ENDPOINTS = 8
_ERROR_CHARS = 200

SessionFactory = Callable[[], Session]


def webhook_secret(server_key: bytes, watchlist_id: str) -> str:
    """The watchlist's signing secret, derived from the server key (never stored)."""
    return hmac.new(server_key, b"pdo-webhook:" + watchlist_id.encode(), hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: str) -> str:
    """The X-PDO-Signature header value: binds the body to its send time, so replays show."""
    signed = timestamp.encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def fresh(timestamp: str, now: dt.datetime | None = None, tolerance_s: float = TOLERANCE_S) -> bool:
    """Whether an X-PDO-Timestamp is near `now`: a captured push replayed later is refused."""
    try:
        sent = dt.datetime.fromisoformat(timestamp)
    except ValueError:
        return False
    if sent.tzinfo is None:
        return False
    return abs(((now or utcnow()) - sent).total_seconds()) <= tolerance_s


def verify_signature(
    secret: str,
    body: bytes,
    timestamp: str | None,
    header: str | None,
    now: dt.datetime | None = None,
    tolerance_s: float = TOLERANCE_S,
) -> bool:
    """Whether the header signs these exact bytes at this fresh timestamp (constant-time)."""
    if not header or not timestamp or not fresh(timestamp, now, tolerance_s):
        return False
    return hmac.compare_digest(sign(secret, body, timestamp), header)


def encode_body(alert: Alert, withheld: bool = False) -> bytes:
    """The exact bytes pushed (and signed) for an alert; withheld as `alert_view` says."""
    view = alert_view(alert, withheld)
    return json.dumps(view, ensure_ascii=False, separators=(",", ":")).encode()


def backoff_s(attempts: int, base_delay_s: float, rng: random.Random | None = None) -> float:
    """Seconds before the next try after `attempts` failures: base·2^(attempts-1), ±25% jitter."""
    jitter = (rng or random).uniform(0.75, 1.25)
    return base_delay_s * 2 ** max(attempts - 1, 0) * jitter


@dataclass
class DispatchReport:
    """What one dispatch pass did."""

    due: int = 0
    delivered: int = 0
    failed: int = 0  # failed this time, to be retried
    dead: int = 0  # failed for the last time: dead-lettered
    skipped: int = 0  # acknowledged or changed by someone else meanwhile, or out of lease
    refused: int = 0  # held back by our own rules (no subscription, grant revoked): not tried

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)

    def add(self, part: DispatchReport) -> None:
        """Count in what one endpoint's pushes did (`due` is counted once, for the pass)."""
        for name in ("delivered", "failed", "dead", "skipped", "refused"):
            setattr(self, name, getattr(self, name) + getattr(part, name))


def endpoint_of(url: str) -> str:
    """The host and port a webhook URL reaches: pushes to one endpoint go one at a time."""
    try:
        return httpx.URL(url).netloc.decode("ascii")
    except (httpx.InvalidURL, ValueError):  # pushed anyway, and failed by `_post` with the reason
        return url


def _factory(source: Engine | SessionFactory) -> SessionFactory:
    if isinstance(source, Engine):
        engine = source
        return lambda: Session(engine, expire_on_commit=False)
    return source


@contextmanager
def _unit(factory: SessionFactory) -> Iterator[Session]:
    with factory() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@dataclass(frozen=True)
class _Due:
    alert_id: str
    url: str
    secret: str
    body: bytes = b""  # built just before the POST (`_recheck`), as the alert stands then
    refused: str | None = None  # why it must not be sent at all (`_recheck`: no subscription, …)


def request_bound_s(timeout_s: float) -> float:
    """Longest one POST may take: connecting, sending and reading are each bounded by timeout."""
    return 3 * timeout_s


def lease_for(claimed: int, timeout_s: float) -> dt.timedelta:
    """How long a pass holds its claim: every claimed alert may take its full request bound."""
    return dt.timedelta(seconds=claimed * request_bound_s(timeout_s) + LEASE_MARGIN_S)


def _claim(
    factory: SessionFactory, server_key: bytes, now: dt.datetime, timeout_s: float, limit: int
) -> list[_Due]:
    """Take due alerts off the queue for a lease covering the whole pass, so a parallel
    dispatcher skips them until this one is done (`lease_for`)."""
    with _unit(factory) as s:
        rows = s.exec(
            select(Alert, Watchlist)
            .join(Watchlist, col(Watchlist.id) == col(Alert.watchlist_id))
            .where(
                Alert.status == "pending",
                col(Alert.next_attempt_at).is_not(None),
                col(Alert.next_attempt_at) <= now,
                col(Watchlist.webhook_url).is_not(None),
            )
            .order_by(col(Alert.next_attempt_at), col(Alert.id))
            .limit(limit)
            .with_for_update(skip_locked=True, of=Alert)
        ).all()
        lease = lease_for(len(rows), timeout_s)
        due = []
        for alert, watchlist in rows:  # whether each may be sent is decided just before its POST
            alert.next_attempt_at = now + lease
            s.add(alert)
            due.append(
                _Due(alert.id, str(watchlist.webhook_url), webhook_secret(server_key, watchlist.id))
            )
        return due


def _recheck(factory: SessionFactory, due: _Due, now: dt.datetime) -> _Due | None:
    """The claimed alert as it stands just before its POST: None when it is no longer pending
    (withdrawn by an objection, acked, dropped meanwhile), else with today's refusal, if any,
    since a grant revoked or a subscription lapsed mid-pass must stop what is not yet sent,
    and its body as a pull would show it now (a result disputed meanwhile is withheld)."""
    with _unit(factory) as s:
        alert = s.get(Alert, due.alert_id)
        watchlist = s.get(Watchlist, alert.watchlist_id) if alert is not None else None
        if alert is None or watchlist is None or alert.status != "pending":
            return None
        refusal = delivery_refusal(s, watchlist, now)
        body = encode_body(alert, alert.id in disputed_now(s, [alert]))
    why = None if refusal is None else f"{refusal.code}: {refusal.message}"
    return replace(due, body=body, refused=why)


def _post(
    client: httpx.Client, egress: Egress, due: _Due, sent_at: dt.datetime
) -> tuple[int | None, str | None]:
    """(status code, error) of one POST; error None means the receiver took it (2xx)."""
    timestamp = sent_at.isoformat()
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        SIGNATURE_HEADER: sign(due.secret, due.body, timestamp),
        TIMESTAMP_HEADER: timestamp,
        ALERT_ID_HEADER: due.alert_id,
    }
    try:  # a bad stored URL (InvalidURL, UnicodeError) fails this alert, never the whole pass
        url, host, extensions = egress.pinned(due.url)
        response = client.post(url, content=due.body, headers=headers | host, extensions=extensions)
    except EgressRefused as exc:  # an attempt like any other the bank's address made fail
        return None, f"refused: {exc}"[:_ERROR_CHARS]
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
        return None, f"{type(exc).__name__}: {exc}"[:_ERROR_CHARS]
    if 200 <= response.status_code < 300:
        return response.status_code, None
    return response.status_code, f"HTTP {response.status_code}"


def _settle(
    factory: SessionFactory,
    due: _Due,
    outcome: tuple[int | None, str | None],
    now: dt.datetime,
    max_attempts: int,
    base_delay_s: float,
    report: DispatchReport,
) -> None:
    """Record one attempt: delivered and metered together, or retried later, or dead-lettered."""
    status_code, error = outcome
    with _unit(factory) as s:
        # the alert's row first, as an ack takes it (see ack_alert), then its status again
        alert = s.get(Alert, due.alert_id, with_for_update=True)
        watchlist = s.get(Watchlist, alert.watchlist_id) if alert is not None else None
        if alert is None or watchlist is None or alert.status != "pending":
            report.skipped += 1
            return
        if due.refused is not None:
            _hold_back(s, alert, due.refused, now, report)
            return
        if error is None:
            try:
                mark_delivered(s, alert, watchlist, now)
            except Refusal as refusal:  # revoked or lapsed while in flight: not the bank's fault
                _hold_back(s, alert, f"{refusal.code}: {refusal.message}", now, report)
                return
        alert.attempts += 1
        s.add(WebhookAttempt(alert_id=alert.id, at=now, status_code=status_code,
                             error=error, ok=error is None))  # fmt: skip
        if error is None:
            report.delivered += 1
            return
        alert.last_error = error
        if alert.attempts >= max_attempts:
            alert.status, alert.next_attempt_at = "dead", None
            audit.record(s, "dispatcher", "alert.dead", alert.id, watchlist=watchlist.id,
                         kind=alert.kind, attempts=alert.attempts, last_error=error)  # fmt: skip
            report.dead += 1
        else:
            delay = backoff_s(alert.attempts, base_delay_s)
            alert.next_attempt_at = now + dt.timedelta(seconds=delay)
            report.failed += 1
        s.add(alert)


def _hold_back(
    s: Session, alert: Alert, why: str, now: dt.datetime, report: DispatchReport
) -> None:
    """Record a push our own rules refuse, without spending the bank's attempts on it."""
    s.add(WebhookAttempt(alert_id=alert.id, at=now, status_code=None, error=why, ok=False))
    alert.last_error = why
    alert.next_attempt_at = now + dt.timedelta(seconds=REFUSAL_RECHECK_S)
    s.add(alert)
    report.refused += 1


def dispatch_due(
    source: Engine | SessionFactory,
    server_key: bytes,
    now: dt.datetime | None = None,
    client: httpx.Client | None = None,
    max_attempts: int = MAX_ATTEMPTS,
    base_delay_s: float = BASE_DELAY_S,
    timeout_s: float = TIMEOUT_S,
    limit: int = BATCH,
    egress: Egress = PUBLIC_ONLY,
) -> DispatchReport:
    """Push every pending alert due by `now` (at most `limit`) to its watchlist's webhook.

    Up to `PARALLEL_ENDPOINTS` endpoints are pushed to at once, each endpoint's alerts in
    queue order: a bank whose endpoint hangs delays its own alerts, not every bank's.

    A webhook reaches public addresses only, and the networks `egress` allows (see
    `pdo.delivery.egress`); a refused one is a failed attempt, retried and dead-lettered.

    The ledger is not held open during HTTP calls: due alerts are claimed in one short
    transaction, posted, and each outcome committed in its own. Each alert is checked, billed
    and rescheduled at the time of its own POST (a pass may take minutes), unless `now` is
    given, which then stands for the whole pass.
    """
    at, started = now or utcnow(), time.monotonic()

    def clock() -> dt.datetime:
        return now or utcnow()

    factory = _factory(source)
    due = _claim(factory, server_key, at, timeout_s, limit)
    # Post only while the lease still covers a whole request: never after a parallel re-claim.
    deadline = started + lease_for(len(due), timeout_s).total_seconds()
    report = DispatchReport(due=len(due))
    if not due:
        return report
    own = client is None
    http = client or httpx.Client(
        timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 2.0)),
        follow_redirects=False,
        trust_env=False,  # no proxy from the environment: egress decides where pushes go
        # Connections are pooled by the checked address: a TLS connection verified for one
        # bank's name must not carry a push for another name at the same address.
        limits=httpx.Limits(max_keepalive_connections=0),
    )

    def push(queue: list[_Due]) -> DispatchReport:
        """One endpoint's alerts, in queue order."""
        part = DispatchReport()
        for claimed in queue:
            item = _recheck(factory, claimed, clock())
            if item is None:
                part.skipped += 1  # withdrawn, acked or dropped since the claim: never sent
                continue
            if item.refused is None and time.monotonic() + request_bound_s(timeout_s) > deadline:
                part.skipped += 1  # claimed but out of lease: due again once the lease ends
                continue
            outcome = (None, item.refused) if item.refused else _post(http, egress, item, utcnow())
            _settle(factory, item, outcome, clock(), max_attempts, base_delay_s, part)
        return part

    queues: dict[str, list[_Due]] = {}
    for claimed in due:
        queues.setdefault(endpoint_of(claimed.url), []).append(claimed)
    try:
        workers = min(PARALLEL_ENDPOINTS, len(queues))
        with ThreadPoolExecutor(workers, thread_name_prefix="pdo-webhook") as pool:
            for part in pool.map(push, queues.values()):
                report.add(part)
    finally:
        if own:
            http.close()
    return report
