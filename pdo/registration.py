"""Registering departments, their source tables and authorizations in the ledger."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict

from sqlmodel import Session, select

from pdo import audit
from pdo.ledger.models import Authorization, Department, SourceTableRecord
from pdo.ledger.types import utcnow
from pdo.sources.departments import DEPARTMENTS
from pdo.sources.tables import SOURCE_TABLES


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
    """No active authorization covers what was asked."""


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
) -> Authorization:
    """Record an authority's grant to the operator over named tables and purposes."""
    known = {t.name for t in SOURCE_TABLES}
    unknown = sorted(set(tables) - known)
    if unknown:
        raise ValueError(f"unknown tables in authorization: {unknown}")
    existing = session.exec(
        select(Authorization).where(Authorization.reference == reference)
    ).first()
    if existing is not None:
        return existing
    now = utcnow()
    auth = Authorization(
        reference=reference,
        authority=authority,
        operator=operator,
        tables=sorted(tables),
        purposes=list(purposes),
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
        days=days,
    )
    return auth


def check_authorization(
    session: Session, authorization_id: str, tables: list[str]
) -> Authorization:
    """The authorization must exist, be active, be valid now and cover every table."""
    auth = session.get(Authorization, authorization_id)
    if auth is None:
        raise AuthorizationError(f"authorization {authorization_id} does not exist")
    if auth.status != "active":
        raise AuthorizationError(f"authorization {auth.reference} is {auth.status}")
    now = utcnow()
    if not auth.valid_from <= now <= auth.valid_until:
        raise AuthorizationError(f"authorization {auth.reference} is not valid at {now:%Y-%m-%d}")
    missing = sorted(set(tables) - set(auth.tables))
    if missing:
        raise AuthorizationError(f"authorization {auth.reference} does not cover tables {missing}")
    return auth


def active_authorization(session: Session) -> Authorization | None:
    """The most recent active authorization, for commands that do not name one."""
    rows = session.exec(select(Authorization).where(Authorization.status == "active")).all()
    return max(rows, key=lambda a: a.created_at) if rows else None
