"""After approval: build the product from reviewed datasets and deliver it to the serving store."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
from prefect import flow, task
from sqlalchemy import insert
from sqlmodel import col, select

from flows.context import open_workspace
from flows.gate import mirror_decision
from flows.validate import validate_product
from pdo import audit
from pdo.lake import Manifest
from pdo.ledger.db import session_scope
from pdo.ledger.models import PipelineRun, Product, ProductVersion, ServedScore
from pdo.signoff import require_approval
from products.registry import product
from products.spec import ProductSpec


def scoring_date(inputs: dict[str, pl.DataFrame]) -> dt.date:
    """The as-of date of the data: the last month any monthly table reports (month end)."""
    months = [
        inputs[t]["month"].max()
        for t in ("social_insurance", "utility_payments")
        if t in inputs and inputs[t].height
    ]
    latest = max(str(m) for m in months)
    y, m = int(latest[:4]), int(latest[5:7])
    first_next = dt.date(y + (m // 12), m % 12 + 1, 1)
    return first_next - dt.timedelta(days=1)


@task(name="package")
def package_task(
    home: str, database_url: str | None, run_id: str, product_name: str
) -> dict[str, Any]:
    """Build the product from the approved desensitized datasets into the product zone."""
    ws = open_workspace(home, database_url)
    spec: ProductSpec = product(product_name)
    with session_scope(ws.engine) as s:
        require_approval(s, ws.lake, run_id)
        run = s.get(PipelineRun, run_id)
        assert run is not None
        datasets = {
            d["table"]: d for d in run.review_package["datasets"] if d["zone"] == "desensitized"
        }
    missing = [t for t in spec.inputs if t not in datasets]
    if missing:
        raise ValueError(f"{product_name} needs tables the run did not cover: {missing}")
    inputs = {
        t: ws.lake.read(ws.lake.manifest("desensitized", t, datasets[t]["id"])) for t in spec.inputs
    }
    as_of = scoring_date(inputs)
    built = spec.build(inputs, as_of)
    checked = validate_product(built.scores, product_name)
    out = ws.lake.write(
        built.scores,
        table=product_name,
        zone="product",
        stage="package",
        parents=[datasets[t]["id"] for t in spec.inputs],
    )
    return {
        "manifest": out,
        "metrics": built.metrics,
        "as_of": as_of.isoformat(),
        "validation": checked,
    }


@task(name="deliver")
def deliver_task(
    home: str,
    database_url: str | None,
    run_id: str,
    product_name: str,
    built: dict[str, Any],
    actor: str,
) -> str:
    """Publish a new product version and its scores in one transaction (or nothing at all)."""
    ws = open_workspace(home, database_url)
    spec = product(product_name)
    manifest: Manifest = built["manifest"]
    scores = ws.lake.read(manifest)
    with session_scope(ws.engine) as s:
        approval = require_approval(s, ws.lake, run_id)  # re-checked at the moment of publishing
        existing = s.exec(
            select(ProductVersion).where(
                ProductVersion.run_id == run_id, ProductVersion.product_name == product_name
            )
        ).first()
        if existing is not None:
            return existing.id  # idempotent re-publish
        row = s.get(Product, product_name)
        if row is None:
            row = Product(
                name=spec.name,
                title_zh=spec.title_zh,
                title_en=spec.title_en,
                purposes=list(spec.purposes),
                price_fen=spec.price_fen,
                revenue_shares_bp=dict(spec.revenue_shares_bp),
            )
        else:
            row.purposes, row.price_fen = list(spec.purposes), spec.price_fen
            row.revenue_shares_bp = dict(spec.revenue_shares_bp)
        s.add(row)
        s.flush()
        previous = s.exec(
            select(ProductVersion)
            .where(ProductVersion.product_name == product_name)
            .order_by(col(ProductVersion.version).desc())
        ).all()
        for old in previous:
            if old.status == "published":
                old.status = "superseded"
                s.add(old)
        number = (previous[0].version + 1) if previous else 1
        run = s.get(PipelineRun, run_id)
        assert run is not None and approval.id is not None
        version = ProductVersion(
            id=f"{product_name}@{number}",
            product_name=product_name,
            version=number,
            run_id=run_id,
            signoff_id=approval.id,
            input_hashes=[d["id"] for d in run.review_package["datasets"]],
            output_hash=manifest.id,
            metrics=built["metrics"],
            as_of=dt.date.fromisoformat(built["as_of"]),
        )
        s.add(version)
        s.flush()
        s.execute(
            insert(ServedScore),
            [
                {"product_version_id": version.id, "uscc": u, "score": sc, "grade": g}
                for u, sc, g in scores.select("uscc", "score", "grade").iter_rows()
            ],
        )
        run.status = "published"
        s.add(run)
        audit.record(
            s,
            actor,
            "product.publish",
            version.id,
            run_id=run_id,
            output=manifest.id,
            scores=scores.height,
            signoff=approval.id,
        )
        return version.id


@flow(name="pdo-publish", log_prints=True)
def publish_flow(
    run_id: str,
    home: str,
    database_url: str | None = None,
    actor: str = "operator",
    product_name: str = "credit_risk",
) -> str:
    """Publish one approved run's product; refused without a valid approval."""
    ws = open_workspace(home, database_url)
    with session_scope(ws.engine) as s:
        require_approval(s, ws.lake, run_id)
    mirror_decision(home, database_url, run_id)  # approved in the console: close the paused run
    built = package_task(home, database_url, run_id, product_name)
    version_id = deliver_task(home, database_url, run_id, product_name, built, actor)
    print(f"published {version_id}")
    return version_id
