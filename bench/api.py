"""Metered score lookups of the delivery API vs a bare FastAPI endpoint, one run, same machine.

Subject: ``GET /v1/products/credit_risk/scores/{uscc}?purpose=贷前审查&consent=REF`` with
``X-API-Key``, served by ``api.app.create_app`` exactly as ``pdo api`` runs it (uvicorn on uvloop
and httptools, one process, ``log_level="warning"``): key, product, purpose, subscription scope,
the grant behind the live version, the enterprise's consent, quota, the daily disclosure budget,
the served row, then a ``UsageEvent`` and its audit-chain record — decided and written in the
serving worker's group-committed transaction before the answer is sent. (Revenue is split at
settlement.)

Baseline: a bare FastAPI app whose one endpoint returns a constant, served by uvicorn with the
same options. By default it is an ``async def`` endpoint like the lookup's (the framework's
floor); ``--bare sync`` makes it a plain ``def`` (run in Starlette's thread pool).
``--server-stack asyncio`` runs both servers on uvicorn's pure-Python stack (asyncio, h11) instead;
``params.server_stack`` names the stack measured.

Data: a fresh pdo home (SQLite under a temporary directory, or a temporary database created on
the PostgreSQL server of ``--database-url`` / ``PDO_TEST_POSTGRES_URL`` and dropped afterwards)
seeded through the project's own models and functions: a grant (``grant_authorization``), a
published run with its approval, product ``credit_risk`` and version ``credit_risk@1``,
``--scores`` ``ServedScore`` rows of company USCCs (prefix 91: served under their public code,
so no pseudonym is involved), one bank (``add_subscriber``, a daily budget above ``--scores``)
whose key the load uses, and one consent per enterprise for that bank (inserted in bulk). Each
request asks for a random USCC of the seeded set under its consent.

Phases, per ledger backend: closed-loop throughput at ``--concurrency`` (a raw keep-alive client
in this process, servers in subprocesses) for ``--seconds``, after ``--warmup`` seconds of the
same, alternating with the bare endpoint in ``--rounds`` equal slices so that both see the same
machine; then an open-loop driver at ``--rate`` requests/s for ``--seconds`` whose latencies are
measured from each request's *scheduled* send time (a slow answer delays nobody's clock: no
coordinated omission). Each phase runs with the client's garbage collector held off (its full
collections paused it for up to 140 ms, which the scheduled-send clock would have charged to the
server). ``client_cpu_share`` is the load
generator's CPU time over wall time: near 1.0 means the client, not the server, was the limit
(this box may have few cores: client and server share them).

Metering check: after the phases, the ``UsageEvent`` rows in the ledger must equal the number of
200 answers the client received (warm-up included), every event must have its record on the audit
chain and the chain must verify: ``lost_usage_events`` is 200s minus events (0 expected; negative
would mean billed but not answered). The exit status is 1 when they differ.

``BENCH_PROFILE=FILE`` makes the lookup server write a cProfile of its whole run to FILE.

The seeding, the two servers and the load clients live in ``bench/loadgen.py`` (``bench/soak.py``
uses them too); this file runs the phases and checks the metering.

The last line of output is one JSON object: {"bench": "api", "figures", "ratios", "params"}.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this file's folder leads sys.path and bench/api.py would shadow the api package:
# the folder goes last (bench/loadgen.py is found there), after the project root.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))

from loadgen import (  # noqa: E402
    SERVER_STACKS,
    VERSION,
    Phase,
    Target,
    closed_loop,
    log,
    measured,
    open_loop,
    seed_home,
    server,
    stack_in_use,
)

TARGET_RATIO = 0.5
TARGET_P99_MS = 25.0


# -- the ledger -----------------------------------------------------------------------------------


def count_metering(db_url: str, subscriber_id: str) -> tuple[int, int, bool]:
    """The bank's usage events, those with their audit-chain record, and whether the chain holds."""
    from sqlmodel import col, func, select

    from pdo import audit
    from pdo.ledger.db import make_engine, session_scope
    from pdo.ledger.models import AuditEvent, UsageEvent

    engine = make_engine(db_url)
    try:
        with session_scope(engine) as s:
            events = s.exec(
                select(func.count())
                .select_from(UsageEvent)
                .where(UsageEvent.subscriber_id == subscriber_id)
            ).one()
            chained = s.exec(
                select(func.count())
                .select_from(UsageEvent)
                .join(AuditEvent, col(AuditEvent.subject) == col(UsageEvent.id))
                .where(UsageEvent.subscriber_id == subscriber_id)
                .where(AuditEvent.action == "query.serve")
            ).one()
            intact = audit.verify(s).ok
    finally:
        engine.dispose()
    return int(events), int(chained), intact


