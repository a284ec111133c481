"""Registering departments, their source tables and authorizations in the ledger."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict
from typing import Any, Protocol

from sqlmodel import Session, col, select

from pdo import audit
from pdo.delivery import generation
from pdo.delivery.periods import business_day
from pdo.ledger.models import (
    Authorization,
    Department,
    PipelineRun,
    ProductVersion,
    SourceTableRecord,
    User,
)
from pdo.ledger.types import utcnow
from pdo.sources.departments import DEPARTMENTS
from pdo.sources.tables import SOURCE_TABLES
from pdo.users import Role

# The data authority's own acting identity (the default `--as` of `pdo authorization grant`).
AUTHORITY_ACTOR = "authority"
DEFAULT_PRODUCTS = ("credit_risk",)
# 三权分置: the rights an authorization records, and who holds each.
HOLDING_RIGHT = "数据资源持有权"
PROCESSING_RIGHT = "数据加工使用权"
OPERATION_RIGHT = "数据产品经营权"


def contract_hash(table_name: str) -> str:
    for t in SOURCE_TABLES:
        if t.name == table_name:
            return hashlib.sha256(json.dumps(asdict(t), default=str).encode()).hexdigest()
    raise KeyError(table_name)


def register_departments(session: Session, actor: str) -> int:
    """Upsert every department and source table contract; returns how many were new."""
    added = 0
    for d in DEPARTMENTS:
        if session.get(Department, d.code) is None:
            session.add(Department(code=d.code, name_zh=d.name_zh, name_en=d.name_en))
            added += 1
    session.flush()
    for t in SOURCE_TABLES:
        record = session.get(SourceTableRecord, t.name)
        h = contract_hash(t.name)
        if record is None:
            session.add(
                SourceTableRecord(
                    name=t.name,
                    department_code=t.department,
                    label_zh=t.label_zh,
                    classification=t.classification.value,
                    contract_hash=h,
                )
            )
            added += 1
        elif record.contract_hash != h:
            record.contract_hash = h
            session.add(record)
    if added:
        audit.record(session, actor, "departments.register", "departments", added=added)
    return added


class AuthorizationError(PermissionError):
    """No active authorization covers what was asked, or the actor may not change it."""


def grant_every_table(
    session: Session, *, reference: str, products: list[str], actor: str, days: int = 365
) -> Authorization:
    """Departments registered and one grant over every contracted table for both purposes:
    the whole-city setup of the demo, the pipeline bench and runner tests."""
    register_departments(session, actor)
    return grant_authorization(
        session,
        reference=reference,
        tables=[t.name for t in SOURCE_TABLES],
        purposes=["贷前审查", "贷后管理"],
        products=products,
        days=days,
        actor=actor,
    )


def grant_rights(tables: list[str], operator: str) -> dict[str, Any]:
    """三权分置: the departments keep holding their data; the operator may process and operate."""
    codes = {t.department for t in SOURCE_TABLES if t.name in tables}
    holders = [d.name_zh for d in DEPARTMENTS if d.code in codes]
    return {HOLDING_RIGHT: holders, PROCESSING_RIGHT: operator, OPERATION_RIGHT: operator}


MAX_GRANT_DAYS = 36_500  # a hundred years: any longer is a typo (and past datetime's range)


def _check_days(days: int) -> None:
    if not 1 <= days <= MAX_GRANT_DAYS:
        raise ValueError(f"授权天数须在 1–{MAX_GRANT_DAYS} / --days must be 1 to {MAX_GRANT_DAYS}")


def _check_same_terms(
    existing: Authorization,
    tables: list[str],
    purposes: list[str],
    products: list[str],
    min_department_share_bp: int,
    revenue_parties: list[str] | None,
) -> None:
    """Granting a reference again is idempotent only for the same terms (days aside)."""
    differs = [
        name
        for name, was, now in (
            ("tables", existing.tables, sorted(tables)),
            ("purposes", sorted(existing.purposes), sorted(purposes)),
            ("products", existing.products, products),
            ("min_department_share_bp", existing.min_department_share_bp, min_department_share_bp),
            ("revenue_parties", existing.revenue_parties, sorted(set(revenue_parties or []))),
        )
        if was != now
    ]
    if differs:
        raise ValueError(
            f"授权 {existing.reference} 已存在且条款不同 / authorization {existing.reference} "
            f"was granted with other {', '.join(differs)}: a changed grant needs a new reference "
            "(`authorization renew` extends a grant's validity)"
        )


def grant_authorization(
    session: Session,
    *,
    reference: str,
    tables: list[str],
    purposes: list[str],
    days: int,
    actor: str,
    authority: str = "市数据局",
    operator: str = "授权运营单位",
    products: list[str] | None = None,
    min_department_share_bp: int = 0,
    revenue_parties: list[str] | None = None,
) -> Authorization:
    """Record an authority's grant to the operator over named tables, purposes and products."""
    _check_days(days)
    purposes = [p.strip() for p in purposes if p.strip()]
    if not reference.strip() or not purposes:
        raise ValueError("授权须有文书编号和用途 / a grant needs its reference and its purposes")
    known = {t.name for t in SOURCE_TABLES}
    unknown = sorted(set(tables) - known)
    if unknown:
        raise ValueError(f"unknown tables in authorization: {unknown}")
    names = sorted({p.strip() for p in (products or DEFAULT_PRODUCTS)})
    if not names or "" in names:
        raise ValueError("授权须列明数据产品 / an authorization must name its products")
    existing = session.exec(
        select(Authorization).where(Authorization.reference == reference)
    ).first()
    if existing is not None:
        _check_same_terms(
            existing, tables, purposes, names, min_department_share_bp, revenue_parties
        )
        return existing
    now = utcnow()
    auth = Authorization(
        reference=reference,
        authority=authority,
        operator=operator,
        tables=sorted(tables),
        purposes=list(purposes),
        products=names,
        rights=grant_rights(tables, operator),
        min_department_share_bp=min_department_share_bp,
        revenue_parties=sorted(set(revenue_parties or [])),
        valid_from=now,
        valid_until=now + dt.timedelta(days=days),
        granted_by=actor,
    )
    session.add(auth)
    session.flush()
    audit.record(
        session,
        actor,
        "authorization.grant",
        auth.id,
        reference=reference,
        tables=auth.tables,
        purposes=auth.purposes,
        products=auth.products,
        rights=auth.rights,
        min_department_share_bp=auth.min_department_share_bp,
        revenue_parties=auth.revenue_parties,
        days=days,
    )
    generation.bump(session)  # the API drops its cached view of this grant
    return auth


