"""The 经营状态核验 rule: the register's legal status first, then abnormal-operation listings."""

from __future__ import annotations

import datetime as dt

import polars as pl

# 存续 and 在业 both mean registered and operating; 吊销 and 注销 end the enterprise's life.
OPERATING = frozenset({"存续", "在业"})
CLOSED = {"吊销": "revoked", "注销": "cancelled"}
STATUS_ZH = {"active": "在营", "abnormal": "经营异常", "revoked": "吊销", "cancelled": "注销"}
COLUMNS = ("status", "status_zh", "abnormal_listings_open", "abnormal_since", "as_of")


class UnknownRegisterStatusError(ValueError):
    """The register holds a status the rule cannot map; a bank must never be told a guess."""


def check_statuses(registry: pl.DataFrame) -> None:
    """Refuse the build when a register status is neither operating nor closed (or missing)."""
    unknown = set(registry["status"].unique().to_list()) - OPERATING - set(CLOSED)
    if unknown:
        raise UnknownRegisterStatusError(
            f"登记状态无法核验 (unknown register status): {sorted(unknown, key=str)}"
        )


def open_listings(listings: pl.DataFrame, as_of: dt.date) -> pl.DataFrame:
    """Per enterprise, listings in force on the date (not yet listed or already removed: none)."""
    in_force = (pl.col("listed_on") <= as_of) & (
        pl.col("removed_on").is_null() | (pl.col("removed_on") > as_of)
    )
    return (
        listings.filter(in_force)
        .group_by("uscc")
        .agg(
            pl.len().cast(pl.Int64).alias("abnormal_listings_open"),
            pl.col("listed_on").min().alias("first_open"),
        )
    )


def status_of() -> pl.Expr:
    """Legal closure beats a listing: a revoked enterprise is revoked, listed or not."""
    return (
        pl.col("status")
        .replace_strict(CLOSED, default=None, return_dtype=pl.String)
        .fill_null(
            pl.when(pl.col("abnormal_listings_open") > 0)
            .then(pl.lit("abnormal"))
            .otherwise(pl.lit("active"))
        )
    )


def verify(registry: pl.DataFrame, listings: pl.DataFrame, as_of: dt.date) -> pl.DataFrame:
    """One row per registered enterprise: uscc plus the product's outputs, sorted by uscc."""
    check_statuses(registry)
    return (
        registry.select("uscc", "status")
        .join(open_listings(listings, as_of), on="uscc", how="left")
        .with_columns(pl.col("abnormal_listings_open").fill_null(0))
        .with_columns(status_of().alias("status"))
        .select(
            "uscc",
            "status",
            pl.col("status").replace_strict(STATUS_ZH, return_dtype=pl.String).alias("status_zh"),
            "abnormal_listings_open",
            pl.col("first_open").dt.to_string("%Y-%m-%d").alias("abnormal_since"),
            pl.lit(as_of.isoformat()).alias("as_of"),
        )
        .sort("uscc")
    )
