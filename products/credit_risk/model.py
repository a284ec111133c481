"""Train the credit-risk scorecard on loan outcomes and assemble its validation pack (model card).

Each loan is a development point as of its issue date. The latest 20% of loans by issue date are
held out as the out-of-time sample; the scorecard is fitted on the earlier 80% only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from pdo.scorecard.fit import FittedScorecard, ScorecardDataError, fit
from pdo.scorecard.frozen import FrozenScorecard
from pdo.scorecard.metrics import (
    APPROVED_GRADES,
    PSI_DRIFT,
    by_segment,
    calibration_by_grade,
    csi,
    discrimination,
    psi,
)
from pdo.scorecard.scaling import Scaling
from products.credit_risk.features import CATEGORICAL, DICTIONARY, FEATURES, features_at
from products.spec import Inputs, eager

OOT_SHARE = 0.2
SEED = 20261125
SCALING = Scaling(base_score=600, base_odds=50, pdo=20)
LABEL = "defaulted"
LABEL_DEFINITION = "合作银行贷款发放后12个月内逾期90天以上（1 = 违约）"
SIZE_BANDS = ((0, "0人"), (1, "1-9人"), (10, "10-49人"), (50, "50人以上"))


@dataclass(frozen=True)
class Trained:
    """The fitted scorecard, the samples it was judged on, and its validation pack."""

    fitted: FittedScorecard
    card: dict[str, Any]


def loan_points(inputs: Inputs) -> pl.DataFrame:
    """Each loan with its features as of its own issue date, and its outcome."""
    loans = eager(inputs, "bank_loans").filter(pl.col(LABEL).is_not_null())
    points = loans.select(
        pl.col("loan_id").alias("key"), "uscc", pl.col("issued_on").alias("as_of"), LABEL
    )
    return features_at(inputs, points).sort("as_of", "key")


def split_out_of_time(points: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(development, out-of-time): the latest OOT_SHARE of loans by issue date are held out."""
    if points.is_empty():
        raise ScorecardDataError(
            "the partner bank's table holds no loan with an outcome to train on"
        )
    cut = points["as_of"].sort()[int(points.height * (1 - OOT_SHARE))]
    dev, oot = points.filter(pl.col("as_of") < cut), points.filter(pl.col("as_of") >= cut)
    if dev.is_empty():
        raise ScorecardDataError(
            f"no loan was issued before {cut}, where the latest {OOT_SHARE:.0%} of the "
            f"{points.height} loans begin: nothing is left to develop the scorecard on "
            "(the out-of-time split needs loans issued on more than one date)"
        )
    return dev, oot


def size_band(headcount: pl.Series) -> list[str]:
    """Firm size by insured headcount, for segment figures."""
    out = []
    for h in headcount.fill_null(0).to_list():
        out.append(next(name for floor, name in reversed(SIZE_BANDS) if h >= floor))
    return out


def _period(frame: pl.DataFrame) -> dict[str, Any]:
    y = frame[LABEL].to_numpy()
    return {
        "from": str(frame["as_of"].min()),
        "to": str(frame["as_of"].max()),
        "n": frame.height,
        "bads": int(y.sum()),
        "bad_rate": round(float(y.mean()), 4) if len(y) else None,
    }


def _bin_tables(frozen: FrozenScorecard) -> list[dict[str, Any]]:
    labels = {f.name: f.label_zh for f in DICTIONARY}
    return [
        {
            "variable": v.name,
            "label_zh": labels.get(v.name, v.name),
            "iv": v.iv,
            "bins": [
                {"bin": lab, "count": c, "event_rate": r, "woe": w, "points": p}
                for lab, c, r, w, p in zip(
                    v.labels, v.counts, v.event_rates, v.woe, v.points, strict=True
                )
            ],
        }
        for v in frozen.variables
    ]


def validation_pack(
    frozen: FrozenScorecard, dev: pl.DataFrame, oot: pl.DataFrame
) -> dict[str, Any]:
    """Discrimination, calibration, stability and segment figures on both samples."""
    y_dev, y_oot = dev[LABEL].to_numpy(), oot[LABEL].to_numpy()
    s_dev, s_oot = frozen.score(dev), frozen.score(oot)
    grades_oot = [frozen.scaling.grade(int(s)) for s in s_oot]
    bins_dev, bins_oot = frozen.bins(dev), frozen.bins(oot)
    return {
        "development": discrimination(y_dev, s_dev),
        "out_of_time": discrimination(y_oot, s_oot),
        "calibration_out_of_time": calibration_by_grade(grades_oot, y_oot, s_oot, frozen.scaling),
        "psi_out_of_time": round(psi(s_dev, s_oot), 4),
        "csi_out_of_time": {
            v.name: round(csi(bins_dev[:, j], bins_oot[:, j], len(v.labels)), 4)
            for j, v in enumerate(frozen.variables)
        },
        "segments_out_of_time": {
            "district": by_segment(oot["district"].to_list(), grades_oot, y_oot, s_oot),
            "industry_section": by_segment(
                oot["industry_section"].to_list(), grades_oot, y_oot, s_oot
            ),
            "size": by_segment(size_band(oot["insured_headcount"]), grades_oot, y_oot, s_oot),
        },
    }


def train(inputs: Inputs) -> Trained:
    """Fit on the development loans; judge on the out-of-time loans."""
    points = loan_points(inputs)
    dev, oot = split_out_of_time(points)
    fitted = fit(
        dev.select(*FEATURES, LABEL),
        LABEL,
        features=FEATURES,
        categorical=CATEGORICAL,
        scaling=SCALING,
        seed=SEED,
    )
    frozen = fitted.frozen
    card: dict[str, Any] = {
        "scorecard_sha256": frozen.sha256(),
        "method": "optbinning 最优分箱 + 逻辑回归；分值按 PDO 标度取整（各变量分值之和即总分）",
        "scaling": frozen.scaling.to_dict()
        | {"odds_convention": "good:bad（好坏比）；分数越高越安全"},
        "score_range": [frozen.min_score, frozen.max_score],
        "grades": [{"grade": g, "min_score": floor} for floor, g in frozen.scaling.grade_floors()],
        "approved_grades": sorted(APPROVED_GRADES),
        "label": {"column": LABEL, "definition_zh": LABEL_DEFINITION},
        "sample": {
            "unit": "贷款（按放款日计算特征）",
            "development": _period(dev),
            "out_of_time": _period(oot),
            "out_of_time_share": OOT_SHARE,
        },
        "seed": SEED,
        "variables_left_out": fitted.columns.ignored,
        "bin_tables": _bin_tables(frozen),
        "psi_drift_threshold": PSI_DRIFT,
    }
    card |= validation_pack(frozen, dev, oot)
    return Trained(fitted, card)


def score_distribution(scores: np.ndarray) -> dict[str, float]:
    """Quantiles of the served scores, for the card and drift checks."""
    if len(scores) == 0:
        return {}
    levels = (0.05, 0.25, 0.5, 0.75, 0.95)
    values = np.quantile(scores, levels)
    return {f"p{round(q * 100)}": float(v) for q, v in zip(levels, values, strict=True)}
