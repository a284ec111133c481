"""An optbinning scorecard over the credit-risk features: fit, score, grade."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from products.credit_risk.features import CATEGORICAL, FEATURES

BASE_POINTS = 600
BASE_ODDS = 50  # good:bad odds at the base score (optbinning's convention)
POINTS_TO_DOUBLE_ODDS = 20
# Grades by probability of default: A < 2% ≤ B < 5% ≤ C < 10% ≤ D < 20% ≤ E.
PD_BANDS = ((0.02, "A"), (0.05, "B"), (0.10, "C"), (0.20, "D"))


def points_at_pd(pd_: float) -> float:
    """The score whose good:bad odds equal (1 - pd) / pd under our scaling."""
    return BASE_POINTS + POINTS_TO_DOUBLE_ODDS * math.log2((1 - pd_) / pd_ / BASE_ODDS)


GRADES = (*((math.ceil(points_at_pd(pd_)), name) for pd_, name in PD_BANDS), (-(10**9), "E"))


@dataclass(frozen=True)
class FittedScorecard:
    """The fitted optbinning Scorecard with its development metrics."""

    model: Any
    metrics: dict[str, Any]


def _ks(y: np.ndarray, score: np.ndarray) -> float:
    order = np.argsort(score)
    y_sorted = y[order]
    bad = np.cumsum(y_sorted) / max(int(y.sum()), 1)
    good = np.cumsum(1 - y_sorted) / max(int((1 - y).sum()), 1)
    return float(np.max(np.abs(bad - good)))


def fit(features: pl.DataFrame, target: pl.Series) -> FittedScorecard:
    """Bin every feature optimally, fit a logistic regression, scale to points."""
    from optbinning import BinningProcess, Scorecard
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    x = features.select(FEATURES).to_pandas()
    y = target.to_numpy().astype(int)
    binning = BinningProcess(variable_names=list(FEATURES), categorical_variables=list(CATEGORICAL))
    model = Scorecard(
        binning_process=binning,
        estimator=LogisticRegression(max_iter=1000),
        scaling_method="pdo_odds",
        scaling_method_params={
            "pdo": POINTS_TO_DOUBLE_ODDS,
            "odds": BASE_ODDS,
            "scorecard_points": BASE_POINTS,
        },
    )
    model.fit(x, y)
    score = model.score(x)
    auc = float(roc_auc_score(y, -score))
    return FittedScorecard(
        model=model,
        metrics={
            "n_train": len(y),
            "bad_rate": float(y.mean()),
            "auc_in_sample": round(auc, 4),
            "ks_in_sample": round(_ks(y, -score), 4),
        },
    )


def grade(points: int) -> str:
    for floor, name in GRADES:
        if points >= floor:
            return name
    return GRADES[-1][1]


def score(fitted: FittedScorecard, features: pl.DataFrame) -> pl.DataFrame:
    """Integer points and a grade per enterprise."""
    x: pd.DataFrame = features.select(FEATURES).to_pandas()
    points = np.rint(fitted.model.score(x)).astype(int)
    return pl.DataFrame(
        {
            "uscc": features["uscc"],
            "score": points,
            "grade": [grade(int(p)) for p in points],
        }
    )
