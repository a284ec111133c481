"""Crash recovery: real `pdo` processes SIGKILLed inside each stage, then carried on by the CLI.

Nothing in the product is told about the kills. The test watches a run from outside, as an
operator's monitoring would: the ledger's stage records (a stage's row appears when that table
has finished the stage) and the lake's files (a stage's first staged or partial file appears as
it writes). One pdo home lives through a chain of crashes: a `pdo run` is killed in ingest, the
next `pdo run` of the same delivery in raw validation, the next in desensitization, then in
validation and in packaging; a last run reaches the gate and its publication is killed between
two products. Each run after a kill is that kill's recovery: it must pass the killed stage. The
recovered outputs are compared with an uninterrupted run of the same delivery in its own home.
A webhook dispatcher killed in the middle of a push is the delivery side's crash.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from pdo import audit
from pdo.cli import app
from pdo.delivery.version_events import alerts_for_new_version
from pdo.delivery.watchlists import (
    NewMember,
    Refusal,
    add_members,
    create_watchlist,
    valid_uscc,
)
from pdo.delivery.webhooks import TIMEOUT_S, dispatch_due, lease_for
from pdo.lake import ZONES, Lake, Manifest
from pdo.ledger.db import session_scope
from pdo.ledger.models import (
    Alert,
    AuditEvent,
    DatasetVersion,
    PipelineRun,
    ProductVersion,
    ServedScore,
    StageRun,
    UsageEvent,
    WebhookAttempt,
)
from pdo.ledger.types import utcnow
from pdo.privacy.pseudonym import Pseudonymizer
from pdo.settings import Settings
from pdo.signoff import package_hash
from pdo.sources.tables import SOURCE_TABLES
from pdo.workspace import Workspace
from tests.webhook_receiver import LOOPBACK, LOOPBACK_ENV, receiver

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "correct horse battery"
PRODUCTS = ("credit_risk", "operating_status")
TABLES = len(SOURCE_TABLES)
STAGES = ("ingest", "validate_raw", "desensitize", "validate", "package")
EXPECTED = {"ingest": TABLES, "validate_raw": TABLES, "desensitize": TABLES,
            "validate": TABLES, "package": len(PRODUCTS)}  # fmt: skip
WRITES = {  # where each stage's first write shows (validation writes only ledger records)
    "ingest": ("raw/", "quarantine/"),
    "validate_raw": ("raw/", "quarantine/"),
    "desensitize": (".staging/", "desensitized/"),
    "validate": ("first validate record",),
    "package": ("product/",),
}
POLL_S = 0.01
WAIT_S = 420.0


def cli_env(home: Path) -> dict[str, str | None]:
    """CliRunner's environment: this home only, whatever PDO_* the caller's shell holds."""
    cleared: dict[str, str | None] = {k: None for k in os.environ if k.startswith("PDO_")}
    return cleared | {"PDO_HOME": str(home)} | LOOPBACK_ENV


def pdo(home: Path, *args: str, stdin: str | None = None) -> str:
    """One CLI command in this process (the steps that are not killed)."""
    result = CliRunner().invoke(app, list(args), env=cli_env(home), input=stdin)
    assert result.exit_code == 0, f"pdo {' '.join(args)}: {result.output}"
    return result.output


def json_tail(output: str) -> Any:
    return json.loads(output[output.index("{") :])


def copy_home(template: Path, to: Path) -> Path:
    """A home as the template left it (ledger with its WAL, key file, lake): same grant, users
    and pseudonym key. Nothing writes to the template while it is copied."""
    shutil.copytree(template, to, ignore=shutil.ignore_patterns("*-shm"))
    return to


@dataclass(frozen=True)
class City:
    source: Path
    template: Path
    prefect_api: str
    scratch: Path


@pytest.fixture(scope="module")
def city(prefect_harness: None, tmp_path_factory: pytest.TempPathFactory) -> City:
    """One small city's delivery, and a home registered, staffed and authorized for it."""
    from prefect.settings import PREFECT_API_URL

    from pdo.gen import generate

    scratch = tmp_path_factory.mktemp("crash")
    source = scratch / "delivery"
    generate(source, enterprises=150, seed=5, progress=False)
    template = scratch / "template"
    pdo(template, "department", "register")
    for name, role in (("alice", "operator"), ("rita", "reviewer"), ("rick", "reviewer")):
        pdo(template, "user", "add", name, "--role", role, stdin=PASSWORD + "\n")
    products = [arg for p in PRODUCTS for arg in ("--product", p)]
    pdo(template, "authorization", "grant", "--reference", "数授〔2026〕K1号", "--as", "authority",
        *products)  # fmt: skip
    Settings(home=template).read_pseudonym_key()  # every copy pseudonymizes alike
    api = PREFECT_API_URL.value()
    assert api, "the Prefect test harness sets an API URL"
    return City(source, template, str(api), scratch)


