"""Live progress of a pipeline run, read from its stage records (works for every runner)."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table
from sqlalchemy import Engine
from sqlmodel import select

from pdo.ledger.db import read_scope
from pdo.ledger.models import StageRun

STAGES = (
    ("ingest", "接收 ingest"),
    ("validate_raw", "原始校验 validate raw"),
    ("desensitize", "脱敏 desensitize"),
    ("validate", "质量校验 validate"),
    ("package", "产品构建 package"),
)


@dataclass(frozen=True)
class StageFigures:
    """One stage of a run: how many tables, rows and seconds (first start to last finish)."""

    stage: str
    label: str
    done: int
    rows_in: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows_in / self.seconds if self.seconds > 0 else 0.0


def stage_figures(engine: Engine, run_id: str) -> list[StageFigures]:
    """Per stage of the run so far: finished tables, rows in and wall seconds."""
    with read_scope(engine) as s:
        rows = s.exec(select(StageRun).where(StageRun.run_id == run_id)).all()
    figures = []
    for stage, label in STAGES:
        mine = [r for r in rows if r.stage == stage]
        if not mine:
            figures.append(StageFigures(stage, label, 0, 0, 0.0))
            continue
        start = min(_aware(r.started_at) for r in mine)
        end = max(_aware(r.finished_at or r.started_at) for r in mine)
        seconds = (end - start).total_seconds()
        figures.append(StageFigures(stage, label, len(mine), sum(r.rows_in for r in mine), seconds))
    return figures


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


class RunProgress:
    """A bar per stage, advanced as the run's tables finish each stage (polls the ledger)."""

    def __init__(
        self, engine: Engine, run_id: str, tables: int, products: int, console: Console
    ) -> None:
        self.engine, self.run_id = engine, run_id
        self.totals = {stage: (products if stage == "package" else tables) for stage, _ in STAGES}
        self.progress = Progress(
            TextColumn("[bold]{task.description:<22}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rows]:>12,} rows  {task.fields[seconds]:>7.1f} s"),
            console=console,
            transient=False,
        )
        self.tasks: dict[str, TaskID] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="pdo-run-progress", daemon=True)

    def __enter__(self) -> RunProgress:
        self.progress.start()
        for stage, label in STAGES:
            self.tasks[stage] = self.progress.add_task(
                label, total=self.totals[stage], rows=0, seconds=0.0
            )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.refresh()
        self.progress.stop()

    def _follow(self) -> None:
        while not self._stop.wait(0.5):
            try:
                self.refresh()
            except Exception:
                continue

    def refresh(self) -> None:
        for f in stage_figures(self.engine, self.run_id):
            self.progress.update(
                self.tasks[f.stage], completed=f.done, rows=f.rows_in, seconds=f.seconds
            )


def stage_table(figures: list[StageFigures], total_seconds: float) -> Table:
    """Per-stage timings for the end of a run."""
    table = Table(title=f"阶段用时 stage timings — run {total_seconds:.1f} s")
    for header in ("stage", "tables", "rows in", "seconds", "rows/s"):
        table.add_column(header, justify="left" if header == "stage" else "right")
    for f in figures:
        table.add_row(
            f.label, str(f.done), f"{f.rows_in:,}", f"{f.seconds:.1f}", f"{f.rows_per_second:,.0f}"
        )
    return table
