"""Runs the table jobs in contract order: build chunk → plant dirt → write, with progress."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from pdo.gen.city import AS_OF
from pdo.gen.courts import courts_job
from pdo.gen.dictionary import write_dictionary
from pdo.gen.dirt import DirtLog, plant
from pdo.gen.enterprises import POPULATION_STEPS, build_population
from pdo.gen.hrss import hrss_job
from pdo.gen.job import TableJob
from pdo.gen.loans import loans_job
from pdo.gen.market import abnormal_job, registry_job
from pdo.gen.penalties import penalties_job
from pdo.gen.pools import build_pools
from pdo.gen.report import GenerationReport
from pdo.gen.rng import stream
from pdo.gen.tax import tax_job
from pdo.gen.utilities import utilities_job
from pdo.gen.writer import open_sink, xlsx_writer_for
from pdo.sources.tables import BANK_LOANS, SOURCE_TABLES


class _Quiet:
    """Stands in for a rich Progress when progress is off."""

    def add_task(self, *_: object, **__: object) -> TaskID:
        return TaskID(0)

    def update(self, *_: object, **__: object) -> None:
        return None

    def advance(self, *_: object, **__: object) -> None:
        return None


@contextmanager
def _progress(show: bool) -> Iterator[Progress | _Quiet]:
    if not show:
        yield _Quiet()
        return
    bar = Progress(
        TextColumn("[bold]{task.description:<34}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rows]:>12,} rows"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    )
    with bar:
        yield bar


def _run_job(
    job: TableJob, out_dir: Path, enterprises: int, seed: int, log: DirtLog, bar: Progress | _Quiet
) -> tuple[int, int, int]:
    """Write one file; returns (rows, defaulted, loans) — the last two only for loan outcomes."""
    table = job.table
    task = bar.add_task(table.file_name, total=job.chunk_hint, rows=0)
    sink = open_sink(out_dir, table, enterprises)
    rows = defaulted = loans = 0
    done = 0
    try:
        for i, clean in enumerate(job.chunks()):
            dirty, entries = plant(
                clean,
                table,
                job.dirt,
                stream(seed, "dirt", table.name, i),
                offset=rows,
                first=i == 0,
            )
            sink.write(dirty)
            log.add(table.file_name, entries)
            rows += dirty.height
            if table is BANK_LOANS:
                flags = dirty["defaulted"].drop_nulls()
                defaulted += int((flags == "1").sum())
                loans += flags.len()
            done += 1
            bar.update(task, completed=done, total=max(done, job.chunk_hint), rows=rows)
    finally:
        sink.close()
    bar.update(task, completed=done, total=done, rows=rows)
    log.files.setdefault(table.file_name, [])
    return rows, defaulted, loans


def generate(out_dir: Path, enterprises: int, seed: int, progress: bool = True) -> GenerationReport:
    """Write one city's departmental deliveries, data dictionary, dirt log and manifest."""
    if enterprises < 1:
        raise ValueError("enterprises must be at least 1")
    if seed < 0:
        raise ValueError("seed must be non-negative")
    started = time.monotonic()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    log = DirtLog()
    row_counts: dict[str, int] = {}
    defaulted = loans = 0
    with _progress(progress) as bar:
        task = bar.add_task("population: pools", total=1 + POPULATION_STEPS, rows=0)
        pools = build_pools(seed)
        bar.update(task, advance=1, description="population: firms")

        def tick(next_step: str) -> None:
            bar.update(task, advance=1, description=f"population: {next_step}")

        pop = build_population(seed, enterprises, pools, tick)
        bar.update(task, description="population (latent risk)", rows=enterprises)
        jobs = [
            registry_job(pop),
            abnormal_job(pop, seed),
            tax_job(pop, seed),
            hrss_job(pop, seed),
            utilities_job(pop, seed),
            penalties_job(pop, seed),
            courts_job(pop, seed),
            loans_job(pop, seed),
        ]
        assert [j.table for j in jobs] == list(SOURCE_TABLES)
        for job in jobs:
            rows, d, n = _run_job(job, out_dir, enterprises, seed, log, bar)
            row_counts[job.table.file_name] = rows
            defaulted += d
            loans += n
    extra = write_dictionary(out_dir, SOURCE_TABLES)
    (out_dir / "dirt.json").write_text(
        json.dumps(log.as_json(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    report = GenerationReport(
        out_dir=out_dir.resolve(),
        enterprises=enterprises,
        seed=seed,
        as_of=AS_OF.isoformat(),
        row_counts=row_counts,
        dirt_counts=log.counts(),
        default_rate=defaulted / loans if loans else 0.0,
        xlsx_writer=xlsx_writer_for(enterprises),
        extra_files=[*extra, "dirt.json", "generation.json"],
    )
    (out_dir / "generation.json").write_text(
        json.dumps(report.manifest(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    report.seconds = time.monotonic() - started
    return report
