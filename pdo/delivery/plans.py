"""The catalog: plans per product (price per call in fen, monthly quota, validity)."""

from __future__ import annotations

from sqlmodel import Session, select

from pdo import audit
from pdo.delivery import generation
from pdo.ledger.models import Plan, Product
from pdo.names import checked_name, checked_plan_name

DEFAULT_PLAN = "standard"
# Bounds that keep every figure inside a 64-bit ledger column and every end date in the calendar.
MAX_VALIDITY_DAYS = 36_500
MAX_FEN = 10**12  # 100 亿元 a call
MAX_QUOTA = 10**12


def ensure_default_plan(session: Session, product: Product) -> Plan:
    """Every published product has a 标准 plan at its list price, with no quota."""
    plan_id = f"{product.name}/{DEFAULT_PLAN}"
    plan = session.get(Plan, plan_id)
    if plan is None:
        plan = Plan(
            id=plan_id,
            product_name=product.name,
            name=DEFAULT_PLAN,
            title_zh=f"{product.title_zh} 标准套餐",
            price_fen=product.price_fen,
        )
        session.add(plan)
        session.flush()
    return plan


def add_plan(
    session: Session,
    *,
    product_name: str,
    name: str,
    title_zh: str,
    price_fen: int,
    monthly_quota: int | None,
    validity_days: int,
    refund_withheld: bool,
    actor: str,
    overage_price_fen: int | None = None,
) -> Plan:
    """A new plan in the catalog; plans are never edited, so a subscription's terms hold."""
    if session.get(Product, product_name) is None:
        raise ValueError(f"product {product_name!r} is not published yet")
    checked_plan_name(name)
    checked_name("plan title", title_zh)
    if not 0 <= price_fen <= MAX_FEN:
        raise ValueError(f"price must be 0 to {MAX_FEN:,} fen")
    if monthly_quota is not None and not 1 <= monthly_quota <= MAX_QUOTA:
        raise ValueError(f"a monthly quota must be 1 to {MAX_QUOTA:,} calls (omit it for no quota)")
    if overage_price_fen is not None and (
        not 0 <= overage_price_fen <= MAX_FEN or monthly_quota is None
    ):
        raise ValueError(f"an overage price needs a monthly quota and must be 0 to {MAX_FEN:,} fen")
    if not 1 <= validity_days <= MAX_VALIDITY_DAYS:
        raise ValueError(f"validity must be 1 to {MAX_VALIDITY_DAYS:,} days")
    plan_id = f"{product_name}/{name}"
    if session.get(Plan, plan_id) is not None:
        raise ValueError(f"plan {plan_id} already exists; plans are immutable, add a new one")
    plan = Plan(
        id=plan_id,
        product_name=product_name,
        name=name,
        title_zh=title_zh,
        price_fen=price_fen,
        monthly_quota=monthly_quota,
        overage_price_fen=overage_price_fen,
        validity_days=validity_days,
        refund_withheld=refund_withheld,
    )
    session.add(plan)
    session.flush()
    audit.record(
        session,
        actor,
        "plan.add",
        plan_id,
        price_fen=price_fen,
        monthly_quota=monthly_quota,
        overage_price_fen=overage_price_fen,
        refund_withheld=refund_withheld,
    )
    generation.bump(session)
    return plan


def list_plans(session: Session) -> list[Plan]:
    """The catalog, by product then plan."""
    return list(session.exec(select(Plan).order_by(Plan.product_name, Plan.name)))
