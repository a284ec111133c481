"""The generic scorecard: frozen points match optbinning, reasons sum exactly, CLI on any table."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from pdo.cli import app
from pdo.scorecard.fit import ScorecardDataError, choose_columns, cross_validate, fit
from pdo.scorecard.frozen import FrozenScorecard
from pdo.scorecard.metrics import auc, csi, ks, psi
from pdo.scorecard.scaling import Scaling


def _table(n: int, seed: int) -> pl.DataFrame:
    """A labelled table: two informative columns, one noise column, a date and an id."""
    rng = np.random.default_rng(seed)
    income = rng.lognormal(10, 0.6, n)
    region = rng.choice(["东", "南", "西", "北"], n, p=[0.4, 0.3, 0.2, 0.1])
    income[rng.random(n) < 0.03] = np.nan
    logit = -1.2 - 0.9 * (np.log(np.nan_to_num(income, nan=22026.0)) - 10) + (region == "西") * 1.1
    bad = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pl.DataFrame(
        {
            "id": [f"C{i:06d}" for i in range(n)],
            "income": income,
            "region": region,
            "noise": rng.integers(0, 5, n),
            "opened": pl.date_range(
                pl.date(2020, 1, 1), pl.date(2020, 1, 1), eager=True
            ).extend_constant(None, n - 1),
            "bad": bad,
        }
    )


@pytest.fixture(scope="module")
def table() -> pl.DataFrame:
    return _table(3000, 1)


@pytest.fixture(scope="module")
def fitted(table: pl.DataFrame):
    return fit(table, "bad", seed=0)


def test_columns_are_chosen_by_type(table: pl.DataFrame) -> None:
    cols = choose_columns(table, "bad")
    assert cols.numerical == ("income", "noise") and cols.categorical == ("region",)
    assert set(cols.ignored) == {"id", "opened"}


def test_frozen_points_reproduce_optbinning_within_rounding(table, fitted) -> None:
    model_score = fitted.model.score(table.select("income", "noise", "region").to_pandas())
    gap = np.abs(model_score - fitted.frozen.score(table))
    assert gap.max() <= 0.5 * len(fitted.frozen.variables) + 1e-9


def test_bins_follow_optbinning_including_edges_missing_and_unseen(fitted) -> None:
    income = next(v for v in fitted.frozen.variables if v.name == "income")
    edges = np.array([*income.splits, np.nan, -1.0, 1e12])
    ours = income.bin_index(pl.Series(edges))
    theirs = fitted.model.binning_process_.get_binned_variable("income").transform(
        edges, metric="indices"
    )
    assert ours[:-3].tolist() == theirs[: len(income.splits)].tolist()  # a split opens its bin
    assert ours[len(income.splits)] == income.missing_bin
    region = next(v for v in fitted.frozen.variables if v.name == "region")
    assert region.bin_index(pl.Series(["火星", None])).tolist() == [region.missing_bin] * 2


def test_reasons_add_up_exactly_to_the_gap_from_the_maximum(table, fitted) -> None:
    frozen = fitted.frozen
    scores = frozen.score(table)
    for score, reasons in zip(scores, frozen.reasons(table), strict=True):
        assert sum(r.lost for r in reasons) == frozen.max_score - score
        assert [r.lost for r in reasons] == sorted((r.lost for r in reasons), reverse=True)
        assert all(r.lost > 0 for r in reasons)


def test_json_round_trip_scores_the_same(table, fitted) -> None:
    again = FrozenScorecard.from_json(fitted.frozen.to_json())
    assert again == fitted.frozen and again.sha256() == fitted.frozen.sha256()
    assert (again.score(table) == fitted.frozen.score(table)).all()
    with pytest.raises(ValueError, match="not a pdo-scorecard"):
        FrozenScorecard.from_dict({"format": "other"})


def test_same_seed_same_scorecard(table, fitted) -> None:
    assert fit(table, "bad", seed=0).frozen.sha256() == fitted.frozen.sha256()


def test_informative_columns_carry_the_information(fitted) -> None:
    iv = {v.name: v.iv for v in fitted.frozen.variables}
    assert iv["income"] > 0.1 and iv["region"] > 0.02 and iv["noise"] < 0.02


def test_cross_validation_is_reproducible_and_sensible(table) -> None:
    a = cross_validate(table, "bad", folds=3, seed=4)
    b = cross_validate(table, "bad", folds=3, seed=4)
    assert a == b and len(a["per_fold"]) == 3
    assert 0.6 < a["auc_mean"] < 0.9 and 0.1 < a["ks_mean"] < 0.7


@pytest.mark.parametrize(
    ("target", "message"),
    [("nope", "no target column"), ("income", "must hold both 0 and 1"), ("noise", "must hold")],
)
def test_bad_targets_are_refused(table, target: str, message: str) -> None:
    with pytest.raises(ScorecardDataError, match=message):
        fit(table, target)


def test_too_few_bads_are_refused_before_fitting(table: pl.DataFrame) -> None:
    one_bad = pl.concat(
        [table.filter(pl.col("bad") == 1).head(1), table.filter(pl.col("bad") == 0)]
    )
    with pytest.raises(ScorecardDataError, match=r"1 bads \(1\) .* needs at least 3 of each"):
        fit(one_bad, "bad")


def test_a_card_that_scores_everyone_the_same_is_refused() -> None:
    """A feature with the same bad rate in every value leaves one bin: every row one score."""
    y = np.tile(np.r_[np.ones(5, dtype=int), np.zeros(45, dtype=int)], 2)
    flat = pl.DataFrame({"x": np.repeat([0.0, 1.0], 50), "bad": y})
    with pytest.raises(ScorecardDataError, match="gives every row the same score"):
        fit(flat, "bad")


def test_metrics_against_their_definitions() -> None:
    y = np.array([1, 1, 0, 0, 1, 0])
    score = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])  # higher is safer
    # pairs (bad, good) where the bad scores lower: 3 bads × 3 goods, 1 inverted (5 vs 3, 4)
    assert auc(y, score) == pytest.approx(7 / 9)
    assert ks(y, score) == pytest.approx(2 / 3)
    rng = np.random.default_rng(0)
    ref = rng.normal(0, 1, 5000)
    assert psi(ref, ref) == pytest.approx(0.0, abs=1e-9)
    assert psi(ref, rng.normal(0, 1, 5000)) < 0.02
    assert psi(ref, rng.normal(1, 1, 5000)) > 0.25
    assert csi(np.array([0, 1, 1, 2]), np.array([0, 1, 1, 2]), 3) == pytest.approx(0.0, abs=1e-9)


def _ks_at_cutoffs(y: np.ndarray, score: np.ndarray) -> float:
    """KS by its definition: the bad/good shares at or below each possible cut-off score."""
    gaps = [(score[y == 1] <= c).mean() - (score[y == 0] <= c).mean() for c in np.unique(score)]
    return float(np.max(np.abs(gaps)))


def test_ks_treats_tied_scores_as_one_cutoff() -> None:
    """Scorecard scores are sums of integer points, so ties are the rule, not the exception."""
    constant = np.full(4, 500.0)
    assert ks(np.array([1, 1, 0, 0]), constant) == 0.0  # no cut-off separates anyone
    assert ks(np.array([0, 1, 0, 1]), constant) == 0.0  # the same loans listed in another order
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 400)
    score = rng.integers(560, 600, 400).astype(float) + 5 * y  # many ties, some separation
    shuffled = rng.permutation(400)
    assert ks(y, score) == pytest.approx(_ks_at_cutoffs(y, score))
    assert ks(y[shuffled], score[shuffled]) == ks(y, score)


def test_scaling_convention_is_good_to_bad_odds() -> None:
    s = Scaling(base_score=600, base_odds=50, pdo=20)
    assert s.points_at_pd(1 / 51) == pytest.approx(600)  # odds 50:1 at the base score
    assert s.points_at_pd(1 / 101) == pytest.approx(620, abs=0.3)  # doubled odds: +20
    assert s.pd_at(s.points_at_pd(0.07)) == pytest.approx(0.07)
    floors = [f for f, _ in s.grade_floors()]
    assert floors == sorted(floors, reverse=True)
    assert s.grade(floors[0]) == "A" and s.grade(floors[-1] - 1) == "E"
    assert math.isclose(s.pd_at(600), 1 / 51)


def test_cli_fits_any_labelled_table(tmp_path: Path, table: pl.DataFrame) -> None:
    data = tmp_path / "t.parquet"
    table.write_parquet(data)
    out = tmp_path / "card.json"
    args = ["scorecard", "fit", "--data", str(data), "--target", "bad", "--cv", "2", "--json"]
    first = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert report["cv"]["folds"] == 2 and 0.5 < report["cv"]["auc_mean"] <= 1
    assert set(report["columns"]["ignored"]) == {"id", "opened"}
    assert FrozenScorecard.from_json(out.read_text()).sha256() == report["scorecard_sha256"]
    again = json.loads(CliRunner().invoke(app, args).stdout)
    assert again["cv"] == report["cv"] and again["scorecard_sha256"] == report["scorecard_sha256"]
    wider = json.loads(CliRunner().invoke(app, [*args, "--pdo", "40", "--cv", "1"]).stdout)
    assert wider["scaling"]["pdo"] == 40
    low, high = report["score_range"], wider["score_range"]
    assert high[1] - high[0] == pytest.approx(
        2 * (low[1] - low[0]), abs=len(report["information_value"])
    )


def test_cli_errors_quote_no_cells(tmp_path: Path) -> None:
    """A wrong --target or an unreadable file is one line that names no value: a table given
    to the trainer may hold personal numbers."""
    ids = [f"1101051984051400{i:02d}" for i in range(40)]
    mobiles = [f"139100000{i:02d}" for i in range(40)]
    rows = [f"{p},{m},{100 + i},{i % 2}" for i, (p, m) in enumerate(zip(ids, mobiles, strict=True))]
    good, broken = tmp_path / "t.csv", tmp_path / "broken.csv"
    good.write_text("person_id,mobile,capital,bad\n" + "\n".join(rows) + "\n")
    broken.write_text("person_id,mobile,capital,bad\n" + '"' + "\n".join(rows) + "\n")
    for data, target, says in [
        (good, "mobile", "found 40 distinct values"),
        (broken, "bad", "broken.csv cannot be read as CSV"),
    ]:
        result = CliRunner().invoke(
            app, ["scorecard", "fit", "--data", str(data), "--target", target]
        )
        assert result.exit_code == 1 and says in result.output, result.output
        assert "Traceback" not in result.output
        assert not any(value in result.output for value in ids + mobiles), result.output


def test_cli_reads_csv_and_explains_errors(tmp_path: Path, table: pl.DataFrame) -> None:
    data = tmp_path / "t.csv"
    table.write_csv(data)
    ok = CliRunner().invoke(
        app, ["scorecard", "fit", "--data", str(data), "--target", "bad", "--cv", "1"]
    )
    assert ok.exit_code == 0 and "development fit: AUC" in ok.stdout
    for args, message in [
        (["--data", str(tmp_path / "none.csv"), "--target", "bad"], "no such file"),
        (["--data", str(data), "--target", "region"], "must hold both 0 and 1"),
        (["--data", str(tmp_path), "--target", "bad"], "expected a .csv or .parquet"),
    ]:
        result = CliRunner().invoke(app, ["scorecard", "fit", *args])
        assert result.exit_code == 1 and message in result.output, result.output
