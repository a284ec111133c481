"""Serving a result: checks, the answer, and its usage event with revenue split — one commit."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel
from sqlmodel import Session, col, select

from api.errors import ApiError
from pdo.ledger.models import (
    ApiKey,
    Authorization,
    PipelineRun,
    Product,
    ProductVersion,
    RevenueAllocation,
    ServedScore,
    Subscription,
    UsageEvent,
)
from pdo.ledger.types import utcnow
from pdo.registration import authorization_state, state_message
from pdo.revenue import split_fen


class ScoreAnswer(BaseModel):
    """What a bank receives: no personal data, only the enterprise's score and provenance."""

    uscc: str
    product: str
    product_version: str
    as_of: dt.date
    score: int | None = None
    grade: str | None = None
    details: dict[str, Any] = {}  # the product's other outputs (e.g. reason codes, knock-outs)
    purpose: str
    usage_id: str
    price_fen: int


def authorized_version(
    session: Session, product_name: str, purpose: str, now: dt.datetime
) -> ProductVersion:
    """The published version, refused unless the grant behind its run still holds right now.

    One query per request (version → run → authorization), no cache: a revocation or an expiry
    takes effect on the very next call.
    """
    found = session.exec(
        select(ProductVersion, Authorization)
        .join(PipelineRun, col(PipelineRun.id) == col(ProductVersion.run_id))
        .join(
            Authorization,
            col(Authorization.id) == col(PipelineRun.authorization_id),
            isouter=True,
        )
        .where(ProductVersion.product_name == product_name, ProductVersion.status == "published")
    ).first()
    if found is None:
        raise ApiError(503, "no_published_version", f"{product_name} has no published version")
    version, auth = found
    if auth is None:
        raise ApiError(403, "authorization_missing", f"{version.id} has no authorization on record")
    state = authorization_state(auth, now)
    if state != "active":
        raise ApiError(
            403,
            f"authorization_{state}",
            f"{state_message(auth, state)}; {version.id} 暂停交付 / is not delivered",
        )
    if product_name not in auth.products:
        raise ApiError(
            403,
            "product_not_authorized",
            f"authorization {auth.reference} grants no 数据产品经营权 for {product_name}",
        )
    if purpose not in auth.purposes:
        raise ApiError(
            403,
            "purpose_not_authorized",
            f"authorization {auth.reference} does not allow purpose {purpose!r}",
        )
    return version


def serve_score(
    session: Session, key: ApiKey, product_name: str, uscc: str, purpose: str, entity: str
) -> ScoreAnswer:
    """Refuse what is not allowed; otherwise answer and meter exactly once, atomically.

    `entity` is the enterprise's key in the serving store: a 个体工商户's USCC is pseudonymized,
    so neither the store nor the usage ledger holds a natural person's code.
    """
    product = session.get(Product, product_name)
    if product is None:
        raise ApiError(404, "unknown_product", f"no published product {product_name!r}")
    if purpose not in product.purposes:
        raise ApiError(
            403,
            "purpose_not_allowed",
            f"purpose {purpose!r} is not allowed for {product_name}; "
            f"allowed: {', '.join(product.purposes)}",
        )
    now = utcnow()
    subscription = session.exec(
        select(Subscription).where(
            Subscription.subscriber_id == key.subscriber_id,
            Subscription.product_name == product_name,
        )
    ).first()
    if subscription is None or subscription.valid_until < now:
        raise ApiError(403, "no_subscription", f"no valid subscription to {product_name}")
    version = authorized_version(session, product_name, purpose, now)
    row = session.exec(
        select(ServedScore).where(
            ServedScore.product_version_id == version.id, ServedScore.uscc == entity
        )
    ).first()
    if row is None:
        raise ApiError(404, "unknown_enterprise", f"no result for this enterprise in {version.id}")
    usage = UsageEvent(
        subscriber_id=key.subscriber_id,
        api_key_id=key.id,
        product_version_id=version.id,
        uscc=entity,
        purpose=purpose,
        price_fen=subscription.price_fen,
        served_at=now,
    )
    session.add(usage)
    session.flush()
    for party, fen in split_fen(subscription.price_fen, product.revenue_shares_bp).items():
        session.add(RevenueAllocation(usage_event_id=usage.id, party=party, amount_fen=fen))
    session.commit()
    return ScoreAnswer(
        uscc=uscc,
        product=product_name,
        product_version=version.id,
        as_of=version.as_of,
        score=row.score,
        grade=row.grade,
        details=row.details,
        purpose=purpose,
        usage_id=usage.id,
        price_fen=subscription.price_fen,
    )
