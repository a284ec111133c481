"""After approval: deliver the reviewed product builds to the serving store, each a new version."""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow, task
from pydantic import SecretStr
from sqlalchemy import insert
from sqlmodel import Session, col, select

from flows.context import open_workspace, revealed
from flows.gate import mirror_decision
from pdo import audit
from pdo.delivery import generation
from pdo.delivery.plans import ensure_default_plan
from pdo.delivery.version_events import alerts_for_new_version
from pdo.ledger.db import session_scope
from pdo.ledger.models import Authorization, PipelineRun, Product, ProductVersion, ServedScore
from pdo.revenue import breaches_of_terms
from pdo.signoff import require_approval
from pdo.sources.tables import table
from products.registry import product

COLUMNS = ("score", "grade")  # outputs also kept as columns of the serving store


def served_rows(
    version_id: str, outputs: tuple[str, ...], rows: list[dict[str, Any]]
) -> list[dict]:
    """One serving-store row per enterprise: score and grade if the product has them, the other
    declared outputs as details."""
    return [
        {
            "product_version_id": version_id,
            "uscc": row["uscc"],
            "score": row.get("score"),
            "grade": row.get("grade"),
            "details": {o: row[o] for o in outputs if o not in COLUMNS},
        }
        for row in rows
    ]


def built_from(review_package: dict[str, Any]) -> dict[str, str]:
    """The desensitized dataset of each table, the products' inputs: the package also lists each
    table's k-anonymous release under the same name, which holds no entity key to re-score by."""
    return {d["table"]: d["id"] for d in review_package["datasets"] if d["zone"] == "desensitized"}


def publication_refusals(session: Session, run: PipelineRun, card: dict[str, Any]) -> list[str]:
    """Why a reviewed build may not be published now (empty: it may): its revenue rule breaks
    the grant's terms, or another version went live after the reviewers compared with the one
    live then (publishing it would replace a version they never saw)."""
    name = card["product"]
    spec = product(name)
    weights = card.get("revenue_weights") or spec.revenue_weights()
    grant = session.get(Authorization, run.authorization_id)
    assert grant is not None
    problems = [
        f"{name}: the revenue rule breaks authorization {grant.reference}: {breach}"
        for breach in breaches_of_terms(
            weights,
            departments={table(t).department for t in spec.inputs if t in grant.tables},
            min_department_share_bp=grant.min_department_share_bp,
            revenue_parties=grant.revenue_parties,
        )
    ]
    live = session.exec(
        select(ProductVersion.id).where(
            ProductVersion.product_name == name, ProductVersion.status == "published"
        )
    ).first()
    reviewed = (card.get("live_version") or {}).get("id")
    if live != reviewed:
        problems.append(
            f"{name}: {live} went live after this run was reviewed against "
            f"{reviewed or 'no live version'}; process the delivery again to review it anew"
        )
    return problems


@task(name="deliver")
def deliver_task(
    home: str, database_url: str | None, run_id: str, candidate: dict[str, Any], actor: str
) -> str:
    """Publish one reviewed build as a new version in one transaction (or nothing at all)."""
    ws = open_workspace(home, database_url)
    name = candidate["product"]
    spec = product(name)
    with session_scope(ws.engine) as s:
        approval = require_approval(s, ws.lake, run_id)  # re-checked at the moment of publishing
        run = s.get(PipelineRun, run_id)
        assert run is not None and approval.id is not None
        cards = {p["product"]: p for p in run.review_package.get("products", [])}
        if cards.get(name, {}).get("candidate") != candidate:
            raise ValueError(f"{name}: not the build the reviewers signed for")
        rule = cards[name].get("revenue_rule") or spec.revenue.describe()
        weights = cards[name].get("revenue_weights") or spec.revenue_weights()
        existing = s.exec(
            select(ProductVersion).where(
                ProductVersion.run_id == run_id, ProductVersion.product_name == name
            )
        ).first()
        if existing is not None:
            return existing.id  # idempotent re-publish
        problems = publication_refusals(s, run, cards[name])
        if problems:
            raise ValueError("; ".join(problems))
        scores = ws.lake.read(ws.lake.manifest("product", name, candidate["dataset"]))
        row = s.get(Product, name) or Product(
            name=spec.name, title_zh=spec.title_zh, title_en=spec.title_en, price_fen=spec.price_fen
        )
        row.purposes, row.price_fen = list(spec.purposes), spec.price_fen
        s.add(row)
        s.flush()
        previous = s.exec(
            select(ProductVersion)
            .where(ProductVersion.product_name == name)
            .order_by(col(ProductVersion.version).desc())
        ).all()
        for old in previous:
            if old.status == "published":
                old.status = "superseded"
                s.add(old)
        number = (previous[0].version + 1) if previous else 1
        inputs = built_from(run.review_package)
        version = ProductVersion(
            id=f"{name}@{number}",
            product_name=name,
            version=number,
            run_id=run_id,
            signoff_id=approval.id,
            input_hashes=[inputs[t] for t in spec.inputs if t in inputs],
            output_hash=candidate["dataset"],
            metrics=candidate["model_card"] | {"drift": candidate["drift"]},
            model=candidate["model"] or {},
            revenue_rule=rule,
            revenue_weights=weights,
            as_of=dt.date.fromisoformat(candidate["as_of"]),
        )
        s.add(version)
        s.flush()
        s.execute(insert(ServedScore), served_rows(version.id, spec.outputs, scores.to_dicts()))
        ensure_default_plan(s, row)
        alerts = alerts_for_new_version(s, version)  # watchers learn of it in the same commit
        reviewed = {p for p, card in cards.items() if card.get("candidate")}
        out = set(
            s.exec(select(ProductVersion.product_name).where(ProductVersion.run_id == run_id))
        )
        if reviewed <= out:  # a run with a reviewed product still to deliver stays "approved"
            run.status = "published"
            s.add(run)
        generation.bump(s)  # the API serves the new version from its next batch on
        audit.record(
            s,
            actor,
            "product.publish",
            version.id,
            run_id=run_id,
            output=candidate["dataset"],
            rows=scores.height,
            signoff=approval.id,
            alerts=alerts,
        )
        return version.id


@flow(name="pdo-publish", log_prints=True)
def publish_flow(
    run_id: str,
    home: str,
    ledger_url: SecretStr | None = None,
    actor: str = "operator",
    product_name: str | None = None,
) -> list[str]:
    """Publish an approved run's reviewed products (all, or one); refused without approval."""
    database_url = revealed(ledger_url)
    ws = open_workspace(home, database_url)
    with session_scope(ws.engine) as s:
        require_approval(s, ws.lake, run_id)
        run = s.get(PipelineRun, run_id)
        assert run is not None
        cards = [
            p
            for p in run.review_package.get("products", [])
            if p.get("candidate") and product_name in (None, p["product"])
        ]
        candidates = [card["candidate"] for card in cards]
        delivered = set(
            s.exec(select(ProductVersion.product_name).where(ProductVersion.run_id == run_id))
        )
        # every product checked before any is delivered: no half-published run over one of them
        problems = [
            problem
            for card in cards
            if card["product"] not in delivered
            for problem in publication_refusals(s, run, card)
        ]
    if not candidates:
        raise ValueError(f"run {run_id} has no reviewed build of {product_name or 'any product'}")
    if problems:
        raise ValueError(f"run {run_id} is not published: " + "; ".join(problems))
    mirror_decision(home, database_url, run_id)  # approved in the console: close the paused run
    versions = [deliver_task(home, database_url, run_id, c, actor) for c in candidates]
    print(f"published {', '.join(versions)}")
    return versions
