"""Fit a scorecard on any labelled table: optbinning bins, logistic regression, frozen points."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from pdo.scorecard.frozen import MISSING, FrozenScorecard, FrozenVariable
from pdo.scorecard.metrics import discrimination
from pdo.scorecard.scaling import Scaling


class ScorecardDataError(ValueError):
    """The table cannot be fitted as given (target, columns); the message says why."""


# Fewest bads, and fewest goods, a table must hold to be fitted. A floor against fitting on a
# handful of outcomes (one default gives a card that scores everyone the same), kept low so small
# synthetic cities still fit; it is no sample-size standard: judge a card by its validation pack.
MIN_PER_CLASS = 3


@dataclass(frozen=True)
class Columns:
    """Which columns enter the scorecard, as what, and which were left out (and why)."""

    numerical: tuple[str, ...]
    categorical: tuple[str, ...]
    ignored: dict[str, str] = field(default_factory=dict)

    @property
    def features(self) -> tuple[str, ...]:
        return self.numerical + self.categorical


@dataclass(frozen=True)
class FittedScorecard:
    """The frozen scorecard and its development figures (the optbinning model stays local)."""

    frozen: FrozenScorecard
    columns: Columns
    development: dict[str, Any]
    model: Any = None


def target_of(frame: pl.DataFrame, target: str) -> np.ndarray:
    """The 0/1 target; anything else is refused with the values found."""
    if target not in frame.columns:
        raise ScorecardDataError(f"no target column {target!r}; columns: {frame.columns}")
    s = frame[target]
    if s.null_count():
        raise ScorecardDataError(f"target {target!r} has {s.null_count()} empty values")
    if s.dtype == pl.Boolean:
        s = s.cast(pl.Int64)
    values = s.cast(pl.String).unique().sort().to_list()
    if not set(values) <= {"0", "1"} or len(values) != 2:
        # the values are not shown: a wrong --target may name a column of personal numbers
        raise ScorecardDataError(
            f"target {target!r} must hold both 0 and 1 and nothing else; "
            f"found {len(values)} distinct values"
        )
    return s.cast(pl.String).cast(pl.Int64).to_numpy()


def require_enough_of_each(y: np.ndarray, target: str, minimum: int = MIN_PER_CLASS) -> None:
    """Refuse before fitting when bads or goods are too few to learn anything from."""
    bads = int(y.sum())
    goods = len(y) - bads
    if min(bads, goods) < minimum:
        raise ScorecardDataError(
            f"target {target!r} has {bads} bads (1) and {goods} goods (0); "
            f"a scorecard needs at least {minimum} of each"
        )


def refuse_constant_card(frozen: FrozenScorecard) -> None:
    """A card that gives every row the same score ranks nobody: it must not be packaged."""
    if frozen.min_score == frozen.max_score:
        raise ScorecardDataError(
            f"the fitted scorecard gives every row the same score ({frozen.min_score}): "
            "no feature separates bads from goods in this sample"
        )


def choose_columns(
    frame: pl.DataFrame,
    target: str,
    features: Sequence[str] | None = None,
    categorical: Sequence[str] | None = None,
) -> Columns:
    """Numbers are numerical, text and booleans categorical; dates and ids are left out."""
    names = list(features) if features is not None else [c for c in frame.columns if c != target]
    unknown = [c for c in names if c not in frame.columns]
    if unknown:
        raise ScorecardDataError(f"unknown feature columns {unknown}")
    forced = set(categorical or ())
    numerical, cats, ignored = [], [], {}
    for name in names:
        dtype = frame.schema[name]
        distinct = frame[name].n_unique()
        if distinct <= 1:
            ignored[name] = "constant"
        elif name in forced or dtype in (pl.String, pl.Categorical, pl.Boolean, pl.Enum):
            if name not in forced and distinct > max(50, frame.height // 2):
                ignored[name] = "identifier-like text (a distinct value per row)"
            else:
                cats.append(name)
        elif dtype.is_numeric():
            numerical.append(name)
        else:
            ignored[name] = f"type {dtype} is neither numerical nor categorical"
    if not numerical and not cats:
        raise ScorecardDataError("no usable feature columns")
    return Columns(tuple(numerical), tuple(cats), ignored)


def _pandas(frame: pl.DataFrame, columns: Columns) -> Any:
    x = frame.select(
        *(pl.col(c).cast(pl.Float64) for c in columns.numerical),
        *(pl.col(c).cast(pl.String) for c in columns.categorical),
    )
    return x.to_pandas()


def _freeze(model: Any, columns: Columns, scaling: Scaling, target: str) -> FrozenScorecard:
    """optbinning's bins and points, each point rounded to an integer."""
    table = model.table(style="detailed")
    fitted = model.binning_process_
    variables = []
    for name in columns.features:
        rows = table[table["Variable"] == name]
        regular = rows[~rows["Bin"].astype(str).isin(["Special", MISSING])]
        missing = rows[rows["Bin"].astype(str) == MISSING].iloc[0]
        binned = fitted.get_binned_variable(name)
        is_num = name in columns.numerical
        groups: tuple[tuple[str, ...], ...] = ()
        if is_num:
            labels = [str(b) for b in regular["Bin"]]
        else:
            groups = tuple(tuple(str(c) for c in g) for g in binned.splits)
            labels = [", ".join(g) for g in groups]
        variables.append(
            FrozenVariable(
                name=name,
                dtype="numerical" if is_num else "categorical",
                labels=(*labels, MISSING),
                points=tuple(round(float(p)) for p in [*regular["Points"], missing["Points"]]),
                splits=tuple(float(s) for s in binned.splits) if is_num else (),
                groups=groups,
                woe=tuple(round(float(w), 6) for w in [*regular["WoE"], missing["WoE"]]),
                counts=tuple(int(c) for c in [*regular["Count"], missing["Count"]]),
                event_rates=tuple(
                    round(float(r), 6) if r == r else 0.0
                    for r in [*regular["Event rate"], missing["Event rate"]]
                ),
                iv=round(float(rows["IV"].sum()), 6),
            )
        )
    return FrozenScorecard(tuple(variables), scaling, target)


