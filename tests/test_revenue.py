"""Revenue splits are exact to the fen, whatever the amount and shares."""

import pytest

from pdo.revenue import OPERATOR, RevenueRule, allocate, split_fen
from products.registry import PRODUCTS

SHARES = {"market": 1500, "tax": 1500, "hrss": 1000, "court": 333}


@pytest.mark.parametrize("amount", [0, 1, 2, 3, 7, 99, 200, 12_345, 10**9 + 7])
def test_parts_sum_to_amount(amount: int) -> None:
    parts = split_fen(amount, SHARES)
    assert sum(parts.values()) == amount
    assert all(v >= 0 for v in parts.values())


def test_shares_follow_basis_points() -> None:
    parts = split_fen(10_000, SHARES)
    assert parts["market"] == 1500 and parts["court"] == 333
    assert parts[OPERATOR] == 10_000 - 1500 - 1500 - 1000 - 333


def test_split_is_deterministic_and_rejects_bad_input() -> None:
    assert split_fen(7, SHARES) == split_fen(7, SHARES)
    with pytest.raises(ValueError):
        split_fen(-1, SHARES)
    with pytest.raises(ValueError):
        split_fen(100, {"a": 6000, "b": 5000})


@pytest.mark.parametrize("spec", PRODUCTS, ids=lambda p: p.name)
def test_every_product_price_splits_exactly(spec) -> None:
    weights = spec.revenue_weights()
    assert sum(allocate(spec.price_fen, weights).values()) == spec.price_fen
    assert OPERATOR in weights and all(w > 0 for w in weights.values())


@pytest.mark.parametrize(
    ("make", "refused"),
    [
        (lambda: RevenueRule(departments_bp={"market": 2000, OPERATOR: 5000}), "not a department"),
        (lambda: RevenueRule(inputs_pool_bp=3000).weights(["tax", OPERATOR]), "not a department"),
        (lambda: RevenueRule(departments_bp={"a": 6000}, others_bp={"b": 5000}), "exceed 100%"),
        (lambda: RevenueRule(departments_bp={"a": 1}, others_bp={OPERATOR: 1}), "declared twice"),
        (lambda: RevenueRule(departments_bp={"a": 1}, inputs_pool_bp=1), "not both"),
        (lambda: RevenueRule(departments_bp={"a": -1}), "negative"),
    ],
)
def test_a_rule_that_would_misstate_a_share_is_refused(make, refused: str) -> None:
    """The operator takes the remainder: a share declared for it would be silently replaced."""
    with pytest.raises(ValueError, match=refused):
        make()


def test_declared_department_weights_are_kept_exactly() -> None:
    weights = RevenueRule(departments_bp={"market": 2000}, others_bp={"bank_union": 500}).weights(
        []
    )
    assert weights == {"bank_union": 500, "market": 2000, OPERATOR: 7500}
