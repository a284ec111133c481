"""Watchlists: a bank's loan book for one product, the portfolio its 贷后管理 alerts cover.

Members are stored by entity key (a 个体工商户 by keyed pseudonym) and shown to the bank as
`identity.shown_as`; neither the ledger nor the audit log holds a natural person's code.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import insert, update
from sqlmodel import Session, col, func, select

from pdo import audit
from pdo.delivery.egress import PUBLIC_ONLY, Egress
from pdo.delivery.identity import shown_as
from pdo.ledger.models import (
    Alert,
    Product,
    Subscription,
    Watchlist,
    WatchlistMember,
)
from pdo.ledger.types import utcnow
from pdo.privacy.checksums import is_valid_uscc
from pdo.privacy.entity_key import entity_key
from pdo.privacy.pseudonym import Pseudonymizer

USCC_PATTERN = r"^[0-9A-HJ-NPQRTUWXY]{18}$"
DEFAULT_PURPOSE = "贷后管理"
# Purposes served from a registered loan book (watchlists, alerts, batch files) rather than under
# each enterprise's consent: a 贷前审查 check is a lookup that names the enterprise's consent.
PORTFOLIO_PURPOSES = frozenset({DEFAULT_PURPOSE})
_HOST_CHARS = frozenset(string.ascii_letters + string.digits + "-_.")


def _valid_host(host: str) -> bool:
    """Whether an (IDNA-encoded) host can be connected to: an IP, or a name with sane labels."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        host.encode("idna")  # empty or over-long labels, as the sender would meet them
    except UnicodeError:
        return False
    return bool(host) and set(host) <= _HOST_CHARS


def valid_webhook_url(url: str) -> bool:
    """Whether the dispatcher can POST to the URL: parsed as httpx will, so none fails later."""
    try:
        parsed = httpx.URL(url)
        parsed.host  # noqa: B018 - decoding the punycode raises on a malformed A-label
    except (httpx.InvalidURL, ValueError):  # bad port, bracket, punycode, control character
        return False
    if parsed.scheme not in ("http", "https"):
        return False
    if parsed.port is not None and not 0 < parsed.port <= 65535:
        return False
    return _valid_host(parsed.raw_host.decode("ascii"))


class Refusal(Exception):
    """A request the ledger refuses, with an HTTP-like status and a stable code for the bank."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class NewMember:
    """One enterprise a bank adds: its USCC as the bank knows it and the bank's own reference."""

    uscc: str
    reference: str | None = None


@dataclass(frozen=True)
class MembersAdded:
    """What an addition changed: new members, references updated, and the portfolio's size."""

    added: int
    updated: int
    total: int


def in_force(subscriber_id: str, at: dt.datetime) -> tuple[Any, ...]:
    """The conditions of a bank's subscriptions in force at an instant (not cancelled, in dates)."""
    return (
        Subscription.subscriber_id == subscriber_id,
        col(Subscription.cancelled_at).is_(None),
        col(Subscription.valid_from) <= at,
        col(Subscription.valid_until) > at,
    )


def active_subscription(
    session: Session, subscriber_id: str, product_name: str, now: dt.datetime | None = None
) -> Subscription | None:
    """The bank's subscription to the product that is in force now (latest ending first)."""
    return session.exec(
        select(Subscription)
        .where(Subscription.product_name == product_name, *in_force(subscriber_id, now or utcnow()))
        .order_by(col(Subscription.valid_until).desc())
    ).first()


def require_subscription(
    session: Session, subscriber_id: str, product_name: str, now: dt.datetime | None = None
) -> Subscription:
    """The subscription in force, or a 403 no_subscription refusal."""
    subscription = active_subscription(session, subscriber_id, product_name, now)
    if subscription is None:
        raise Refusal(403, "no_subscription", f"no valid subscription to {product_name}")
    return subscription


def not_a_portfolio_purpose(purpose: str) -> str:
    """Why a watchlist may not serve purpose: batches and alerts check no enterprise's consent."""
    return (
        f"watchlists serve {', '.join(sorted(PORTFOLIO_PURPOSES))} (your loan book), not "
        f"{purpose!r}: use a lookup naming the enterprise's consent"
    )


