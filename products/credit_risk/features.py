"""Credit-risk features per (enterprise, as-of date), each record counted only once it was public.

No leakage: a record enters a feature only from the date it became known — publication date for
penalties and court records, listing date for abnormal operations, the statutory release of the
tax-credit grade (April 1 of the following year), and month end for monthly social-insurance and
utility figures (a month counts from the first day of the next). Training evaluates each loan as
of its own issue date; scoring evaluates every enterprise as of the scoring date.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from products.spec import Inputs, eager

TAX_GRADE_RELEASE = (4, 1)  # month, day of the year after the assessment year


@dataclass(frozen=True)
class Feature:
    """One entry of the feature dictionary: what it is, where from, which way risk goes."""

    name: str
    label_zh: str
    label_en: str
    source: str  # department code
    definition_zh: str
    definition_en: str
    direction: str  # 越高越安全 | 越高风险越高 | 类别
    categorical: bool = False


DICTIONARY: tuple[Feature, ...] = (
    Feature("firm_age_years", "成立年限", "Firm age", "market",
            "评分日与成立日期之差（年）", "Years from establishment to the as-of date",
            "越高越安全"),
    Feature("registered_capital_wan", "注册资本（万元）", "Registered capital (10k yuan)",
            "market", "登记的注册资本", "Registered capital on the register", "越高越安全"),
    Feature("industry_section", "行业门类", "Industry section", "market",
            "GB/T 4754 行业门类", "GB/T 4754 industry section", "类别", categorical=True),
    Feature("district", "所属区县", "District", "market", "登记所在区县",
            "Registered district", "类别", categorical=True),
    Feature("tax_grade", "纳税信用等级", "Tax credit grade", "tax",
            "评分日前已发布（次年4月1日）的最近一年纳税信用等级；无则为“无评级”",
            "Latest tax-credit grade released (April 1 of the next year) by the as-of date",
            "类别", categorical=True),
    Feature("tax_paid_wan", "年度纳税额（万元）", "Tax paid (10k yuan)", "tax",
            "与该纳税信用等级同年度的纳税额", "Tax paid in the year of that grade",
            "越高越安全"),
    Feature("insured_headcount", "参保人数", "Insured headcount", "hrss",
            "评分日上月末的参保人数", "Insured headcount at the end of the month before",
            "越高越安全"),
    Feature("headcount_change_12m", "参保人数12个月变化率", "Headcount change, 12 months",
            "hrss", "上月末参保人数相对12个月前的变化率", "Change against 12 months earlier",
            "越高越安全"),
    Feature("arrears_months_12m", "近12个月欠费月数", "Months in arrears, 12 months",
            "utilities", "近12个已结账月份中水电欠费的月数",
            "Billing months with water/electricity arrears, last 12 closed months",
            "越高风险越高"),
    Feature("arrears_yuan_12m", "近12个月欠费金额（元）", "Arrears, 12 months (yuan)",
            "utilities", "近12个已结账月份的欠费合计", "Sum of arrears, last 12 closed months",
            "越高风险越高"),
    Feature("penalties_3y", "近3年行政处罚次数", "Administrative penalties, 3 years",
            "credit", "评分日前3年内公示的行政处罚次数",
            "Penalties published in the 3 years before the as-of date", "越高风险越高"),
    Feature("enforcement_cases_3y", "近3年被执行案件数", "Enforcement cases, 3 years",
            "court", "评分日前3年内发布的执行案件数",
            "Enforcement cases published in the 3 years before the as-of date",
            "越高风险越高"),
    Feature("abnormal_listings_open", "在列经营异常名录数", "Open abnormal-operation listings",
            "market", "评分日仍在列（已列入且未移出）的经营异常名录条数",
            "Listings made and not yet removed at the as-of date", "越高风险越高"),
)  # fmt: skip
FEATURES = tuple(f.name for f in DICTIONARY)
CATEGORICAL = tuple(f.name for f in DICTIONARY if f.categorical)
NUMERIC = tuple(f.name for f in DICTIONARY if not f.categorical)
LABELS_ZH = {f.name: f.label_zh for f in DICTIONARY}


def _months_before(as_of: pl.Expr, months: int) -> pl.Expr:
    """'YYYY-MM' of the month `months` before the as-of date's month."""
    return as_of.dt.offset_by(f"-{months}mo").dt.strftime("%Y-%m")


def _per_point(points: pl.LazyFrame, events: pl.LazyFrame) -> pl.LazyFrame:
    """Every (point, event) pair of the same enterprise."""
    return points.select("key", "uscc", "as_of").join(events, on="uscc", how="inner")


