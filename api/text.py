"""Text a bank sends must fit a ledger column: PostgreSQL's text cannot hold a NUL character.

Refused at the edge with 422, before anything is looked up or written: on PostgreSQL a NUL that
reached the serving transaction failed the whole group-committed batch, other banks' lookups in
it included, with 500.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Request
from pydantic import AfterValidator

from api.errors import ApiError


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("a NUL character is not allowed")
    return value


# A request body's string field (consent references, watchlist names, purposes, …).
Text = Annotated[str, AfterValidator(_no_nul)]


def refuse_nul(request: Request) -> None:
    """422 when the path or the query string holds a NUL (sent as %00)."""
    if "\x00" in request.scope["path"] or b"%00" in request.scope["query_string"]:
        raise ApiError(422, "invalid_request", "the path or query holds a NUL character (%00)")
