"""A run waiting at the gate outlives every pdo process, then completes on approval.

Each step is a separate `pdo` process, as days apart in real use: the process that ran the
pipeline is gone before anyone decides, and nothing keeps waiting in memory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "correct horse battery"

STATES = """
import json, sys
from uuid import UUID
from prefect.client.orchestration import get_client
with get_client(sync_client=True) as client:
    states = client.read_flow_run_states(UUID(sys.argv[1]))
print("STATES:" + json.dumps([s.type.value for s in states]))
"""


@pytest.mark.slow
def test_a_pending_gate_survives_restarts_and_completes_on_approval(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PDO_", "PREFECT_"))}
    env |= {"PDO_HOME": str(home), "PREFECT_HOME": str(home / "prefect")}
    env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "180"

    def pdo(*args: str, stdin: str | None = None) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "pdo.cli.entry", *args],
            cwd=ROOT,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        return proc.stdout

    source = tmp_path / "delivery"
    pdo("gen", "--out", str(source), "--enterprises", "150", "--seed", "5")
    pdo("department", "register")
    for name, role in (("alice", "operator"), ("rita", "reviewer"), ("rick", "reviewer")):
        pdo("user", "add", name, "--role", role, stdin=PASSWORD + "\n")
    pdo("authorization", "grant", "--reference", "数授〔2026〕D1号", "--as", "authority")
    out = pdo("run", "--source", str(source), "--as", "alice", "--json")
    started = json.loads(out[out.index("{") :])
    assert started["status"] == "awaiting_signoff"  # and the process that ran it has exited
    run_id = started["run_id"]

    listed = json.loads(pdo("signoff", "list", "--json"))
    assert [r["run_id"] for r in listed] == [run_id]  # a new process finds it waiting
    assert "1 of 2 approvals" in pdo("signoff", "approve", run_id, "--as", "rita")
    out = pdo("signoff", "approve", run_id, "--as", "rick", "--comment", "复核通过")
    assert "continued: published credit_risk@1" in out

    from pdo.ledger.db import make_engine, session_scope
    from pdo.ledger.models import PipelineRun
    from pdo.settings import Settings

    engine = make_engine(Settings(home=home).db_url)
    with session_scope(engine) as s:
        run = s.get(PipelineRun, run_id)
        assert run is not None and run.status == "published" and run.prefect_flow_run_id
        flow_run_id = run.prefect_flow_run_id
    engine.dispose()
    proc = subprocess.run(
        [sys.executable, "-c", STATES, flow_run_id],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith("STATES:")]
    states = json.loads(line.removeprefix("STATES:"))
    assert states[-2:] == ["PAUSED", "COMPLETED"]  # waited at the gate, closed by the decision
