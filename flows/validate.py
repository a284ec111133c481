"""Validate: reviewed GX suites on the raw zone (quarantine) and on the desensitized zone."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from flows.ingest import ROW, raw_values
from pdo.sources.contract import SourceTable
from pdo.validation.runner import RunInputs, SuiteRun, run_suite

EXPECTATIONS_DIR = Path(__file__).resolve().parents[1] / "expectations"
ZONES = ("raw", "desensitized")


def suite_path(table: str, zone: str) -> Path:
    return EXPECTATIONS_DIR / f"{table}.{zone}.json"


def load_suite(table: str, zone: str) -> dict[str, Any]:
    """The reviewed-as-code suite for a table and zone; a missing suite is an error, not a pass."""
    path = suite_path(table, zone)
    if not path.exists():
        raise FileNotFoundError(f"no {zone} expectation suite for table {table!r} at {path}")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def applicable(spec: dict[str, Any], inputs: RunInputs) -> tuple[dict[str, Any], list[str]]:
    """The suite without checks this run cannot feed (a reference table it does not hold)."""
    kept, skipped = [], []
    for config in spec["expectations"]:
        reference = (config.get("meta") or {}).get("reference")
        if reference is not None and reference not in inputs.references:
            skipped.append(
                f"{config['type']}({config['kwargs'].get('column')}): {reference} not in run"
            )
        else:
            kept.append(config)
    return {**spec, "expectations": kept}, skipped


@dataclass(frozen=True)
class RawValidation:
    """Rows that passed, rows quarantined (with reasons and source line) and the verdict."""

    passed: pl.DataFrame
    quarantine: pl.DataFrame
    run: SuiteRun
    skipped: list[str]

    @property
    def reconciles(self) -> bool:
        return self.run.rows == self.passed.height + self.quarantine.height


def validate_raw(frame: pl.DataFrame, table: SourceTable, inputs: RunInputs) -> RawValidation:
    """Run the raw suite; rows failing a row-level expectation leave with it as the reason."""
    spec, skipped = applicable(load_suite(table.name, "raw"), inputs)
    run = run_suite(spec, frame.drop(ROW), inputs, row_ids=frame[ROW])
    reasons = run.quarantined
    failing = pl.Series(ROW, sorted(reasons), dtype=frame[ROW].dtype)
    bad = frame[ROW].is_in(failing)
    failed = frame.filter(bad)
    quarantine = failed.select(
        pl.col(ROW),
        pl.col(ROW)
        .replace_strict(
            failing, ["; ".join(reasons[r]) for r in failing.to_list()], return_dtype=pl.String
        )
        .cast(pl.String)  # with nothing failing the mapping is empty and keeps the row-id type
        .alias("reason"),
        raw_values(failed, table.column_names),
    )
    return RawValidation(frame.filter(~bad), quarantine, run, skipped)


def validate_desensitized(frame: pl.DataFrame, table: SourceTable) -> SuiteRun:
    """The desensitized suite: format and leftover checks that block release, never quarantine."""
    return run_suite(load_suite(table.name, "desensitized"), frame)


class ProductValidationError(RuntimeError):
    """A product's output failed a blocking check; no version is written."""


def validate_product(frame: pl.DataFrame, product: str) -> dict[str, Any]:
    """The product output suite; raises before anything is written when it blocks."""
    run = run_suite(load_suite(product, "product"), frame)
    if not run.success:
        failed = ", ".join(o.reason for o in run.failures)
        raise ProductValidationError(f"{product}: output failed {failed}")
    return summary(run)


def summary(run: SuiteRun, skipped: list[str] | None = None) -> dict[str, Any]:
    """What the ledger and the review package keep of a suite run: counts, never values."""
    reasons = Counter(r for rs in run.quarantined.values() for r in rs)
    return {
        "suite": run.suite,
        "success": run.success,
        "rows": run.rows,
        "evaluated": len(run.outcomes),
        "successful": sum(o.success for o in run.outcomes),
        "failures": [o.to_dict() for o in run.failures],
        "warnings": [o.to_dict() for o in run.warnings],
        "quarantined": len(run.quarantined),
        "quarantine_reasons": dict(sorted(reasons.items())),
        "quality": run.quality(),
        "skipped": skipped or [],
    }
