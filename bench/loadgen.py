"""The load generator shared by the API benches (``bench/api.py``, ``bench/soak.py``).

A seeded pdo home (``seed_home``: a grant, a published ``credit_risk@1`` with ``scores``
``ServedScore`` rows of company USCCs, one bank with a consent per enterprise), the servers it is
measured on (``server``: ``api.app.create_app`` exactly as ``pdo api`` runs it, or a bare FastAPI
endpoint, each a uvicorn subprocess of this file; their process ids in ``SERVER_PIDS``), and the
clients that load them (``closed_loop``, ``open_loop``: a raw keep-alive pool or httpx; latency of
the open loop counted from each scheduled send time; ``measured`` runs a phase with the client's
garbage collector held off).

Named ``loadgen``, not after the API: as a script, ``bench/`` leads ``sys.path`` and a file named
``api.py`` there would shadow the ``api`` package. Run as ``python bench/loadgen.py --serve KIND
--port PORT`` it is the server subprocess (``BENCH_PROFILE=FILE`` makes the lookup server write a
cProfile of its whole run to FILE).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import os
import random
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Coroutine, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

ROOT = Path(__file__).resolve().parents[1]

PRODUCT = "credit_risk"
VERSION = "credit_risk@1"
PURPOSE = "贷前审查"
PRICE_FEN = 200
SHARES_BP = {"market": 1500, "tax": 1500, "hrss": 1000, "utilities": 800, "credit": 600}
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
GRADES = ("A", "B", "C", "D", "E")
BARE_BODY = {"status": "ok", "score": 642, "grade": "B"}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the servers ----------------------------------------------------------------------------------


def bare_app(mode: str) -> Any:
    """A FastAPI app with one endpoint that returns a constant."""
    from fastapi import FastAPI

    app = FastAPI()
    if mode == "async":

        @app.get("/bare")
        async def bare_async() -> dict[str, Any]:
            return BARE_BODY

    else:

        @app.get("/bare")
        def bare_sync() -> dict[str, Any]:
            return BARE_BODY

    return app


# uvicorn's loop and HTTP implementations by stack: "fast" is what `pdo api` runs (uvicorn's
# "auto": uvloop and httptools, installed with pdo); "asyncio" is its pure-Python fallback.
SERVER_STACKS = {"fast": ("auto", "auto"), "asyncio": ("asyncio", "h11")}


def stack_in_use(stack: str) -> str:
    """The loop and HTTP parser uvicorn itself resolves stack to here, e.g. ``uvloop+httptools``."""
    import uvicorn

    loop, http = SERVER_STACKS[stack]
    config = uvicorn.Config(bare_app("async"), loop=loop, http=http, log_level="warning")
    config.load()
    factory = config.get_loop_factory()
    event_loop = factory() if factory else asyncio.new_event_loop()
    try:
        loop_name = type(event_loop).__module__.split(".")[0]  # uvloop.Loop, asyncio.*EventLoop
    finally:
        event_loop.close()
    http_name = config.http_protocol_class.__module__.rsplit(".", 1)[-1].removesuffix("_impl")
    return f"{loop_name}+{http_name}"


def serve(kind: str, port: int, stack: str) -> None:
    """Subprocess entry: serve the real API (settings from PDO_* env) or the bare app."""
    import uvicorn

    if kind == "lookup":
        from api.app import create_app
        from pdo.settings import Settings

        app = create_app(Settings())
    else:
        app = bare_app(kind.removeprefix("bare-"))
    if os.environ.get("BENCH_PROFILE") and kind == "lookup":
        import cProfile
        import signal

        profile = cProfile.Profile()

        def dump(*_: object) -> None:  # uvicorn re-raises SIGTERM after its shutdown
            profile.disable()
            profile.dump_stats(os.environ["BENCH_PROFILE"])
            os._exit(0)

        signal.signal(signal.SIGTERM, dump)
        profile.enable()
    loop, http = SERVER_STACKS[stack]
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", loop=loop, http=http)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# The process id of each running server, by base URL (bench/soak.py samples its memory).
SERVER_PIDS: dict[str, int] = {}


@contextmanager
def server(kind: str, env: dict[str, str], stack: str = "fast") -> Iterator[str]:
    """A uvicorn subprocess serving kind on stack; yields its base URL, stops it afterwards."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind, "--port", str(port), "--stack", stack],
        env={**os.environ, **env},
        cwd=ROOT,
    )
    base = f"http://127.0.0.1:{port}"
    SERVER_PIDS[base] = proc.pid
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{kind} server exited with {proc.returncode}")
            try:
                httpx.get(f"{base}/docs", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{kind} server did not start") from None
                time.sleep(0.1)
        yield base
    finally:
        SERVER_PIDS.pop(base, None)
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- the ledger -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Home:
    """A seeded pdo home: how to reach it, the bank's key, and the USCCs that have a score."""

    env: dict[str, str]
    db_url: str
    api_key: str
    subscriber_id: str
    usccs: list[str]


def company_usccs(n: int, rng: random.Random) -> list[str]:
    """n distinct valid codes (their check character holds) with the company prefix 91."""
    from pdo.privacy.checksums import uscc_check_char

    out: set[str] = set()
    while len(out) < n:
        first17 = "91" + "".join(rng.choices(USCC_ALPHABET, k=15))
        out.add(first17 + uscc_check_char(first17))
    return sorted(out)


def seed_home(home: Path, database_url: str | None, scores: int, rng: random.Random) -> Home:
    """A published credit_risk@1 with scores rows, its grant and approval, and one bank."""
    from sqlalchemy import insert

    from pdo.delivery.plans import ensure_default_plan
    from pdo.ledger.db import make_engine, session_scope
    from pdo.ledger.models import (
        Consent,
        PipelineRun,
        Product,
        ProductVersion,
        ServedScore,
        SignOff,
    )
    from pdo.ledger.types import utcnow
    from pdo.registration import grant_authorization
    from pdo.revenue import RevenueRule
    from pdo.settings import Settings
    from pdo.subscribers import add_subscriber

    settings = Settings(home=home, database_url=database_url)
    engine = make_engine(settings.db_url)
    usccs = company_usccs(scores, rng)
    try:
        with session_scope(engine) as s:
            auth = grant_authorization(
                s,
                reference="授权〔2026〕基准号",
                tables=["enterprise_registry", "tax_credit"],
                purposes=[PURPOSE, "贷后管理"],
                days=365,
                actor="bench",
                products=[PRODUCT],
            )
            run = PipelineRun(
                source_dir="/bench",
                authorization_id=auth.id,
                started_by="bench",
                status="published",
                review_package_hash="a" * 64,
            )
            s.add(run)
            s.flush()
            approval = SignOff(
                run_id=run.id,
                reviewer="bench",
                role="reviewer",
                decision="approved",
                covers_hash="a" * 64,
            )
            s.add(approval)
            s.add(
                Product(
                    name=PRODUCT,
                    title_zh="中小企业信用风险评分",
                    title_en="SME credit-risk score",
                    purposes=[PURPOSE, "贷后管理"],
                    price_fen=PRICE_FEN,
                )
            )
            s.flush()
            assert approval.id is not None
            s.add(
                ProductVersion(
                    id=VERSION,
                    product_name=PRODUCT,
                    version=1,
                    run_id=run.id,
                    signoff_id=approval.id,
                    output_hash="b" * 64,
                    as_of=dt.date(2025, 12, 31),
                    revenue_weights=RevenueRule(departments_bp=SHARES_BP).weights([]),
                )
            )
            s.flush()
            rows = []
            for uscc in usccs:
                score = rng.randint(350, 850)
                rows.append(
                    {
                        "product_version_id": VERSION,
                        "uscc": uscc,
                        "score": score,
                        "grade": GRADES[min(4, (850 - score) // 100)],
                        "details": {"reason_codes": ["R01", "R07"], "knock_out": False},
                    }
                )
            s.execute(insert(ServedScore), rows)
            product = s.get(Product, PRODUCT)
            assert product is not None
            ensure_default_plan(s, product)
            subscriber, key = add_subscriber(
                s,
                "基准银行",
                "bench",
                [PRODUCT],
                daily_enterprise_budget=scores + 1,
                rate_limit_per_second=100_000,
            )
            subscriber_id = subscriber.id
            now = utcnow()
            s.execute(
                insert(Consent),
                [
                    {
                        "id": f"c{i}",
                        "subscriber_id": subscriber_id,
                        "uscc": uscc,
                        "reference": f"C-{uscc}",
                        "purposes": [PURPOSE],
                        "valid_from": now - dt.timedelta(days=1),
                        "valid_until": now + dt.timedelta(days=30),
                        "registered_by": "bench",
                        "created_at": now,
                    }
                    for i, uscc in enumerate(usccs)
                ],
            )
    finally:
        engine.dispose()
    env = {"PDO_HOME": str(home), "PDO_DATABASE_URL": database_url or ""}
    return Home(env, settings.db_url, key, subscriber_id, usccs)


# -- the load -------------------------------------------------------------------------------------


@dataclass
class Phase:
    """What one phase of load saw."""

    requests: int = 0
    seconds: float = 0.0
    client_cpu: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)

    def add(self, other: Phase) -> None:
        """Fold another phase of the same load into this one."""
        self.requests += other.requests
        self.seconds += other.seconds
        self.client_cpu += other.client_cpu
        self.statuses.update(other.statuses)
        self.latencies_ms.extend(other.latencies_ms)

    def figures(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "requests": self.requests,
            "rps": round(self.requests / self.seconds, 1) if self.seconds else 0.0,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "client_cpu_share": round(self.client_cpu / self.seconds, 2) if self.seconds else 0,
        }
        if self.latencies_ms:
            lat = sorted(self.latencies_ms)
            for q in (50, 95, 99):
                out[f"p{q}_ms"] = round(percentile(lat, q), 2)
            out["max_ms"] = round(lat[-1], 2)
        return out


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


class Target:
    """Where requests go: the bare endpoint, or a random seeded USCC's score with the key."""

    def __init__(self, base: str, home: Home | None, rng: random.Random) -> None:
        self.base, self.home, self.rng = base, home, rng
        self.headers = {"X-API-Key": home.api_key} if home else {}
        self.port = int(base.rsplit(":", 1)[1])

    def path(self) -> str:
        if self.home is None:
            return "/bare"
        uscc = self.rng.choice(self.home.usccs)
        return (
            f"/v1/products/{PRODUCT}/scores/{uscc}?purpose={quote(PURPOSE)}"
            f"&consent={quote('C-' + uscc)}"
        )


class RawPool:
    """Keep-alive HTTP/1.1 connections over asyncio streams: GET, status, body read and dropped.

    httpx's async pool spends more CPU per request than the bare server does (measured here:
    ~550 requests/s at any concurrency, ~170 at 32), so it cannot load the baseline; this
    client costs a few tens of microseconds a request. ``--client httpx`` uses httpx instead.
    """

    def __init__(self, target: Target, size: int) -> None:
        self.target, self.size = target, size
        self.idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )
        extra = "".join(f"{k}: {v}\r\n" for k, v in target.headers.items())
        self.head = f"Host: 127.0.0.1:{target.port}\r\n{extra}\r\n".encode()

    async def __aenter__(self) -> RawPool:
        for _ in range(self.size):
            self.idle.put_nowait(await asyncio.open_connection("127.0.0.1", self.target.port))
        return self

    async def __aexit__(self, *exc: object) -> None:
        while not self.idle.empty():
            _, writer = self.idle.get_nowait()
            writer.close()

    async def get(self) -> int:
        reader, writer = await self.idle.get()
        writer.write(f"GET {self.target.path()} HTTP/1.1\r\n".encode() + self.head)
        header = await reader.readuntil(b"\r\n\r\n")
        status = int(header[9:12])
        length = 0
        for line in header.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await reader.readexactly(length)
        self.idle.put_nowait((reader, writer))
        return status


class HttpxPool:
    """The same GETs through an httpx async client with size connections."""

    def __init__(self, target: Target, size: int) -> None:
        self.target = target
        limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
        self.http = httpx.AsyncClient(base_url=target.base, limits=limits, timeout=30)

    async def __aenter__(self) -> HttpxPool:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.http.aclose()

    async def get(self) -> int:
        response = await self.http.get(self.target.path(), headers=self.target.headers)
        return response.status_code


def pool(kind: str, target: Target, size: int) -> RawPool | HttpxPool:
    return HttpxPool(target, size) if kind == "httpx" else RawPool(target, size)


async def closed_loop(target: Target, concurrency: int, seconds: float, kind: str) -> Phase:
    """concurrency workers, each sending its next request as soon as the last one answered."""
    phase = Phase()
    async with pool(kind, target, concurrency) as conns:

        async def worker(end: float) -> None:
            while time.perf_counter() < end:
                sent = time.perf_counter()
                status = await conns.get()
                phase.latencies_ms.append((time.perf_counter() - sent) * 1000)
                phase.statuses[status] += 1
                phase.requests += 1

        cpu, started = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker(started + seconds) for _ in range(concurrency)))
        phase.seconds = time.perf_counter() - started
        phase.client_cpu = time.process_time() - cpu
    return phase


