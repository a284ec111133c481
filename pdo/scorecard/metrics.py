"""Discrimination, stability and calibration figures a bank's model-validation team expects."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pdo.scorecard.scaling import Scaling

PSI_DRIFT = 0.25  # above this a population has shifted (industry convention: < 0.1 stable)
APPROVED_GRADES = frozenset({"A", "B", "C"})  # the cut-off the approval rate is reported at
_EPS = 1e-6


def auc(y: np.ndarray, score: np.ndarray) -> float | None:
    """Area under ROC with higher scores meaning safer (None when only one class is present)."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y)
    if len(np.unique(y)) < 2:
        return None
    return float(roc_auc_score(y, -np.asarray(score, dtype=float)))


def ks(y: np.ndarray, score: np.ndarray) -> float | None:
    """Largest gap between the cumulative score distributions of bads and goods, read at each
    distinct score: tied loans fall on one side of a cut-off together, so row order is moot."""
    y = np.asarray(y).astype(int)
    if len(np.unique(y)) < 2:
        return None
    cuts, group = np.unique(np.asarray(score, dtype=float), return_inverse=True)
    bads = np.bincount(group, weights=y, minlength=len(cuts))
    goods = np.bincount(group, weights=1 - y, minlength=len(cuts))
    bad = np.cumsum(bads) / bads.sum()
    good = np.cumsum(goods) / goods.sum()
    return float(np.max(np.abs(bad - good)))


def gini(auc_value: float | None) -> float | None:
    return None if auc_value is None else 2 * auc_value - 1


def psi_from_shares(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index between two distributions over the same bins."""
    e = np.clip(np.asarray(expected, dtype=float), _EPS, None)
    a = np.clip(np.asarray(actual, dtype=float), _EPS, None)
    return float(np.sum((a - e) * np.log(a / e)))


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """PSI of a score over the reference's deciles (ties merged)."""
    reference = np.asarray(reference, dtype=float)
    current = np.asarray(current, dtype=float)
    if reference.size == 0 or current.size == 0:
        return 0.0
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    ref = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=len(edges) + 1)
    cur = np.bincount(np.searchsorted(edges, current, side="right"), minlength=len(edges) + 1)
    return psi_from_shares(ref / ref.sum(), cur / cur.sum())


def csi(reference_bins: np.ndarray, current_bins: np.ndarray, n_bins: int) -> float:
    """Characteristic stability index: PSI of one variable's bin shares."""
    ref = np.bincount(reference_bins, minlength=n_bins)
    cur = np.bincount(current_bins, minlength=n_bins)
    if ref.sum() == 0 or cur.sum() == 0:
        return 0.0
    return psi_from_shares(ref / ref.sum(), cur / cur.sum())


def discrimination(y: np.ndarray, score: np.ndarray) -> dict[str, Any]:
    """n, bad rate, AUC, Gini and KS of one sample."""
    a = auc(y, score)
    k = ks(y, score)
    g = gini(a)
    return {
        "n": len(y),
        "bad_rate": round(float(np.mean(y)), 4) if len(y) else None,
        "auc": None if a is None else round(a, 4),
        "gini": None if g is None else round(g, 4),
        "ks": None if k is None else round(k, 4),
    }


def calibration_by_grade(
    grades: Sequence[str], y: np.ndarray, score: np.ndarray, scaling: Scaling
) -> list[dict[str, Any]]:
    """Per grade: count, observed bad rate and the scaling's mean predicted PD."""
    grades_a = np.asarray(grades)
    out = []
    for g in sorted(set(grades_a.tolist())):
        mask = grades_a == g
        predicted = [scaling.pd_at(float(s)) for s in np.asarray(score)[mask]]
        out.append(
            {
                "grade": g,
                "n": int(mask.sum()),
                "observed_bad_rate": round(float(np.mean(y[mask])), 4),
                "predicted_pd": round(float(np.mean(predicted)), 4),
            }
        )
    return out


def by_segment(
    segments: Sequence[Any], grades: Sequence[str], y: np.ndarray, score: np.ndarray
) -> list[dict[str, Any]]:
    """Approval rate (grades A–C), bad rate and AUC per segment value."""
    seg = np.asarray([str(s) for s in segments])
    approved = np.isin(np.asarray(grades), list(APPROVED_GRADES))
    rows = []
    for value in sorted(set(seg.tolist())):
        mask = seg == value
        rows.append(
            {
                "segment": value,
                "n": int(mask.sum()),
                "approval_rate": round(float(approved[mask].mean()), 4),
                "bad_rate": round(float(np.mean(y[mask])), 4),
                "auc": None if (a := auc(y[mask], score[mask])) is None else round(a, 4),
            }
        )
    return rows