@dataclass(frozen=True)
class Outputs:
    """What a run delivered, in terms that do not depend on the home or the run's id."""

    datasets: set[tuple[str, str, str]]  # (zone, table, version id)
    reviewed: list[dict[str, Any]]  # the review package's datasets
    versions: dict[str, dict[str, Any]]  # product version id → what it serves and from what
    served: Counter[tuple[str, str, int | None, str | None, str]]


def outputs(home: Path, run_id: str) -> Outputs:
    ws = Workspace.open(Settings(home=home))
    with Session(ws.engine) as s:
        run = s.get(PipelineRun, run_id)
        assert run is not None
        versions = {
            v.id: {
                "status": v.status,
                "output_hash": v.output_hash,
                "input_hashes": v.input_hashes,
                "metrics": v.metrics,
                "model": v.model,
                "as_of": v.as_of.isoformat(),
            }
            for v in s.exec(select(ProductVersion))
        }
        served = Counter(
            (r.product_version_id, r.uscc, r.score, r.grade, json.dumps(r.details, sort_keys=True))
            for r in s.exec(select(ServedScore))
        )
        return Outputs(
            datasets={(d.zone, d.table_name, d.id) for d in s.exec(select(DatasetVersion))},
            reviewed=sorted(run.review_package["datasets"], key=json.dumps),
            versions=versions,
            served=served,
        )


@pytest.fixture(scope="module")
def reference(city: City) -> Outputs:
    """An uninterrupted run of the same delivery, approved and published."""
    home = copy_home(city.template, city.scratch / "reference")
    out = pdo(home, "run", "--source", str(city.source), "--as", "alice", "--json")
    run_id = json_tail(out)["run_id"]
    pdo(home, "signoff", "approve", run_id, "--as", "rita")
    assert "published" in pdo(home, "signoff", "approve", run_id, "--as", "rick")
    return outputs(home, run_id)


class Ledger:
    """A read-only view of a home's SQLite ledger, cheap enough to poll every few ms."""

    def __init__(self, home: Path) -> None:
        uri = f"file:{home / 'ledger.db'}?mode=ro"
        self.conn = sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None)

    def scalar(self, sql: str, *args: object) -> Any:
        row = self.conn.execute(sql, args).fetchone()
        return None if row is None else row[0]

    def stage_counts(self, run_id: str) -> dict[str, int]:
        rows = self.conn.execute(
            "SELECT stage, count(*) FROM stage_run WHERE run_id = ? GROUP BY stage", (run_id,)
        )
        return dict(rows.fetchall())

    def runs(self) -> dict[str, str]:
        return dict(self.conn.execute("SELECT id, status FROM pipeline_run").fetchall())

    def column(self, sql: str) -> list[Any]:
        return [row[0] for row in self.conn.execute(sql)]

    def close(self) -> None:
        self.conn.close()


def entries(*patterns: tuple[Path, str]) -> set[str]:
    """Files and directories matching the globs (what a stage has begun to write)."""
    return {str(p) for root, pattern in patterns if root.exists() for p in root.glob(pattern)}


