"""`pdo demo`: the whole authorized-operation loop on embedded defaults, narrated step by step."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import typer
from rich.table import Table
from rich.text import Text

from pdo.cli.root import console, prepare_prefect
from pdo.delivery.identity import shown_as
from pdo.ledger.db import session_scope
from pdo.settings import Settings
from pdo.workspace import Workspace

DEMO_PASSWORD = "pdo-demo-2026"
DEMO_USERS = (
    ("demo_operator", "operator"),
    ("demo_reviewer", "reviewer"),
    ("demo_reviewer_2", "reviewer"),  # 重要 tables need two distinct approvals
    ("demo_regulator", "regulator"),
)
DEMO_BANK = "示例银行股份有限公司"


def _step(n: int, text: str) -> None:
    console.rule(Text.from_markup(f"[bold cyan]{n}. {text}"))


def _free_port(preferred: int) -> int:
    with socket.socket() as sock:
        if sock.connect_ex(("127.0.0.1", preferred)) != 0:
            return preferred
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_http(url: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False


def _start_prefect_server(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A local Prefect server for the demo's flow runs, so its UI shows them (and the gate)."""
    port = _free_port(4200)
    home.mkdir(parents=True, exist_ok=True)
    log = (home / "prefect-server.log").open("wb")
    command = ["server", "start", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", *command],
        env=dict(os.environ),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return proc, f"http://127.0.0.1:{port}"


def _print_stage_counts(ws: Workspace, run_id: str) -> None:
    from sqlmodel import select

    from pdo.ledger.models import StageRun

    table = Table("表 table", "读入 in", "通过 out", "隔离 quarantined", title="ingest")
    with session_scope(ws.engine) as s:
        rows = s.exec(
            select(StageRun).where(StageRun.run_id == run_id, StageRun.stage == "ingest")
        ).all()
        for r in rows:
            table.add_row(
                r.table_name or "", str(r.rows_in), str(r.rows_out), str(r.rows_quarantined)
            )
    console.print(table)


def _print_product(ws: Workspace, version_id: str) -> None:
    """A version's headline figures: out-of-time discrimination, or what it verified."""
    from pdo.ledger.models import ProductVersion

    with session_scope(ws.engine) as s:
        version = s.get(ProductVersion, version_id)
        assert version is not None
        m = version.metrics
    if "out_of_time" in m:
        dev, oot = m["sample"]["development"], m["out_of_time"]
        console.print(
            f"{version_id}: trained on {dev['n']} loans ({dev['from']} – {dev['to']}, bad rate "
            f"{dev['bad_rate']:.1%}); out-of-time AUC {oot['auc']}, KS {oot['ks']}, "
            f"Gini {oot['gini']}; {m['n_scored']} enterprises scored, grades {m['grade_counts']}"
        )
    else:
        shown = {k: v for k, v in m.items() if isinstance(v, int | str)}
        console.print(f"{version_id}: {shown}")


def register(app: typer.Typer) -> None:
    """Attach `pdo demo`."""

    @app.command("demo")
    def demo_command(
        home: Path = typer.Option(Path("var/demo"), help="demo state (wiped at start)"),
        enterprises: int = typer.Option(2000, help="size of the generated city"),
        seed: int = typer.Option(20261125),
        serve: bool = typer.Option(True, help="start API and console and keep them running"),
        exit_when_ready: bool = typer.Option(False, help="stop once the console answers"),
    ) -> None:
        """Generate data, run to the gate, approve, publish, onboard a bank, call the API, serve."""
        from pdo.gen import generate
        from pdo.registration import grant_every_table
        from pdo.signoff import decide
        from pdo.sources.tables import SOURCE_TABLES
        from pdo.subscribers import add_subscriber
        from pdo.users import Role, add_user
        from products.registry import PRODUCTS

        home = home.resolve()
        if home.exists():
            shutil.rmtree(home)
        os.environ["PDO_HOME"] = str(home)
        os.environ.pop("PDO_DATABASE_URL", None)
        prepare_prefect()
        settings = Settings(home=home)
        ws = Workspace.open(settings)
        source = home / "source"
        prefect_server, prefect_url = _start_prefect_server(home)  # starts while data generates
        procs = [prefect_server]

        _step(1, f"各部门交付数据 — generating {enterprises} enterprises into {source}")
        report = generate(source, enterprises=enterprises, seed=seed, progress=True)
        console.print(
            f"wrote {len(report.row_counts)} files, {sum(report.row_counts.values())} rows"
        )

        _step(2, "登记部门、用户与授权 — departments, users, authorization")
        with session_scope(ws.engine) as s:
            auth = grant_every_table(
                s,
                reference="数授〔2026〕001号",
                products=[p.name for p in PRODUCTS],
                actor="demo",
            )
            for name, role in DEMO_USERS:
                add_user(s, name, Role(role), DEMO_PASSWORD, "demo")
            auth_id = auth.id
        console.print(
            f"authorization 数授〔2026〕001号 ({auth_id}) covers all {len(SOURCE_TABLES)} tables"
        )

        if _wait_http(f"{prefect_url}/api/health", 180):
            os.environ["PREFECT_API_URL"] = f"{prefect_url}/api"  # before Prefect is imported
            console.print(f"Prefect UI: {prefect_url}  (runs, and the run waiting at the gate)")
        else:
            prefect_server.terminate()
            console.print("Prefect server did not start; flows use an embedded one instead")
        _step(3, "运行流水线至签核关口 — ingest → desensitize → validate → gate (Prefect)")
        from flows.pipeline import run_to_gate, start_run

        run = start_run(ws, source, "demo_operator", auth_id)
        started = time.monotonic()
        status = run_to_gate(run.id, str(home), None)
        console.print(f"run {run.id}: {status} ({time.monotonic() - started:.1f} s)")
        _print_stage_counts(ws, run.id)

        _step(4, "演示步骤：两名演示审核员批准 — DEMO STEP: approving as two demo reviewers")
        for reviewer in ("demo_reviewer", "demo_reviewer_2"):  # 重要数据需双人审核
            with session_scope(ws.engine) as s:
                decide(s, ws.lake, run.id, reviewer, True, "演示：审核通过")
            console.print(f"approved by {reviewer}")
        console.print("(in real use reviewers decide in the console or with `pdo signoff approve`)")

        _step(5, "发布数据产品 — package (optbinning scorecard) → deliver")
        from flows.publish import publish_flow

        versions = publish_flow(run.id, str(home), None, "demo_operator")
        console.print(f"published {', '.join(versions)}")
        for version in versions:
            _print_product(ws, version)

        _step(6, f"银行开通订阅 — onboarding {DEMO_BANK}")
        with session_scope(ws.engine) as s:
            _, key = add_subscriber(
                s, DEMO_BANK, "demo_operator", ["credit_risk", "operating_status"]
            )
        console.print(f"API key (shown once): [bold]{key}[/]", markup=True)

        api_port = _free_port(settings.api_port)
        console_port = _free_port(settings.console_port)
        env = dict(os.environ, PDO_HOME=str(home))
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "pdo.cli.entry", "api", "--port", str(api_port)], env=env
            )
        )
        api_url = f"http://127.0.0.1:{api_port}"
        if not _wait_http(f"{api_url}/healthz", 60):
            raise typer.Exit(1)

        _step(7, "银行调用接口 — a few metered API calls")
        import polars as pl

        # The bank asks about enterprises it knows by USCC (companies and a 个体工商户).
        registry = pl.read_csv(source / "market_enterprise_registry.csv", infer_schema=False)
        codes = registry["uscc"].drop_nulls()
        usccs = [
            *codes.filter(codes.str.starts_with("91")).head(2),
            *codes.filter(codes.str.starts_with("92")).head(1),
        ]
        now = dt.datetime.now(dt.UTC)
        for i, uscc in enumerate(usccs):  # each enterprise signed a consent for the bank
            r = httpx.post(
                f"{api_url}/v1/consents",
                json={
                    "uscc": uscc,
                    "reference": f"DEMO-授权书-{i + 1:04d}",
                    "purposes": ["贷前审查", "贷后管理"],
                    "valid_from": now.isoformat(),
                    "valid_until": (now + dt.timedelta(days=365)).isoformat(),
                },
                headers={"X-API-Key": key},
            )
            console.print(f"POST …/v1/consents ({shown_as(uscc)}) → {r.status_code}")
        for i, uscc in enumerate(usccs):
            r = httpx.get(
                f"{api_url}/v1/products/credit_risk/scores/{uscc}",
                params={"purpose": "贷前审查", "consent": f"DEMO-授权书-{i + 1:04d}"},
                headers={"X-API-Key": key},
            )
            body = r.json()
            reasons = "、".join(
                f"{x['code']} {x['label_zh']} −{x['points_lost']}"
                for x in body.get("details", {}).get("reasons", [])[:3]
            )
            console.print(
                f"GET …/credit_risk/scores/{shown_as(uscc)} → {r.status_code}"
                f" {body.get('product_version')}"
                f" score {body.get('score')} grade {body.get('grade')};"
                f" top reasons: {reasons or '—'}"
            )
        r = httpx.get(
            f"{api_url}/v1/products/operating_status/scores/{usccs[0]}",
            params={"purpose": "贷前审查", "consent": "DEMO-授权书-0001"},
            headers={"X-API-Key": key},
        )
        console.print(f"GET …/operating_status/scores/{usccs[0]} → {r.status_code} {r.json()}")
        r = httpx.get(
            f"{api_url}/v1/products/credit_risk/scores/{usccs[0]}",
            params={"purpose": "贷前审查", "consent": "DEMO-授权书-0001"},
            headers={"X-API-Key": "pdo_bad_key"},
        )
        console.print(f"with a wrong key → {r.status_code} {r.json()}")
        r = httpx.get(
            f"{api_url}/v1/products/credit_risk/scores/{usccs[0]}",
            params={"purpose": "贷前审查"},
            headers={"X-API-Key": key},
        )
        console.print(f"without the enterprise's consent → {r.status_code} {r.json()}")

        _step(8, "收益分配试算与审计链 — this month's revenue split so far, audit chain check")
        from pdo import audit, settlement
        from pdo.delivery.periods import business_month
        from pdo.ledger.db import read_scope
        from pdo.settlement_report import party_names

        with read_scope(ws.engine) as s:
            month = settlement.provisional(s, business_month(now))
            names = party_names(s)
            chain = audit.verify(s)
        console.print(
            f"{month.period}: {month.events} billed events, {month.net_fen} fen net "
            "(closed with `pdo settle --period YYYY-MM` once the month is over)"
        )
        for party, fen in month.by_party().items():
            console.print(f"  {names.get(party, party)} ({party}): {fen} fen")
        state = "intact" if chain.ok else f"BROKEN at {chain.broken_at}"
        console.print(f"audit chain: {chain.events} events, {state}")

        _step(9, "启动控制台 — console")
        console_log = (home / "console.log").open("w")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "pdo.cli.entry", "console", "--port", str(console_port)],
                env=env,
                stdout=console_log,
                stderr=subprocess.STDOUT,
            )
        )
        console_url = f"http://localhost:{console_port}"
        ready = _wait_http(f"{console_url}/_stcore/health", 90)
        console.print(f"API:     {api_url}/docs")
        console.print(f"console: {console_url}  ({'answering' if ready else 'NOT answering'})")
        for name, role in DEMO_USERS:
            console.print(f"  login {name} / {DEMO_PASSWORD}  ({role})")
        if "PREFECT_API_URL" in os.environ:
            console.print(f"Prefect UI: {prefect_url}")
        console.print(f"explore with the CLI: PDO_HOME={home} ./run pdo signoff list")
        try:
            if serve and not exit_when_ready and ready:
                console.print("serving — press Ctrl-C to stop")
                while all(p.poll() is None for p in procs):
                    time.sleep(1)
        except KeyboardInterrupt:
            pass
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
        if not ready:
            raise typer.Exit(1)
