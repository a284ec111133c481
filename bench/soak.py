"""A soak of the delivery API: steady lookups for minutes, with watchlist alerts and batch files.

Subject: the API exactly as ``bench/api.py`` serves it (``api.app.create_app`` under uvicorn, one
process, on a home seeded by ``bench/loadgen.py``'s ``seed_home``, as ``bench/api.py``'s is: a
published ``credit_risk@1``, ``--scores`` served enterprises with a consent each, one bank). For
``--seconds`` it runs, at once:

- lookups at ``--rate`` requests/s on a fixed schedule (the open-loop driver of
  ``bench/loadgen.py``);
- every ``--batch-every`` seconds: one enterprise added to the bank's watchlist (``PUT
  /v1/watchlists/{id}/members``), its portfolio file built (``POST .../batches``, 201: billed
  once) and fetched, the file's SHA-256 checked against the manifest and the header;
- every ``--alert-every`` seconds: a risk event on a watched enterprise (``raise_alerts_for``, as
  the pipeline raises them) and a webhook dispatch round (``dispatch_due``) to a receiver on
  localhost that checks each HMAC signature.

The API server's resident memory is read every ``--sample-every`` seconds; its slope (MB per
minute, least squares over the samples after the first minute, or after the first quarter of a
short run) is the leak figure.

Checks, after the load: every lookup answered 200 (``errors`` counts anything else, transport
failures included), batches and alerts all delivered and verified, and the bank's usage events
equal the lookups answered plus the batch files built plus the alerts delivered (one each, never
two). The exit status is 1 when any check fails.

The last line of output is one JSON object: {"bench": "soak", "figures", "ratios", "params"}.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import http.server
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK_NETWORKS = ["127.0.0.0/8"]  # where the soak's own webhook receiver listens
# Run as a script, this file's folder leads sys.path and bench/api.py would shadow the api package:
# the folder goes last (bench/loadgen.py is found there), after the project root.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))

import loadgen  # noqa: E402


@dataclass
class Receiver:
    """A webhook endpoint on localhost that keeps the alerts whose signature verifies."""

    secret: str = ""
    verified: list[str] = field(default_factory=list)
    rejected: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def webhook_receiver() -> Iterator[tuple[str, Receiver]]:
    """Serve a receiver in a thread; yields its URL and what it received."""
    from pdo.delivery.webhooks import verify_signature

    received = Receiver()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            ts, sig = self.headers.get("X-PDO-Timestamp"), self.headers.get("X-PDO-Signature")
            ok = verify_signature(received.secret, body, ts, sig)
            with received.lock:
                if ok:
                    received.verified.append(json.loads(body)["id"])
                else:
                    received.rejected += 1
            self.send_response(200 if ok else 401)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            """Quiet: the figures count what arrived."""

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/hook", received
    finally:
        httpd.shutdown()
        httpd.server_close()


@dataclass
class SideJobs:
    """What the batch and alert jobs did while the lookups ran."""

    batches: int = 0
    batch_checksum_failures: int = 0
    alerts_raised: int = 0
    alerts_delivered: int = 0
    errors: Counter[str] = field(default_factory=Counter)


def side_jobs(
    base: str,
    home: Any,
    watchlist_id: str,
    stop: threading.Event,
    args: argparse.Namespace,
    jobs: SideJobs,
) -> None:
    """Batch files and alert rounds on their own schedules until stop is set."""
    from pdo.delivery.alerts import raise_alerts_for
    from pdo.delivery.egress import Egress
    from pdo.delivery.webhooks import dispatch_due
    from pdo.ledger.db import make_engine, session_scope
    from pdo.settings import Settings

    engine = make_engine(home.db_url)
    server_key = Settings(home=Path(home.env["PDO_HOME"])).read_pseudonym_key()[1]
    headers = {"X-API-Key": home.api_key}
    watched = iter(home.usccs[1:])
    members = [home.usccs[0]]
    next_batch = next_alert = time.monotonic()
    round_no = 0
    with httpx.Client(base_url=base, headers=headers, timeout=30) as http_client:
        while not stop.wait(0.2):
            now = time.monotonic()
            if now >= next_batch:
                next_batch = now + args.batch_every
                member = next(watched)
                members.append(member)
                added = http_client.put(
                    f"/v1/watchlists/{watchlist_id}/members", json=[{"uscc": member}]
                )
                built = http_client.post(
                    f"/v1/watchlists/{watchlist_id}/batches", json={"format": "parquet"}
                )
                if added.status_code != 200 or built.status_code != 201:
                    jobs.errors[f"batch {added.status_code}/{built.status_code}"] += 1
                else:
                    manifest = built.json()
                    got = http_client.get(f"/v1/batches/{manifest['batch']}/file")
                    digest = hashlib.sha256(got.content).hexdigest()
                    if not (digest == manifest["sha256"] == got.headers.get("X-PDO-SHA256")):
                        jobs.batch_checksum_failures += 1
                    jobs.batches += 1
            if now >= next_alert:
                next_alert = now + args.alert_every
                round_no += 1
                with session_scope(engine) as s:
                    raised = raise_alerts_for(
                        s,
                        product_name=loadgen.PRODUCT,
                        uscc=random.choice(members),
                        kind="grade_drop",
                        event_key=f"soak-{round_no}",
                        product_version_id=loadgen.VERSION,
                        payload={"grade": "D"},
                    )
                    jobs.alerts_raised += len(raised)
                # the receiver listens on loopback, which pushes reach only when allowed
                report = dispatch_due(engine, server_key, egress=Egress.allowing(LOOPBACK_NETWORKS))
                jobs.alerts_delivered += report.delivered
    engine.dispose()


def rss_mb(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / 2**20


def slope_mb_per_min(samples: list[tuple[float, float]], skip_s: float) -> float:
    """Least-squares slope of RSS over time, after the warm-up."""
    kept = [(t, m) for t, m in samples if t >= skip_s]
    if len(kept) < 3:
        return 0.0
    fit = statistics.linear_regression([t for t, _ in kept], [m for _, m in kept])
    return round(fit.slope * 60, 3)


def usage_counts(db_url: str, subscriber_id: str) -> Counter[str]:
    """The bank's usage events by kind."""
    from sqlmodel import func, select

    from pdo.ledger.db import make_engine, session_scope
    from pdo.ledger.models import UsageEvent

    engine = make_engine(db_url)
    try:
        with session_scope(engine) as s:
            rows = s.exec(
                select(UsageEvent.kind, func.count())
                .where(UsageEvent.subscriber_id == subscriber_id)
                .group_by(UsageEvent.kind)
            ).all()
    finally:
        engine.dispose()
    return Counter({kind: int(n) for kind, n in rows})


