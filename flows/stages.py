"""Stage units over the ledger and lake: each records its datasets, stage run and audit event."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import Session

from flows import desensitize as desensitize_mod
from flows.ingest import ingest_file
from flows.validate import run_suite
from pdo import audit
from pdo.lake import Manifest
from pdo.ledger.db import session_scope
from pdo.ledger.models import DatasetVersion, StageRun, ValidationResult
from pdo.ledger.types import utcnow
from pdo.privacy.analyzer import build_analyzer
from pdo.privacy.fastscan import get_scanner
from pdo.privacy.pseudonym import Pseudonymizer
from pdo.sources.contract import SourceTable
from pdo.workspace import Workspace


@dataclass(frozen=True)
class IngestSummary:
    """What ingest produced for one table, small enough to pass between tasks."""

    table: str
    raw: Manifest
    quarantine: Manifest
    rows_in: int
    file_sha256: str


def _record_dataset(session: Session, m: Manifest, path: Path) -> None:
    if session.get(DatasetVersion, m.id) is None:
        session.add(
            DatasetVersion(
                id=m.id,
                table_name=m.table,
                zone=m.zone,
                path=str(path),
                row_count=m.row_count,
                schema_=m.schema,
                parents=m.parents,
                stage=m.stage,
                policy_hash=m.policy_hash,
                code_hash=m.code_hash,
            )
        )


def ingest_table(ws: Workspace, run_id: str, table: SourceTable, path: Path) -> IngestSummary:
    """Read and normalize one delivered file into the raw zone; bad rows into quarantine."""
    started = utcnow()
    result = ingest_file(path, table)
    if not result.reconciles:  # pragma: no cover - a bug guard, never expected
        raise RuntimeError(f"{table.name}: counts do not reconcile")
    parent = [f"file:{result.file_sha256}"]
    raw = ws.lake.write(result.clean, table=table.name, zone="raw", stage="ingest", parents=parent)
    quarantine = ws.lake.write(
        result.quarantine, table=table.name, zone="quarantine", stage="ingest", parents=parent
    )
    with session_scope(ws.engine) as s:
        for m in (raw, quarantine):
            _record_dataset(s, m, ws.lake.dir_for(m))
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
                details={
                    "file": path.name,
                    "reasons": _reason_counts(result.quarantine["reason"].to_list()),
                },
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
    return IngestSummary(table.name, raw, quarantine, result.rows_in, result.file_sha256)


def _reason_counts(reasons: list[str]) -> dict[str, int]:
    """How many quarantined rows carry each reason (a row may carry several)."""
    counts: dict[str, int] = {}
    for reason in reasons:
        for part in reason.split("; "):
            counts[part] = counts.get(part, 0) + 1
    return counts


def desensitize_table(ws: Workspace, run_id: str, table: SourceTable, raw: Manifest) -> Manifest:
    """Apply the table's column policies and the residual scan; write the desensitized zone."""
    started = utcnow()
    key_id, key = ws.settings.read_pseudonym_key()
    pseudo = Pseudonymizer(key_id, key)
    analyzer = build_analyzer(ws.settings.models_dir)
    scanner = get_scanner(analyzer, ner=True, processes=ws.settings.scan_processes)
    result = desensitize_mod.desensitize(ws.lake.read(raw), table, pseudo, scanner)
    out = ws.lake.write(
        result.frame,
        table=table.name,
        zone="desensitized",
        stage="desensitize",
        parents=[raw.id],
        policy_hash=desensitize_mod.policy_hash(table, key_id),
        code_hash=desensitize_mod.code_hash(),
    )
    with session_scope(ws.engine) as s:
        _record_dataset(s, out, ws.lake.dir_for(out))
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
                    "residual_pii": result.residual,
                    "risk": result.risk,
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


def validate_table(
    ws: Workspace, run_id: str, table: SourceTable, dataset: Manifest
) -> dict[str, Any]:
    """Run the table's GX suite and record the result; the caller decides whether to block."""
    started = utcnow()
    outcome = run_suite(ws.lake.read(dataset), table.name)
    with session_scope(ws.engine) as s:
        s.add(
            ValidationResult(
                run_id=run_id,
                table_name=table.name,
                dataset_id=dataset.id,
                suite=outcome.suite,
                success=outcome.success,
                evaluated=outcome.evaluated,
                successful=outcome.successful,
                statistics={"failures": outcome.failures, "warnings": outcome.warnings},
            )
        )
        s.add(
            StageRun(
                run_id=run_id,
                stage="validate",
                table_name=table.name,
                status="succeeded" if outcome.success else "failed",
                rows_in=dataset.row_count,
                rows_out=dataset.row_count,
                input_hashes=[dataset.id],
                details={
                    "suite": outcome.suite,
                    "evaluated": outcome.evaluated,
                    "successful": outcome.successful,
                },
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
            suite=outcome.suite,
            success=outcome.success,
        )
    return {
        "table": table.name,
        "suite": outcome.suite,
        "success": outcome.success,
        "evaluated": outcome.evaluated,
        "successful": outcome.successful,
        "failures": outcome.failures,
        "warnings": outcome.warnings,
    }


def today_utc() -> dt.date:
    return utcnow().date()
