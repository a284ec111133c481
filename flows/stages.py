"""Stage units over the ledger and lake: each records its datasets, stage run and audit event."""

from __future__ import annotations

import datetime as dt
import functools
import os
import socket
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from flows import desensitize as desensitize_mod
from flows import validate as validate_mod
from flows.ingest import IngestResult, ingest_database, ingest_file
from pdo import audit
from pdo.lake import Lake, Manifest
from pdo.ledger.db import session_scope
from pdo.ledger.models import DatasetVersion, PipelineRun, StageRun, ValidationResult
from pdo.ledger.types import utcnow
from pdo.privacy.analyzer import build_analyzer
from pdo.privacy.fastscan import FastScanner, get_scanner
from pdo.privacy.pseudonym import Pseudonymizer
from pdo.settings import Settings
from pdo.sources.contract import Policy, SourceTable
from pdo.sources.database import display_url
from pdo.validation.runner import RunInputs
from pdo.workspace import Workspace


@dataclass(frozen=True)
class IngestSummary:
    """What ingest produced for one table, small enough to pass between tasks."""

    table: str
    raw: Manifest
    quarantine: Manifest
    rows_in: int
    file_sha256: str
    reasons: dict[str, int]  # quarantined rows per reason


@dataclass(frozen=True)
class RawValidationSummary:
    """The validated raw dataset and what the raw suite quarantined (counts only)."""

    table: str
    raw: Manifest
    quarantine: Manifest
    report: dict[str, Any]


def record_dataset(session: Session, m: Manifest, path: Path) -> None:
    """Record a dataset version once: it is content-addressed, so two runs at once may make the
    same one (the same delivery twice); the one committing second finds it recorded."""
    if session.get(DatasetVersion, m.id) is not None:
        return
    try:
        with session.begin_nested():  # a savepoint: losing the race leaves the run's work intact
            session.add(DatasetVersion.of(m, path))
    except IntegrityError:
        if session.get(DatasetVersion, m.id) is None:
            raise  # not the same version recorded by another run: a real conflict


def ingest_table(ws: Workspace, run_id: str, table: SourceTable, path: Path) -> IngestSummary:
    """Read and normalize one delivered file into the raw zone; bad rows into quarantine."""
    started = utcnow()
    return _store_ingest(ws, run_id, table, ingest_file(path, table), {"file": path.name}, started)


def ingest_database_table(
    ws: Workspace, run_id: str, table: SourceTable, url: str, source_table: str
) -> IngestSummary:
    """Read a department's database table in chunks into the raw zone, like a delivered file."""
    started = utcnow()
    result = ingest_database(url, source_table, table)
    origin = {"database": display_url(url), "source_table": source_table}
    return _store_ingest(ws, run_id, table, result, origin, started)


def _store_ingest(
    ws: Workspace,
    run_id: str,
    table: SourceTable,
    result: IngestResult,
    origin: dict[str, str],
    started: dt.datetime,
) -> IngestSummary:
    if not result.reconciles:  # pragma: no cover - a bug guard, never expected
        raise RuntimeError(f"{table.name}: counts do not reconcile")
    parent = [f"file:{result.file_sha256}"]
    raw = ws.lake.write(result.clean, table=table.name, zone="raw", stage="ingest", parents=parent)
    quarantine = ws.lake.write(
        result.quarantine, table=table.name, zone="quarantine", stage="ingest", parents=parent
    )
    reasons = _reason_counts(result.quarantine["reason"].to_list())
    with session_scope(ws.engine) as s:
        for m in (raw, quarantine):
            record_dataset(s, m, ws.lake.dir_for(m))
        s.add(
            StageRun(
                run_id=run_id,
                stage="ingest",
                table_name=table.name,
                status="succeeded",
                rows_in=result.rows_in,
                rows_out=result.clean.height,
                rows_quarantined=result.quarantine.height,
                input_hashes=[result.file_sha256],
                output_hashes=[raw.id, quarantine.id],
                details={**origin, "reasons": reasons},
                started_at=started,
                finished_at=utcnow(),
            )
        )
        audit.record(
            s,
            "pipeline",
            "stage.ingest",
            run_id,
            table=table.name,
            rows_in=result.rows_in,
            rows_out=result.clean.height,
            rows_quarantined=result.quarantine.height,
            raw=raw.id,
        )
    return IngestSummary(table.name, raw, quarantine, result.rows_in, result.file_sha256, reasons)


