"""What every lookup needs and rarely changes (keys, subscriptions, live versions and grants).

Loaded inside a serving transaction and reloaded whenever the serving generation moved, so a
revoked key or grant is refused from the first batch after the revocation committed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection, select

from pdo.ledger.models import (
    ApiKey,
    Authorization,
    PipelineRun,
    Plan,
    Product,
    ProductVersion,
    Subscriber,
    Subscription,
)

T_KEY = ApiKey.__table__  # type: ignore[attr-defined]
T_SUBSCRIBER = Subscriber.__table__  # type: ignore[attr-defined]
T_SUBSCRIPTION = Subscription.__table__  # type: ignore[attr-defined]
T_PRODUCT = Product.__table__  # type: ignore[attr-defined]
T_VERSION = ProductVersion.__table__  # type: ignore[attr-defined]
T_RUN = PipelineRun.__table__  # type: ignore[attr-defined]
T_AUTH = Authorization.__table__  # type: ignore[attr-defined]
T_PLAN = Plan.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class KeyEntry:
    key_id: str
    key_hash: str
    subscriber_id: str
    daily_enterprise_budget: int
    rate_limit_per_second: int


@dataclass(frozen=True)
class SubscriptionEntry:
    id: int
    price_fen: int
    monthly_quota: int | None
    overage_price_fen: int | None
    purposes: tuple[str, ...]
    valid_from: dt.datetime
    valid_until: dt.datetime
    refunds_withheld: bool  # the plan refunds answers withheld as disputed: they use no quota


@dataclass(frozen=True)
class GrantEntry:
    reference: str
    status: str
    valid_from: dt.datetime
    valid_until: dt.datetime
    products: tuple[str, ...]
    purposes: tuple[str, ...]


@dataclass(frozen=True)
class LiveVersion:
    id: str
    as_of: dt.date
    grant: GrantEntry | None


@dataclass(frozen=True)
class ProductEntry:
    purposes: tuple[str, ...]
    live: LiveVersion | None


GENERATION_SQL = "SELECT n FROM serving_generation WHERE id = 1"


def read_generation(conn: Connection) -> int:
    """The serving generation as committed (0 before the first change); read at every batch."""
    raw = conn.connection.dbapi_connection
    assert raw is not None
    cursor = raw.cursor()
    cursor.execute(GENERATION_SQL)
    row = cursor.fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class Snapshot:
    generation: int
    keys: dict[str, KeyEntry]
    subscriptions: dict[tuple[str, str], SubscriptionEntry]  # (subscriber, product) → live one
    products: dict[str, ProductEntry]

    @classmethod
    def load(cls, conn: Connection, generation: int, now: dt.datetime) -> Snapshot:
        """Five small queries; subscriptions cancelled or ended are left out."""
        budgets = {
            r.id: (r.daily_enterprise_budget, r.rate_limit_per_second)
            for r in conn.execute(select(T_SUBSCRIBER))
        }
        keys = {
            r.id: KeyEntry(r.id, r.key_hash, r.subscriber_id, *budgets[r.subscriber_id])
            for r in conn.execute(select(T_KEY).where(T_KEY.c.revoked.is_(False)))
        }
        subscriptions: dict[tuple[str, str], SubscriptionEntry] = {}
        for r in conn.execute(
            select(T_SUBSCRIPTION, T_PLAN.c.refund_withheld)
            .join(T_PLAN, T_PLAN.c.id == T_SUBSCRIPTION.c.plan_id, isouter=True)
            .where(T_SUBSCRIPTION.c.cancelled_at.is_(None), T_SUBSCRIPTION.c.valid_until > now)
            .order_by(T_SUBSCRIPTION.c.id)
        ):
            subscriptions[(r.subscriber_id, r.product_name)] = SubscriptionEntry(
                r.id,
                r.price_fen,
                r.monthly_quota,
                r.overage_price_fen,
                tuple(r.purposes),
                r.valid_from,
                r.valid_until,
                r.refund_withheld is not False,  # as settlement reads it: no plan → refunded
            )
        live: dict[str, LiveVersion] = {}
        for r in conn.execute(
            select(
                T_VERSION.c.id,
                T_VERSION.c.product_name,
                T_VERSION.c.as_of,
                T_AUTH.c.reference,
                T_AUTH.c.status,
                T_AUTH.c.valid_from,
                T_AUTH.c.valid_until,
                T_AUTH.c.products,
                T_AUTH.c.purposes,
            )
            .join(T_RUN, T_RUN.c.id == T_VERSION.c.run_id)
            .join(T_AUTH, T_AUTH.c.id == T_RUN.c.authorization_id, isouter=True)
            .where(T_VERSION.c.status == "published")
        ):
            grant = None
            if r.reference is not None:
                grant = GrantEntry(
                    r.reference,
                    r.status,
                    r.valid_from,
                    r.valid_until,
                    tuple(r.products),
                    tuple(r.purposes),
                )
            live[r.product_name] = LiveVersion(r.id, r.as_of, grant)
        products = {
            r.name: ProductEntry(tuple(r.purposes), live.get(r.name))
            for r in conn.execute(select(T_PRODUCT))
        }
        return cls(generation, keys, subscriptions, products)