async def open_loop(
    target: Target, rate: float, seconds: float, connections: int, kind: str
) -> Phase:
    """rate requests/s on a fixed schedule; latency counted from each scheduled send time."""
    phase = Phase()
    async with pool(kind, target, connections) as conns:

        async def one(scheduled: float) -> None:
            status = await conns.get()
            phase.latencies_ms.append((time.perf_counter() - scheduled) * 1000)
            phase.statuses[status] += 1
            phase.requests += 1

        cpu, started = time.process_time(), time.perf_counter()
        tasks = []
        for i in range(int(rate * seconds)):
            scheduled = started + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(scheduled)))
        await asyncio.gather(*tasks)
        phase.seconds = time.perf_counter() - started
        phase.client_cpu = time.process_time() - cpu
    return phase


def measured(load: Coroutine[Any, Any, Phase]) -> Phase:
    """Run one phase of load with this (the client's) garbage collector held off.

    With the seeded data in memory, the load generator's own full collections took up to
    140 ms here, and every request waiting on the client meanwhile counted them as the
    server's latency (one such pause is the whole p99 of a 2,400-request phase).
    """
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        return asyncio.run(load)
    finally:
        gc.enable()
        gc.unfreeze()


def main(argv: Iterable[str] | None = None) -> int:
    """The server subprocess that ``server`` starts."""
    # Run as a script, this file's folder leads sys.path and bench/api.py would shadow the api
    # package that serve imports.
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    parser = argparse.ArgumentParser(description="Serve one bench server (started by server()).")
    parser.add_argument("--serve", required=True, help="lookup, bare-async or bare-sync")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--stack", choices=sorted(SERVER_STACKS), default="fast")
    args = parser.parse_args(list(argv) if argv is not None else None)
    serve(args.serve, args.port, args.stack)
    return 0


if __name__ == "__main__":
    sys.exit(main())
