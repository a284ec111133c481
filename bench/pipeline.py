"""The pipeline end to end, source files → review package, at several city sizes, one run.

Data: for each ``--enterprises N``, one city's departmental deliveries from
``pdo.gen.generate(dir, enterprises=N, seed=--seed)``, kept in ``--data-dir`` (default
``var/bench/pipeline/src-<N>-<seed>``) and reused while its ``generation.json`` names the same
enterprises and seed. Generation time is reported (``figures.sizes.<N>.generate_seconds``, 0
when reused) but is not pipeline time.

Subject: for each size, in its own subprocess (this script again with ``--one N``, so peak RSS
is that size's alone), a fresh PDO_HOME ``var/bench/pipeline/home-<N>`` (wiped first): the
departments registered, an authorization granted for every source table, purpose and product,
``flows.pipeline.start_run`` and ``flows.pipeline.run_to_gate`` on the chosen runner
(``--runner local|dask``, ``--dask-address``, ``--workers``, ``--partitions``). Prefect is
kept local and quiet (``pdo.cli.root.prepare_prefect``) and its ephemeral API is started by a
trivial flow before the clock starts, so its 10–30 s start-up is not counted.

Figures per size (``figures.sizes.<N>``): ``seconds``, the wall time of the ``run_to_gate``
call; from the ledger's StageRun rows of the run, ``stages`` (first start to last finish of
each stage's rows), ``stages_table_sum`` (the sum of its rows' own durations) and
``stages_slowest_table``; ``source_rows`` (the ingest rows_in); ``rows_per_second``;
``peak_rss_gb`` (the largest ``ru_maxrss`` of the subprocess itself and of its reaped children,
which include Dask's workers); ``stage_peak_rss_gb``, the largest resident size of the
subprocess sampled (every 0.5 s, from /proc) while each stage's tables ran, which says where the
peak is; ``status`` (must be ``awaiting_signoff``). The desensitize rows
start when a table's partitions have all been done (``finish_desensitize``), so the
partitions' own time is reported apart: ``desensitize_parts_seconds`` (their sum, from the
rows' details) and ``outside_stages_seconds`` (run time covered by no stage's span). As the
stages run one after another, ``stages_to_barrier`` gives each stage the time from the previous
stage's last finish to its own last finish (that one counts the partitions; the human table
shows it).

Baseline: the same files read as the pipeline reads them (``flows.ingest.read_as_text``) and
written back as Parquet with polars, in this (parent) process: pure I/O.
``ratios.pipeline_vs_io.<N>`` is pipeline seconds over I/O seconds. With several sizes,
``ratios.time_per_doubling["<n1>-<n2>"]`` = (t2/t1) ** (1 / log2(n2/n1)) for each consecutive
pair, and ``figures.max_time_per_doubling``.

Targets (printed as a table with pass/fail): 1M enterprises ≤ 300 s, peak RSS ≤ 8 GB at every
size, each doubling ≤ 2.3×. Missing a target does not change the exit status; a failed run
does (1).

The last line of output is one JSON object: {"bench": "pipeline", "figures", "ratios",
"params"}; ``figures.seconds``, ``figures.peak_rss_gb`` and ``figures.rows_per_second`` are the
largest size's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this file's folder leads sys.path and bench/api.py would shadow the api package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BENCH_DIR = ROOT / "var" / "bench" / "pipeline"
DEFAULT_SEED = 20261125
STAGES = ("ingest", "validate_raw", "desensitize", "validate", "package")
TARGET_ENTERPRISES = 1_000_000
TARGET_SECONDS = 300.0
TARGET_RSS_GB = 8.0
TARGET_DOUBLING = 2.3
RESULT_PREFIX = "BENCH-PIPELINE-ONE "

_STARTED = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - _STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


def _maxrss_gb() -> float:
    """The larger ru_maxrss of this process and of its largest reaped child, in GB (KiB on
    Linux)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) * 1024 / 1e9