def fit(
    frame: pl.DataFrame,
    target: str,
    *,
    features: Sequence[str] | None = None,
    categorical: Sequence[str] | None = None,
    scaling: Scaling | None = None,
    seed: int = 0,
) -> FittedScorecard:
    """Bin every feature optimally, fit a logistic regression, scale and freeze the points."""
    from optbinning import BinningProcess, Scorecard
    from sklearn.linear_model import LogisticRegression

    scaling = scaling or Scaling()
    y = target_of(frame, target)
    require_enough_of_each(y, target)
    columns = choose_columns(frame, target, features, categorical)
    binning = BinningProcess(
        variable_names=list(columns.features), categorical_variables=list(columns.categorical)
    )
    model = Scorecard(
        binning_process=binning,
        estimator=LogisticRegression(max_iter=1000, random_state=seed),
        scaling_method="pdo_odds",
        scaling_method_params={
            "pdo": scaling.pdo,
            "odds": scaling.base_odds,
            "scorecard_points": scaling.base_score,
        },
    )
    model.fit(_pandas(frame, columns), y)
    frozen = _freeze(model, columns, scaling, target)
    refuse_constant_card(frozen)
    development = discrimination(y, frozen.score(frame))
    return FittedScorecard(frozen, columns, development, model)


def cross_validate(
    frame: pl.DataFrame,
    target: str,
    *,
    folds: int = 5,
    seed: int = 0,
    features: Sequence[str] | None = None,
    categorical: Sequence[str] | None = None,
    scaling: Scaling | None = None,
) -> dict[str, Any]:
    """Stratified k-fold: each fold fitted on the rest, scored with its frozen points."""
    from sklearn.model_selection import StratifiedKFold

    y = target_of(frame, target)
    if folds < 2:
        raise ScorecardDataError("--cv needs at least 2 folds")
    if min(int(y.sum()), int((1 - y).sum())) < folds:
        raise ScorecardDataError(f"too few of one class for {folds} folds")
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    results = []
    for train, test in splitter.split(np.zeros(len(y)), y):
        fitted = fit(
            frame[train.tolist()],
            target,
            features=features,
            categorical=categorical,
            scaling=scaling,
            seed=seed,
        )
        results.append(discrimination(y[test], fitted.frozen.score(frame[test.tolist()])))
    aucs = np.array([r["auc"] for r in results], dtype=float)
    kss = np.array([r["ks"] for r in results], dtype=float)
    return {
        "folds": folds,
        "seed": seed,
        "auc_mean": round(float(aucs.mean()), 4),
        "auc_std": round(float(aucs.std(ddof=1)), 4),
        "ks_mean": round(float(kss.mean()), 4),
        "ks_std": round(float(kss.std(ddof=1)), 4),
        "per_fold": results,
    }
