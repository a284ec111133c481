"""Usage events: one per served answer, alert or file, with its revenue split — never two."""

from __future__ import annotations

from sqlmodel import Session, select

from pdo.ledger.models import Product, RevenueAllocation, Subscription, UsageEvent
from pdo.ledger.types import utcnow
from pdo.revenue import split_fen


def meter_delivery(
    session: Session,
    *,
    subscription: Subscription,
    product_version_id: str,
    kind: str,
    purpose: str,
    units: int,
    delivery_key: str,
    uscc: str | None = None,
) -> UsageEvent:
    """The usage event of one alert or batch file; a second call with the same key returns it."""
    existing = session.exec(
        select(UsageEvent).where(UsageEvent.delivery_key == delivery_key)
    ).first()
    if existing is not None:
        return existing
    product = session.get(Product, subscription.product_name)
    shares = product.revenue_shares_bp if product is not None else {}
    usage = UsageEvent(
        subscriber_id=subscription.subscriber_id,
        subscription_id=subscription.id,
        product_version_id=product_version_id,
        kind=kind,
        uscc=uscc,
        purpose=purpose,
        units=units,
        price_fen=subscription.price_fen * units,
        delivery_key=delivery_key,
        served_at=utcnow(),
    )
    session.add(usage)
    session.flush()
    for party, fen in split_fen(usage.price_fen, shares).items():
        session.add(RevenueAllocation(usage_event_id=usage.id, party=party, amount_fen=fen))
    return usage
