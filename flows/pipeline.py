"""The pipeline up to the gate: ingest → desensitize → validate → package → review, one flow."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from prefect import flow, task, unmapped
from prefect.futures import PrefectFuture, wait
from prefect.runtime import flow_run
from prefect.states import State
from pydantic import SecretStr
from sqlalchemy.engine import make_url
from sqlmodel import Session, select

from flows.context import ledger_secret, open_workspace, revealed
from flows.gate import waiting_state
from flows.package import build_candidate
from flows.runners import RunnerChoice, task_runner
from flows.stages import (
    DesensitizedPart,
    IngestSummary,
    RawValidationSummary,
    build_run_docs,
    desensitize_partition,
    finish_desensitize,
    ingest_database_table,
    ingest_table,
    partitions_for,
    run_inputs,
    run_staging_dir,
    validate_raw_table,
    validate_table,
)
from pdo import audit, run_liveness
from pdo.lake import Manifest
from pdo.ledger.db import session_scope
from pdo.ledger.models import Authorization, PipelineRun, ProductVersion, StageRun
from pdo.ledger.types import utcnow
from pdo.registration import check_authorization
from pdo.signoff import package_hash
from pdo.sources.contract import SourceTable
from pdo.sources.database import display_url, url_secrets
from pdo.sources.tables import SOURCE_TABLES, table
from pdo.workspace import Workspace
from products.registry import product

T = TypeVar("T")
_TABLE_NAME = re.compile(r"[a-z_][a-z0-9_]*")  # a contracted table's name, as in SOURCE_TABLES


@dataclass(frozen=True)
class DatabaseSource:
    """A table read from a department's database: SQLAlchemy URL and the table's name there."""

    url: str
    table: str

    @classmethod
    def parse(cls, spec: str) -> tuple[str, DatabaseSource]:
        """TABLE=URL#SOURCE_TABLE, e.g. tax_credit=postgresql+psycopg://pdo@db/tax#public.grades."""
        name, sep, rest = spec.partition("=")
        url, sep2, source = rest.rpartition("#")
        if not (sep and sep2 and _TABLE_NAME.fullmatch(name.strip()) and url and source):
            # never the spec itself: a URL that lost its TABLE= prefix may hold a password
            raise ValueError(
                "expected TABLE=URL#SOURCE_TABLE, e.g. "
                "tax_credit=postgresql+psycopg://pdo@db/tax#public.grades"
            )
        return name.strip(), cls(url.strip(), source.strip())

    def check(self) -> None:
        """Refuse a password in the URL: the run records the URL (use ~/.pgpass or PGPASSWORD)."""
        try:
            url = make_url(self.url)
        except Exception:  # SQLAlchemy's ArgumentError; never echo the text, it may hold a password
            raise ValueError(f"{self.table}: not a valid SQLAlchemy database URL") from None
        if url_secrets(url):
            raise ValueError(
                f"{display_url(self.url)}: put the password in ~/.pgpass or PGPASSWORD, not in "
                "the URL (the run records its sources)"
            )


class ValidationBlocked(RuntimeError):
    """A blocking expectation failed; the run stops before the gate."""


def run_to_gate(
    run_id: str,
    home: str,
    database_url: str | None = None,
    runner: RunnerChoice | None = None,
    partitions: int | None = None,
) -> str:
    """Run the pipeline flow and return the run's ledger status (raises what the flow raised).

    The runner (threads here, or Dask) changes where tasks run, never what they produce.
    """
    runner = runner or RunnerChoice()
    flow_ = pipeline_flow.with_options(task_runner=task_runner(runner))
    try:
        state = flow_(run_id, home, ledger_secret(database_url), partitions, return_state=True)
        if state.is_failed() or state.is_crashed() or state.is_cancelled():
            state.result()  # raises the flow's exception
    finally:
        ws = open_workspace(home, database_url)
        with session_scope(ws.engine) as s:
            run = s.get(PipelineRun, run_id)
            status = run.status if run is not None else "missing"
        run_liveness.release(ws.settings.resolved_home, run_id, finished=status != "running")
    return status


