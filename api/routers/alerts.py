"""Alerts on a bank's watched enterprises, to pull and acknowledge (each metered once)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.deps import ApiKeyDep, SessionDep, committed
from api.errors import KEYED, ApiError, refusals
from pdo.delivery import alerts as al
from pdo.delivery.watchlists import Refusal
from pdo.ledger.models import Alert, UsageEvent

router = APIRouter(prefix="/v1", tags=["alerts"], responses=KEYED)


class AlertPublic(BaseModel):
    """An alert as its bank sees it, pushed or pulled; the enterprise as shown to banks."""

    id: str
    kind: str
    watchlist: str
    enterprise: str | None
    reference: str | None
    product_version: str | None
    payload: dict[str, Any]
    created_at: dt.datetime
    queued_at: dt.datetime = Field(
        description="when it became listable (its raising, or its release by a rejected "
        "objection, committed): pages, `since` and `after` follow it"
    )
    status: str  # delivered: listing, pushing or acking an alert delivers it
    delivered_at: dt.datetime | None


class AlertAcked(BaseModel):
    """The acknowledged alert and the usage event it is billed under (the same on every ack)."""

    alert: AlertPublic
    usage_id: str
    price_fen: int


def _public(alert: Alert, withheld: bool = False) -> AlertPublic:
    return AlertPublic(
        **al.alert_view(alert, withheld),
        queued_at=alert.queued_at,
        status=alert.status,
        delivered_at=alert.delivered_at,
    )


@router.get(
    "/alerts",
    response_model=list[AlertPublic],
    responses=refusals(
        {404: "watchlist_not_found (watchlist=), alert_not_found (after=): not one of yours"}
    ),
)
def list_alerts(
    key: ApiKeyDep,
    session: SessionDep,
    watchlist: Annotated[str | None, Query(description="only this watchlist's alerts")] = None,
    since: Annotated[dt.datetime | None, Query(description="queued_at after (ISO 8601)")] = None,
    after: Annotated[str | None, Query(description="resume after this alert id")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AlertPublic]:
    """The bank's alerts, in the order they became listable (`queued_at`: raised, or released
    again when an objection was rejected, so a released alert comes after your cursor).

    Listing hands over each alert's result, so it delivers it: an alert is metered once, when
    first listed, pushed or acked, under the usage event `alert:<id>` (listing it again, acking
    or a push never bill it again). Alerts withdrawn by an objection are not listed; one
    already delivered is listed with its result withheld (`payload.status`:
    `disputed_withheld`) while the enterprise's result is disputed, as a lookup answers."""
    if since is not None:
        try:  # a naive time is read as UTC; 9999-12-31T23:59:59-14:00 has no UTC time
            since = since.astimezone(dt.UTC) if since.tzinfo else since.replace(tzinfo=dt.UTC)
        except OverflowError as exc:
            raise ApiError(422, "invalid_request", "missing or invalid: query.since") from exc

    def listed() -> list[Alert]:
        try:
            return al.list_alerts(
                session,
                key.subscriber_id,
                watchlist_id=watchlist,
                since=since,
                after=after,
                limit=limit,
            )
        except Refusal as refusal:
            raise ApiError(refusal.status, refusal.code, refusal.message) from refusal

    alerts = committed(session, listed)
    disputed = al.disputed_now(session, alerts)
    return [_public(a, a.id in disputed) for a in alerts]


@router.post(
    "/alerts/{alert_id}/ack",
    response_model=AlertAcked,
    responses=refusals(
        {
            403: "no_subscription",
            404: "alert_not_found: no such alert of yours (another bank's is not found either)",
            409: "alert_withdrawn: its result came under an objection before delivery; unbilled",
            503: "no_published_version: the product has no version to bill the alert to",
        }
    ),
)
def ack_alert(alert_id: str, key: ApiKeyDep, session: SessionDep) -> AlertAcked:
    """Acknowledge an alert: delivered and metered once, however often it is acked (an alert
    already listed or pushed answers the usage event written then)."""

    def ack() -> tuple[Alert, UsageEvent]:
        try:
            return al.ack_alert(session, key.subscriber_id, alert_id)
        except Refusal as refusal:
            raise ApiError(refusal.status, refusal.code, refusal.message) from refusal

    alert, usage = committed(session, ack)
    withheld = alert.id in al.disputed_now(session, [alert])
    return AlertAcked(alert=_public(alert, withheld), usage_id=usage.id, price_fen=usage.price_fen)
