"""Validate: run the table's Great Expectations suite from `expectations/` on a dataset version."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import polars as pl

EXPECTATIONS_DIR = Path(__file__).resolve().parents[1] / "expectations"


@dataclass(frozen=True)
class SuiteOutcome:
    """A suite's verdict: blocking failures decide `success`; warnings are only recorded."""

    suite: str
    success: bool
    evaluated: int
    successful: int
    failures: list[dict[str, Any]]
    warnings: list[dict[str, Any]]


def suite_path(table: str) -> Path:
    return EXPECTATIONS_DIR / f"{table}.json"


def load_suite_json(table: str) -> dict[str, Any]:
    """The reviewed-as-code suite for a table; a missing suite is an error, not a pass."""
    path = suite_path(table)
    if not path.exists():
        raise FileNotFoundError(f"no expectation suite for table {table!r} at {path}")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


@lru_cache(maxsize=1)
def _context() -> Any:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx  # imported lazily: 5–6 s
    from great_expectations.data_context.types.base import ProgressBarsConfig

    for name in ("great_expectations", "great_expectations.data_context.types.base"):
        logging.getLogger(name).setLevel(logging.WARNING)  # base.py forces INFO on import
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    return ctx


def run_suite(df: pl.DataFrame, table: str) -> SuiteOutcome:
    """Validate a frame against the table's suite with the real GX engine (pandas backend)."""
    import great_expectations as gx

    spec = load_suite_json(table)
    ctx = _context()
    suite = gx.ExpectationSuite(name=spec["name"], expectations=spec["expectations"])
    source_name = f"pdo_{table}"
    try:
        source = ctx.data_sources.get(source_name)
    except Exception:
        source = ctx.data_sources.add_pandas(source_name)
    try:
        asset = source.get_asset(table)
    except Exception:
        asset = source.add_dataframe_asset(table)
    try:
        batch_def = asset.get_batch_definition("whole")
    except Exception:
        batch_def = asset.add_batch_definition_whole_dataframe("whole")
    batch = batch_def.get_batch(batch_parameters={"dataframe": df.to_pandas()})
    result = batch.validate(suite, result_format="SUMMARY").to_json_dict()
    failures: list[dict[str, Any]] = []
    warnings: list[dict[str, Any]] = []
    for r in result["results"]:
        if r["success"]:
            continue
        config = r["expectation_config"]
        item = {
            "expectation": config["type"],
            "column": config["kwargs"].get("column"),
            "unexpected_count": r["result"].get("unexpected_count"),
            "unexpected_percent": r["result"].get("unexpected_percent"),
        }
        severity = (config.get("meta") or {}).get("severity", "blocking")
        (warnings if severity == "warning" else failures).append(item)
    stats = result["statistics"]
    return SuiteOutcome(
        suite=spec["name"],
        success=not failures,
        evaluated=int(stats["evaluated_expectations"]),
        successful=int(stats["successful_expectations"]),
        failures=failures,
        warnings=warnings,
    )