class RssSampler(threading.Thread):
    """This process's resident size every ``interval`` seconds, stamped in UTC, so each stage's
    peak can be read off against the ledger's stage spans (Linux: /proc/self/statm)."""

    def __init__(self, interval: float = 0.5) -> None:
        super().__init__(name="bench-rss-sampler", daemon=True)
        self.interval = interval
        self.samples: list[tuple[dt.datetime, int]] = []
        self._stop_event = threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE")

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                with open("/proc/self/statm", encoding="ascii") as statm:
                    pages = int(statm.read().split()[1])
            except OSError:  # not Linux: no per-stage figures
                return
            self.samples.append((dt.datetime.now(dt.UTC), pages * self._page))
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()

    def peak_gb(self, first: dt.datetime, last: dt.datetime) -> float | None:
        """The largest sample between two (aware or naive-UTC) times, in GB."""
        start, end = _aware(first), _aware(last)
        inside = [rss for at, rss in self.samples if start <= at <= end]
        return round(max(inside) / 1e9, 3) if inside else None


def _aware(at: dt.datetime) -> dt.datetime:
    """The ledger's timestamps as aware UTC (SQLite hands them back naive)."""
    return at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)


def stage_peaks(rows: Sequence[Any], sampler: RssSampler) -> dict[str, float]:
    """Per stage, the sampled peak from its first table's start to its last table's finish."""
    peaks = {stage: sampler.peak_gb(first, last) for stage, (first, last) in _spans(rows).items()}
    return {stage: peak for stage, peak in peaks.items() if peak is not None}


def _spans(rows: Sequence[Any]) -> dict[str, tuple[Any, Any]]:
    """Each stage's first start and last finish over its finished rows, in pipeline order."""
    spans = {}
    for stage in [*STAGES, *sorted({r.stage for r in rows} - set(STAGES))]:
        mine = [r for r in rows if r.stage == stage and r.finished_at is not None]
        if mine:
            spans[stage] = (min(r.started_at for r in mine), max(r.finished_at for r in mine))
    return spans


# -- data -----------------------------------------------------------------------------------------


def ensure_sources(data_dir: Path, enterprises: int, seed: int) -> tuple[Path, float, bool]:
    """(the directory, generation seconds, reused): generated unless generation.json there
    already names these params."""
    marker = data_dir / "generation.json"
    if marker.exists():
        try:
            params = json.loads(marker.read_text(encoding="utf-8")).get("params")
        except (OSError, ValueError):
            params = None
        if params == {"enterprises": enterprises, "seed": seed}:
            log(f"reusing the source files in {data_dir}")
            return data_dir, 0.0, True
    from pdo.gen import generate

    log(f"generating {enterprises:,} enterprises (seed {seed}) into {data_dir}")
    started = time.perf_counter()
    generate(data_dir, enterprises=enterprises, seed=seed, progress=True)
    return data_dir, time.perf_counter() - started, False


def io_baseline(source_dir: Path) -> dict[str, Any]:
    """Read every delivered file as the pipeline does and write it back as Parquet."""
    from flows.ingest import read_as_text
    from flows.pipeline import discover
    from pdo.sources.tables import table

    files = discover(source_dir)
    rows = 0
    with tempfile.TemporaryDirectory(prefix="pdo-bench-pipeline-io-") as tmp:
        started = time.perf_counter()
        for name, path in sorted(files.items()):
            frame = read_as_text(path, table(name))
            frame.write_parquet(Path(tmp) / f"{name}.parquet")
            rows += frame.height
            del frame
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": rows, "files": len(files)}


# -- one size, in a subprocess --------------------------------------------------------------------


