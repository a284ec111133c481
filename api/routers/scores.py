"""Per-enterprise lookups for subscribed banks (贷前审查 / 贷后管理), each metered exactly once."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel

from api.errors import ApiError, Caller, ErrorBody
from api.query import query_values
from api.routing import RequestOnlyRoute
from api.serving.batch import INVALID_KEY, authenticate
from api.serving.requests import Refusal, RefusedElsewhere, ScoreLookup
from api.serving.snapshot import KeyEntry
from api.serving.worker import ServingWorker
from api.text import USCC_PATTERN, refuse_nul
from pdo.delivery.consents import MAX_REFERENCE
from pdo.delivery.identity import shown_as
from pdo.privacy.checksums import is_valid_uscc
from pdo.privacy.entity_key import entity_key

router = APIRouter(prefix="/v1/products", tags=["scores"], route_class=RequestOnlyRoute)


class ScoreAnswer(BaseModel):
    """What a bank receives: the enterprise's result and its provenance, never personal data."""

    uscc: str  # as asked, except a 个体工商户's code (a natural person's) comes back masked
    product: str
    product_version: str
    as_of: dt.date
    status: str  # served | corrected (after an upheld objection) | disputed_withheld
    score: int | None = None
    grade: str | None = None
    details: dict[str, Any] = {}  # the product's other outputs (e.g. reason codes, knock-outs)
    purpose: str
    consent: str
    usage_id: str
    price_fen: int


PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "product",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": "the data product, e.g. credit_risk",
    },
    {
        "name": "uscc",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": USCC_PATTERN},
        "description": "统一社会信用代码 of the enterprise",
    },
    {
        "name": "purpose",
        "in": "query",
        "required": True,
        "schema": {"type": "string", "minLength": 1},
        "description": "declared purpose, e.g. 贷前审查",
    },
    {
        "name": "consent",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "maxLength": MAX_REFERENCE},
        "description": "the enterprise's consent reference, registered before (POST /v1/consents)",
    },
    {
        "name": "X-API-Key",
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": "your API key (pdo_<id>_<secret>)",
    },
]
ERROR = {"model": ErrorBody}
LOOKUP_QUERY = frozenset(p["name"] for p in PARAMETERS if p["in"] == "query")


@router.get(
    "/{product}/scores/{uscc}",
    response_model=ScoreAnswer,
    openapi_extra={"parameters": PARAMETERS},
    responses={
        401: ERROR | {"description": "missing, unknown or revoked API key"},
        403: ERROR | {"description": "purpose, subscription, authorization, consent, portfolio"},
        404: ERROR | {"description": "unknown product or enterprise"},
        422: ERROR | {"description": "a malformed USCC, no purpose, an overlong consent"},
        429: ERROR | {"description": "rate limit, monthly quota or daily disclosure budget"},
        503: ERROR | {"description": "ledger_unavailable: not recorded, so not served or billed"},
    },
)
async def get_score(request: Request) -> Response:
    """The enterprise's result under a registered consent; each answer is one usage event.

    Checks in order: key, product, purpose, subscription scope, the operator's authorization,
    consent (bank, enterprise, purpose, date), portfolio for 贷后管理, quota, the daily budget of
    distinct enterprises. A result under an open objection is answered `disputed_withheld`.

    The parameters are read from the request directly (declared above for OpenAPI): FastAPI's
    per-parameter resolution cost more than all of the serving transaction's work per call.
    """
    refuse_nul(request)
    app = request.app
    product, uscc = request.path_params["product"], request.path_params["uscc"]
    query = query_values(request.scope["query_string"], LOOKUP_QUERY)
    purpose = query.get("purpose", "")
    consent = query.get("consent") or None
    x_api_key = request.headers.get("x-api-key")
    worker: ServingWorker = app.state.serving
    caller = _known_caller(worker, x_api_key)
    if caller is not None:  # refusals from here on are recorded against the bank
        request.state.caller = Caller(caller.subscriber_id, caller.key_id)
    invalid = [
        name
        for name, bad in (
            ("path.uscc", not is_valid_uscc(uscc)),  # alphabet, length and check character
            ("query.purpose", not purpose),
            ("query.consent", consent is not None and len(consent) > MAX_REFERENCE),
        )
        if bad
    ]
    if invalid:
        raise ApiError(422, "invalid_request", f"missing or invalid: {', '.join(invalid)}")
    entity = entity_key(uscc, app.state.pseudonymizer)
    endpoint = "GET /v1/products/{product}/scores/{uscc}"
    wait = app.state.rate_limiter.take(caller.key_id, caller.rate_limit_per_second) if caller else 0
    if wait:
        assert caller is not None
        throttled = RefusedElsewhere(
            caller.subscriber_id,
            caller.key_id,
            endpoint,
            429,
            "rate_limited",
            product=product,
            entity=entity,
            purpose=purpose,
        )
        await worker.submit(throttled)
        if throttled.status == 401:  # the key was revoked since this process's snapshot
            raise ApiError(401, "invalid_api_key", INVALID_KEY, recorded=True)
        raise ApiError(
            429,
            "rate_limited",
            "too many calls per second for this key; retry after the Retry-After header",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
            recorded=True,
        )
    job = ScoreLookup(x_api_key, product, shown_as(uscc), entity, purpose, consent, endpoint)
    job.authenticated, job.checked_on = caller, worker.snapshot
    await worker.submit(job)
    outcome = job.outcome
    if isinstance(outcome, Refusal):
        raise ApiError(outcome.status, outcome.code, outcome.message, recorded=True)
    assert outcome is not None
    return Response(content=outcome, media_type="application/json")


def _known_caller(worker: ServingWorker, presented: str | None) -> KeyEntry | None:
    """The caller's key when its secret checks out against the held snapshot, else None.

    Only a genuine key draws on its bank's rate limit or has refusals recorded as that bank's:
    key ids are not secret (they appear in audit records), so a forged secret must not throttle
    the bank. Keys the snapshot does not know yet are judged by the serving batch.
    """
    if worker.snapshot is None:
        return None
    entry = authenticate(worker.snapshot, presented)
    return None if isinstance(entry, Refusal) else entry