def discover(source_dir: Path) -> dict[str, Path]:
    """Which contracted tables a delivery directory holds, by their agreed file names."""
    if not source_dir.is_dir():
        raise FileNotFoundError(f"source directory {source_dir} does not exist")
    found = {t.name: source_dir / t.file_name for t in SOURCE_TABLES}
    return {name: path for name, path in found.items() if path.exists()}


ABANDONED = (
    "abandoned: the process running it ended before the run finished (killed or crashed); "
    "its finished datasets are kept, start a new run of the same delivery"
)


def abandon_orphaned_runs(ws: Workspace) -> list[str]:
    """Mark failed every run still recorded as running whose process has ended (see
    pdo/run_liveness.py), and clear its staged partitions; returns their ids."""
    home = ws.settings.resolved_home
    with session_scope(ws.engine) as s:
        running = s.exec(select(PipelineRun.id).where(PipelineRun.status == "running")).all()
    abandoned = []
    for run_id in running:
        with run_liveness.owner_gone(home, run_id) as gone:
            if not gone:
                continue
            with session_scope(ws.engine) as s:
                run = s.get(PipelineRun, run_id)
                if run is None or run.status != "running":
                    continue
                run.status, run.error, run.finished_at = "failed", ABANDONED, utcnow()
                s.add(run)
                audit.record(s, "pipeline", "run.abandoned", run_id, started_by=run.started_by)
            shutil.rmtree(run_staging_dir(ws, run_id), ignore_errors=True)
            abandoned.append(run_id)
    return abandoned


def start_run(
    ws: Workspace,
    source_dir: Path | None,
    actor: str,
    authorization_id: str,
    databases: Mapping[str, DatabaseSource] | None = None,
) -> PipelineRun:
    """Create the run record after checking the authorization covers every delivered table
    (files in source_dir, and tables read from departments' databases). This process holds the
    run's liveness lock until run_to_gate ends; runs whose process is gone are marked first."""
    abandon_orphaned_runs(ws)
    databases = dict(databases or {})
    files = discover(source_dir) if source_dir is not None else {}
    both = sorted(set(files) & set(databases))
    if both:
        raise ValueError(f"{', '.join(both)}: delivered both as a file and from a database")
    for name, db in databases.items():
        table(name)  # an unknown table name fails here, before anything runs
        db.check()
    if not files and not databases:
        raise FileNotFoundError(f"{source_dir} holds none of the contracted source files")
    with session_scope(ws.engine) as s:
        check_authorization(s, authorization_id, sorted([*files, *databases]))
        run = PipelineRun(
            source_dir=str(source_dir.resolve()) if source_dir is not None else "",
            database_sources={
                name: {"url": db.url, "table": db.table} for name, db in sorted(databases.items())
            },
            authorization_id=authorization_id,
            started_by=actor,
        )
        # held before anyone can see it running (a lock left by a failed insert names no run)
        run_liveness.claim(ws.settings.resolved_home, run.id)
        s.add(run)
        s.flush()
        audit.record(
            s,
            actor,
            "run.start",
            run.id,
            source_dir=str(source_dir or ""),
            databases={name: display_url(db.url) for name, db in sorted(databases.items())},
            tables=sorted([*files, *databases]),
            authorization=authorization_id,
        )
    return run


@task(name="ingest", task_run_name="ingest-{table_name}")
def ingest_task(
    home: str, database_url: str | None, run_id: str, table_name: str, path: str
) -> IngestSummary:
    return ingest_table(open_workspace(home, database_url), run_id, table(table_name), Path(path))


@task(name="ingest-database", task_run_name="ingest-{table_name}")
def ingest_database_task(
    home: str, database_url: str | None, run_id: str, table_name: str, url: str, source: str
) -> IngestSummary:
    ws = open_workspace(home, database_url)
    return ingest_database_table(ws, run_id, table(table_name), url, source)


