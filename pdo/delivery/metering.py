"""Usage events: one per served answer, alert or file — never two — each on the audit chain."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlmodel import Session, select

from pdo import audit
from pdo.ledger.models import Subscription, UsageEvent
from pdo.ledger.types import utcnow

# The audit action of a usage event, by its kind; a refused query is "query.refused".
USAGE_ACTIONS = {"query": "query.serve", "alert": "delivery.alert", "batch": "delivery.batch"}


def usage_details(
    *,
    usage_id: str,
    subscriber_id: str,
    subscription_id: int | None,
    product_version_id: str,
    kind: str,
    status: str,
    entity: str | None,
    purpose: str,
    consent_id: str | None,
    units: int,
    price_fen: int,
    overage: bool,
    served_at: dt.datetime,
) -> dict[str, Any]:
    """What the audit chain keeps of a usage event: every billed fact, no personal data.

    entity is the enterprise key (a 个体工商户's is a pseudonym), never a raw identifier.
    """
    return {
        "usage_id": usage_id,
        "subscriber": subscriber_id,
        "subscription": subscription_id,
        "version": product_version_id,
        "kind": kind,
        "status": status,
        "entity": entity,
        "purpose": purpose,
        "consent": consent_id,
        "units": units,
        "price_fen": price_fen,
        "overage": overage,
        "served_at": served_at.astimezone(dt.UTC).isoformat(),
    }


def details_of(usage: UsageEvent) -> dict[str, Any]:
    """The audit details of a stored usage event: to append it, or to check it against the chain."""
    return usage_details(
        usage_id=usage.id,
        subscriber_id=usage.subscriber_id,
        subscription_id=usage.subscription_id,
        product_version_id=usage.product_version_id,
        kind=usage.kind,
        status=usage.status,
        entity=usage.uscc,
        purpose=usage.purpose,
        consent_id=usage.consent_id,
        units=usage.units,
        price_fen=usage.price_fen,
        overage=usage.overage,
        served_at=usage.served_at,
    )


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
    served_at: dt.datetime | None = None,
) -> UsageEvent:
    """The usage event of one alert or batch file; a second call with the same key returns it.

    `served_at` is the instant the delivery was checked and recorded at, so the bill's month is
    the delivery's month (a dispatch pass may straddle midnight).
    """
    existing = session.exec(
        select(UsageEvent).where(UsageEvent.delivery_key == delivery_key)
    ).first()
    if existing is not None:
        return existing
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
        served_at=served_at or utcnow(),
    )
    session.add(usage)
    session.flush()
    audit.record(
        session,
        f"subscriber:{subscription.subscriber_id}",
        USAGE_ACTIONS[kind],
        usage.id,
        **details_of(usage) | {"delivery_key": delivery_key},
    )
    return usage
