"""One JSON error shape for every refusal, {"error": {"code", "message"}}, and each one audited."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.serving.requests import RefusedElsewhere


class ErrorDetail(BaseModel):
    code: str  # stable, for the bank's system to branch on
    message: str  # for people: what went wrong and what to do


class ErrorBody(BaseModel):
    """Every refusal's body."""

    error: ErrorDetail


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


def _endpoint(request: Request) -> str:
    route = request.scope.get("route")
    return f"{request.method} {getattr(route, 'path', request.url.path)}"


async def record_refusal(request: Request, status: int, code: str, flagged: bool = False) -> None:
    """Write a refusal decided outside the serving worker to refused_call (never billed)."""
    key = getattr(request.state, "api_key", None)
    params = request.path_params
    await request.app.state.serving.submit(
        RefusedElsewhere(
            key.subscriber_id if key is not None else None,
            key.id if key is not None else None,
            _endpoint(request),
            status,
            code,
            params.get("product"),
            None,  # the enterprise is not recorded for refusals outside the lookup path
            request.query_params.get("purpose"),
            flagged,
        )
    )


def install(app: FastAPI) -> None:
    """Map our errors and FastAPI's validation errors onto the one shape, auditing each."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        if not exc.recorded:
            await record_refusal(request, exc.status, exc.code, exc.flagged)
        return JSONResponse(
            status_code=exc.status,
            content={"error": {"code": exc.code, "message": exc.message}},
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [".".join(str(p) for p in e["loc"]) for e in exc.errors()]
        await record_refusal(request, 422, "invalid_request")
        return JSONResponse(
            status_code=422,
            content={
                "error": {
                    "code": "invalid_request",
                    "message": f"missing or invalid: {', '.join(fields)}",
                }
            },
        )
