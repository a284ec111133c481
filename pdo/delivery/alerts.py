"""Alerts on watched enterprises: one per event and watchlist member, never two; metered once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import and_, false, insert, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from pdo import audit
from pdo.delivery.batches import authorized_version, valid_subscription
from pdo.delivery.metering import meter_delivery
from pdo.delivery.queueing import queue_on_commit
from pdo.delivery.watchlists import Refusal, get_watchlist, in_force
from pdo.ledger.models import (
    Alert,
    Objection,
    Subscription,
    UsageEvent,
    Watchlist,
    WatchlistMember,
    new_id,
)
from pdo.ledger.types import utcnow

MEMBER_KEYS = ("enterprise", "reference")  # set on every payload when the alert is raised
_INSERT_CHUNK = 5000


def dedupe_key(watchlist_id: str, member_id: int | None, kind: str, event_key: str) -> str:
    """The key that makes the same event on the same member alert once."""
    return f"{watchlist_id}:{member_id}:{kind}:{event_key}"


class MemberRef(NamedTuple):
    """The columns of a watchlist member an alert needs (read in bulk without ORM objects)."""

    id: int | None
    watchlist_id: str
    uscc: str
    shown_as: str
    reference: str | None


def member_refs(session: Session, watchlist_ids: Sequence[str]) -> list[MemberRef]:
    """Every member of the watchlists, as plain tuples: one query, cheap for 100k members."""
    stmt = sa_select(
        col(WatchlistMember.id),
        col(WatchlistMember.watchlist_id),
        col(WatchlistMember.uscc),
        col(WatchlistMember.shown_as),
        col(WatchlistMember.reference),
    ).where(col(WatchlistMember.watchlist_id).in_(list(watchlist_ids)))
    return [MemberRef(*row) for row in session.execute(stmt)]


def _payload(member: WatchlistMember | MemberRef, extra: dict[str, Any] | None) -> dict[str, Any]:
    return {"enterprise": member.shown_as, "reference": member.reference} | (extra or {})


def raise_alerts_for(
    session: Session,
    *,
    product_name: str,
    uscc: str,
    kind: str,
    event_key: str,
    product_version_id: str | None = None,
    payload: dict[str, Any] | None = None,
) -> list[Alert]:
    """An alert for every watchlist on the product that holds the enterprise (entity key).

    event_key names the event (e.g. a version id or an objection id); with the member it forms
    the dedupe key, so raising the same event again creates nothing.
    """
    members = session.exec(
        select(WatchlistMember, Watchlist)
        .join(Watchlist, col(Watchlist.id) == col(WatchlistMember.watchlist_id))
        .where(WatchlistMember.uscc == uscc, Watchlist.product_name == product_name)
    ).all()
    raised = []
    for member, watchlist in members:
        dedupe = dedupe_key(watchlist.id, member.id, kind, event_key)
        if session.exec(select(Alert.id).where(Alert.dedupe_key == dedupe)).first() is not None:
            continue
        alert = Alert(
            watchlist_id=watchlist.id,
            subscriber_id=watchlist.subscriber_id,
            member_id=member.id or 0,
            kind=kind,
            product_version_id=product_version_id,
            payload=_payload(member, payload),
            dedupe_key=dedupe,
            next_attempt_at=utcnow() if watchlist.webhook_url else None,
        )
        session.add(alert)
        raised.append(alert)
    session.flush()
    queue_on_commit(session, (a.id for a in raised))
    return raised


@dataclass(frozen=True)
class AlertDraft:
    """One alert to raise: on which member of which watchlist, what kind, what it says."""

    watchlist: Watchlist
    member: MemberRef
    kind: str
    payload: dict[str, Any]


def raise_alerts_bulk(
    session: Session,
    drafts: Sequence[AlertDraft],
    *,
    event_key: str,
    product_version_id: str | None = None,
) -> dict[str, int]:
    """raise_alerts_for for a whole portfolio: one read of raised keys, then bulk inserts.

    Returns the number of new alerts per kind; drafts already raised (same dedupe key) are skipped.
    """
    if not drafts:
        return {}
    watchlist_ids = {d.watchlist.id for d in drafts}
    raised_before = select(Alert.dedupe_key).where(col(Alert.watchlist_id).in_(watchlist_ids))
    if product_version_id is not None:
        raised_before = raised_before.where(Alert.product_version_id == product_version_id)
    existing = {k for k in session.exec(raised_before) if k.endswith(f":{event_key}")}
    now = utcnow()
    rows: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    for d in drafts:
        key = dedupe_key(d.watchlist.id, d.member.id, d.kind, event_key)
        if key in existing:
            continue
        existing.add(key)
        rows.append(
            {
                "id": new_id(),
                "watchlist_id": d.watchlist.id,
                "subscriber_id": d.watchlist.subscriber_id,
                "member_id": d.member.id,
                "kind": d.kind,
                "product_version_id": product_version_id,
                "payload": _payload(d.member, d.payload),
                "dedupe_key": key,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now if d.watchlist.webhook_url else None,
                "last_error": None,
                "created_at": now,
                "queued_at": now,
                "delivered_at": None,
            }
        )
        counts[d.kind] = counts.get(d.kind, 0) + 1
    for start in range(0, len(rows), _INSERT_CHUNK):
        session.execute(insert(Alert), rows[start : start + _INSERT_CHUNK])
    session.flush()
    queue_on_commit(session, (row["id"] for row in rows))
    return counts


WITHHELD_KEPT = ("version", "as_of")  # what a withheld result alert still says


def alert_view(alert: Alert, withheld: bool = False) -> dict[str, Any]:
    """What the bank receives for an alert, pushed or pulled (JSON-ready, no ledger internals).

    withheld: the enterprise's result is disputed now (see `disputed_now`), so the payload of a
    result alert says so instead of the result, as a lookup answers `disputed_withheld`.
    """
    payload = dict(alert.payload)
    enterprise, reference = (payload.pop(k, None) for k in MEMBER_KEYS)
    if withheld and alert.kind == "dispute_resolved":
        payload = {k: v for k, v in payload.items() if k != "grade"}
        payload["status"] = "disputed_withheld"
    elif withheld and alert.kind in RESULT_KINDS:
        payload = {k: payload[k] for k in WITHHELD_KEPT if k in payload}
        payload["status"] = "disputed_withheld"
    return {
        "id": alert.id,
        "kind": alert.kind,
        "watchlist": alert.watchlist_id,
        "enterprise": enterprise,
        "reference": reference,
        "product_version": alert.product_version_id,
        "payload": payload,
        "created_at": alert.created_at.isoformat(),
    }


def delivery_refusal(session: Session, watchlist: Watchlist, now: dt.datetime) -> Refusal | None:
    """Why the watchlist's alerts may not be delivered now (the dispatcher asks before it sends
    a byte); None when they may."""
    try:
        valid_subscription(session, watchlist, now)
        authorized_version(session, watchlist.product_name, watchlist.purpose, now)
    except Refusal as refusal:
        return refusal
    return None


def mark_delivered(
    session: Session, alert: Alert, watchlist: Watchlist, now: dt.datetime | None = None
) -> UsageEvent:
    """Mark the alert delivered and meter it, in the caller's transaction; metered only once.

    Refused like a batch file of the watchlist (a Refusal): no subscription in force covering
    the watchlist's purpose, or no published version whose grant allows the product and purpose
    now (suspended, revoked, expired).
    """
    at = now or utcnow()
    subscription = valid_subscription(session, watchlist, at)
    live = authorized_version(session, watchlist.product_name, watchlist.purpose, at)
    version_id = alert.product_version_id or live.id
    usage = meter_delivery(
        session,
        subscription=subscription,
        product_version_id=version_id,
        kind="alert",
        purpose=watchlist.purpose,
        units=1,
        delivery_key=f"alert:{alert.id}",
        served_at=at,
    )
    if alert.status != "delivered":
        alert.status, alert.delivered_at, alert.next_attempt_at = "delivered", at, None
        session.add(alert)
    session.flush()
    return usage


def _grant_allows(session: Session, product: str, purpose: str, now: dt.datetime) -> bool:
    """Whether the live version's grant covers the product for the purpose now."""
    try:
        authorized_version(session, product, purpose, now)
    except Refusal:
        return False
    return True


