"""Watchlists: a bank registers its loan book for a product and is alerted on its enterprises."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Body, Path, Query, Request, Response
from pydantic import BaseModel, Field

from api.deps import ApiKeyDep, PseudonymizerDep, ReadSessionDep, SessionDep, committed
from api.errors import KEYED, ApiError, refusals
from api.text import Text, Uscc
from pdo.delivery import watchlists as wl
from pdo.delivery.webhooks import webhook_secret
from pdo.ledger.models import Watchlist, WatchlistMember

router = APIRouter(prefix="/v1", tags=["watchlists"], responses=KEYED)
T = TypeVar("T")
MAX_MEMBERS_PER_CALL = 50_000
MAX_OFFSET = 2**31 - 1  # past any portfolio; past 2**63 the database cannot even read it
NOT_FOUND = "watchlist_not_found: no such watchlist of yours (another bank's is not found either)"


class WatchlistCreate(BaseModel):
    """A new watchlist: its name, the product watched and the purpose alerts serve."""

    name: Text = Field(min_length=1, max_length=120)
    product: Text = Field(min_length=1)
    purpose: Text = wl.DEFAULT_PURPOSE
    webhook_url: Text | None = Field(
        default=None, max_length=2000, description="https URL alerts are POSTed to (optional)"
    )


class WatchlistPublic(BaseModel):
    """A watchlist as its bank sees it."""

    id: str
    name: str
    product: str
    purpose: str
    webhook_url: str | None
    members: int
    created_at: dt.datetime


class WatchlistCreated(WatchlistPublic):
    """The new watchlist and, this once, the secret its webhook deliveries are signed with."""

    webhook_secret: str = Field(
        description="HMAC-SHA256 key for X-PDO-Signature; shown once, keep it safe"
    )


class MemberIn(BaseModel):
    """An enterprise to watch, and the bank's own reference for it (loan or customer number)."""

    uscc: Uscc = Field(description="统一社会信用代码")
    reference: Text | None = Field(default=None, max_length=120)


class MembersAdded(BaseModel):
    """What an addition changed."""

    added: int
    updated: int
    total: int


class MemberPublic(BaseModel):
    """A watched enterprise: a 个体工商户's code is shown masked."""

    enterprise: str
    reference: str | None
    added_at: dt.datetime


def _refusals(fn: Callable[[], T]) -> T:
    """Run a ledger call, turning its refusals into the API's JSON errors."""
    try:
        return fn()
    except wl.Refusal as refusal:
        raise ApiError(refusal.status, refusal.code, refusal.message) from refusal


def _public(watchlist: Watchlist, members: int) -> WatchlistPublic:
    return WatchlistPublic(
        id=watchlist.id,
        name=watchlist.name,
        product=watchlist.product_name,
        purpose=watchlist.purpose,
        webhook_url=watchlist.webhook_url,
        members=members,
        created_at=watchlist.created_at,
    )


def _member(member: WatchlistMember) -> MemberPublic:
    return MemberPublic(
        enterprise=member.shown_as, reference=member.reference, added_at=member.added_at
    )


def server_key(request: Request) -> bytes:
    """The server key webhook secrets derive from (the pseudonym key, never sent anywhere)."""
    return bytes(request.app.state.settings.read_pseudonym_key()[1])


@router.post(
    "/watchlists",
    response_model=WatchlistCreated,
    status_code=201,
    responses=refusals(
        {
            403: "no_subscription; purpose_not_allowed (watchlists serve 贷后管理 only; or not "
            "allowed by the product or your subscription)",
            404: "unknown_product",
            409: "watchlist_exists: you already have a watchlist of that name",
            422: "invalid_request: a malformed body; invalid_webhook_url; "
            "webhook_url_not_public: the URL names a loopback, private or link-local address "
            "(or localhost) that the operator has not allowed",
        }
    ),
)
def create_watchlist(
    body: WatchlistCreate,
    key: ApiKeyDep,
    session: SessionDep,
    request: Request,
    pseudo: PseudonymizerDep,
) -> WatchlistCreated:
    """Create a watchlist for a subscribed product; its webhook signing secret is returned once."""
    watchlist = committed(  # a name taken at the same moment: the loser is refused as a duplicate
        session,
        lambda: _refusals(
            lambda: wl.create_watchlist(
                session,
                key.subscriber_id,
                name=body.name,
                product_name=body.product,
                purpose=body.purpose,
                webhook_url=body.webhook_url,
                egress=request.app.state.egress,
                actor=f"apikey:{key.id}",
            )
        ),
    )
    secret = webhook_secret(server_key(request), watchlist.id)
    return WatchlistCreated(**_public(watchlist, 0).model_dump(), webhook_secret=secret)


