"""What the lookup endpoint hands to the serving worker, and what it gets back."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pdo.delivery.watchlists import PORTFOLIO_PURPOSES  # post-loan: only enterprises watched

if TYPE_CHECKING:
    from api.serving.snapshot import KeyEntry, Snapshot

__all__ = ["PORTFOLIO_PURPOSES"]


@dataclass
class Refusal:
    """A refusal decided by the worker: recorded in refused_call in the serving transaction."""

    status: int
    code: str
    message: str
    flagged: bool = False  # outside consent or portfolio, budget breach: an anomaly to review
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class ScoreLookup:
    """One bank call for one enterprise's result."""

    presented_key: str | None
    product: str
    shown_as: str  # what the answer names (a 个体工商户's code masked)
    entity: str  # the ledger key
    purpose: str
    consent_ref: str | None
    endpoint: str
    outcome: bytes | Refusal | None = None  # the answer's JSON body, or why not
    # The key the endpoint already authenticated against snapshot `checked_on`: a batch decided
    # on that same snapshot takes it instead of hashing the secret again.
    authenticated: KeyEntry | None = None
    checked_on: Snapshot | None = None


@dataclass
class RefusedElsewhere:
    """A refusal decided outside the worker (missing key, bad input, rate limit): audit it."""

    subscriber_id: str | None
    api_key_id: str | None
    endpoint: str
    status: int
    code: str
    product: str | None = None
    entity: str | None = None
    purpose: str | None = None
    flagged: bool = False
    outcome: dict[str, Any] | Refusal | None = None


# What a refusal keeps of a bank's own text (a purpose, a product name): enough to read it.
RECORDED_CHARS = 200
# A run of letters and digits holding 6 digits or more is starred: a resident ID, a mobile, a
# card number or a USCC typed into the wrong field. Purposes and product names hold none.
ALPHANUMERIC_RUN = re.compile(r"[0-9A-Za-z]+")
IDENTIFIER_DIGITS = 6


def _starred(match: re.Match[str]) -> str:
    run = match.group(0)
    return "*" * len(run) if sum(c.isdigit() for c in run) >= IDENTIFIER_DIGITS else run


def recordable(value: str | None) -> str | None:
    """The bank's text as refused_call and the audit chain may keep it: identifier-like runs
    starred (the chain cannot be scrubbed afterwards), NUL (which PostgreSQL's text cannot hold)
    shown as U+FFFD, and cut short."""
    if value is None:
        return None
    text = unicodedata.normalize("NFKC", value)[:RECORDED_CHARS]
    return ALPHANUMERIC_RUN.sub(_starred, text).replace("\x00", "\ufffd")