def _reason_counts(reasons: list[str]) -> dict[str, int]:
    """How many quarantined rows carry each reason (a row may carry several)."""
    counts: dict[str, int] = {}
    for reason in reasons:
        for part in reason.split("; "):
            counts[part] = counts.get(part, 0) + 1
    return counts


@dataclass(frozen=True)
class DesensitizedPart:
    """One partition's desensitized rows, staged as a Parquet file, and its residual counts."""

    part: int
    path: str
    rows: int
    residual: dict[str, dict[str, int]]
    redacted_again: dict[str, int]  # distinct values per column the residual scan redacted again
    seconds: float
    worker: str  # host:pid that ran it (the run's stats show where partitions went)
    started_at: dt.datetime


def entity_key_column(table: SourceTable) -> str:
    """The column that names the enterprise: tables are partitioned by its hash."""
    return next((c.name for c in table.columns if c.policy is Policy.ENTITY_KEY), table.key[0])


def partitions_for(rows: int, settings: Settings, table: SourceTable | None = None) -> int:
    """PDO_PARTITIONS when set, else one partition per PDO_PARTITION_ROWS rows, or per
    PDO_PARTITION_TEXT_ROWS rows for a table with free text (its NER costs ~10 ms a row)."""
    if settings.partitions:
        return settings.partitions
    per = settings.partition_rows
    if table is not None and any(c.policy is Policy.REDACT for c in table.columns):
        per = min(per, settings.partition_text_rows)
    return max(1, -(-rows // per))


def _scanner(ws: Workspace) -> tuple[str, Pseudonymizer, FastScanner]:
    key_id, key = ws.settings.read_pseudonym_key()
    analyzer = build_analyzer(ws.settings.models_dir)
    scanner = get_scanner(analyzer, ner=True, processes=ws.settings.scan_worker_processes())
    return key_id, Pseudonymizer(key_id, key), scanner


def run_staging_dir(ws: Workspace, run_id: str) -> Path:
    """Where a run's partition outputs wait until their stage writes the whole version."""
    return ws.lake.root / ".staging" / run_id


def staging_dir(ws: Workspace, run_id: str, table: str) -> Path:
    return run_staging_dir(ws, run_id) / table


def desensitize_partition(
    ws: Workspace, run_id: str, table: SourceTable, raw: Manifest, part: int
) -> DesensitizedPart:
    """Apply the column policies to one partition of the validated raw table (a mapped task)."""
    started, started_at = time.perf_counter(), utcnow()
    _, pseudo, scanner = _scanner(ws)
    frame, scan = desensitize_mod.desensitize_part(
        ws.lake.read_part(raw, part), table, pseudo, scanner
    )
    out = staging_dir(ws, run_id, table.name) / f"desensitized-{raw.id[:16]}-{part}.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    frame.write_parquet(tmp, compression="zstd", statistics=True)
    os.replace(tmp, out)  # a re-run of the partition overwrites it whole
    worker = f"{socket.gethostname()}:{os.getpid()}"
    seconds = time.perf_counter() - started
    return DesensitizedPart(
        part,
        str(out),
        frame.height,
        scan.found,
        scan.redacted_again_counts(),
        seconds,
        worker,
        started_at,
    )


def finish_desensitize(
    ws: Workspace,
    run_id: str,
    table: SourceTable,
    raw: Manifest,
    parts: list[DesensitizedPart],
    started: dt.datetime | None = None,
) -> Manifest:
    """Refuse residual personal data, store the partitions as one version, release and record
    (the stage's time runs from its first partition's start)."""
    started = min([started or utcnow(), *(p.started_at for p in parts)])
    key_id, _, scanner = _scanner(ws)
    parts = sorted(parts, key=lambda p: p.part)
    if [p.part for p in parts] != list(range(raw.parts)):
        raise RuntimeError(f"{table.name}: partitions {[p.part for p in parts]} of {raw.parts}")
    if sum(p.rows for p in parts) != raw.row_count:  # desensitizing keeps every row
        raise RuntimeError(
            f"{table.name}: partitions hold {sum(p.rows for p in parts)} rows of {raw.row_count}"
        )
    residual: dict[str, dict[str, int]] = {}
    redacted_again: Counter[str] = Counter()
    for p in parts:
        residual = desensitize_mod.add_residual(residual, p.residual)
        redacted_again.update(p.redacted_again)
    desensitize_mod.refuse_residual(table, residual)
    out = ws.lake.write_parts(
        [Path(p.path) for p in parts],
        table=table.name,
        zone="desensitized",
        stage="desensitize",
        parents=[raw.id],
        policy_hash=desensitize_mod.policy_hash(table, key_id),
        code_hash=desensitize_mod.code_hash(),
    )
    release_frame: pl.DataFrame | None = None
    risk: dict[str, Any] = {}
    if table.release is not None or table.quasi_identifiers:  # both look at the whole table
        release_frame, risk = desensitize_mod.release_and_risk(ws.lake.read(out), table, scanner)
    release = None
    if release_frame is not None:
        release = ws.lake.write(
            release_frame,
            table=table.name,
            zone="release",
            stage="desensitize",
            parents=[out.id],
            policy_hash=desensitize_mod.release_hash(table),
            code_hash=desensitize_mod.code_hash(),
        )
    for p in parts:
        Path(p.path).unlink(missing_ok=True)
    with session_scope(ws.engine) as s:
        record_dataset(s, out, ws.lake.dir_for(out))
        if release is not None:
            record_dataset(s, release, ws.lake.dir_for(release))
        s.add(
            StageRun(
                run_id=run_id,
                stage="desensitize",
                table_name=table.name,
                status="succeeded",
                rows_in=raw.row_count,
                rows_out=out.row_count,
                input_hashes=[raw.id],
                output_hashes=[out.id],
                details={
                    "policies": {c.name: c.policy.value for c in table.columns},
                    "pseudonym_key_id": key_id,
                    "residual_pii": residual,
                    "redacted_again": dict(redacted_again),
                    "risk": risk,
                    "release": None
                    if release is None
                    else {"id": release.id, "rows": release.row_count},
                    "partitions": [
                        {
                            "part": p.part,
                            "rows": p.rows,
                            "seconds": round(p.seconds, 3),
                            "worker": p.worker,
                        }
                        for p in parts
                    ],
                },
                started_at=started,
                finished_at=utcnow(),
            )
        )
        audit.record(
            s,
            "pipeline",
            "stage.desensitize",
            run_id,
            table=table.name,
            dataset=out.id,
            key_id=key_id,
        )
    return out


def desensitize_table(ws: Workspace, run_id: str, table: SourceTable, raw: Manifest) -> Manifest:
    """Every partition in turn, then the whole version (what the mapped tasks do, in one call)."""
    started = utcnow()
    parts = [desensitize_partition(ws, run_id, table, raw, i) for i in range(raw.parts)]
    return finish_desensitize(ws, run_id, table, raw, parts, started)


def _record_validation(
    s: Session,
    run_id: str,
    table: str,
    dataset: Manifest,
    report: dict[str, Any],
    gx_result: Mapping[str, Any],
) -> None:
    statistics = {k: v for k, v in report.items() if k not in ("suite", "success")}
    s.add(
        ValidationResult(
            run_id=run_id,
            table_name=table,
            dataset_id=dataset.id,
            suite=report["suite"],
            success=report["success"],
            evaluated=report["evaluated"],
            successful=report["successful"],
            statistics={**statistics, "zone": dataset.zone, "gx_result": dict(gx_result)},
        )
    )


def run_inputs(
    ws: Workspace, run_id: str, authorization_id: str, registry: Manifest | None
) -> RunInputs:
    """What raw suites may ask of this run: the registry's codes, the authorization window and
    the run's start (no month after the run's is data, the month packaging dates by)."""
    from pdo.ledger.models import Authorization

    with session_scope(ws.engine) as s:
        auth = s.get(Authorization, authorization_id)
        if auth is None:
            raise ValueError(f"no authorization {authorization_id}")
        window = (auth.valid_from.date(), auth.valid_until.date())
        run = s.get(PipelineRun, run_id)
        if run is None:
            raise ValueError(f"no run {run_id}")
        run_at = run.started_at
    references: dict[str, set[str]] = {}
    if registry is not None:
        codes = _registry_codes(str(ws.lake.root), registry.zone, registry.table, registry.id)
        references["enterprise_registry.uscc"] = set(codes)
    return RunInputs(references=references, window=window, run_at=run_at)


@functools.lru_cache(maxsize=2)
def _registry_codes(lake_root: str, zone: str, table: str, dataset_id: str) -> frozenset[str]:
    """The registry's codes, read once per process for all the tables that refer to them."""
    lake = Lake(Path(lake_root))
    frame = lake.read(lake.manifest(zone, table, dataset_id))
    return frozenset(frame["uscc"].drop_nulls().unique().to_list())


def validate_raw_table(
    ws: Workspace,
    run_id: str,
    table: SourceTable,
    raw: Manifest,
    inputs: RunInputs,
    partitions: int = 1,
) -> RawValidationSummary:
    """Run the raw suite: failing rows to quarantine with reasons, the rest to desensitize."""
    started = utcnow()
    result = validate_mod.validate_raw(ws.lake.read(raw), table, inputs)
    if not result.reconciles:  # pragma: no cover - a bug guard, never expected
        raise RuntimeError(f"{table.name}: validation counts do not reconcile")
    report = validate_mod.summary(result.run, result.skipped)
    passed = ws.lake.write(
        result.passed,
        table=table.name,
        zone="raw",
        stage="validate",
        parents=[raw.id],
        partition_key=entity_key_column(table),
        partitions=partitions,
    )
    quarantine = ws.lake.write(
        result.quarantine, table=table.name, zone="quarantine", stage="validate", parents=[raw.id]
    )
    with session_scope(ws.engine) as s:
        for m in (passed, quarantine):
            record_dataset(s, m, ws.lake.dir_for(m))
        _record_validation(s, run_id, table.name, raw, report, result.run.gx_result)
        s.add(
            StageRun(
                run_id=run_id,
                stage="validate_raw",
                table_name=table.name,
                status="succeeded" if report["success"] else "failed",
                rows_in=raw.row_count,
                rows_out=passed.row_count,
                rows_quarantined=quarantine.row_count,
                input_hashes=[raw.id],
                output_hashes=[passed.id, quarantine.id],
                details={
                    "reasons": report["quarantine_reasons"],
                    "quality": report["quality"],
                    "partitions": passed.parts,
                },
                started_at=started,
                finished_at=utcnow(),
            )
        )
        audit.record(
            s,
            "pipeline",
            "stage.validate_raw",
            run_id,
            table=table.name,
            suite=report["suite"],
            success=report["success"],
            rows_quarantined=quarantine.row_count,
        )
    return RawValidationSummary(table.name, passed, quarantine, {"table": table.name, **report})


def validate_table(
    ws: Workspace, run_id: str, table: SourceTable, dataset: Manifest
) -> dict[str, Any]:
    """Run the table's desensitized suite and record it; the caller decides whether to block."""
    started = utcnow()
    run = validate_mod.validate_desensitized(ws.lake.read(dataset), table)
    report = validate_mod.summary(run)
    with session_scope(ws.engine) as s:
        _record_validation(s, run_id, table.name, dataset, report, run.gx_result)
        s.add(
            StageRun(
                run_id=run_id,
                stage="validate",
                table_name=table.name,
                status="succeeded" if report["success"] else "failed",
                rows_in=dataset.row_count,
                rows_out=dataset.row_count,
                input_hashes=[dataset.id],
                details={k: report[k] for k in ("suite", "evaluated", "successful", "quality")},
                started_at=started,
                finished_at=utcnow(),
            )
        )
        audit.record(
            s,
            "pipeline",
            "stage.validate",
            run_id,
            table=table.name,
            suite=report["suite"],
            success=report["success"],
        )
    return {"table": table.name, **report}


def build_run_docs(ws: Workspace, run_id: str) -> Path:
    """Build the run's Data Docs once, from every suite result the ledger holds for it."""
    from pdo.validation.docs import StoredResult, build_site

    with session_scope(ws.engine) as s:
        rows = s.exec(
            select(ValidationResult)
            .where(ValidationResult.run_id == run_id)
            .order_by(col(ValidationResult.id))
        ).all()
        results = [
            StoredResult(
                suite=r.suite,
                table=r.table_name,
                zone=str(r.statistics.get("zone", "")),
                validated_at=r.created_at,
                result=r.statistics["gx_result"],
            )
            for r in rows
            if r.statistics.get("gx_result")
        ]
    index = build_site(results, ws.settings.docs_dir / run_id, run_id)
    with session_scope(ws.engine) as s:
        audit.record(s, "pipeline", "docs.built", run_id, suites=len(results))
    return index


def today_utc() -> dt.date:
    return utcnow().date()
