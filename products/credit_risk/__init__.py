"""中小企业信用风险评分 — the SME credit-risk score, built from public data."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import polars as pl

from pdo.revenue import RevenueRule
from pdo.scorecard.frozen import FrozenScorecard
from products.credit_risk.features import DICTIONARY, FEATURES, LABELS_ZH, build_features
from products.credit_risk.knockouts import KNOCKED_OUT_GRADE, KNOCKOUTS, knockouts_of
from products.credit_risk.lists import lists_per_row
from products.credit_risk.model import score_distribution, train
from products.spec import Inputs, ProductBuild, ProductSpec, served_fields

REASON_CODES = {f.name: f"R{i:02d}" for i, f in enumerate(DICTIONARY, start=1)}
REASON = pl.Struct(
    {"code": pl.String, "factor": pl.String, "label_zh": pl.String, "bin": pl.String,
     "points_lost": pl.Int64}
)  # fmt: skip
# the open 经营异常 listings counted as of the date: served whatever the model made of them, so
# watchers learn of a new listing even when the scorecard does not split the factor
OUTPUTS = ("score", "grade", "reasons", "knockouts", "abnormal_listings_open")


def score_frame(frozen: FrozenScorecard, inputs: Inputs, as_of: dt.date) -> pl.DataFrame:
    """Score, grade, reason codes, knock-outs and open abnormal-operation listings for every
    registered enterprise as of a date."""
    features = build_features(inputs, as_of).sort("uscc")
    points = frozen.score(features)
    reasons = frozen.lost_points(features).select(
        "row",
        pl.struct(
            pl.col("variable").replace_strict(REASON_CODES).alias("code"),
            pl.col("variable").alias("factor"),
            pl.col("variable").replace_strict(LABELS_ZH).alias("label_zh"),
            "bin",
            pl.col("lost").alias("points_lost"),
        ).alias("item"),
    )
    knocked = knockouts_of(inputs, as_of, features["uscc"])
    struck = (knocked.list.len() > 0).to_list()
    grades = [
        KNOCKED_OUT_GRADE if ko else frozen.scaling.grade(int(p))
        for p, ko in zip(points, struck, strict=True)
    ]
    return pl.DataFrame(
        {
            "uscc": features["uscc"],
            "score": pl.Series(points, dtype=pl.Int64),
            "grade": grades,
            "reasons": lists_per_row(reasons, features.height, REASON),
            "knockouts": knocked,
            "abnormal_listings_open": features["abnormal_listings_open"].cast(pl.Int64),
        }
    )


def build(inputs: Inputs, as_of: dt.date) -> ProductBuild:
    """Train on the partner bank's outcomes (each loan as of its date), then score everyone."""
    trained = train(inputs)
    frozen = trained.fitted.frozen
    scores = score_frame(frozen, inputs, as_of)
    card = dict(trained.card)
    card["scoring"] = {
        "as_of": as_of.isoformat(),
        "n_scored": scores.height,
        "grade_counts": dict(scores["grade"].value_counts().sort("grade").iter_rows()),
        "knocked_out": int((scores["knockouts"].list.len() > 0).sum()),
        "score_quantiles": score_distribution(scores["score"].to_numpy()),
    }
    card["feature_dictionary"] = [
        {
            "name": f.name,
            "code": REASON_CODES[f.name],
            "label_zh": f.label_zh,
            "label_en": f.label_en,
            "source": f.source,
            "definition_zh": f.definition_zh,
            "definition_en": f.definition_en,
            "direction": f.direction,
            "used": f.name in frozen.names,
        }
        for f in DICTIONARY
    ]
    card["knockouts"] = [
        {"code": k.code, "label_zh": k.label_zh, "label_en": k.label_en, "source": k.source}
        for k in KNOCKOUTS
    ]
    card["n_scored"] = scores.height
    card["grade_counts"] = card["scoring"]["grade_counts"]
    return ProductBuild(scores=scores, metrics=card, model=frozen.to_dict())


def rescore(
    inputs: Mapping[str, pl.DataFrame], as_of: dt.date, model: dict[str, Any], uscc: str
) -> dict[str, Any] | None:
    """One enterprise scored again with a published version's frozen scorecard (after an
    upheld objection): its records only, so it takes milliseconds, not a rebuild."""
    own = {name: frame.filter(pl.col("uscc") == uscc) for name, frame in inputs.items()}
    if own["enterprise_registry"].is_empty():
        return None
    scored = score_frame(FrozenScorecard.from_dict(model), own, as_of)
    return served_fields(OUTPUTS, scored.row(0, named=True))


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
    revenue=RevenueRule(
        departments_bp={
            "market": 1500,
            "tax": 1500,
            "hrss": 1000,
            "utilities": 800,
            "credit": 600,
            "court": 600,
        }
    ),
    build=build,
    outputs=OUTPUTS,
    drift_column="score",
    rescore=rescore,
)

__all__ = ["FEATURES", "SPEC", "build", "rescore", "score_frame"]