@contextmanager
def postgres_database(url: str) -> Iterator[str]:
    """A fresh database on url's server (dropped afterwards); yields its URL."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin_url = make_url(url)
    name = f"pdo_bench_{secrets.token_hex(4)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# -- the run --------------------------------------------------------------------------------------


def run_backend(
    label: str, database_url: str | None, args: argparse.Namespace, bare: Target
) -> tuple[dict[str, Any], dict[str, float], bool]:
    """Seed a home on this backend, load it, check the metering; figures, ratios, ok.

    Throughput alternates between the bare endpoint and the lookup in `--rounds` short
    phases, so both see the same machine (its speed drifts by ±30 % over a minute here);
    the ratio is total lookups over total bare answers in equal time.
    """
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="pdo-bench-api-") as tmp:
        log(f"[{label}] seeding {args.scores:,} served scores…")
        started = time.perf_counter()
        home = seed_home(Path(tmp), database_url, args.scores, rng)
        seed_seconds = time.perf_counter() - started
        successes = 0  # 200 answers seen by the client: each must be metered exactly once
        with server("lookup", home.env, args.server_stack) as base:
            target = Target(base, home, rng)
            answer = httpx.get(base + target.path(), headers=target.headers, timeout=30)
            if answer.status_code != 200 or answer.json().get("product_version") != VERSION:
                raise RuntimeError(f"lookup answered {answer.status_code}: {answer.text[:300]}")
            successes += 1
            log(f"[{label}] lookup warm-up {args.warmup}s…")
            warm = measured(closed_loop(target, args.concurrency, args.warmup, args.client))
            successes += warm.statuses[200]
            log(
                f"[{label}] throughput, concurrency {args.concurrency}, bare and lookup in turn, "
                f"{args.rounds} × {args.seconds / args.rounds:g}s each…"
            )
            throughput, baseline = Phase(), Phase()
            for _ in range(args.rounds):
                slot = args.seconds / args.rounds
                baseline.add(measured(closed_loop(bare, args.concurrency, slot, args.client)))
                throughput.add(measured(closed_loop(target, args.concurrency, slot, args.client)))
            successes += throughput.statuses[200]
            log(f"[{label}] lookup latency at {args.rate:g} requests/s, {args.seconds}s…")
            latency = measured(
                open_loop(target, args.rate, args.seconds, args.connections, args.client)
            )
            successes += latency.statuses[200]
        events, chained, chain_intact = count_metering(home.db_url, home.subscriber_id)
    tp, lat, floor = throughput.figures(), latency.figures(), baseline.figures()
    equal = events == successes and chained == events and chain_intact
    figures: dict[str, Any] = {
        "seed_seconds": round(seed_seconds, 2),
        "bare_throughput": floor,
        "bare_rps": floor["rps"],
        "lookup_throughput": tp,
        "lookup_latency_at_rate": lat,
        "lookup_rps": tp["rps"],
        f"p50_ms_at_{args.rate:g}rps": lat.get("p50_ms"),
        f"p95_ms_at_{args.rate:g}rps": lat.get("p95_ms"),
        f"p99_ms_at_{args.rate:g}rps": lat.get("p99_ms"),
        "successes": successes,
        "usage_events": events,
        "usage_events_on_audit_chain": chained,
        "audit_chain_intact": chain_intact,
        "lost_usage_events": successes - events,
        "usage_events_equal_successes": equal,
    }
    ratios = {
        f"metered_vs_bare_{label}": round(tp["rps"] / floor["rps"], 3) if floor["rps"] else 0.0
    }
    p99 = lat.get("p99_ms")
    figures["meets_targets"] = bool(
        ratios[f"metered_vs_bare_{label}"] >= TARGET_RATIO
        and p99 is not None
        and p99 <= TARGET_P99_MS
        and equal
    )
    log(
        f"[{label}] bare {floor['rps']} req/s, lookup {tp['rps']} req/s, "
        f"p50/p95/p99 {lat.get('p50_ms')}/{lat.get('p95_ms')}/{lat.get('p99_ms')} ms "
        f"at {args.rate:g} req/s, "
        f"usage events {events} vs 200s {successes}"
    )
    return figures, ratios, equal


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--scores", type=int, default=10_000, help="ServedScore rows to seed")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument(
        "--rounds", type=int, default=5, help="bare/lookup alternations in the throughput phase"
    )
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up before each server")
    parser.add_argument("--concurrency", type=int, default=32, help="closed-loop workers")
    parser.add_argument("--rate", type=float, default=300.0, help="open-loop requests/s")
    parser.add_argument("--connections", type=int, default=64, help="open-loop connection cap")
    parser.add_argument("--bare", choices=("sync", "async"), default="async")
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw", help="load client")
    parser.add_argument(
        "--server-stack",
        choices=sorted(SERVER_STACKS),
        default="fast",
        help="uvicorn's loop and HTTP parser for both servers: fast (as `pdo api` runs: uvloop, "
        "httptools) or asyncio (asyncio, h11)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("PDO_TEST_POSTGRES_URL"),
        help="a PostgreSQL server (a temporary database is created there); "
        "default $PDO_TEST_POSTGRES_URL; SQLite always runs",
    )
    parser.add_argument("--no-sqlite", action="store_true", help="only the PostgreSQL run")
    parser.add_argument("--seed", type=int, default=20261125)
    args = parser.parse_args(list(argv) if argv is not None else None)

    figures: dict[str, Any] = {}
    ratios: dict[str, float] = {}
    ok = True
    backends: list[tuple[str, str | None]] = [] if args.no_sqlite else [("sqlite", None)]
    if args.database_url:
        backends.append(("postgresql", args.database_url))
    with server(f"bare-{args.bare}", {}, args.server_stack) as bare_base:
        bare = Target(bare_base, None, random.Random(args.seed))
        log(f"bare ({args.bare}) warm-up {args.warmup}s…")
        measured(closed_loop(bare, args.concurrency, args.warmup, args.client))
        for label, url in backends:
            if url is None:
                fig, rat, equal = run_backend(label, None, args, bare)
            else:
                with postgres_database(url) as db_url:
                    fig, rat, equal = run_backend(label, db_url, args, bare)
            figures[label], ok = fig, ok and equal
            ratios |= rat
    first = backends[0][0] if backends else None
    if first is not None:  # the headline keys (DESIGN §6) name the first backend run
        ratios["metered_vs_bare"] = ratios[f"metered_vs_bare_{first}"]
        figures[f"p99_ms_at_{args.rate:g}rps"] = figures[first][f"p99_ms_at_{args.rate:g}rps"]
    figures["lost_usage_events"] = sum(figures[label]["lost_usage_events"] for label, _ in backends)

    params = {
        "scores": args.scores,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "warmup": args.warmup,
        "concurrency": args.concurrency,
        "rate": args.rate,
        "connections": args.connections,
        "bare": args.bare,
        "client": args.client,
        "server_stack": stack_in_use(args.server_stack),
        "backends": [label for label, _ in backends],
        "targets": {"metered_vs_bare": TARGET_RATIO, f"p99_ms_at_{args.rate:g}rps": TARGET_P99_MS},
        "cpus": os.cpu_count(),
        "seed": args.seed,
    }
    print(json.dumps({"bench": "api", "figures": figures, "ratios": ratios, "params": params}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
