"""The soak in its short form: lookups, batch files and alerts at once against the real API."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_a_short_soak_has_no_errors_and_meters_every_delivery_once() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "soak.py"),
            *("--seconds", "20", "--rate", "40", "--scores", "400"),
            *("--batch-every", "4", "--alert-every", "2", "--sample-every", "1"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])["figures"]
    assert figures["errors"] == 0 and figures["lookups_served"] == figures["lookups"] == 800
    assert figures["batches"] >= 3 and figures["alerts_delivered"] >= 5
    assert figures["usage_events"] == {
        "query": figures["lookups_served"],
        "batch": figures["batches"],
        "alert": figures["alerts_delivered"],
    }
    assert all(figures["checks"].values()), figures["checks"]
