"""Text a bank sends must fit a ledger column (no NUL: PostgreSQL's text cannot hold one), and a
USCC it sends must be one (its check character holds), before anything is stored or shown.

Refused at the edge with 422, before anything is looked up or written: on PostgreSQL a NUL that
reached the serving transaction failed the whole group-committed batch, other banks' lookups in
it included, with 500.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Request
from pydantic import AfterValidator, Field

from api.errors import ApiError
from pdo.delivery.identity import PERSONAL_NUMBER_IN_TEXT, holds_personal_number
from pdo.delivery.watchlists import USCC_PATTERN
from pdo.privacy.checksums import is_valid_uscc


def _storable(value: str) -> str:
    """The text as the ledger may store it and show it as sent, or ValueError saying why not."""
    if "\x00" in value:
        raise ValueError("a NUL character is not allowed")
    try:  # a lone surrogate (JSON "\ud800") has no UTF-8 form: the ledger cannot store it
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("a lone surrogate character is not allowed") from None
    if holds_personal_number(value):  # names, references: stored and shown as sent
        raise ValueError(PERSONAL_NUMBER_IN_TEXT)
    return value


# A request body's string field (consent references, watchlist names, purposes, …).
Text = Annotated[str, AfterValidator(_storable)]


def _checked_uscc(value: str) -> str:
    if not is_valid_uscc(value):
        raise ValueError("not a USCC: its GB 32100 check character does not hold")
    return value


# A USCC in a request body: the pattern for OpenAPI, the check character for the rest (a resident
# ID's 18 digits fit the pattern, and must not be stored or shown as an enterprise).
Uscc = Annotated[str, Field(pattern=USCC_PATTERN), AfterValidator(_checked_uscc)]


def refuse_nul(request: Request) -> None:
    """422 when the path or the query string holds a NUL (sent as %00)."""
    if "\x00" in request.scope["path"] or b"%00" in request.scope["query_string"]:
        raise ApiError(422, "invalid_request", "the path or query holds a NUL character (%00)")
