"""Bank onboarding: subscribers, subscriptions and API keys shown once and stored hashed."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from sqlmodel import Session, select

from pdo import audit
from pdo.ledger.models import ApiKey, Product, Subscriber, Subscription
from pdo.ledger.types import utcnow

KEY_PREFIX = "pdo"


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_key(session: Session, subscriber: Subscriber, actor: str) -> str:
    """A new API key; the plaintext is returned once and never stored."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    session.add(ApiKey(id=key_id, subscriber_id=subscriber.id, key_hash=_hash_secret(secret)))
    audit.record(session, actor, "apikey.issue", subscriber.name, key_id=key_id)
    return f"{KEY_PREFIX}_{key_id}_{secret}"


def add_subscriber(
    session: Session, name: str, actor: str, products: list[str], days: int = 365
) -> tuple[Subscriber, str]:
    """Onboard a bank with subscriptions to products at their list price, and issue its key."""
    if session.exec(select(Subscriber).where(Subscriber.name == name)).first() is not None:
        raise ValueError(f"subscriber {name!r} already exists")
    subscriber = Subscriber(name=name)
    session.add(subscriber)
    session.flush()
    for product_name in products:
        product = session.get(Product, product_name)
        if product is None:
            raise ValueError(f"product {product_name!r} is not published yet")
        session.add(
            Subscription(
                subscriber_id=subscriber.id,
                product_name=product_name,
                price_fen=product.price_fen,
                valid_until=utcnow() + dt.timedelta(days=days),
            )
        )
    audit.record(session, actor, "subscriber.add", name, products=products)
    key = issue_key(session, subscriber, actor)
    return subscriber, key


def resolve_key(session: Session, presented: str) -> ApiKey | None:
    """The active key record for a presented key, or None (constant-time compare)."""
    try:
        prefix, key_id, secret = presented.split("_", 2)
    except ValueError:
        return None
    if prefix != KEY_PREFIX:
        return None
    record = session.get(ApiKey, key_id)
    if record is None or record.revoked:
        return None
    if not hmac.compare_digest(record.key_hash, _hash_secret(secret)):
        return None
    return record