def list_alerts(
    session: Session,
    subscriber_id: str,
    *,
    watchlist_id: str | None = None,
    since: dt.datetime | None = None,
    after: str | None = None,
    limit: int = 100,
) -> list[Alert]:
    """The bank's alerts (not withdrawn ones), oldest first, delivered by being listed.

    Listing discloses each alert's payload, so it is the alert's delivery: marked delivered and
    metered once then (`disclose`), under the same usage event as a push or an ack of it.
    Only on watchlists whose product and purpose a subscription in force covers now and the
    operator's grant allows now: a lapsed subscription, one that dropped the purpose, or a
    suspended or revoked grant lets no more results out, pushed or pulled.
    Pages follow `queued_at`, when an alert became listable (raised, or released again when an
    objection was rejected), so a released alert comes after a cursor the bank already holds:
    `since` keeps those queued after an instant; `after` (the last alert id a page ended with)
    resumes exactly after it, even among the many alerts a version raises in the same instant.
    """
    now = utcnow()
    covered = {
        (product, purpose)
        for product, purposes in session.exec(
            select(Subscription.product_name, Subscription.purposes).where(
                *in_force(subscriber_id, now)
            )
        )
        for purpose in purposes
        if _grant_allows(session, product, purpose, now)
    }
    stmt = (
        select(Alert)
        .join(Watchlist, col(Watchlist.id) == col(Alert.watchlist_id))
        .where(
            Alert.subscriber_id == subscriber_id,
            Alert.status != "withdrawn",
            col(Alert.member_id).is_not(None),  # a removed member's alerts go with it
            or_(
                false(),
                *(
                    and_(col(Watchlist.product_name) == product, col(Watchlist.purpose) == purpose)
                    for product, purpose in sorted(covered)
                ),
            ),
        )
    )
    if watchlist_id is not None:
        get_watchlist(session, subscriber_id, watchlist_id)  # another bank's: 404
        stmt = stmt.where(Alert.watchlist_id == watchlist_id)
    if since is not None:
        stmt = stmt.where(Alert.queued_at > since)
    if after is not None:
        last = cursor_alert(session, subscriber_id, after)
        stmt = stmt.where(
            or_(
                col(Alert.queued_at) > last.queued_at,
                and_(col(Alert.queued_at) == last.queued_at, col(Alert.id) > last.id),
            )
        )
    page = session.exec(stmt.order_by(col(Alert.queued_at), col(Alert.id)).limit(limit))
    return disclose(session, list(page), now)


