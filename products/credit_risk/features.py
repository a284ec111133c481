"""Credit-risk features per enterprise as of a scoring date, from desensitized inputs only."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import polars as pl

NUMERIC = (
    "firm_age_years",
    "registered_capital_wan",
    "insured_headcount",
    "headcount_change_12m",
    "arrears_months_12m",
    "arrears_yuan_12m",
    "penalties_3y",
    "enforcement_cases",
    "abnormal_listings_open",
)
CATEGORICAL = ("tax_grade", "industry_section", "dishonest_debtor")
FEATURES = NUMERIC + CATEGORICAL


def _months_back(as_of: dt.date, months: int) -> str:
    y, m = divmod(as_of.year * 12 + as_of.month - 1 - months, 12)
    return f"{y:04d}-{m + 1:02d}"


def build_features(inputs: Mapping[str, pl.DataFrame], as_of: dt.date) -> pl.DataFrame:
    """One row per registered enterprise; missing signals mean 'no record' (0), not unknown."""
    reg = inputs["enterprise_registry"]
    base = reg.select(
        "uscc",
        ((pl.lit(as_of) - pl.col("established_on")).dt.total_days() / 365.25).alias(
            "firm_age_years"
        ),
        (pl.col("registered_capital") / 100).alias("registered_capital_wan"),
        pl.col("industry_section").fill_null("未知"),
    )
    tax = inputs["tax_credit"]
    latest_tax = tax.sort("year").group_by("uscc").agg(pl.col("grade").last().alias("tax_grade"))
    si = inputs["social_insurance"]
    now_m, then_m = _months_back(as_of, 0), _months_back(as_of, 12)
    si_now = (
        si.filter(pl.col("month") <= now_m)
        .sort("month")
        .group_by("uscc")
        .agg(pl.col("insured_headcount").last().alias("insured_headcount"))
    )
    si_then = (
        si.filter(pl.col("month") <= then_m)
        .sort("month")
        .group_by("uscc")
        .agg(pl.col("insured_headcount").last().alias("headcount_then"))
    )
    util = inputs["utility_payments"].filter(
        (pl.col("month") > _months_back(as_of, 12)) & (pl.col("month") <= now_m)
    )
    arrears = util.group_by("uscc").agg(
        (pl.col("arrears") > 0).sum().alias("arrears_months_12m"),
        (pl.col("arrears").sum() / 100).alias("arrears_yuan_12m"),
    )
    since = as_of - dt.timedelta(days=3 * 365)
    pen = (
        inputs["penalties"]
        .filter(pl.col("decided_on").is_between(since, as_of))
        .group_by("uscc")
        .agg(pl.len().alias("penalties_3y"))
    )
    court = inputs["court_cases"].filter(pl.col("filed_on") <= as_of)
    enforcement = court.group_by("uscc").agg(
        (pl.col("kind") == "执行案件").sum().alias("enforcement_cases"),
        (pl.col("kind") == "失信被执行人").any().alias("dishonest"),
    )
    abn = (
        inputs["abnormal_operations"]
        .filter(
            (pl.col("listed_on") <= as_of)
            & (pl.col("removed_on").is_null() | (pl.col("removed_on") > as_of))
        )
        .group_by("uscc")
        .agg(pl.len().alias("abnormal_listings_open"))
    )
    out = (
        base.join(latest_tax, on="uscc", how="left")
        .join(si_now, on="uscc", how="left")
        .join(si_then, on="uscc", how="left")
        .join(arrears, on="uscc", how="left")
        .join(pen, on="uscc", how="left")
        .join(enforcement, on="uscc", how="left")
        .join(abn, on="uscc", how="left")
    )
    return out.select(
        "uscc",
        "firm_age_years",
        "registered_capital_wan",
        pl.col("insured_headcount").fill_null(0).cast(pl.Float64),
        (
            (pl.col("insured_headcount") - pl.col("headcount_then"))
            / pl.col("headcount_then").clip(lower_bound=1)
        )
        .fill_null(0.0)
        .alias("headcount_change_12m"),
        pl.col("arrears_months_12m").fill_null(0).cast(pl.Float64),
        pl.col("arrears_yuan_12m").fill_null(0.0),
        pl.col("penalties_3y").fill_null(0).cast(pl.Float64),
        pl.col("enforcement_cases").fill_null(0).cast(pl.Float64),
        pl.col("abnormal_listings_open").fill_null(0).cast(pl.Float64),
        pl.col("tax_grade").fill_null("无评级"),
        "industry_section",
        pl.when(pl.col("dishonest").fill_null(False))
        .then(pl.lit("是"))
        .otherwise(pl.lit("否"))
        .alias("dishonest_debtor"),
    )
