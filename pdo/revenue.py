"""Splitting a billed amount between departments and the operator, exactly to the fen."""

from __future__ import annotations

from collections.abc import Mapping

OPERATOR = "operator"


def split_fen(amount_fen: int, shares_bp: Mapping[str, int]) -> dict[str, int]:
    """Largest-remainder split in basis points; parts always sum to the amount."""
    if amount_fen < 0:
        raise ValueError("amount must not be negative")
    if sum(shares_bp.values()) > 10_000:
        raise ValueError("shares exceed 100%")
    parts: dict[str, int] = {}
    remainders: list[tuple[int, str]] = []
    for party, bp in sorted(shares_bp.items()):
        whole, rest = divmod(amount_fen * bp, 10_000)
        parts[party] = whole
        remainders.append((rest, party))
    operator_bp = 10_000 - sum(shares_bp.values())
    whole, rest = divmod(amount_fen * operator_bp, 10_000)
    parts[OPERATOR] = whole
    remainders.append((rest, OPERATOR))
    leftover = amount_fen - sum(parts.values())
    for _, party in sorted(remainders, key=lambda r: (-r[0], r[1]))[:leftover]:
        parts[party] += 1
    return parts