def create_watchlist(
    session: Session,
    subscriber_id: str,
    *,
    name: str,
    product_name: str,
    actor: str,
    purpose: str = DEFAULT_PURPOSE,
    webhook_url: str | None = None,
    egress: Egress = PUBLIC_ONLY,
) -> Watchlist:
    """A new watchlist for a product the bank subscribes to, for a purpose it may declare.

    A webhook URL whose host is, as written, an address pushes may not reach (see `egress`) is
    refused now rather than dead-lettered at every push.
    """
    product = session.get(Product, product_name)
    if product is None:
        raise Refusal(404, "unknown_product", "no published product by that name")
    subscription = require_subscription(session, subscriber_id, product_name)
    if purpose not in PORTFOLIO_PURPOSES:
        raise Refusal(403, "purpose_not_allowed", not_a_portfolio_purpose(purpose))
    allowed = subscription.purposes or product.purposes
    if purpose not in allowed:
        raise Refusal(
            403,
            "purpose_not_allowed",
            f"the purpose is not allowed for {product_name}; allowed: {', '.join(allowed)}",
        )
    if webhook_url is not None and not valid_webhook_url(webhook_url):
        raise Refusal(422, "invalid_webhook_url", "webhook_url must be an http(s) URL")
    if webhook_url is not None and egress.refuses_named_host(webhook_url):
        raise Refusal(
            422,
            "webhook_url_not_public",
            "webhook_url must reach a public address; a bank on a private line (专线) asks the "
            "operator to allow its network",
        )
    taken = session.exec(
        select(Watchlist.id).where(Watchlist.subscriber_id == subscriber_id, Watchlist.name == name)
    ).first()
    if taken is not None:
        raise Refusal(409, "watchlist_exists", "you already have a watchlist with this name")
    watchlist = Watchlist(
        subscriber_id=subscriber_id,
        name=name,
        product_name=product_name,
        purpose=purpose,
        webhook_url=webhook_url,
    )
    session.add(watchlist)
    session.flush()
    audit.record(
        session,
        actor,
        "watchlist.create",
        watchlist.id,
        subscriber=subscriber_id,
        product=product_name,
        purpose=purpose,
        webhook=webhook_url is not None,
    )
    return watchlist


def get_watchlist(session: Session, subscriber_id: str, watchlist_id: str) -> Watchlist:
    """The bank's own watchlist; another bank's is refused as not found, so ids do not leak."""
    watchlist = session.get(Watchlist, watchlist_id)
    if watchlist is None or watchlist.subscriber_id != subscriber_id:
        raise Refusal(404, "watchlist_not_found", "no such watchlist of yours")
    return watchlist


def list_watchlists(session: Session, subscriber_id: str | None = None) -> list[Watchlist]:
    """A bank's watchlists (or, for the operator, everyone's), oldest first."""
    stmt = select(Watchlist).order_by(col(Watchlist.created_at), col(Watchlist.id))
    if subscriber_id is not None:
        stmt = stmt.where(Watchlist.subscriber_id == subscriber_id)
    return list(session.exec(stmt))


def member_counts(session: Session, watchlist_ids: Iterable[str]) -> dict[str, int]:
    """Members per watchlist, in one grouped query."""
    ids = list(watchlist_ids)
    if not ids:
        return {}
    rows = session.exec(
        select(WatchlistMember.watchlist_id, func.count())
        .where(col(WatchlistMember.watchlist_id).in_(ids))
        .group_by(col(WatchlistMember.watchlist_id))
    ).all()
    counts = {watchlist_id: int(n) for watchlist_id, n in rows}
    return {i: counts.get(i, 0) for i in ids}


def valid_uscc(code: str) -> str:
    """The code upper-cased, or a 422 invalid_uscc refusal (never echoing the code back)."""
    normalized = code.strip().upper()
    if not is_valid_uscc(normalized):
        raise Refusal(
            422,
            "invalid_uscc",
            "a USCC is 18 characters of 0-9 and A-Y (no I O S V Z) whose check character holds",
        )
    return normalized


