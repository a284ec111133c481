"""Bank onboarding: subscribers, subscriptions to plans, API keys shown once and stored hashed."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from sqlmodel import Session, col, select

from pdo import audit
from pdo.delivery import generation
from pdo.delivery.periods import business_month
from pdo.delivery.plans import DEFAULT_PLAN, ensure_default_plan
from pdo.ledger.models import ApiKey, Plan, Product, ServingCounter, Subscriber, Subscription
from pdo.ledger.types import utcnow
from pdo.names import checked_name

KEY_PREFIX = "pdo"


def hash_secret(secret: str) -> str:
    """Keys are random 256-bit secrets, so one SHA-256 is enough (no password stretching)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def split_key(presented: str) -> tuple[str, str] | None:
    """(key id, secret) of a presented key, or None when it is not shaped like one of ours."""
    prefix, _, rest = presented.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != KEY_PREFIX or not key_id or not secret:
        return None
    return key_id, secret


def issue_key(session: Session, subscriber: Subscriber, actor: str) -> str:
    """A new API key; the plaintext is returned once and never stored."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    session.add(ApiKey(id=key_id, subscriber_id=subscriber.id, key_hash=hash_secret(secret)))
    audit.record(session, actor, "apikey.issue", subscriber.name, key_id=key_id)
    generation.bump(session)
    return f"{KEY_PREFIX}_{key_id}_{secret}"


def revoke_key(session: Session, key_id: str, actor: str) -> ApiKey:
    """Revoke a key: the API refuses it from its next batch on."""
    key = session.get(ApiKey, key_id)
    if key is None:
        raise ValueError(f"no API key {key_id!r}")
    if key.revoked:
        raise ValueError(f"API key {key_id} is already revoked")
    key.revoked, key.revoked_at = True, utcnow()
    session.add(key)
    audit.record(session, actor, "apikey.revoke", key.subscriber_id, key_id=key_id)
    generation.bump(session)
    return key


def find_subscriber(session: Session, name_or_id: str) -> Subscriber:
    """A subscriber by name or id, with a clear error."""
    found = (
        session.get(Subscriber, name_or_id)
        or session.exec(select(Subscriber).where(Subscriber.name == name_or_id)).first()
    )
    if found is None:
        raise ValueError(f"no subscriber {name_or_id!r}")
    return found


def subscribe(
    session: Session,
    subscriber: Subscriber,
    plan_id: str,
    actor: str,
    purposes: list[str] | None = None,
) -> Subscription:
    """Subscribe a bank to a plan; its scope is the named purposes (default: all the product's)."""
    plan = session.get(Plan, plan_id)
    if plan is None:
        raise ValueError(f"no plan {plan_id!r} (see `pdo plan list`)")
    product = session.get(Product, plan.product_name)
    assert product is not None
    scope = sorted(set(purposes or product.purposes))
    outside = sorted(set(scope) - set(product.purposes))
    if outside:
        raise ValueError(f"purposes {outside} are not allowed for {product.name}")
    now = utcnow()
    replaced: list[int] = []
    for current in session.exec(
        select(Subscription).where(
            Subscription.subscriber_id == subscriber.id,
            Subscription.product_name == plan.product_name,
        )
    ):
        if current.cancelled_at is None and current.valid_until > now:
            current.cancelled_at = now  # one live subscription per product: the new one replaces
            session.add(current)
            assert current.id is not None
            replaced.append(current.id)
    subscription = Subscription(
        subscriber_id=subscriber.id,
        product_name=plan.product_name,
        plan_id=plan.id,
        price_fen=plan.price_fen,
        monthly_quota=plan.monthly_quota,
        overage_price_fen=plan.overage_price_fen,
        purposes=scope,
        valid_from=now,
        valid_until=now + dt.timedelta(days=plan.validity_days),
    )
    session.add(subscription)
    session.flush()
    _carry_monthly_calls(session, replaced, subscription, business_month(now))
    audit.record(session, actor, "subscription.add", subscriber.name, plan=plan.id, purposes=scope)
    generation.bump(session)
    return subscription


def _carry_monthly_calls(
    session: Session, replaced: list[int], subscription: Subscription, month: str
) -> None:
    """The calls this month's quota already counted go on counting under the subscription that
    replaces it: subscribing again (to narrow the purposes, say) starts no fresh quota."""
    if not replaced:
        return
    # Read under the chain's lock, as serving batches count: a batch that counted a call and
    # had not yet committed would otherwise be left out of the sum (PostgreSQL).
    audit.hold_chain(session)
    counters = [f"quota:{sub_id}" for sub_id in replaced]
    used = sum(
        session.exec(
            select(ServingCounter.used).where(
                col(ServingCounter.counter).in_(counters), ServingCounter.period == month
            )
        )
    )
    if used:
        session.add(ServingCounter(counter=f"quota:{subscription.id}", period=month, used=used))


# Bounds a bank's settings must hold: what a ledger's integer column stores and the API can use.
MAX_DAILY_BUDGET = 10**9
MAX_RATE_LIMIT = 10**6


def add_subscriber(
    session: Session,
    name: str,
    actor: str,
    products: list[str],
    *,
    daily_enterprise_budget: int = 1000,
    rate_limit_per_second: int = 100,
) -> tuple[Subscriber, str]:
    """Onboard a bank on each product's standard plan, and issue its key."""
    checked_name("subscriber", name)
    if not 1 <= daily_enterprise_budget <= MAX_DAILY_BUDGET:
        raise ValueError(f"a daily budget must be 1 to {MAX_DAILY_BUDGET:,} enterprises")
    if not 1 <= rate_limit_per_second <= MAX_RATE_LIMIT:
        raise ValueError(f"a rate limit must be 1 to {MAX_RATE_LIMIT:,} calls a second")
    if session.exec(select(Subscriber).where(Subscriber.name == name)).first() is not None:
        raise ValueError(f"subscriber {name!r} already exists")
    subscriber = Subscriber(
        name=name,
        daily_enterprise_budget=daily_enterprise_budget,
        rate_limit_per_second=rate_limit_per_second,
    )
    session.add(subscriber)
    session.flush()
    for product_name in products:
        product = session.get(Product, product_name)
        if product is None:
            raise ValueError(f"product {product_name!r} is not published yet")
        plan = ensure_default_plan(session, product)
        assert plan.name == DEFAULT_PLAN
        subscribe(session, subscriber, plan.id, actor)
    audit.record(session, actor, "subscriber.add", name, products=products)
    key = issue_key(session, subscriber, actor)
    return subscriber, key


def resolve_key(session: Session, presented: str) -> tuple[ApiKey, Subscriber] | None:
    """The active key record for a presented key and its bank, in one read, or None
    (constant-time compare)."""
    parts = split_key(presented)
    if parts is None:
        return None
    found = session.exec(
        select(ApiKey, Subscriber)
        .join(Subscriber, col(ApiKey.subscriber_id) == col(Subscriber.id))
        .where(ApiKey.id == parts[0])
    ).first()
    if found is None or found[0].revoked:
        return None
    if not hmac.compare_digest(found[0].key_hash, hash_secret(parts[1])):
        return None
    return found
