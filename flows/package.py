"""Before the gate: build each authorized product from the run's desensitized datasets.

The built product (scores in the product zone, its model card and frozen model) goes into the
review package, so reviewers sign the exact output that publishing later serves. Nothing here is
served: delivery happens only after approval (flows/publish.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl
from sqlmodel import Session, select

from flows.stages import record_dataset
from flows.validate import validate_product
from pdo import audit
from pdo.delivery.objections import carry_upheld
from pdo.delivery.periods import business_month
from pdo.lake import Manifest
from pdo.ledger.db import read_scope, session_scope
from pdo.ledger.models import ProductVersion, ServedScore, StageRun
from pdo.ledger.types import utcnow
from pdo.scorecard.metrics import PSI_DRIFT, psi
from pdo.workspace import Workspace
from products.registry import product
from products.spec import MONTHLY_TABLES, ProductSpec


class ProductOutputError(ValueError):
    """A product's build returned other columns than it declares."""


class NoScoringDateError(ValueError):
    """The run holds no monthly table to date its products by."""


class FutureMonthError(ValueError):
    """A monthly table reports a month after the run's: it would re-date every product."""


def scoring_date(
    inputs: Mapping[str, pl.DataFrame | pl.LazyFrame], run_at: dt.datetime | None = None
) -> dt.date:
    """The as-of date of the data: the end of the last month any monthly table reports, which
    may not be after the month of run_at (Beijing time): one mistyped month must not re-date
    every product."""
    per_table = {
        t: inputs[t].lazy().select(pl.col("month").max()).collect().item()
        for t in MONTHLY_TABLES
        if t in inputs
    }
    months = {t: str(month) for t, month in per_table.items() if month is not None}
    if not months:
        raise NoScoringDateError(
            "no social-insurance or utility months in the run: products cannot be dated"
        )
    if run_at is not None:
        refuse_future_months(months, business_month(run_at))
    latest = max(months.values())
    y, m = int(latest[:4]), int(latest[5:7])
    first_next = dt.date(y + (m // 12), m % 12 + 1, 1)
    return first_next - dt.timedelta(days=1)


def refuse_future_months(latest_per_table: Mapping[str, str], run_month: str) -> None:
    """A month later than the run's is a typo or a clock error, never data to date by."""
    for name, month in sorted(latest_per_table.items()):
        if month > run_month:
            raise FutureMonthError(
                f"{name} reports month {month}, after this run's month {run_month}: "
                "products are not dated by it; correct or quarantine the rows"
            )


def check_outputs(spec: ProductSpec, scores: pl.DataFrame) -> None:
    """uscc plus exactly the declared outputs, one row per enterprise."""
    expected = ["uscc", *spec.outputs]
    if sorted(scores.columns) != sorted(expected):
        raise ProductOutputError(
            f"{spec.name}: built columns {scores.columns}, declared {expected}"
        )
    if scores["uscc"].n_unique() != scores.height:
        raise ProductOutputError(f"{spec.name}: more than one row for an enterprise")


def live_version(session: Session, name: str) -> ProductVersion | None:
    return session.exec(
        select(ProductVersion).where(
            ProductVersion.product_name == name, ProductVersion.status == "published"
        )
    ).first()


def drift_against_live(session: Session, spec: ProductSpec, scores: pl.DataFrame) -> dict[str, Any]:
    """PSI of the new build's drift column against what the live version serves."""
    live = live_version(session, spec.name)
    if spec.drift_column is None or live is None:
        return {"against": None if live is None else live.id, "psi": None, "flagged": False}
    served = session.exec(
        select(ServedScore.score).where(ServedScore.product_version_id == live.id)
    ).all()
    reference = np.array([s for s in served if s is not None], dtype=float)
    value = round(psi(reference, scores[spec.drift_column].drop_nulls().to_numpy()), 4)
    return {"against": live.id, "psi": value, "threshold": PSI_DRIFT, "flagged": value > PSI_DRIFT}


def model_sha256(model: Mapping[str, Any] | None) -> str | None:
    if model is None:
        return None
    canonical = json.dumps(model, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def plain_json(value: Any) -> Any:
    """The card as plain JSON types (numpy scalars become numbers), as the ledger stores it."""
    return json.loads(json.dumps(value, ensure_ascii=False, default=_number))


def _number(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON: {type(value).__name__}")


def _input(ws: Workspace, dataset: Manifest) -> pl.DataFrame | pl.LazyFrame:
    """A product input: a monthly table as a scan of the lake, any other read whole."""
    return ws.lake.scan(dataset) if dataset.table in MONTHLY_TABLES else ws.lake.read(dataset)


def build_candidate(
    ws: Workspace, run_id: str, product_name: str, datasets: Mapping[str, Manifest]
) -> dict[str, Any]:
    """Build, check and store one product version candidate; returns what the package shows."""
    started = utcnow()
    spec = product(product_name)
    missing = [t for t in spec.inputs if t not in datasets]
    if missing:
        raise ValueError(f"{product_name} needs tables the run did not cover: {missing}")
    inputs = {t: _input(ws, datasets[t]) for t in spec.inputs}
    with read_scope(ws.engine) as s:  # upheld objections' records stay out of later versions
        inputs, carried = carry_upheld(s, spec, inputs)
    monthly = {t: ws.lake.scan(datasets[t]) for t in MONTHLY_TABLES if t in datasets}
    as_of = scoring_date(monthly, started)  # the run's date, the same for every product
    built = spec.build(inputs, as_of)
    check_outputs(spec, built.scores)
    checked = validate_product(built.scores, product_name)
    parents = [datasets[t].id for t in spec.inputs]
    out = ws.lake.write(
        built.scores,
        table=product_name,
        zone="product",
        stage="package",
        parents=parents,
        policy_hash=model_sha256(built.model) or "",
    )
    with session_scope(ws.engine) as s:
        drift = drift_against_live(s, spec, built.scores)
        record_dataset(s, out, ws.lake.dir_for(out))
        s.add(
            StageRun(
                run_id=run_id,
                stage="package",
                table_name=product_name,
                status="succeeded",
                rows_in=sum(datasets[t].row_count for t in spec.inputs),
                rows_out=out.row_count,
                input_hashes=parents,
                output_hashes=[out.id],
                details={"as_of": as_of.isoformat(), "drift": drift, "corrections": carried},
                started_at=started,
                finished_at=utcnow(),
            )
        )
        audit.record(s, "pipeline", "stage.package", run_id, product=product_name, dataset=out.id)
    return plain_json(
        {
            "product": product_name,
            "dataset": out.id,
            "rows": out.row_count,
            "as_of": as_of.isoformat(),
            "model_card": built.metrics,
            "model": built.model,
            "model_sha256": model_sha256(built.model),
            "validation": checked,
            "drift": drift,
            "corrections_carried": carried,
        }
    )