@router.get("/watchlists", response_model=list[WatchlistPublic])
def list_watchlists(key: ApiKeyDep, session: ReadSessionDep) -> list[WatchlistPublic]:
    """The bank's watchlists with their member counts."""
    found = wl.list_watchlists(session, key.subscriber_id)
    counts = wl.member_counts(session, (w.id for w in found))
    return [_public(w, counts[w.id]) for w in found]


@router.get(
    "/watchlists/{watchlist_id}",
    response_model=WatchlistPublic,
    responses=refusals({404: NOT_FOUND}),
)
def get_watchlist(watchlist_id: str, key: ApiKeyDep, session: ReadSessionDep) -> WatchlistPublic:
    """One of the bank's watchlists (another bank's answers 404)."""
    watchlist = _refusals(lambda: wl.get_watchlist(session, key.subscriber_id, watchlist_id))
    return _public(watchlist, wl.member_counts(session, [watchlist.id])[watchlist.id])


@router.put(
    "/watchlists/{watchlist_id}/members",
    response_model=MembersAdded,
    responses=refusals({403: "no_subscription", 404: NOT_FOUND}),
)
def add_members(
    watchlist_id: str,
    members: Annotated[list[MemberIn], Body(max_length=MAX_MEMBERS_PER_CALL)],
    key: ApiKeyDep,
    session: SessionDep,
    pseudo: PseudonymizerDep,
) -> MembersAdded:
    """Add enterprises to the watchlist (or update their reference); adding twice is harmless."""

    def add() -> wl.MembersAdded:
        watchlist = wl.get_watchlist(session, key.subscriber_id, watchlist_id)
        new = [wl.NewMember(m.uscc, m.reference) for m in members]
        return wl.add_members(session, watchlist, new, pseudo, f"apikey:{key.id}")

    result = committed(session, lambda: _refusals(add))  # a member added at once: updated instead
    return MembersAdded(added=result.added, updated=result.updated, total=result.total)


@router.get(
    "/watchlists/{watchlist_id}/members",
    response_model=list[MemberPublic],
    responses=refusals({404: NOT_FOUND}),
)
def list_members(
    watchlist_id: str,
    key: ApiKeyDep,
    session: ReadSessionDep,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> list[MemberPublic]:
    """A page of the watchlist's members, in the order they were added."""
    watchlist = _refusals(lambda: wl.get_watchlist(session, key.subscriber_id, watchlist_id))
    return [_member(m) for m in wl.list_members(session, watchlist, limit=limit, offset=offset)]


@router.delete(
    "/watchlists/{watchlist_id}/members/{uscc}",
    status_code=204,
    responses=refusals({404: f"{NOT_FOUND}; member_not_found"}),
)
def remove_member(
    watchlist_id: str,
    uscc: Annotated[str, Path(pattern=wl.USCC_PATTERN, description="统一社会信用代码")],
    key: ApiKeyDep,
    session: SessionDep,
    pseudo: PseudonymizerDep,
) -> Response:
    """Stop watching an enterprise; its alerts go with it."""

    def remove() -> None:
        watchlist = wl.get_watchlist(session, key.subscriber_id, watchlist_id)
        wl.remove_member(session, watchlist, uscc, pseudo, f"apikey:{key.id}")

    _refusals(remove)
    session.commit()
    return Response(status_code=204)