async def sampled_load(
    target: Any, args: argparse.Namespace, pid: int, samples: list[tuple[float, float]]
) -> Any:
    """The open-loop lookups, with the server's RSS sampled alongside."""
    started = time.monotonic()

    async def sample() -> None:
        while True:
            samples.append((time.monotonic() - started, rss_mb(pid)))
            await asyncio.sleep(args.sample_every)

    sampler = asyncio.create_task(sample())
    try:
        return await loadgen.open_loop(target, args.rate, args.seconds, args.connections, "raw")
    finally:
        sampler.cancel()
        samples.append((time.monotonic() - started, rss_mb(pid)))


def run(args: argparse.Namespace) -> tuple[dict[str, Any], bool]:
    """Seed, serve, soak, then count; the figures and whether every check held."""
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="pdo-soak-") as tmp, webhook_receiver() as hook:
        hook_url, received = hook
        loadgen.log(f"seeding {args.scores:,} served scores…")
        home = loadgen.seed_home(Path(tmp), None, args.scores, rng)
        samples: list[tuple[float, float]] = []
        jobs, stop = SideJobs(), threading.Event()
        # the receiver listens on loopback: allowed, as an operator allows a bank's private line
        allowed = {"PDO_WEBHOOK_ALLOWED_NETWORKS": json.dumps(LOOPBACK_NETWORKS)}
        with loadgen.server("lookup", home.env | allowed) as base:
            key = {"X-API-Key": home.api_key}
            created = httpx.post(
                f"{base}/v1/watchlists",
                headers=key,
                json={"name": "soak", "product": loadgen.PRODUCT, "webhook_url": hook_url},
                timeout=30,
            )
            created.raise_for_status()
            watch = created.json()
            received.secret = watch["webhook_secret"]
            httpx.put(
                f"{base}/v1/watchlists/{watch['id']}/members",
                headers=key,
                json=[{"uscc": home.usccs[0]}],
                timeout=30,
            ).raise_for_status()

            def run_side_jobs() -> None:
                """A failure counts as an error (and ends the jobs), never lost in a thread."""
                try:
                    side_jobs(base, home, watch["id"], stop, args, jobs)
                except Exception as exc:
                    jobs.errors[f"side job failed: {type(exc).__name__}: {exc}"[:200]] += 1

            worker = threading.Thread(target=run_side_jobs, daemon=True)
            loadgen.log(f"soak: {args.rate:g} lookups/s for {args.seconds:g}s, batches and alerts…")
            worker.start()
            try:
                target = loadgen.Target(base, home, rng)
                load = loadgen.measured(
                    sampled_load(target, args, loadgen.SERVER_PIDS[base], samples)
                )
            finally:
                stop.set()
                worker.join(timeout=120)
        usage = usage_counts(home.db_url, home.subscriber_id)
    served = load.statuses[200]
    errors = load.requests - served + sum(jobs.errors.values())
    skip = 60.0 if args.seconds >= 240 else args.seconds / 4
    figures: dict[str, Any] = {
        "seconds": args.seconds,
        "lookups": load.requests,
        "lookups_served": served,
        "lookup_statuses": {str(k): v for k, v in sorted(load.statuses.items())},
        "side_job_errors": dict(jobs.errors),
        "errors": errors,
        "batches": jobs.batches,
        "batch_checksum_failures": jobs.batch_checksum_failures,
        "alerts_raised": jobs.alerts_raised,
        "alerts_delivered": jobs.alerts_delivered,
        "alerts_verified_by_receiver": len(set(received.verified)),
        "alerts_rejected_by_receiver": received.rejected,
        "usage_events": dict(usage),
        "p99_ms": load.figures().get("p99_ms"),
        "rss_mb_first": round(samples[0][1], 1) if samples else None,
        "rss_mb_last": round(samples[-1][1], 1) if samples else None,
        "rss_mb_max": round(max(m for _, m in samples), 1) if samples else None,
        "rss_slope_mb_per_min": slope_mb_per_min(samples, skip),
        "rss_samples": len(samples),
    }
    checks = {
        "no_errors": errors == 0,
        "lookups_metered_once": usage["query"] == served,
        "batches_metered_once": usage["batch"] == jobs.batches and jobs.batches > 0,
        "batches_verified": jobs.batch_checksum_failures == 0,
        "alerts_delivered": jobs.alerts_delivered == jobs.alerts_raised > 0,
        "alerts_metered_once": usage["alert"] == jobs.alerts_delivered,
        "alerts_verified": len(set(received.verified)) == jobs.alerts_delivered
        and received.rejected == 0,
    }
    figures["checks"] = checks
    return figures, all(checks.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="length of the soak")
    parser.add_argument("--rate", type=float, default=100.0, help="lookups per second")
    parser.add_argument("--connections", type=int, default=32, help="client connection cap")
    parser.add_argument("--scores", type=int, default=5_000, help="served enterprises to seed")
    parser.add_argument("--batch-every", type=float, default=15.0, help="seconds between files")
    parser.add_argument("--alert-every", type=float, default=5.0, help="seconds between alerts")
    parser.add_argument("--sample-every", type=float, default=2.0, help="RSS sampling period")
    parser.add_argument("--seed", type=int, default=20261201)
    args = parser.parse_args(argv)
    figures, ok = run(args)
    loadgen.log(
        f"soak {args.seconds:g}s: {figures['lookups_served']}/{figures['lookups']} lookups, "
        f"{figures['batches']} batches, {figures['alerts_delivered']} alerts, "
        f"errors {figures['errors']}, RSS {figures['rss_mb_first']}→{figures['rss_mb_last']} MB "
        f"(slope {figures['rss_slope_mb_per_min']} MB/min), checks {'ok' if ok else 'FAILED'}"
    )
    ratios = {
        "usage_events_vs_deliveries": round(
            sum(figures["usage_events"].values())
            / max(1, figures["lookups_served"] + figures["batches"] + figures["alerts_delivered"]),
            4,
        )
    }
    params = vars(args) | {"cpus": psutil.cpu_count()}
    print(json.dumps({"bench": "soak", "figures": figures, "ratios": ratios, "params": params}))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
