"""Revenue sharing (收益分配): a product's declared rule, resolved to weights, split to the fen.

A rule names who shares a product's billed revenue. Departments are paid either by declared
basis points each, or from a pool divided by how many of the product's input tables each
department supplies. Other parties (e.g. an exchange) are declared in basis points; the operator
keeps the rest. Resolved, a rule is a set of integer weights, and :func:`allocate` splits an
amount in fen by those weights with the largest-remainder method, so the parts always sum to the
amount exactly and the same inputs always split the same way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

OPERATOR = "operator"
FULL_BP = 10_000
# A share declared for the operator would be replaced by the remainder it takes.
OPERATOR_IS_NO_DEPARTMENT = f"{OPERATOR!r} is not a department: it takes what the others leave"


@dataclass(frozen=True)
class RevenueRule:
    """Who shares a product's revenue: departments by weights or by input tables, others by bp.

    departments_bp: department code → basis points (declared weights); or
    inputs_pool_bp: basis points for all source departments together, split in proportion to
    the number of the product's input tables each supplies. others_bp: further parties.
    """

    departments_bp: Mapping[str, int] = field(default_factory=dict)
    inputs_pool_bp: int | None = None
    others_bp: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.departments_bp and self.inputs_pool_bp is not None:
            raise ValueError("declare department weights or an inputs pool, not both")
        bps = [*self.departments_bp.values(), *self.others_bp.values(), self.inputs_pool_bp or 0]
        if any(bp < 0 for bp in bps):
            raise ValueError("revenue shares must not be negative")
        if sum(bps) > FULL_BP:
            raise ValueError("revenue shares exceed 100%")
        clash = ({OPERATOR} | set(self.departments_bp)) & set(self.others_bp)
        if clash:
            raise ValueError(f"parties declared twice: {', '.join(sorted(clash))}")
        if OPERATOR in self.departments_bp:
            raise ValueError(OPERATOR_IS_NO_DEPARTMENT)

    def describe(self) -> dict[str, Any]:
        """The rule as declared, for the ledger and the review package."""
        if self.inputs_pool_bp is not None:
            basis: dict[str, Any] = {"by": "inputs", "pool_bp": self.inputs_pool_bp}
        else:
            basis = {"by": "weights", "departments_bp": dict(sorted(self.departments_bp.items()))}
        return basis | {"others_bp": dict(sorted(self.others_bp.items()))}

    def weights(self, input_departments: Iterable[str]) -> dict[str, int]:
        """Integer weights per party (operator included) for a product fed by these tables.

        input_departments: the department of each input table, one entry per table.
        """
        if self.inputs_pool_bp is None:
            shares = dict(self.departments_bp) | dict(self.others_bp)
            return _with_operator(shares, FULL_BP)
        tables = Counter(input_departments)
        n = sum(tables.values())
        if n == 0:
            raise ValueError("a rule by inputs needs at least one input table")
        if OPERATOR in tables:
            raise ValueError(OPERATOR_IS_NO_DEPARTMENT)
        clash = set(tables) & set(self.others_bp)
        if clash:
            raise ValueError(
                f"parties declared twice (source department and other party): "
                f"{', '.join(sorted(clash))}"
            )
        scaled = {dept: self.inputs_pool_bp * k for dept, k in tables.items()}
        scaled |= {party: bp * n for party, bp in self.others_bp.items()}
        return _with_operator(scaled, FULL_BP * n)


def _with_operator(weights: Mapping[str, int], total: int) -> dict[str, int]:
    parts = {p: w for p, w in weights.items() if w > 0}
    operator = total - sum(parts.values())
    if operator > 0:
        parts[OPERATOR] = operator
    return dict(sorted(parts.items()))


def department_share_bp(weights: Mapping[str, int], departments: Iterable[str]) -> float:
    """The departments' share of the revenue under these weights, in basis points."""
    total = sum(weights.values())
    wanted = set(departments)
    paid = sum(w for party, w in weights.items() if party in wanted)
    return FULL_BP * paid / total if total else 0.0


def breaches_of_terms(
    weights: Mapping[str, int],
    *,
    departments: Iterable[str],
    min_department_share_bp: int,
    revenue_parties: Iterable[str],
) -> list[str]:
    """What a resolved rule does that the authorization does not allow (empty when it complies).

    departments: the departments whose tables the authorization covers and the product uses.
    """
    known = set(departments)
    allowed = known | set(revenue_parties) | {OPERATOR}
    problems = [
        f"party {party!r} is neither a source department of the product nor named by the "
        "authorization's revenue terms"
        for party in sorted(set(weights) - allowed)
    ]
    share = department_share_bp(weights, known)
    if share < min_department_share_bp:
        problems.append(
            f"departments receive {share / 100:.2f}% of revenue; the authorization requires "
            f"at least {min_department_share_bp / 100:.2f}%"
        )
    return problems


def allocate(amount_fen: int, weights: Mapping[str, int]) -> dict[str, int]:
    """Split an amount (fen, may be negative for a net refund) by weights, largest remainder first.

    Each party gets floor(amount × w / W); the fen left over go one each to the parties with the
    largest remainders, ties broken by party name. The parts sum to the amount exactly.
    """
    total = sum(weights.values())
    if total <= 0 or any(w < 0 for w in weights.values()):
        raise ValueError("weights must be non-negative with a positive total")
    sign = -1 if amount_fen < 0 else 1
    amount = abs(amount_fen)
    parts: dict[str, int] = {}
    remainders: list[tuple[int, str]] = []
    for party, weight in sorted(weights.items()):
        whole, rest = divmod(amount * weight, total)
        parts[party] = whole
        remainders.append((rest, party))
    leftover = amount - sum(parts.values())
    for _, party in sorted(remainders, key=lambda r: (-r[0], r[1]))[:leftover]:
        parts[party] += 1
    return {party: sign * fen for party, fen in parts.items()}


def split_fen(amount_fen: int, shares_bp: Mapping[str, int]) -> dict[str, int]:
    """Split by basis points with the operator keeping the rest (a rule by declared weights)."""
    if amount_fen < 0:
        raise ValueError("amount must not be negative")
    if sum(shares_bp.values()) > FULL_BP:
        raise ValueError("shares exceed 100%")
    weights = {p: bp for p, bp in shares_bp.items()} | {OPERATOR: FULL_BP - sum(shares_bp.values())}
    return allocate(amount_fen, weights)
