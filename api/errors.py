"""One JSON error shape for every refusal, {"error": {"code", "message"}}, and each one audited."""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException

from api.serving.requests import RefusedElsewhere, recordable
from pdo.driver_errors import SQLITE_RETRYABLE, sqlite_error_name

log = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    code: str  # stable, for the bank's system to branch on
    message: str  # for people: what went wrong and what to do


class ErrorBody(BaseModel):
    """Every refusal's body."""

    error: ErrorDetail


def refusals(meanings: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for refusals: each status with the one error body and its codes."""
    return {status: {"model": ErrorBody, "description": text} for status, text in meanings.items()}


# Every route behind an API key: its refusals before the handler runs.
KEYED = refusals(
    {
        401: "missing_api_key; invalid_api_key (unknown or revoked key)",
        422: "invalid_request: a malformed parameter or body",
        429: "rate_limited: over the key's calls per second; retry after Retry-After",
        503: "ledger_unavailable: the call could not be recorded; nothing served or billed",
    }
)


class Caller(NamedTuple):
    """The authenticated key, as plain values: refusals are recorded after any rollback."""

    subscriber_id: str
    key_id: str


class ApiError(Exception):
    """A refusal the bank's system can act on: HTTP status, stable code, human message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        recorded: bool = False,
        flagged: bool = False,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}
        self.recorded = recorded  # already written to refused_call by the serving worker
        self.flagged = flagged  # an anomaly for the console (e.g. another bank's resource)


class LedgerUnavailable(ApiError):
    """The serving transaction failed (lock wait, lost connection): nobody was served or billed.

    Not recorded as a refusal: the ledger that would hold the record is what failed; the worker
    logged the cause.
    """

    def __init__(self) -> None:
        super().__init__(
            503,
            "ledger_unavailable",
            "the call could not be recorded in the ledger, so nothing was served or billed; "
            "retry after the Retry-After header",
            headers={"Retry-After": "1"},
            recorded=True,
        )


def _endpoint(request: Request) -> str:
    route = request.scope.get("route")
    return f"{request.method} {getattr(route, 'path', request.url.path)}"


async def record_refusal(request: Request, status: int, code: str, flagged: bool = False) -> None:
    """Write a refusal decided outside the serving worker to refused_call (never billed)."""
    caller: Caller | None = getattr(request.state, "caller", None)
    params = request.path_params
    await request.app.state.serving.submit(
        RefusedElsewhere(
            caller.subscriber_id if caller is not None else None,
            caller.key_id if caller is not None else None,
            _endpoint(request),
            status,
            code,
            recordable(params.get("product")),
            None,  # the enterprise is not recorded for refusals outside the lookup path
            recordable(request.query_params.get("purpose")),
            flagged,
        )
    )


ROUTING_CODES = {404: "not_found", 405: "method_not_allowed"}


def _retryable(exc: OperationalError) -> bool:
    """Whether the ledger may take the call later: SQLite's lock and I/O errors, and PostgreSQL's
    operational ones (lost connection, deadlock, lock timeout); not SQLite's schema errors."""
    sqlite_error = sqlite_error_name(exc)
    return sqlite_error is None or sqlite_error in SQLITE_RETRYABLE


def _answer(err: ApiError) -> JSONResponse:
    return JSONResponse(
        status_code=err.status,
        content={"error": {"code": err.code, "message": err.message}},
        headers=err.headers,
    )


async def _refuse(request: Request, err: ApiError) -> JSONResponse:
    """Record the refusal (unless the worker did), then answer it; 503 if it cannot be recorded."""
    if not err.recorded:
        try:
            await record_refusal(request, err.status, err.code, err.flagged)
        except LedgerUnavailable as failed:
            return _answer(failed)
    return _answer(err)


def install(app: FastAPI) -> None:
    """Map our errors, FastAPI's and the router's onto the one shape, auditing each refusal."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return await _refuse(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [".".join(str(p) for p in e["loc"]) for e in exc.errors()]
        message = f"missing or invalid: {', '.join(fields)}"
        return await _refuse(request, ApiError(422, "invalid_request", message))

    @app.exception_handler(OperationalError)
    async def _ledger_unavailable(request: Request, exc: OperationalError) -> JSONResponse:
        # a lock not granted within the ledger's busy timeout, a lost connection: nothing this
        # request did was committed, so the bank may retry; the ledger cannot take a record now.
        # The driver's message names tables and columns, never a statement's values.
        if not _retryable(exc):  # e.g. a ledger older than this code (no such column)
            log.error("ledger error on %s: %s", _endpoint(request), exc.orig)
            return _answer(ApiError(500, "internal_error", "an internal error; please retry"))
        log.warning("ledger unavailable on %s: %s", _endpoint(request), exc.orig)
        return _answer(LedgerUnavailable())

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Starlette logs the exception after this answer; the bank gets the one shape, no detail
        return _answer(ApiError(500, "internal_error", "an internal error; please retry"))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # FastAPI's answer to a body it cannot read (not UTF-8, not JSON): for the bank that
            # is a malformed body like any other, 422 invalid_request as documented
            message = "missing or invalid: body (not JSON)"
            return await _refuse(request, ApiError(422, "invalid_request", message))
        # the router's own: no such path or method; nothing of a bank's was asked, so not audited
        code = ROUTING_CODES.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})
        return _answer(ApiError(exc.status_code, code, str(exc.detail), headers=headers))
