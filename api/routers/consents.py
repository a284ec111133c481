"""Enterprise consents a bank holds, registered with the operator before it may query."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, Field, field_validator
from sqlmodel import select

from api.deps import ApiKeyDep, PseudonymizerDep, ReadSessionDep, SessionDep, committed
from api.errors import KEYED, ApiError, refusals
from api.text import Text, Uscc
from pdo.delivery.consents import MAX_REFERENCE, consents_of, register_consent, revoke_consent
from pdo.delivery.identity import shown_as
from pdo.ledger.models import Consent, Subscriber
from pdo.privacy.entity_key import entity_key

router = APIRouter(prefix="/v1/consents", tags=["consents"], responses=KEYED)


class ConsentCreate(BaseModel):
    """A consent the enterprise signed: for which bank purposes and until when."""

    uscc: Uscc = Field(description="统一社会信用代码 of the enterprise")
    reference: Text = Field(
        min_length=1, max_length=MAX_REFERENCE, description="your consent document no."
    )
    purposes: list[Text] = Field(min_length=1)
    valid_from: dt.datetime
    valid_until: dt.datetime
    evidence_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")

    @field_validator("valid_from", "valid_until")
    @classmethod
    def _aware(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            raise ValueError("timestamps need a timezone, e.g. 2026-12-01T00:00:00+08:00")
        try:  # the ledger stores UTC: 9999-12-31T23:59:59-14:00 has no UTC time
            value.astimezone(dt.UTC)
        except OverflowError as exc:
            raise ValueError("a timestamp outside the years 1-9999 in UTC") from exc
        return value


class ConsentPublic(BaseModel):
    """A registered consent as the bank sees it (a 个体工商户's code masked)."""

    id: str
    reference: str
    enterprise: str
    purposes: list[str]
    valid_from: dt.datetime
    valid_until: dt.datetime
    revoked_at: dt.datetime | None
    created_at: dt.datetime


def _public(consent: Consent, shown: str) -> ConsentPublic:
    return ConsentPublic(
        id=consent.id,
        reference=consent.reference,
        enterprise=shown,
        purposes=consent.purposes,
        valid_from=consent.valid_from,
        valid_until=consent.valid_until,
        revoked_at=consent.revoked_at,
        created_at=consent.created_at,
    )


@router.post(
    "",
    status_code=201,
    response_model=ConsentPublic,
    responses=refusals(
        {
            422: "invalid_request: a malformed body; invalid_consent: a reference already "
            "registered, an end before the start, a purpose no product has"
        }
    ),
)
def add_consent(
    body: Annotated[ConsentCreate, Body()],
    key: ApiKeyDep,
    session: SessionDep,
    pseudo: PseudonymizerDep,
) -> ConsentPublic:
    """Register an enterprise's consent; lookups must then name its reference."""

    def register() -> Consent:
        subscriber = session.get(Subscriber, key.subscriber_id)
        assert subscriber is not None
        try:
            return register_consent(
                session,
                subscriber=subscriber,
                entity=entity_key(body.uscc, pseudo),
                reference=body.reference,
                purposes=body.purposes,
                valid_from=body.valid_from,
                valid_until=body.valid_until,
                evidence_sha256=body.evidence_sha256,
                actor=f"bank:{subscriber.name}",
            )
        except ValueError as exc:
            raise ApiError(422, "invalid_consent", str(exc)) from exc

    # the same reference posted twice at once: the loser runs again and is refused as a duplicate
    consent = committed(session, register)
    return _public(consent, shown_as(body.uscc))


@router.get(
    "",
    response_model=list[ConsentPublic],
    responses=refusals({404: "unknown_consent (before=): no such consent of yours"}),
)
def list_consents(
    key: ApiKeyDep,
    session: ReadSessionDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="consents per page")] = 1000,
    before: Annotated[
        str | None,
        Query(max_length=64, description="the next page: older than this consent (its id)"),
    ] = None,
) -> list[ConsentPublic]:
    """Your registered consents, newest first, a page at a time: pass the last id as `before`."""
    last = None
    if before is not None:
        last = session.exec(
            select(Consent).where(Consent.id == before, Consent.subscriber_id == key.subscriber_id)
        ).first()
        if last is None:
            raise ApiError(404, "unknown_consent", "no such consent of yours")
    page = consents_of(session, key.subscriber_id, limit=limit, before=last)
    return [_public(c, _shown(c)) for c in page]


@router.delete(
    "/{consent_id}",
    response_model=ConsentPublic,
    responses=refusals(
        {
            404: "unknown_consent: no such consent of yours (another bank's is not found either)",
            409: "consent_already_revoked",
        }
    ),
)
def withdraw_consent(consent_id: str, key: ApiKeyDep, session: SessionDep) -> ConsentPublic:
    """The enterprise withdrew its consent: later lookups under it are refused."""
    consent = session.exec(
        select(Consent).where(Consent.id == consent_id, Consent.subscriber_id == key.subscriber_id)
    ).first()
    if consent is None:
        raise ApiError(404, "unknown_consent", "no such consent of yours")
    try:
        revoke_consent(session, consent, f"bank:{key.subscriber_id}")
    except ValueError as exc:
        raise ApiError(409, "consent_already_revoked", str(exc)) from exc
    session.commit()
    return _public(consent, _shown(consent))


def _shown(consent: Consent) -> str:
    """The stored key is a USCC for a company, a pseudonym for a 个体工商户 (shown as such)."""
    return consent.uscc if len(consent.uscc) == 18 else "个体工商户 (pseudonymized)"