def _stage_figures(rows: Sequence[Any], run_seconds: float) -> dict[str, Any]:
    """Per-stage spans, sums and slowest tables from a run's StageRun rows."""
    spans: dict[str, float] = {}
    sums: dict[str, float] = {}
    slowest: dict[str, list[Any]] = {}
    stage_spans = _spans(rows)
    for stage, (first, last) in stage_spans.items():
        mine = [r for r in rows if r.stage == stage and r.finished_at is not None]
        spans[stage] = round((last - first).total_seconds(), 3)
        durations = {r.table_name: (r.finished_at - r.started_at).total_seconds() for r in mine}
        sums[stage] = round(sum(durations.values()), 3)
        top = max(durations, key=lambda t: durations[t])
        slowest[stage] = [top, round(durations[top], 3)]
    # The stages run one after another (each waits for the one before it for every table):
    # a stage's share of the run is from the previous stage's last finish to its own.
    barrier: dict[str, float] = {}
    previous = min((r.started_at for r in rows), default=None)
    for stage, (_, last) in stage_spans.items():
        barrier[stage] = round((last - previous).total_seconds(), 3)
        previous = last
    covered = 0.0
    end = None
    for first, last in sorted(stage_spans.values()):
        if end is None or first > end:
            covered += (last - first).total_seconds()
            end = last
        elif last > end:
            covered += (last - end).total_seconds()
            end = last
    parts = [
        p.get("seconds", 0.0)
        for r in rows
        if r.stage == "desensitize"
        for p in (r.details or {}).get("partitions", [])
    ]
    ledger_span = (
        (
            max(r.finished_at for r in rows if r.finished_at) - min(r.started_at for r in rows)
        ).total_seconds()
        if rows
        else 0.0
    )
    return {
        "stages": spans,
        "stages_to_barrier": barrier,
        "stages_table_sum": sums,
        "stages_slowest_table": slowest,
        "desensitize_parts_seconds": round(sum(parts), 3),
        "desensitize_parts": len(parts),
        "ledger_seconds": round(ledger_span, 3),
        "outside_stages_seconds": round(max(0.0, run_seconds - covered), 3),
    }


def run_one(args: argparse.Namespace) -> int:
    """Run one size to the gate in this process; print its figures as one marked JSON line."""
    enterprises: int = args.one
    home = (args.home_dir or BENCH_DIR / f"home-{enterprises}").resolve()
    source = Path(args.source).resolve()
    if home.exists():
        shutil.rmtree(home)
    os.environ["PDO_HOME"] = str(home)
    os.environ.pop("PDO_DATABASE_URL", None)

    from pdo.cli.root import prepare_prefect

    prepare_prefect()
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)

    from prefect import flow
    from sqlmodel import select

    from flows.pipeline import run_to_gate, start_run
    from flows.runners import RunnerChoice
    from pdo.ledger.db import session_scope
    from pdo.ledger.models import StageRun
    from pdo.registration import grant_every_table
    from pdo.settings import Settings
    from pdo.workspace import Workspace
    from products.registry import PRODUCTS

    @flow(name="bench-pipeline-warm-up")
    def warm_up() -> int:
        return 1

    ws = Workspace.open(Settings(home=home))
    with session_scope(ws.engine) as s:
        auth = grant_every_table(
            s, reference="bench-pipeline", products=[p.name for p in PRODUCTS], actor="bench"
        )
        authorization_id = auth.id
    started = time.perf_counter()
    warm_up()  # starts the ephemeral Prefect API: not pipeline time
    log(f"[{enterprises:,}] Prefect API up in {time.perf_counter() - started:.1f}s")
    run = start_run(ws, source, "bench", authorization_id)
    runner = RunnerChoice(args.runner, args.dask_address, args.workers)
    log(f"[{enterprises:,}] running {run.id} to the gate on {runner.describe()}")
    result: dict[str, Any] = {"enterprises": enterprises, "run_id": run.id}
    sampler = RssSampler()
    sampler.start()
    started = time.perf_counter()
    try:
        status = run_to_gate(run.id, str(home), None, runner=runner, partitions=args.partitions)
    except BaseException as exc:  # reported to the parent, which exits 1
        traceback.print_exc()
        status = "failed"
        result["error"] = f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - started
    sampler.stop()
    peak = _maxrss_gb()

    with session_scope(ws.engine) as s:
        rows = list(s.exec(select(StageRun).where(StageRun.run_id == run.id)).all())
        stages = _stage_figures(rows, seconds)
        stages["stage_peak_rss_gb"] = stage_peaks(rows, sampler)
        source_rows = sum(r.rows_in for r in rows if r.stage == "ingest")
    result.update(
        {
            "status": status,
            "seconds": round(seconds, 3),
            "peak_rss_gb": round(peak, 3),
            "source_rows": source_rows,
            "rows_per_second": round(source_rows / seconds) if seconds else 0,
            **stages,
        }
    )
    if status != "awaiting_signoff" and "error" not in result:
        result["error"] = f"the run ended {status!r}, not 'awaiting_signoff'"
    print(RESULT_PREFIX + json.dumps(result, ensure_ascii=False), flush=True)
    return 1 if "error" in result else 0