@task(name="validate-raw", task_run_name="validate-raw-{table_name}")
def validate_raw_task(
    home: str,
    database_url: str | None,
    run_id: str,
    table_name: str,
    raw: Manifest,
    authorization_id: str,
    registry: Manifest | None,
    partitions: int,
) -> RawValidationSummary:
    ws = open_workspace(home, database_url)
    inputs = run_inputs(ws, run_id, authorization_id, registry)
    return validate_raw_table(ws, run_id, table(table_name), raw, inputs, partitions)


@task(name="desensitize-part", task_run_name="desensitize-{table_name}-part-{part}")
def desensitize_part_task(
    home: str, database_url: str | None, run_id: str, table_name: str, raw: Manifest, part: int
) -> DesensitizedPart:
    ws = open_workspace(home, database_url)
    return desensitize_partition(ws, run_id, table(table_name), raw, part)


@task(name="desensitize", task_run_name="desensitize-{table_name}")
def desensitize_finish_task(
    home: str,
    database_url: str | None,
    run_id: str,
    table_name: str,
    raw: Manifest,
    parts: list[DesensitizedPart],
) -> Manifest:
    ws = open_workspace(home, database_url)
    return finish_desensitize(ws, run_id, table(table_name), raw, parts)


@task(name="validate", task_run_name="validate-{table_name}")
def validate_task(
    home: str, database_url: str | None, run_id: str, table_name: str, dataset: Manifest
) -> dict[str, Any]:
    ws = open_workspace(home, database_url)
    return validate_table(ws, run_id, table(table_name), dataset)


@task(name="package", task_run_name="package-{product_name}")
def package_task(
    home: str,
    database_url: str | None,
    run_id: str,
    product_name: str,
    datasets: dict[str, Manifest],
) -> dict[str, Any]:
    return build_candidate(open_workspace(home, database_url), run_id, product_name, datasets)


@task(name="data-docs")
def data_docs_task(home: str, database_url: str | None, run_id: str) -> str:
    ws = open_workspace(home, database_url)
    return str(build_run_docs(ws, run_id).relative_to(ws.settings.resolved_home))


def _product_card(s: Session, name: str, candidate: dict[str, Any] | None) -> dict[str, Any]:
    """The product's spec, this run's build of it (signed with the package) and the live
    version it would replace, if any."""
    spec = product(name)
    live = s.exec(
        select(ProductVersion).where(
            ProductVersion.product_name == name, ProductVersion.status == "published"
        )
    ).first()
    return {
        "product": spec.name,
        "title_zh": spec.title_zh,
        "inputs": list(spec.inputs),
        "purposes": list(spec.purposes),
        "outputs": list(spec.outputs),
        "price_fen": spec.price_fen,
        "revenue_rule": spec.revenue.describe(),
        "revenue_weights": spec.revenue_weights(),
        "live_version": None
        if live is None
        else {"id": live.id, "as_of": live.as_of.isoformat(), "metrics": live.metrics},
        "candidate": candidate,
    }


