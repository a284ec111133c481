"""经营状态核验: the status rule on hand-made cases, its registration, and its suite on a city."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from flows.ingest import ingest_file
from flows.validate import ProductValidationError, validate_product
from pdo.sources.tables import table
from products.operating_status import SPEC
from products.operating_status.rule import UnknownRegisterStatusError, verify
from products.registry import PRODUCTS, product

AS_OF = dt.date(2024, 6, 30)
BEFORE, AFTER = dt.date(2024, 6, 29), dt.date(2024, 7, 1)
EARLY, LATE = dt.date(2023, 1, 15), dt.date(2024, 3, 1)
USCC = "91330100MA2B3C4D5E"
LISTING = {"uscc": pl.String, "listed_on": pl.Date, "reason": pl.String, "removed_on": pl.Date}

Listings = list[tuple[dt.date, dt.date | None]]

# (register status, listings as (listed_on, removed_on), status, open listings, abnormal_since)
CASES: dict[str, tuple[str, Listings, str, int, str | None]] = {
    "存续, never listed": ("存续", [], "active", 0, None),
    "在业, never listed": ("在业", [], "active", 0, None),
    "吊销": ("吊销", [], "revoked", 0, None),
    "注销": ("注销", [], "cancelled", 0, None),
    "open listing": ("存续", [(EARLY, None)], "abnormal", 1, "2023-01-15"),
    "listed on the date": ("存续", [(AS_OF, None)], "abnormal", 1, "2024-06-30"),
    "listed the day after": ("存续", [(AFTER, None)], "active", 0, None),
    "listed after, removed later": ("在业", [(AFTER, dt.date(2024, 9, 1))], "active", 0, None),
    "removed on the date": ("存续", [(EARLY, AS_OF)], "active", 0, None),
    "removed the day before": ("存续", [(EARLY, BEFORE)], "active", 0, None),
    "removed the day after": ("存续", [(EARLY, AFTER)], "abnormal", 1, "2023-01-15"),
    "two open, earliest wins": ("在业", [(LATE, None), (EARLY, None)], "abnormal", 2, "2023-01-15"),
    "one removed, one open": ("存续", [(EARLY, BEFORE), (LATE, None)], "abnormal", 1, "2024-03-01"),
    "revoked beats abnormal": ("吊销", [(EARLY, None)], "revoked", 1, "2023-01-15"),
    "cancelled beats abnormal": ("注销", [(AS_OF, None)], "cancelled", 1, "2024-06-30"),
}  # fmt: skip

LABELS = {"active": "在营", "abnormal": "经营异常", "revoked": "吊销", "cancelled": "注销"}


def registry(*rows: tuple[str, str | None]) -> pl.DataFrame:
    """A register reduced to what the rule reads."""
    return pl.DataFrame(rows, schema={"uscc": pl.String, "status": pl.String}, orient="row")


def listings(uscc: str, dates: Listings) -> pl.DataFrame:
    """Abnormal-operation listings of one enterprise, typed as ingest types them."""
    return pl.DataFrame(
        [(uscc, listed, "通过登记的住所无法联系", removed) for listed, removed in dates],
        schema=LISTING,
        orient="row",
    )


@pytest.mark.parametrize(
    ("status", "dates", "expected", "n_open", "since"), CASES.values(), ids=CASES
)
def test_status_rule(
    status: str, dates: Listings, expected: str, n_open: int, since: str | None
) -> None:
    row = verify(registry((USCC, status)), listings(USCC, dates), AS_OF).row(0, named=True)
    assert row == {
        "uscc": USCC,
        "status": expected,
        "status_zh": LABELS[expected],
        "abnormal_listings_open": n_open,
        "abnormal_since": since,
        "as_of": "2024-06-30",
    }


@pytest.mark.parametrize("status", ["迁出", "撤销", "", None], ids=repr)
def test_unknown_register_status_fails_the_build(status: str | None) -> None:
    with pytest.raises(UnknownRegisterStatusError, match="unknown register status"):
        verify(registry((USCC, "存续"), ("91330100MA2B3C4D6F", status)), listings(USCC, []), AS_OF)


def test_one_row_per_registered_enterprise_only() -> None:
    """A listing of an enterprise not on the register yields no row; an unlisted one still does."""
    reg = registry(("B", "存续"), ("A", "在业"))
    out = verify(
        reg, pl.concat([listings("A", [(EARLY, None)]), listings("Z", [(EARLY, None)])]), AS_OF
    )
    assert out["uscc"].to_list() == ["A", "B"]
    assert out["status"].to_list() == ["abnormal", "active"]


def test_build_declares_its_outputs_and_counts() -> None:
    reg = registry(("A", "存续"), ("B", "吊销"), ("C", "在业"))
    built = SPEC.build(
        {"enterprise_registry": reg, "abnormal_operations": listings("C", [(EARLY, None)])}, AS_OF
    )
    assert built.scores.columns == ["uscc", *SPEC.outputs]
    assert built.model is None
    assert built.metrics["n_verified"] == 3 and built.metrics["as_of"] == "2024-06-30"
    assert built.metrics["status_counts"] == {
        "active": 1,
        "abnormal": 1,
        "revoked": 1,
        "cancelled": 0,
    }


def test_registered_as_a_product() -> None:
    assert SPEC in PRODUCTS and product("operating_status") is SPEC
    assert not {"score", "grade"} & set(SPEC.outputs) and SPEC.drift_column is None
    assert all(table(name) for name in SPEC.inputs)
    assert SPEC.price_fen > 0 and SPEC.revenue_weights() == {"market": 6000, "operator": 14000}


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pl.DataFrame]:
    """The product's input tables of a generated city, as ingest cleans them."""
    from pdo.gen import generate

    out: Path = tmp_path_factory.mktemp("operating_status") / "city"
    generate(out, enterprises=300, seed=5, progress=False)
    return {
        name: ingest_file(out / table(name).file_name, table(name)).clean for name in SPEC.inputs
    }


def test_suite_validates_the_build_on_a_generated_city(city: dict[str, pl.DataFrame]) -> None:
    from pdo.gen.city import AS_OF as CITY_AS_OF

    built = SPEC.build(city, CITY_AS_OF)
    checked = validate_product(built.scores, "operating_status")
    assert checked["success"] and checked["evaluated"] == checked["successful"]
    assert built.scores.height == city["enterprise_registry"]["uscc"].n_unique()
    counts = built.metrics["status_counts"]
    assert sum(counts.values()) == built.metrics["n_verified"] == built.scores.height
    assert counts["active"] > 0 and counts["abnormal"] > 0


def test_suite_blocks_a_label_that_disagrees_with_the_status() -> None:
    built = SPEC.build(
        {
            "enterprise_registry": registry((USCC, "吊销")),
            "abnormal_operations": listings(USCC, []),
        },
        AS_OF,
    )
    wrong = built.scores.with_columns(status_zh=pl.lit("在营"))
    with pytest.raises(ProductValidationError, match="expect_column_pair_values_to_be_in_set"):
        validate_product(wrong, "operating_status")