def disclose(session: Session, alerts: Sequence[Alert], now: dt.datetime) -> list[Alert]:
    """Deliver and meter each alert not yet delivered, as its payload is about to be handed
    over; one withdrawn meanwhile, or whose delivery is refused now, is left out unbilled."""
    undelivered = sorted(a.id for a in alerts if a.status != "delivered")
    if undelivered:
        # Every row first, in id order, before any metering takes the audit chain's lock: a
        # push or an ack takes its row, then the chain, so neither waits on the other in a
        # cycle (row by row, PostgreSQL found deadlocks); the status read now is what counts.
        session.exec(
            select(Alert)
            .where(col(Alert.id).in_(undelivered))
            .order_by(col(Alert.id))
            .with_for_update()
            .execution_options(populate_existing=True)
        ).all()
    shown = []
    for alert in alerts:
        if alert.status != "delivered" and (
            alert.status == "withdrawn" or not _delivered_now(session, alert, now)
        ):
            continue
        shown.append(alert)
    return shown


def _delivered_now(session: Session, alert: Alert, now: dt.datetime) -> bool:
    """Mark the alert delivered and metered; False when our own rules refuse it now."""
    watchlist = session.get(Watchlist, alert.watchlist_id)
    if watchlist is None:
        return False
    try:
        mark_delivered(session, alert, watchlist, now)
    except Refusal:
        return False
    return True


# Alerts that disclose an enterprise's result (score, grade, its change, a knock-out, a listing).
RESULT_KINDS = ("new_version", "grade_drop", "dishonest_debtor", "abnormal_listing")
# ... and dispute_resolved, which may tell the grade a result moved to: withheld in listings
# while the result is disputed again.
WITHHELD_KINDS = (*RESULT_KINDS, "dispute_resolved")


def result_alerts(
    session: Session,
    product_name: str,
    entity: str,
    statuses: Sequence[str],
    version_id: str | None = None,
) -> list[Alert]:
    """The alerts in these states that disclose an enterprise's result on a product (of one
    version, if named), for every bank watching it."""
    query = (
        select(Alert)
        .join(WatchlistMember, col(WatchlistMember.id) == col(Alert.member_id))
        .join(Watchlist, col(Watchlist.id) == col(Alert.watchlist_id))
        .where(
            WatchlistMember.uscc == entity,
            Watchlist.product_name == product_name,
            col(Alert.status).in_(list(statuses)),
            col(Alert.kind).in_(RESULT_KINDS),
        )
    )
    if version_id is not None:
        query = query.where(Alert.product_version_id == version_id)
    return list(session.exec(query).all())


