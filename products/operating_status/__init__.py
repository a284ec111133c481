"""经营状态核验 — enterprise operating-status verification: is the counterparty still operating?"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import polars as pl

from pdo.revenue import RevenueRule
from products.operating_status.rule import COLUMNS, STATUS_ZH, verify
from products.spec import Inputs, ProductBuild, ProductSpec, eager, served_fields


def build(inputs: Inputs, as_of: dt.date) -> ProductBuild:
    """Verify every registered enterprise as of the date; no model, so the card is just counts."""
    scores = verify(
        eager(inputs, "enterprise_registry"), eager(inputs, "abnormal_operations"), as_of
    )
    counts = dict(scores["status"].value_counts().iter_rows())
    metrics = {
        "as_of": as_of.isoformat(),
        "n_verified": scores.height,
        "status_counts": {status: int(counts.get(status, 0)) for status in STATUS_ZH},
        "status_labels_zh": dict(STATUS_ZH),
    }
    return ProductBuild(scores=scores, metrics=metrics)


def rescore(
    inputs: Mapping[str, pl.DataFrame], as_of: dt.date, model: dict[str, Any], uscc: str
) -> dict[str, Any] | None:
    """One enterprise verified again (after an upheld objection); no model to read. A register
    status cleared by the objection cannot be verified, and a bank is never told a guess: None."""
    registry = inputs["enterprise_registry"].filter(pl.col("uscc") == uscc)
    if registry.is_empty() or registry["status"].is_null().any():
        return None
    listings = inputs["abnormal_operations"].filter(pl.col("uscc") == uscc)
    return served_fields(COLUMNS, verify(registry, listings, as_of).row(0, named=True))


SPEC = ProductSpec(
    name="operating_status",
    title_zh="经营状态核验",
    title_en="Enterprise operating-status verification",
    inputs=("enterprise_registry", "abnormal_operations"),
    purposes=("贷前审查", "贷后管理", "供应商准入"),
    price_fen=50,
    revenue=RevenueRule(inputs_pool_bp=3000),  # shared by the departments feeding its tables
    build=build,
    outputs=COLUMNS,
    drift_column=None,
    rescore=rescore,
)

__all__ = ["SPEC", "build", "rescore"]
