"""中小企业信用风险评分 — the SME credit-risk score, built from public data."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import polars as pl

from products.credit_risk import scorecard
from products.credit_risk.features import build_features
from products.spec import ProductBuild, ProductSpec


def build(inputs: Mapping[str, pl.DataFrame], as_of: dt.date) -> ProductBuild:
    """Features for every enterprise, a scorecard fit on the partner bank's outcomes, scores."""
    features = build_features(inputs, as_of)
    labels = inputs["bank_loans"].group_by("uscc").agg(pl.col("defaulted").max())
    train = features.join(labels, on="uscc", how="inner")
    fitted = scorecard.fit(train.drop("defaulted"), train["defaulted"])
    scores = scorecard.score(fitted, features).sort("uscc")
    metrics = dict(fitted.metrics)
    metrics["n_scored"] = scores.height
    metrics["grade_counts"] = dict(scores["grade"].value_counts().sort("grade").iter_rows())
    return ProductBuild(scores=scores, metrics=metrics)


SPEC = ProductSpec(
    name="credit_risk",
    title_zh="中小企业信用风险评分",
    title_en="SME credit-risk score",
    inputs=(
        "enterprise_registry",
        "abnormal_operations",
        "tax_credit",
        "social_insurance",
        "utility_payments",
        "penalties",
        "court_cases",
        "bank_loans",
    ),
    purposes=("贷前审查", "贷后管理"),
    price_fen=200,
    revenue_shares_bp={
        "market": 1500,
        "tax": 1500,
        "hrss": 1000,
        "utilities": 800,
        "credit": 600,
        "court": 600,
    },
    build=build,
)
