"""What a run quarantined, for the data group: counts, reasons and data rows, never values."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
from sqlmodel import Session, col, select

from pdo.lake import Lake
from pdo.ledger.models import PipelineRun, StageRun

QUARANTINING_STAGES = ("ingest", "validate_raw")


class UnknownRun(LookupError):
    """No run with this id in the ledger."""


@dataclass(frozen=True)
class QuarantineCount:
    table: str
    stage: str
    rows_in: int
    rows_quarantined: int
    reasons: dict[str, int]


def _stage_rows(session: Session, run_id: str) -> list[StageRun]:
    if session.get(PipelineRun, run_id) is None:
        raise UnknownRun(f"no run {run_id}")
    return list(
        session.exec(
            select(StageRun)
            .where(StageRun.run_id == run_id, col(StageRun.stage).in_(QUARANTINING_STAGES))
            .order_by(col(StageRun.table_name), col(StageRun.id))
        ).all()
    )


def counts(session: Session, run_id: str) -> list[QuarantineCount]:
    """Per table and stage: rows in, rows quarantined and how many rows carry each reason."""
    return [
        QuarantineCount(
            table=r.table_name or "",
            stage=r.stage,
            rows_in=r.rows_in or 0,
            rows_quarantined=r.rows_quarantined or 0,
            reasons=dict(r.details.get("reasons", {})),
        )
        for r in _stage_rows(session, run_id)
    ]


def rows(session: Session, lake: Lake, run_id: str, table: str | None = None) -> pl.DataFrame:
    """Every quarantined row of a run: table, stage, data row and reason (no raw values).

    `source_row` counts the delivery's data rows from 1, header excluded (a CSV record split
    over lines by a quoted line break is one row; an XLSX's sheets continue the count)."""
    frames = []
    for r in _stage_rows(session, run_id):
        if table is not None and r.table_name != table:
            continue
        quarantine_id = r.output_hashes[-1]  # each stage lists its quarantine dataset last
        found = lake.read(lake.manifest("quarantine", r.table_name or "", quarantine_id))
        frames.append(
            found.select(
                pl.lit(r.table_name).alias("table"),
                pl.lit(r.stage).alias("stage"),
                pl.col("source_row").cast(pl.Int64),
                pl.col("reason").cast(pl.String),  # an empty one stored before 2026-12 is UInt32
            )
        )
    schema = {"table": pl.String, "stage": pl.String, "source_row": pl.Int64, "reason": pl.String}
    return pl.concat(frames) if frames else pl.DataFrame(schema=schema)