def spawn_one(args: argparse.Namespace, enterprises: int, source: Path) -> dict[str, Any]:
    """This script with --one in a fresh process; its marked result line, parsed."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--one",
        str(enterprises),
        "--source",
        str(source),
        "--runner",
        args.runner,
        "--workers",
        str(args.workers),
    ]
    if args.dask_address:
        cmd += ["--dask-address", args.dask_address]
    if args.partitions:
        cmd += ["--partitions", str(args.partitions)]
    if args.home_dir:
        cmd += ["--home-dir", str(args.home_dir)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
    for line in proc.stdout.splitlines():
        if not line.startswith(RESULT_PREFIX):
            print(line, file=sys.stderr)
    if not lines:
        return {
            "enterprises": enterprises,
            "status": "crashed",
            "error": f"the subprocess exited {proc.returncode} without a result",
        }
    return dict(json.loads(lines[-1][len(RESULT_PREFIX) :]))


# -- report ---------------------------------------------------------------------------------------


def doubling(n1: int, t1: float, n2: int, t2: float) -> float:
    """The seconds ratio normalized to one doubling of the size."""
    return float((t2 / t1) ** (1 / math.log2(n2 / n1)))


def targets(sizes: dict[int, dict[str, Any]], per_doubling: dict[str, float]) -> list[list[str]]:
    """[target, measured, verdict] rows."""
    out: list[list[str]] = []
    if TARGET_ENTERPRISES in sizes:
        s = sizes[TARGET_ENTERPRISES]["seconds"]
        target = f"1M enterprises ≤ {TARGET_SECONDS:.0f} s"
        out.append([target, f"{s:.1f} s", _verdict(s <= TARGET_SECONDS)])
    else:
        largest = max(sizes)
        t = sizes[largest]["seconds"]
        rate = max(per_doubling.values()) if per_doubling else 2.0
        estimate = t * rate ** math.log2(TARGET_ENTERPRISES / largest)
        out.append(
            [
                f"1M enterprises ≤ {TARGET_SECONDS:.0f} s",
                f"not measured (≈{estimate:,.0f} s extrapolated from {largest:,} at {rate:.2f}×)",
                "—",
            ]
        )
    for n, fig in sorted(sizes.items()):
        out.append(
            [
                f"peak RSS ≤ {TARGET_RSS_GB:.0f} GB ({n:,})",
                f"{fig['peak_rss_gb']:.2f} GB",
                _verdict(fig["peak_rss_gb"] <= TARGET_RSS_GB),
            ]
        )
    for pair, r in per_doubling.items():
        target = f"doubling ≤ {TARGET_DOUBLING}× ({pair})"
        out.append([target, f"{r:.2f}×", _verdict(r <= TARGET_DOUBLING)])
    return out


def _verdict(ok: bool) -> str:
    return "[green]pass[/]" if ok else "[red]FAIL[/]"


def print_tables(sizes: dict[int, dict[str, Any]], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(soft_wrap=False, width=140)
    timing = Table(title="pipeline to the gate, per size (stages: s after the one before)")
    for col in ("enterprises", "source rows", "run s", "I/O s", "×I/O", "rows/s", "RSS GB"):
        timing.add_column(col, justify="right")
    for stage in STAGES:
        timing.add_column(stage, justify="right")
    for n, f in sorted(sizes.items()):
        timing.add_row(
            f"{n:,}",
            f"{f['source_rows']:,}",
            f"{f['seconds']:.1f}",
            f"{f['io_seconds']:.2f}",
            f"{f['seconds'] / f['io_seconds']:.0f}",
            f"{f['rows_per_second']:,}",
            f"{f['peak_rss_gb']:.2f}",
            *[f"{f['stages_to_barrier'].get(s, 0.0):.1f}" for s in STAGES],
        )
    console.print(timing)
    memory = Table(title="peak RSS (GB) of the run's process while each stage ran")
    memory.add_column("enterprises", justify="right")
    for stage in STAGES:
        memory.add_column(stage, justify="right")
    for n, f in sorted(sizes.items()):
        peaks = f.get("stage_peak_rss_gb", {})
        memory.add_row(f"{n:,}", *[f"{peaks[s]:.2f}" if s in peaks else "—" for s in STAGES])
    console.print(memory)
    table = Table(title="targets")
    for col in ("target", "measured", "verdict"):
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    console.print(table)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--enterprises", type=int, nargs="+", default=[100_000])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="the source files (one size only; default var/bench/pipeline/src-<N>-<seed>)",
    )
    parser.add_argument("--runner", choices=("local", "dask"), default="local")
    parser.add_argument("--dask-address", help="a running Dask scheduler (default: LocalCluster)")
    parser.add_argument("--workers", type=int, default=2, help="threads or Dask workers")
    parser.add_argument(
        "--partitions", type=int, help="partitions per table (default: the setting's choice)"
    )
    parser.add_argument("--home-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.one is not None:
        return run_one(args)

    ns = sorted(set(args.enterprises))
    if args.data_dir is not None and len(ns) > 1:
        parser.error("--data-dir holds one size: give one --enterprises with it")
    if min(ns) < 1:
        parser.error("--enterprises must be positive")

    sizes: dict[int, dict[str, Any]] = {}
    for n in ns:
        data_dir = (args.data_dir or BENCH_DIR / f"src-{n}-{args.seed}").resolve()
        source, gen_seconds, reused = ensure_sources(data_dir, n, args.seed)
        io = io_baseline(source)
        log(f"[{n:,}] I/O baseline {io['seconds']:.2f}s over {io['rows']:,} rows")
        one = spawn_one(args, n, source)
        if "error" in one:
            print(f"error: {n:,} enterprises: {one['error']}", file=sys.stderr)
            return 1
        log(f"[{n:,}] {one['status']} in {one['seconds']:.1f}s, RSS {one['peak_rss_gb']:.2f} GB")
        sizes[n] = {
            **{k: v for k, v in one.items() if k not in ("enterprises", "run_id")},
            "io_seconds": round(io["seconds"], 3),
            "generate_seconds": round(gen_seconds, 1),
            "reused_sources": reused,
        }

    per_doubling = {
        f"{n1}-{n2}": round(doubling(n1, sizes[n1]["seconds"], n2, sizes[n2]["seconds"]), 3)
        for n1, n2 in itertools.pairwise(ns)
    }
    rows = targets(sizes, per_doubling)
    print_tables(sizes, rows)

    largest = sizes[ns[-1]]
    figures: dict[str, Any] = {
        "seconds": largest["seconds"],
        "peak_rss_gb": largest["peak_rss_gb"],
        "rows_per_second": largest["rows_per_second"],
        "stages": largest["stages"],
        "stages_to_barrier": largest["stages_to_barrier"],
        "sizes": {str(n): f for n, f in sizes.items()},
        "max_peak_rss_gb": max(f["peak_rss_gb"] for f in sizes.values()),
    }
    if per_doubling:
        figures["max_time_per_doubling"] = max(per_doubling.values())
    ratios: dict[str, Any] = {
        "pipeline_vs_io": {
            str(n): round(f["seconds"] / f["io_seconds"], 1) for n, f in sizes.items()
        }
    }
    if per_doubling:
        ratios["time_per_doubling"] = per_doubling
    params = {
        "enterprises": ns,
        "seed": args.seed,
        "runner": args.runner,
        "dask_address": args.dask_address,
        "workers": args.workers,
        "partitions": args.partitions,
        "cpus": os.cpu_count(),
        "targets": {
            "seconds_at_1m": TARGET_SECONDS,
            "peak_rss_gb": TARGET_RSS_GB,
            "time_per_doubling": TARGET_DOUBLING,
        },
    }
    print(json.dumps({"bench": "pipeline", "figures": figures, "ratios": ratios, "params": params},
                     ensure_ascii=False))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
