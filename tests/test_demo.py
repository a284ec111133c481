"""`pdo demo` runs the whole loop and ends with API and console answering on localhost."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_demo_runs_the_loop_and_serves(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PDO_", "PREFECT_"))}
    home = tmp_path / "demo"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pdo.cli.entry",
            "demo",
            "--home",
            str(home),
            "--enterprises",
            "300",
            "--exit-when-ready",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
    assert "awaiting_signoff" in out and "published credit_risk@1, operating_status@1" in out
    assert out.count("→ 201") == 3  # the three enterprises' consents registered by the bank
    assert out.count("→ 200") == 4 and "→ 401" in out  # 3 scores and 1 status check
    assert "without the enterprise's consent → 403" in out
    assert "out-of-time AUC" in out and "top reasons: R" in out
    assert "(answering)" in out
    assert "Prefect UI: http://127.0.0.1:" in out  # a local server shows the runs and the gate
    assert (home / "ledger.db").exists()