def _tax(points: pl.LazyFrame, tax: pl.LazyFrame) -> pl.LazyFrame:
    month, day = TAX_GRADE_RELEASE
    released = pl.date(pl.col("year") + 1, month, day)
    return (
        _per_point(points, tax.select("uscc", "year", "grade", "tax_paid"))
        .filter(released <= pl.col("as_of"))
        .sort("year")
        .group_by("key")
        .agg(
            pl.col("grade").last().alias("tax_grade"),
            (pl.col("tax_paid").last() / 1_000_000).alias("tax_paid_wan"),  # fen → 万元
        )
    )


def _headcount(points: pl.LazyFrame, si: pl.LazyFrame) -> pl.LazyFrame:
    pairs = _per_point(points, si.select("uscc", "month", "insured_headcount")).sort("month")
    now = (
        pairs.filter(pl.col("month") <= _months_before(pl.col("as_of"), 1))
        .group_by("key")
        .agg(pl.col("insured_headcount").last().alias("insured_headcount"))
    )
    then = (
        pairs.filter(pl.col("month") <= _months_before(pl.col("as_of"), 13))
        .group_by("key")
        .agg(pl.col("insured_headcount").last().alias("headcount_then"))
    )
    return now.join(then, on="key", how="left")


def _arrears(points: pl.LazyFrame, utility: pl.LazyFrame) -> pl.LazyFrame:
    month = pl.col("month")
    return (
        _per_point(points, utility.select("uscc", "month", "arrears"))
        .filter(
            (month <= _months_before(pl.col("as_of"), 1))
            & (month > _months_before(pl.col("as_of"), 13))
        )
        .group_by("key", "month")
        .agg(pl.col("arrears").sum())
        .group_by("key")
        .agg(
            (pl.col("arrears") > 0).sum().alias("arrears_months_12m"),
            (pl.col("arrears").sum() / 100).alias("arrears_yuan_12m"),
        )
    )


def _published_within(
    points: pl.LazyFrame, events: pl.LazyFrame, years: int, name: str
) -> pl.LazyFrame:
    published = pl.col("published_on")
    since = pl.col("as_of").dt.offset_by(f"-{years}y")
    return (
        _per_point(points, events.select("uscc", "published_on"))
        .filter((published <= pl.col("as_of")) & (published > since))
        .group_by("key")
        .agg(pl.len().alias(name))
    )


def _abnormal(points: pl.LazyFrame, abnormal: pl.LazyFrame) -> pl.LazyFrame:
    removed = pl.col("removed_on")
    return (
        _per_point(points, abnormal.select("uscc", "listed_on", "removed_on"))
        .filter(
            (pl.col("listed_on") <= pl.col("as_of"))
            & (removed.is_null() | (removed > pl.col("as_of")))
        )
        .group_by("key")
        .agg(pl.len().alias("abnormal_listings_open"))
    )


def features_at(inputs: Inputs, points: pl.DataFrame) -> pl.DataFrame:
    """Features for each (key, uscc, as_of) point; 'no record' counts as 0, not as unknown.

    One lazy query run by polars' streaming engine: the (point, event) pairs of the monthly
    tables are filtered and summed batch by batch instead of held whole (29M utility rows
    at 1M enterprises)."""
    tables = {name: frame.lazy() for name, frame in inputs.items()}
    at = points.lazy()
    reg = tables["enterprise_registry"].select(
        "uscc", "established_on", "registered_capital", "industry_section", "district"
    )
    court = tables["court_cases"]
    parts = [
        _tax(at, tables["tax_credit"]),
        _headcount(at, tables["social_insurance"]),
        _arrears(at, tables["utility_payments"]),
        _published_within(at, tables["penalties"], 3, "penalties_3y"),
        _published_within(
            at, court.filter(pl.col("kind") == "执行案件"), 3, "enforcement_cases_3y"
        ),
        _abnormal(at, tables["abnormal_operations"]),
    ]
    out = at.join(reg, on="uscc", how="left", maintain_order="left")
    for part in parts:
        out = out.join(part, on="key", how="left", maintain_order="left")
    return out.select(
        *points.columns,
        ((pl.col("as_of") - pl.col("established_on")).dt.total_days() / 365.25).alias(
            "firm_age_years"
        ),
        (pl.col("registered_capital") / 100).alias("registered_capital_wan"),
        pl.col("industry_section").fill_null("未知"),
        pl.col("district").fill_null("未知"),
        pl.col("tax_grade").fill_null("无评级"),
        pl.col("tax_paid_wan").fill_null(0.0),
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
        pl.col("enforcement_cases_3y").fill_null(0).cast(pl.Float64),
        pl.col("abnormal_listings_open").fill_null(0).cast(pl.Float64),
    ).collect(engine="streaming")


def build_features(inputs: Inputs, as_of: dt.date) -> pl.DataFrame:
    """Every registered enterprise as of one scoring date (key = uscc)."""
    reg = eager(inputs, "enterprise_registry")
    points = reg.select(pl.col("uscc").alias("key"), "uscc", pl.lit(as_of).alias("as_of"))
    return features_at(inputs, points)
