"""Enterprise consents: a bank may query an enterprise only under a consent it registered."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, or_, update
from sqlmodel import Session, col, select

from pdo import audit
from pdo.delivery.identity import PERSONAL_NUMBER_IN_TEXT, holds_personal_number
from pdo.ledger.models import Consent, Product, Subscriber
from pdo.ledger.types import utcnow

MAX_REFERENCE = 120  # characters of a consent reference (a lookup names it in its query)


def register_consent(
    session: Session,
    *,
    subscriber: Subscriber,
    entity: str,
    reference: str,
    purposes: list[str],
    valid_from: dt.datetime,
    valid_until: dt.datetime,
    actor: str,
    evidence_sha256: str | None = None,
) -> Consent:
    """Record a consent (enterprise → bank, purposes, period); the same reference twice is refused.

    `entity` is the enterprise's ledger key (a 个体工商户 by pseudonym), so no natural person's
    code is stored.
    """
    reference = reference.strip()
    if not reference:
        raise ValueError("a consent needs the bank's consent reference")
    if len(reference) > MAX_REFERENCE:
        raise ValueError(f"a consent reference is at most {MAX_REFERENCE} characters")
    if holds_personal_number(reference):  # stored, chained and shown as sent
        raise ValueError(PERSONAL_NUMBER_IN_TEXT)
    if valid_from.tzinfo is None or valid_until.tzinfo is None:
        raise ValueError("consent validity must be timezone-aware")
    if valid_until <= valid_from:
        raise ValueError("a consent must end after it starts")
    lawful = {p for product in session.exec(select(Product)) for p in product.purposes}
    unknown = sorted(set(purposes) - lawful)
    if not purposes or unknown:
        raise ValueError(
            f"consent purposes must be lawful product purposes: {', '.join(sorted(lawful))}"
        )
    clash = session.exec(
        select(Consent).where(
            Consent.subscriber_id == subscriber.id, Consent.reference == reference
        )
    ).first()
    if clash is not None:
        raise ValueError(f"this consent reference is already registered for {subscriber.name}")
    consent = Consent(
        subscriber_id=subscriber.id,
        uscc=entity,
        reference=reference,
        purposes=sorted(set(purposes)),
        valid_from=valid_from,
        valid_until=valid_until,
        evidence_sha256=evidence_sha256,
        registered_by=actor,
    )
    session.add(consent)
    session.flush()
    audit.record(
        session,
        actor,
        "consent.add",
        consent.id,
        subscriber=subscriber.name,
        reference=reference,
        purposes=consent.purposes,
        valid_until=valid_until,
    )
    return consent


def revoke_consent(session: Session, consent: Consent, actor: str) -> Consent:
    """An enterprise withdrew its consent: queries under it are refused from now on."""
    # One statement that only a consent still in force matches: of two withdrawals at once, the
    # second waits for the first and then finds nothing to withdraw.
    withdrawn = session.execute(
        update(Consent)
        .where(col(Consent.id) == consent.id, col(Consent.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )
    if withdrawn.rowcount == 0:  # type: ignore[attr-defined]
        raise ValueError("this consent is already withdrawn")
    session.refresh(consent)
    audit.record(session, actor, "consent.revoke", consent.id, reference=consent.reference)
    return consent


def consents_of(
    session: Session, subscriber_id: str, limit: int = 1000, before: Consent | None = None
) -> list[Consent]:
    """A bank's consents, newest first; after `before` (the last of a page), the older ones."""
    stmt = select(Consent).where(Consent.subscriber_id == subscriber_id)
    if before is not None:
        stmt = stmt.where(
            or_(
                col(Consent.created_at) < before.created_at,
                and_(col(Consent.created_at) == before.created_at, col(Consent.id) < before.id),
            )
        )
    order = (col(Consent.created_at).desc(), col(Consent.id).desc())
    return list(session.exec(stmt.order_by(*order).limit(limit)))