def add_members(
    session: Session,
    watchlist: Watchlist,
    members: Sequence[NewMember],
    pseudo: Pseudonymizer,
    actor: str,
) -> MembersAdded:
    """Add enterprises (or update their reference); one read and one bulk insert per call."""
    require_subscription(session, watchlist.subscriber_id, watchlist.product_name)
    wanted: dict[str, tuple[str, str | None]] = {}
    for member in members:
        code = valid_uscc(member.uscc)
        wanted[entity_key(code, pseudo)] = (shown_as(code), member.reference)
    existing = {
        m.uscc: m
        for m in session.exec(
            select(WatchlistMember).where(WatchlistMember.watchlist_id == watchlist.id)
        )
    }
    now = utcnow()
    new_rows = [
        {"watchlist_id": watchlist.id, "uscc": key, "shown_as": shown, "reference": reference,
         "added_at": now}
        for key, (shown, reference) in wanted.items()
        if key not in existing
    ]  # fmt: skip
    updated = 0
    for key, (_, reference) in wanted.items():
        held = existing.get(key)
        if held is not None and reference is not None and held.reference != reference:
            held.reference = reference
            session.add(held)
            updated += 1
    if new_rows:
        session.execute(insert(WatchlistMember), new_rows)
    session.flush()
    total = len(existing) + len(new_rows)
    audit.record(
        session,
        actor,
        "watchlist.members.add",
        watchlist.id,
        added=len(new_rows),
        updated=updated,
        total=total,
    )
    return MembersAdded(added=len(new_rows), updated=updated, total=total)


def remove_member(
    session: Session, watchlist: Watchlist, uscc: str, pseudo: Pseudonymizer, actor: str
) -> None:
    """Take an enterprise off the watchlist, with its alerts (their usage events stay billed).

    The alerts are detached, not deleted (`detach_alerts`): a bank whose `after=` cursor is one
    of them still resumes its poll.
    """
    key = entity_key(valid_uscc(uscc), pseudo)
    member = session.exec(
        select(WatchlistMember).where(
            WatchlistMember.watchlist_id == watchlist.id, WatchlistMember.uscc == key
        )
    ).first()
    if member is None:
        raise Refusal(404, "member_not_found", "this enterprise is not on the watchlist")
    dropped = detach_alerts(session, member)
    session.delete(member)
    session.flush()
    audit.record(
        session,
        actor,
        "watchlist.members.remove",
        watchlist.id,
        removed=1,
        alerts_dropped=dropped,
    )


def detach_alerts(session: Session, member: WatchlistMember) -> int:
    """Keep a removed member's alerts as rows no one sees: never listed, pushed, acked or billed
    again, their dedupe keys freed for a re-added member; only a cursor on one still resolves."""
    dropped = list(session.exec(select(Alert.id).where(Alert.member_id == member.id)))
    if dropped:
        session.execute(
            update(Alert)
            .where(col(Alert.id).in_(dropped), col(Alert.status) != "delivered")
            .values(
                status="withdrawn", next_attempt_at=None, last_error="withdrawn: member removed"
            )
        )
        session.execute(
            update(Alert)
            .where(col(Alert.id).in_(dropped))
            .values(member_id=None, dedupe_key="removed:" + col(Alert.id))
        )
    return len(dropped)


def list_members(
    session: Session, watchlist: Watchlist, *, limit: int = 1000, offset: int = 0
) -> list[WatchlistMember]:
    """A page of the watchlist's members, in the order they were added."""
    return list(
        session.exec(
            select(WatchlistMember)
            .where(WatchlistMember.watchlist_id == watchlist.id)
            .order_by(col(WatchlistMember.id))
            .offset(offset)
            .limit(limit)
        )
    )


def in_portfolio(
    session: Session, subscriber_id: str, product_name: str, uscc_entity_key: str
) -> bool:
    """Whether the enterprise is on one of the bank's watchlists for the product (贷后管理)."""
    found = session.exec(
        select(WatchlistMember.id)
        .join(Watchlist, col(Watchlist.id) == col(WatchlistMember.watchlist_id))
        .where(
            Watchlist.subscriber_id == subscriber_id,
            Watchlist.product_name == product_name,
            WatchlistMember.uscc == uscc_entity_key,
        )
        .limit(1)
    ).first()
    return found is not None