def review_package(
    ws: Workspace,
    run: PipelineRun,
    ingested: list[IngestSummary],
    checked: dict[str, RawValidationSummary],
    desensitized: dict[str, Manifest],
    validations: list[dict[str, Any]],
    data_docs: str,
    candidates: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Everything the reviewer signs for, including the hash of every dataset it covers."""
    candidates = candidates or {}
    with session_scope(ws.engine) as s:
        auth = s.get(Authorization, run.authorization_id)
        assert auth is not None
        authorization = {
            "reference": auth.reference,
            "authority": auth.authority,
            "operator": auth.operator,
            "tables": auth.tables,
            "purposes": auth.purposes,
            "products": auth.products,
            "rights": auth.rights,
            "valid_from": auth.valid_from.isoformat(),
            "valid_until": auth.valid_until.isoformat(),
        }
        products = [_product_card(s, name, candidates.get(name)) for name in auth.products]
    tables: list[dict[str, Any]] = []
    for item in ingested:
        contract: SourceTable = table(item.table)
        tables.append(
            {
                "table": item.table,
                "label_zh": contract.label_zh,
                "classification": contract.classification.value,
                "file_sha256": item.file_sha256,
                "rows_in": item.rows_in,
                "rows_out": checked[item.table].raw.row_count,
                "rows_quarantined": item.quarantine.row_count
                + checked[item.table].quarantine.row_count,
                "rows_quarantined_ingest": item.quarantine.row_count,
                "rows_quarantined_validation": checked[item.table].quarantine.row_count,
                "quarantine_reasons_ingest": item.reasons,
                "quarantine_reasons": checked[item.table].report["quarantine_reasons"],
                "policies": {c.name: c.policy.value for c in contract.columns},
                "disclosed": {c.name: list(c.disclosed) for c in contract.columns if c.disclosed},
            }
        )
    datasets = [
        {"table": m.table, "zone": m.zone, "id": m.id, "rows": m.row_count}
        for m in desensitized.values()
    ]
    with session_scope(ws.engine) as s:
        stage_rows = s.exec(
            select(StageRun).where(StageRun.run_id == run.id, StageRun.stage == "desensitize")
        ).all()
        privacy = {
            r.table_name: {
                "residual_pii": r.details.get("residual_pii", {}),
                "redacted_again": r.details.get("redacted_again", {}),
                "pseudonym_key_id": r.details.get("pseudonym_key_id"),
                "risk": r.details.get("risk", {}),
                "release": r.details.get("release"),
            }
            for r in stage_rows
        }
    datasets += [
        {"table": name, "zone": "release", "id": p["release"]["id"], "rows": p["release"]["rows"]}
        for name, p in sorted(privacy.items())
        if p["release"]
    ]
    datasets += [
        {"table": name, "zone": "product", "id": c["dataset"], "rows": c["rows"]}
        for name, c in sorted(candidates.items())
    ]
    return {
        "run_id": run.id,
        "authorization": authorization,
        "tables": tables,
        "datasets": datasets,
        "privacy": privacy,
        "validation": validations,
        "data_docs": data_docs,
        "products": products,
        "validation_raw": [checked[item.table].report for item in ingested],
        "quality": {
            item.table: {
                "raw": checked[item.table].report["quality"],
                "desensitized": next(
                    (v["quality"] for v in validations if v["table"] == item.table), {}
                ),
            }
            for item in ingested
        },
    }


def _results(futures: Mapping[str, PrefectFuture[T]]) -> dict[str, T]:
    """Wait for a stage's tasks; the first failure (in table order) is raised."""
    wait(list(futures.values()))
    return {name: futures[name].result() for name in sorted(futures)}


@flow(name="pdo-pipeline", log_prints=True)
def pipeline_flow(
    run_id: str,
    home: str,
    ledger_url: SecretStr | None = None,
    partitions: int | None = None,
) -> str | State[Any]:
    """Run every stage up to the sign-off gate, then end Paused there (see flows/gate.py).

    Tables go through each stage side by side on the flow's task runner, large tables in
    partitions by entity-key hash; a stage starts when the one before it has finished for
    every table. A re-run of a run that is past ``running`` changes nothing.
    """
    database_url = revealed(ledger_url)
    ws = open_workspace(home, database_url)
    with session_scope(ws.engine) as s:
        run = s.get(PipelineRun, run_id)
        if run is None:
            raise ValueError(f"no run {run_id}")
        if run.status != "running":
            return run.status  # a re-run of a finished run is a no-op
        run.prefect_flow_run_id = str(flow_run.get_id() or "")
        s.add(run)
    try:
        files = discover(Path(run.source_dir)) if run.source_dir else {}
        ingests = {
            name: ingest_task.submit(home, database_url, run_id, name, str(path))
            for name, path in files.items()
        }
        for name, db in run.database_sources.items():
            ingests[name] = ingest_database_task.submit(
                home, database_url, run_id, name, db["url"], db["table"]
            )
        ingested_by = _results(ingests)
        ingested = list(ingested_by.values())
        registry = next((i.raw for i in ingested if i.table == "enterprise_registry"), None)
        checked = _results(
            {
                item.table: validate_raw_task.submit(
                    home,
                    database_url,
                    run_id,
                    item.table,
                    item.raw,
                    run.authorization_id,
                    registry,
                    partitions
                    or partitions_for(item.raw.row_count, ws.settings, table(item.table)),
                )
                for item in ingested
            }
        )
        blocked_raw = [c.report for c in checked.values() if not c.report["success"]]
        if blocked_raw:
            data_docs_task(home, database_url, run_id)  # what blocked is what the group reads
            raise ValidationBlocked(
                "raw validation failed for "
                + ", ".join(f"{v['table']} ({len(v['failures'])} blocking)" for v in blocked_raw)
            )
        part_futures = {
            name: desensitize_part_task.map(
                unmapped(home),
                unmapped(database_url),
                unmapped(run_id),
                unmapped(name),
                unmapped(c.raw),
                list(range(c.raw.parts)),
            )
            for name, c in checked.items()
        }
        finishing = {
            name: desensitize_finish_task.submit(
                home,
                database_url,
                run_id,
                name,
                checked[name].raw,
                futures,  # type: ignore[arg-type]  # Prefect resolves them first
            )
            for name, futures in part_futures.items()
        }
        try:
            desensitized = _results(finishing)
        except Exception:
            for name in sorted(part_futures):  # name the failed partition's own error
                for future in part_futures[name]:
                    if future.state.is_failed():
                        future.result()
            raise
        validations = list(
            _results(
                {
                    name: validate_task.submit(home, database_url, run_id, name, m)
                    for name, m in desensitized.items()
                }
            ).values()
        )

        data_docs = data_docs_task(home, database_url, run_id)
        blocked = [v for v in validations if not v["success"]]
        if blocked:
            raise ValidationBlocked(
                "validation failed for "
                + ", ".join(f"{v['table']} ({len(v['failures'])} blocking)" for v in blocked)
            )
        with session_scope(ws.engine) as s:
            auth = s.get(Authorization, run.authorization_id)
            assert auth is not None
            names = list(auth.products)
        candidates = _results(
            {
                name: package_task.submit(home, database_url, run_id, name, desensitized)
                for name in names
            }
        )
        package = review_package(
            ws, run, ingested, checked, desensitized, validations, data_docs, candidates
        )
    except Exception as exc:
        with session_scope(ws.engine) as s:
            failed = s.get(PipelineRun, run_id)
            assert failed is not None
            failed.status, failed.error, failed.finished_at = "failed", str(exc)[:2000], utcnow()
            s.add(failed)
            audit.record(s, "pipeline", "run.failed", run_id, error=str(exc)[:500])
        # its staged partitions go too: one refused for residual personal data still holds it
        shutil.rmtree(run_staging_dir(ws, run_id), ignore_errors=True)
        raise
    valid_until = dt.datetime.fromisoformat(package["authorization"]["valid_until"])
    with session_scope(ws.engine) as s:
        waiting = s.get(PipelineRun, run_id)
        assert waiting is not None
        waiting.review_package = package
        waiting.review_package_hash = package_hash(package)
        waiting.status = "awaiting_signoff"
        s.add(waiting)
        audit.record(
            s,
            "pipeline",
            "run.awaiting_signoff",
            run_id,
            review_package_hash=waiting.review_package_hash,
        )
    print(f"run {run_id} is waiting at the sign-off gate")
    return waiting_state(run_id, valid_until)