@dataclass
class Process:
    """A real `pdo` process in its own session, so the kill takes all it started."""

    proc: subprocess.Popen[bytes]
    log: Path
    started: float = field(default_factory=time.monotonic)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def kill(self) -> float:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=60)
        assert self.proc.returncode == -signal.SIGKILL, self.output()
        return time.monotonic() - self.started


def spawn(city: City, home: Path, *args: str) -> Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PDO_", "PREFECT_"))}
    env |= {
        "PDO_HOME": str(home),
        "PREFECT_API_URL": city.prefect_api,  # the session's server: no API of its own to orphan
        "PREFECT_HOME": str(city.scratch / "prefect"),
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "GX_ANALYTICS_ENABLED": "false",
        **LOOPBACK_ENV,  # the test's bank listens on loopback
    }
    log = city.scratch / f"{args[0]}-{time.monotonic_ns()}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pdo.cli.entry", *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Process(proc, log)


def wait_for(process: Process, what: str, found: Callable[[], str | None]) -> str:
    """Poll until `found` names what it saw; the process must still be running meanwhile."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        seen = found()
        if seen is not None:
            return seen
        if process.proc.poll() is not None:
            pytest.fail(
                f"pdo exited ({process.proc.returncode}) before {what}:\n{process.output()}"
            )
        time.sleep(POLL_S)
    process.kill()
    pytest.fail(f"no {what} within {WAIT_S:.0f} s:\n{process.output()}")


@dataclass(frozen=True)
class Kill:
    """One SIGKILL: where it landed and what the home looked like right after it."""

    stage: str
    run_id: str
    trigger: str  # the first sign of the stage's work that was seen
    seconds: float  # from process start to kill
    counts: dict[str, int]  # the killed run's finished (stage, table) records per stage
    status: str  # the killed run's status right after the kill
    versions: list[str]  # product versions of the killed run's delivery published by then
    problems: list[str]  # half-published state found right after the kill


def stage_trigger(ledger: Ledger, home: Path, run_id: str, stage: str) -> Callable[[], str | None]:
    """The moment to kill inside `stage`: its predecessor has finished every table and the stage
    has begun to write (its first staged or partial file; for validation, its first record)."""
    lake = home / "lake"
    before: set[str] | None = None
    position = STAGES.index(stage)
    watched = {
        "ingest": [(lake / "raw", "*/*"), (lake / "quarantine", "*/*")],
        "validate_raw": [(lake / "raw", "*/*"), (lake / "quarantine", "*/*")],
        "desensitize": [(lake / ".staging" / run_id, "*/*"), (lake / "desensitized", "*/*")],
        "package": [(lake / "product", "*/*")],
    }

    def found() -> str | None:
        nonlocal before
        counts = ledger.stage_counts(run_id)
        if before is None:
            if position and counts.get(STAGES[position - 1], 0) < TABLES:
                return None
            before = entries(*watched.get(stage, []))
        if stage == "validate":
            return "first validate record" if counts.get("validate", 0) else None
        new = sorted(entries(*watched[stage]) - before)
        return str(Path(new[0]).relative_to(lake)) if new else None

    return found


def half_published(home: Path) -> list[str]:
    """Anything a reader could take as done that is not whole: versions on disk or in the ledger
    that do not verify, products without all their rows, packages that do not hash."""
    lake = Lake(home / "lake")
    problems: list[str] = []
    for zone in ZONES:
        for version_dir in sorted((lake.root / zone).glob("*/*")):
            if version_dir.name.startswith("."):
                continue  # a write in progress (Lake.write renames it into place whole)
            try:
                manifest = Manifest(**json.loads((version_dir / "manifest.json").read_text()))
            except FileNotFoundError:
                problems.append(f"{version_dir.relative_to(lake.root)}: no manifest")
                continue
            if manifest.id != version_dir.name or not lake.verify(manifest):
                problems.append(f"{version_dir.relative_to(lake.root)}: does not verify")
    ws = Workspace.open(Settings(home=home))
    with Session(ws.engine) as s:
        for d in s.exec(select(DatasetVersion)):
            if not (lake.root / d.zone / d.table_name / d.id / "manifest.json").exists():
                problems.append(f"ledger names {d.zone}/{d.table_name}/{d.id[:12]}, not on disk")
        for v in s.exec(select(ProductVersion)):
            rows = lake.manifest("product", v.product_name, v.output_hash).row_count
            served = len(s.exec(select(ServedScore.id).where(
                ServedScore.product_version_id == v.id)).all())  # fmt: skip
            if served != rows:
                problems.append(f"{v.id} serves {served} of {rows} rows")
        for run in s.exec(select(PipelineRun)):
            if run.status == "running" and (run.review_package or run.review_package_hash):
                problems.append(f"running run {run.id} already has a review package")
            if run.status in ("awaiting_signoff", "approved", "published") and (
                package_hash(run.review_package) != run.review_package_hash
            ):
                problems.append(f"run {run.id}: review package does not match its hash")
    return problems


@dataclass
class Chain:
    home: Path
    kills: dict[str, Kill]
    final_run: str
    final_output: str
    publish_kill: Kill
    continued: str
    runs: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    recovered_by: dict[str, dict[str, int]] = field(default_factory=dict)
    abandoned_events: Counter[str] = field(default_factory=Counter)
    staging_left: list[str] = field(default_factory=list)


def published_versions(ledger: Ledger) -> list[str]:
    return sorted(ledger.column("SELECT id FROM product_version"))


def kill_run_in(city: City, home: Path, stage: str) -> Kill:
    """Start `pdo run` on the delivery and SIGKILL it inside `stage`."""
    ledger = Ledger(home)
    try:
        known = set(ledger.runs())
        process = spawn(city, home, "run", "--source", str(city.source), "--as", "alice")

        def new_run() -> str | None:
            return next(iter(set(ledger.runs()) - known), None)

        run_id = wait_for(process, "the run's record", new_run)
        trigger = wait_for(process, f"{stage} at work", stage_trigger(ledger, home, run_id, stage))
        seconds = process.kill()
        counts = ledger.stage_counts(run_id)
        status = ledger.runs()[run_id]
        versions = published_versions(ledger)
    finally:
        ledger.close()
    return Kill(stage, run_id, trigger, seconds, counts, status, versions, half_published(home))


def kill_publication(city: City, home: Path, run_id: str) -> Kill:
    """The last approval continues to publishing; SIGKILL it once the first product is out."""
    ledger = Ledger(home)
    try:
        process = spawn(city, home, "signoff", "approve", run_id, "--as", "rick")

        def first_version() -> str | None:
            return ledger.scalar("SELECT min(id) FROM product_version WHERE run_id = ?", run_id)

        trigger = wait_for(process, "a published product version", first_version)
        seconds = process.kill()
        status = ledger.runs()[run_id]
        versions = published_versions(ledger)
    finally:
        ledger.close()
    return Kill("publish", run_id, trigger, seconds, {}, status, versions, half_published(home))


@pytest.fixture(scope="module")
def chain(city: City) -> Chain:
    """One home through a kill in every stage, each next run the recovery of the one before."""
    home = copy_home(city.template, city.scratch / "crashed")
    kills = {stage: kill_run_in(city, home, stage) for stage in STAGES}
    out = pdo(home, "run", "--source", str(city.source), "--as", "alice", "--json")
    final_run = json_tail(out)["run_id"]
    assert json_tail(out)["status"] == "awaiting_signoff"
    pdo(home, "signoff", "approve", final_run, "--as", "rita")
    publish_kill = kill_publication(city, home, final_run)
    continued = pdo(home, "signoff", "continue", final_run)
    result = Chain(home, kills, final_run, out, publish_kill, continued)
    ws = Workspace.open(Settings(home=home))
    with Session(ws.engine) as s:
        result.runs = {r.id: (r.status, r.error) for r in s.exec(select(PipelineRun))}
        order = [k.run_id for k in kills.values()] + [final_run]
        for killed, following in itertools.pairwise(order):
            rows = s.exec(select(StageRun).where(StageRun.run_id == following)).all()
            result.recovered_by[killed] = dict(
                Counter(r.stage for r in rows if r.status == "succeeded")
            )
        result.abandoned_events = Counter(
            e.subject
            for e in s.exec(select(AuditEvent).where(AuditEvent.action == "run.abandoned"))
        )
    staging = home / "lake" / ".staging"
    result.staging_left = sorted(p.name for p in staging.iterdir()) if staging.exists() else []
    return result


@pytest.mark.parametrize("stage", STAGES)
def test_the_kill_landed_inside_the_stage(chain: Chain, stage: str) -> None:
    """A kill that missed its stage would prove nothing about that stage."""
    kill = chain.kills[stage]
    before = STAGES[: STAGES.index(stage)]
    assert all(kill.counts.get(s) == EXPECTED[s] for s in before), kill
    assert kill.counts.get(stage, 0) < EXPECTED[stage], kill
    assert kill.status == "running", kill
    assert kill.trigger.startswith(WRITES[stage]), kill  # during the stage's own writes


@pytest.mark.parametrize("stage", STAGES)
def test_a_kill_inside_a_stage_leaves_nothing_half_published(chain: Chain, stage: str) -> None:
    """Whatever a reader can find right after the kill is whole; the run published nothing."""
    kill = chain.kills[stage]
    assert kill.problems == []
    assert kill.versions == []


@pytest.mark.parametrize("stage", STAGES)
def test_the_next_run_recovers_and_marks_the_killed_one_abandoned(chain: Chain, stage: str) -> None:
    """The next `pdo run` of the same delivery passes the killed stage for every table, and the
    killed run no longer claims to be running (its process is gone)."""
    kill = chain.kills[stage]
    recovered = chain.recovered_by[kill.run_id]
    assert recovered.get(stage) == EXPECTED[stage], recovered
    status, error = chain.runs[kill.run_id]
    assert status == "failed" and error is not None and "abandoned" in error, (status, error)
    assert chain.abandoned_events[kill.run_id] == 1
    if stage == STAGES[-1]:  # the in-process run: its output is at hand
        assert f"run {kill.run_id} was left running by a process that has ended" in (
            chain.final_output
        )
    assert kill.run_id not in chain.staging_left  # its staged partitions were cleared


def test_publication_killed_between_products_is_finished_by_signoff_continue(
    chain: Chain,
) -> None:
    """A kill mid-publication leaves whole versions only, and the run says it is not finished
    until `pdo signoff continue` has published the rest."""
    kill = chain.publish_kill
    assert kill.problems == []
    assert kill.versions and kill.versions[0] == "credit_risk@1", kill  # it was publishing
    whole = len(kill.versions) == len(PRODUCTS)  # a kill a little late finds both out
    assert kill.status == ("published" if whole else "approved"), kill
    assert f"continued: published {', '.join(f'{p}@1' for p in PRODUCTS)}" in chain.continued
    assert chain.runs[chain.final_run][0] == "published"


def test_recovered_outputs_are_identical_to_an_uninterrupted_run(
    chain: Chain, reference: Outputs
) -> None:
    """Same datasets, same reviewed hashes, same versions, same served scores."""
    recovered = outputs(chain.home, chain.final_run)
    assert recovered.datasets == reference.datasets
    assert recovered.reviewed == reference.reviewed
    assert recovered.versions == reference.versions
    assert set(recovered.versions) == {f"{p}@1" for p in PRODUCTS}
    assert recovered.served == reference.served


def test_recovery_doubles_nothing_and_the_audit_chain_verifies(chain: Chain) -> None:
    """One record per stage and table per run, one version per product, one row per served
    enterprise; the hash chain verifies from the CLI."""
    ws = Workspace.open(Settings(home=chain.home))
    with Session(ws.engine) as s:
        stages = Counter((r.run_id, r.stage, r.table_name) for r in s.exec(select(StageRun)))
        versions = Counter(v.product_name for v in s.exec(select(ProductVersion)))
        served = Counter((r.product_version_id, r.uscc) for r in s.exec(select(ServedScore)))
        published = s.exec(select(PipelineRun).where(PipelineRun.status == "published")).all()
        alerts = s.exec(select(Alert)).all()
    assert set(stages.values()) == {1}
    assert versions == Counter(PRODUCTS)
    assert served and set(served.values()) == {1}
    assert [r.id for r in published] == [chain.final_run]
    assert alerts == []  # no watchlists yet: publication raised nothing, twice or once
    assert "audit chain intact" in pdo(chain.home, "audit", "verify")


def test_a_dispatcher_killed_mid_push_delivers_every_alert_and_bills_it_once(
    city: City, chain: Chain
) -> None:
    """`pdo alerts dispatch` killed while a bank holds a push open: after its lease the next
    pass delivers the rest; the held alert may reach the bank twice (at-least-once, same id)
    but is delivered and billed once."""
    home = copy_home(chain.home, city.scratch / "dispatch")
    settings = Settings(home=home)
    ws = Workspace.open(settings)
    out = pdo(home, "subscriber", "add", "观察银行", "--products", "credit_risk", "--json")
    bank = json_tail(out)
    registry = pl.read_csv(city.source / "market_enterprise_registry.csv", infer_schema=False)
    codes: list[str] = []
    for code in registry["uscc"].drop_nulls().unique(maintain_order=True):
        try:
            codes.append(valid_uscc(code))
        except Refusal:
            continue  # the delivery's planted dirt
        if len(codes) == 6:
            break
    # The first two pushes are answered, the third is held open until the dispatcher is killed.
    with receiver(script=[200, 200, "hold"], verify=False) as hook:
        with session_scope(ws.engine) as s:
            watchlist = create_watchlist(
                s,
                bank["subscriber_id"],
                name="贷后组合",
                product_name="credit_risk",
                actor="bank",
                webhook_url=hook.url,
                egress=LOOPBACK,
            )
            add_members(s, watchlist, [NewMember(c) for c in codes],
                        Pseudonymizer.from_settings(settings), "bank")  # fmt: skip
            version = s.get(ProductVersion, "credit_risk@1")
            assert version is not None
            raised = alerts_for_new_version(s, version)
        assert raised >= len(codes)  # a new_version alert each, and any listing it shows
        process = spawn(city, home, "alerts", "dispatch", "--once")
        assert hook.holding.wait(WAIT_S), process.output()
        process.kill()
        held = hook.alert_ids()[-1]
        with Session(ws.engine) as s:
            states = Counter(a.status for a in s.exec(select(Alert)))
        assert states == {"delivered": 2, "pending": raised - 2}
        assert "0 due" in pdo(home, "alerts", "dispatch", "--once")  # leased to the dead one
        lease = lease_for(raised, TIMEOUT_S)  # what the killed dispatcher claimed
        later = utcnow() + lease + dt.timedelta(seconds=1)
        report = dispatch_due(
            ws.engine, settings.read_pseudonym_key()[1], now=later, egress=LOOPBACK
        )
        assert (report.due, report.delivered) == (raised - 2, raised - 2)

    with Session(ws.engine) as s:
        alerts = s.exec(select(Alert)).all()
        usage = s.exec(select(UsageEvent).where(UsageEvent.kind == "alert")).all()
        attempts = s.exec(select(WebhookAttempt).where(col(WebhookAttempt.ok))).all()
        chain_ok = audit.verify(s).ok
    assert {a.status for a in alerts} == {"delivered"}
    assert sorted(u.delivery_key or "" for u in usage) == sorted(f"alert:{a.id}" for a in alerts)
    assert Counter(a.alert_id for a in attempts) == Counter({a.id: 1 for a in alerts})
    assert Counter(hook.alert_ids()) == Counter({a.id: 2 if a.id == held else 1 for a in alerts})
    assert chain_ok
    assert "usage events: all" in pdo(home, "audit", "verify")
