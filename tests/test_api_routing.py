"""RequestOnlyRoute: only endpoints that read the request themselves may skip FastAPI's solving."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, Request, Response

from api.routing import RequestOnlyRoute


async def reads_request(request: Request) -> Response:
    return Response(request.url.path)


async def wants_a_query(request: Request, purpose: str) -> Response:
    return Response(purpose)


def not_async(request: Request) -> Response:
    return Response(request.url.path)


async def untyped(request) -> Response:
    return Response(request.url.path)


@pytest.mark.parametrize("endpoint", [wants_a_query, not_async, untyped])
def test_an_endpoint_that_needs_fastapi_to_solve_its_parameters_is_refused_at_start(
    endpoint: object,
) -> None:
    router = APIRouter(route_class=RequestOnlyRoute)
    with pytest.raises(TypeError, match="RequestOnlyRoute endpoint"):
        router.add_api_route("/x", endpoint, methods=["GET"])  # type: ignore[arg-type]


def test_a_request_only_endpoint_is_served_as_is() -> None:
    router = APIRouter(route_class=RequestOnlyRoute)
    router.add_api_route("/x", reads_request, methods=["GET"])
    route = router.routes[0]
    assert isinstance(route, RequestOnlyRoute)
    assert route.get_route_handler() is reads_request
