"""经营状态核验 — enterprise operating-status verification: is the counterparty still operating?"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import polars as pl

from products.operating_status.rule import COLUMNS, STATUS_ZH, verify
from products.spec import ProductBuild, ProductSpec


def build(inputs: Mapping[str, pl.DataFrame], as_of: dt.date) -> ProductBuild:
    """Verify every registered enterprise as of the date; no model, so the card is just counts."""
    scores = verify(inputs["enterprise_registry"], inputs["abnormal_operations"], as_of)
    counts = dict(scores["status"].value_counts().iter_rows())
    metrics = {
        "as_of": as_of.isoformat(),
        "n_verified": scores.height,
        "status_counts": {status: int(counts.get(status, 0)) for status in STATUS_ZH},
        "status_labels_zh": dict(STATUS_ZH),
    }
    return ProductBuild(scores=scores, metrics=metrics)


SPEC = ProductSpec(
    name="operating_status",
    title_zh="经营状态核验",
    title_en="Enterprise operating-status verification",
    inputs=("enterprise_registry", "abnormal_operations"),
    purposes=("贷前审查", "贷后管理", "供应商准入"),
    price_fen=50,
    revenue_shares_bp={"market": 3000},
    build=build,
    outputs=COLUMNS,
    drift_column=None,
)

__all__ = ["SPEC", "build"]