def disputed_now(session: Session, alerts: Sequence[Alert]) -> set[str]:
    """Ids of the alerts that tell a result (WITHHELD_KINDS) whose enterprise's result on the
    alert's product is under an open objection now: listed and acked with it withheld."""
    result = [a for a in alerts if a.kind in WITHHELD_KINDS and a.member_id is not None]
    if not result:
        return set()
    members = dict(
        session.exec(
            select(WatchlistMember.id, WatchlistMember.uscc).where(
                col(WatchlistMember.id).in_({a.member_id for a in result})
            )
        ).all()
    )
    products = dict(
        session.exec(
            select(Watchlist.id, Watchlist.product_name).where(
                col(Watchlist.id).in_({a.watchlist_id for a in result})
            )
        ).all()
    )
    disputed = set(
        session.exec(
            select(Objection.uscc, Objection.product_name).where(
                Objection.status == "open", col(Objection.uscc).in_(set(members.values()))
            )
        ).all()
    )
    return {
        a.id for a in result if (members.get(a.member_id), products.get(a.watchlist_id)) in disputed
    }


def withdrawal_note(objection_id: str) -> str:
    """What a withdrawn alert records as its last error: the objection that withdrew it."""
    return f"withdrawn: objection {objection_id} disputes the result"


def withdraw_undelivered_results(
    session: Session, product_name: str, entity: str, objection_id: str
) -> int:
    """An objection withholds the result everywhere: undelivered alerts that disclose it are
    withdrawn (never pushed, pulled or billed); the dispute_opened alert tells the watchers."""
    rows = result_alerts(session, product_name, entity, ("pending", "dead"))
    for alert in rows:
        alert.status, alert.next_attempt_at = "withdrawn", None
        alert.last_error = withdrawal_note(objection_id)
        session.add(alert)
    if rows:
        audit.record(session, "system", "alerts.withdraw", objection_id, alerts=len(rows))
    return len(rows)


def cursor_alert(session: Session, subscriber_id: str, alert_id: str) -> Alert:
    """The bank's alert an `after=` cursor names, even one of a removed member (its place in
    the order stays); another bank's alert is not found (404)."""
    alert = session.get(Alert, alert_id)
    if alert is None or alert.subscriber_id != subscriber_id:
        raise Refusal(404, "alert_not_found", "no such alert of yours")
    return alert


def own_alert(session: Session, subscriber_id: str, alert_id: str) -> tuple[Alert, Watchlist]:
    """The bank's alert and its watchlist; another bank's alert, or one of a member since
    removed from the watchlist, is not found (404)."""
    alert = cursor_alert(session, subscriber_id, alert_id)
    watchlist = session.get(Watchlist, alert.watchlist_id)
    if watchlist is None or alert.member_id is None:
        raise Refusal(404, "alert_not_found", "no such alert of yours")
    return alert, watchlist


def ack_alert(
    session: Session, subscriber_id: str, alert_id: str, now: dt.datetime | None = None
) -> tuple[Alert, UsageEvent]:
    """A pulled alert acknowledged: delivered and metered once (the usage event its listing
    or push already wrote, if any)."""
    alert, watchlist = own_alert(session, subscriber_id, alert_id)
    # The alert's row first, as the dispatcher takes it: a push settling the same alert at the
    # same moment then goes first or second, never both halfway (a deadlock on PostgreSQL).
    session.refresh(alert, with_for_update=True)
    if alert.status == "withdrawn":
        raise Refusal(
            409, "alert_withdrawn", "this alert's result is disputed and was withdrawn unbilled"
        )
    usage = mark_delivered(session, alert, watchlist, now)
    return alert, usage


def dead_alerts(session: Session, limit: int = 1000) -> list[Alert]:
    """Dead-lettered alerts for the operator, most recent first."""
    return list(
        session.exec(
            select(Alert)
            .where(Alert.status == "dead")
            .order_by(col(Alert.created_at).desc())
            .limit(limit)
        )
    )


def requeue_alert(
    session: Session, alert_id: str, actor: str, now: dt.datetime | None = None
) -> Alert:
    """Put a dead-lettered alert back in the push queue with a fresh attempt budget."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise Refusal(404, "alert_not_found", f"no alert {alert_id!r}")
    if alert.status != "dead":
        raise Refusal(409, "alert_not_dead", f"alert {alert_id} is {alert.status}, not dead")
    watchlist = session.get(Watchlist, alert.watchlist_id)
    pushed = watchlist is not None and watchlist.webhook_url is not None
    alert.status, alert.attempts, alert.last_error = "pending", 0, None
    alert.next_attempt_at = (now or utcnow()) if pushed else None
    session.add(alert)
    audit.record(session, actor, "alert.requeue", alert.id, watchlist=alert.watchlist_id)
    session.flush()
    return alert
