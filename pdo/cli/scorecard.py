"""`pdo scorecard fit`: the product's trainer on any labelled CSV or Parquet table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from pdo.cli.root import console, emit_json, err_console, fail
from pdo.scorecard.scaling import Scaling


def read_table(path: Path) -> Any:
    """CSV (UTF-8, types inferred over the whole file) or Parquet, by suffix."""
    import polars as pl

    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".csv", ".txt"):
        raise ValueError(f"{path.name}: expected a .csv or .parquet file")
    try:
        if suffix == ".parquet":
            return pl.read_parquet(path)
        return pl.read_csv(path, infer_schema_length=None, try_parse_dates=True)
    except pl.exceptions.PolarsError as exc:  # its text quotes the rows it could not read
        raise ValueError(
            f"{path.name} cannot be read as {suffix[1:].upper()} ({type(exc).__name__}): "
            "check its quoting, delimiters and encoding (UTF-8)"
        ) from None


def fit_report(
    path: Path,
    target: str,
    folds: int,
    seed: int,
    out: Path | None = None,
    scaling: Scaling | None = None,
) -> dict[str, Any]:
    """Cross-validated AUC and KS, the full-sample fit, and the frozen scorecard's hash."""
    from pdo.scorecard.fit import cross_validate, fit

    frame = read_table(path)
    with err_console.status(f"fitting on {frame.height:,} rows ({folds}-fold CV)…"):
        cv = (
            cross_validate(frame, target, folds=folds, seed=seed, scaling=scaling)
            if folds > 1
            else None
        )
        fitted = fit(frame, target, seed=seed, scaling=scaling)
    if out is not None:
        out.write_text(fitted.frozen.to_json(), encoding="utf-8")
    return {
        "data": str(path),
        "rows": frame.height,
        "target": target,
        "columns": {
            "numerical": list(fitted.columns.numerical),
            "categorical": list(fitted.columns.categorical),
            "ignored": fitted.columns.ignored,
        },
        "cv": cv,
        "development": fitted.development,
        "scaling": fitted.frozen.scaling.to_dict(),
        "score_range": [fitted.frozen.min_score, fitted.frozen.max_score],
        "information_value": {v.name: v.iv for v in fitted.frozen.variables},
        "scorecard_sha256": fitted.frozen.sha256(),
        "scorecard_file": str(out) if out else None,
    }


def _print(report: dict[str, Any]) -> None:
    cv = report["cv"]
    data, rows, target = escape(str(report["data"])), report["rows"], report["target"]
    console.print(f"[bold]{data}[/] — {rows:,} rows, target {target}", markup=True)
    if cv:
        console.print(
            f"{cv['folds']}-fold CV (seed {cv['seed']}): AUC {cv['auc_mean']} ± {cv['auc_std']}, "
            f"KS {cv['ks_mean']} ± {cv['ks_std']}"
        )
    dev = report["development"]
    console.print(f"development fit: AUC {dev['auc']}, KS {dev['ks']}, Gini {dev['gini']}")
    table = Table("variable", "IV")
    for name, iv in sorted(report["information_value"].items(), key=lambda kv: -kv[1]):
        table.add_row(name, f"{iv:.4f}")
    console.print(table)
    for name, why in report["columns"]["ignored"].items():
        console.print(f"left out: {name} ({why})")


def register(app: typer.Typer) -> None:
    """Attach the `scorecard` group."""
    group = typer.Typer(no_args_is_help=True, help="评分卡 / scorecards")
    app.add_typer(group, name="scorecard")

    @group.command("fit")
    def fit_command(
        data: Path = typer.Option(..., "--data", help="a labelled .csv or .parquet table"),
        target: str = typer.Option(..., "--target", help="the 0/1 column to predict (1 = bad)"),
        cv: int = typer.Option(5, "--cv", help="cross-validation folds (1 = none)"),
        seed: int = typer.Option(0, "--seed", help="fold shuffling and estimator seed"),
        out: Path | None = typer.Option(None, "--out", help="write the frozen scorecard JSON"),
        base_score: int = typer.Option(600, "--base-score", help="points at the base odds"),
        base_odds: float = typer.Option(50.0, "--base-odds", help="good:bad odds at base score"),
        pdo: float = typer.Option(20.0, "--pdo", help="points to double the odds"),
        as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
    ) -> None:
        """Fit a scorecard (optbinning + logistic regression) and report cross-validated AUC/KS."""
        from pdo.scorecard.fit import ScorecardDataError

        try:
            if base_odds <= 0 or pdo <= 0:
                raise ValueError("--base-odds and --pdo must be positive")
            scaling = Scaling(base_score=base_score, base_odds=base_odds, pdo=pdo)
            report = fit_report(data, target, cv, seed, out, scaling)
        except (OSError, ValueError, ScorecardDataError) as exc:
            raise fail(str(exc)) from exc
        if as_json:
            emit_json(report)
        else:
            _print(report)