class GrantTerms(Protocol):
    """What the state of a grant is read from: the ledger row or the API's cached copy of it."""

    @property
    def reference(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def valid_from(self) -> dt.datetime: ...
    @property
    def valid_until(self) -> dt.datetime: ...


def authorization_state(auth: GrantTerms, now: dt.datetime | None = None) -> str:
    """Revocation and expiry are read at every use, so they take effect at once."""
    now = now or utcnow()
    if auth.status != "active":
        return auth.status
    if now > auth.valid_until:
        return "expired"
    if now < auth.valid_from:
        return "not_yet_valid"
    return "active"


def state_message(auth: GrantTerms, state: str) -> str:
    """One bilingual line naming the authorization and why it does not count now."""
    ref = auth.reference
    if state == "revoked":
        return f"授权 {ref} 已撤销 / authorization {ref} is revoked"
    if state == "expired":
        day = business_day(auth.valid_until)
        return f"授权 {ref} 已于 {day} 到期 / authorization {ref} expired on {day}"
    if state == "not_yet_valid":
        day = business_day(auth.valid_from)
        return f"授权 {ref} 自 {day} 起生效 / authorization {ref} is not valid before {day}"
    return f"授权 {ref} 状态为 {state} / authorization {ref} is {state}"


def check_authorization(
    session: Session, authorization_id: str, tables: list[str]
) -> Authorization:
    """The authorization must exist, be active, be valid now and cover every table."""
    auth = session.get(Authorization, authorization_id)
    if auth is None:
        raise AuthorizationError(f"authorization {authorization_id} does not exist")
    state = authorization_state(auth)
    if state != "active":
        raise AuthorizationError(state_message(auth, state))
    missing = sorted(set(tables) - set(auth.tables))
    if missing:
        raise AuthorizationError(f"authorization {auth.reference} does not cover tables {missing}")
    return auth


def active_authorization(session: Session) -> Authorization | None:
    """The most recent active authorization, for commands that do not name one."""
    rows = session.exec(select(Authorization).where(Authorization.status == "active")).all()
    return max(rows, key=lambda a: a.created_at) if rows else None


def list_authorizations(session: Session) -> list[Authorization]:
    """Every grant, oldest first, whatever its state."""
    return list(session.exec(select(Authorization).order_by(col(Authorization.created_at))))


def find_authorization(session: Session, key: str) -> Authorization:
    """An authorization by id or by its reference (授权文书编号), or a clear LookupError."""
    auth = session.get(Authorization, key)
    if auth is None:
        auth = session.exec(select(Authorization).where(Authorization.reference == key)).first()
    if auth is None:
        raise LookupError(f"未找到授权 / no authorization {key!r}")
    return auth


def may_govern(session: Session, actor: str) -> bool:
    """Only the data authority or a regulator may revoke or renew a grant.

    `authority` is the authority's own identity (as when granting), unless a user of that name
    exists: then, like anyone else, it needs the regulator role.
    """
    user = session.get(User, actor)
    if user is not None:
        return user.role == Role.REGULATOR.value
    return actor == AUTHORITY_ACTOR


def _require_governor(session: Session, actor: str, verb_zh: str, verb: str) -> None:
    """Refuse anyone but the authority or a regulator, naming who may."""
    if not may_govern(session, actor):
        raise AuthorizationError(
            f"{actor!r} 无权{verb_zh}授权 / {actor!r} may not {verb} an authorization: "
            f"only {AUTHORITY_ACTOR!r} or a regulator may"
        )


def versions_built_on(session: Session, authorization_id: str) -> list[str]:
    """Published product versions whose run was authorized by this grant."""
    stmt = (
        select(ProductVersion.id)
        .join(PipelineRun, col(PipelineRun.id) == col(ProductVersion.run_id))
        .where(PipelineRun.authorization_id == authorization_id)
        .where(ProductVersion.status == "published")
    )
    return sorted(session.exec(stmt).all())


def revoke_authorization(
    session: Session, authorization_id: str, actor: str, reason: str
) -> Authorization:
    """Withdraw a grant: new runs are refused and its products stop being delivered at once."""
    auth = find_authorization(session, authorization_id)
    _require_governor(session, actor, "撤销", "revoke")
    if not reason.strip():
        raise ValueError("撤销授权须说明理由 / a revocation needs a reason (--reason)")
    if auth.status == "revoked":
        raise ValueError(
            f"授权 {auth.reference} 已撤销 / authorization {auth.reference} is already revoked"
        )
    from pdo.privacy.redact import redact_numbers  # Presidio: loaded at a decision, not before

    auth.status = "revoked"
    # as a sign-off comment: a regulator may quote a complainant's number in the reason
    auth.revoke_reason = redact_numbers(reason.strip())
    auth.revoked_at, auth.revoked_by = utcnow(), actor
    session.add(auth)
    session.flush()
    audit.record(
        session,
        actor,
        "authorization.revoke",
        auth.id,
        reference=auth.reference,
        reason=auth.revoke_reason,
        suspended=versions_built_on(session, auth.id),
    )
    generation.bump(session)  # the API drops its cached view of this grant
    return auth


def renew_authorization(
    session: Session, authorization_id: str, days: int, actor: str
) -> Authorization:
    """Extend a grant by `days` from its end (or from now if it lapsed), reinstating a revoked one.

    A revocation suspends a grant until it is renewed; the lifted revocation stays in the audit
    chain, so clearing it on the row loses nothing.
    """
    auth = find_authorization(session, authorization_id)
    _require_governor(session, actor, "续期", "renew")
    _check_days(days)
    previous = auth.valid_until
    lifted = None
    if auth.status == "revoked":
        lifted = {"at": auth.revoked_at, "by": auth.revoked_by, "reason": auth.revoke_reason}
    auth.valid_until = max(previous, utcnow()) + dt.timedelta(days=days)
    auth.status = "active"
    auth.revoked_at = auth.revoked_by = auth.revoke_reason = None
    session.add(auth)
    session.flush()
    audit.record(
        session,
        actor,
        "authorization.renew",
        auth.id,
        reference=auth.reference,
        days=days,
        previous_valid_until=previous,
        valid_until=auth.valid_until,
        reinstated=lifted,
    )
    generation.bump(session)  # the API drops its cached view of this grant
    return auth
