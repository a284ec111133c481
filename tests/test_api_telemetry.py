"""No request's personal identifiers reach OpenTelemetry, whatever exporter the process set up.

FastAPI 0.154 traces every request into the process's global tracer provider: the span's
`url.path` and `url.query` would carry a 个体工商户's code and the consent reference. The check
runs in a subprocess, as the global provider can be set once per process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import json, sys
from pathlib import Path

import httpx
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)

from tests.delivery_seed import INDIVIDUAL, seed_delivery
from tests.live_api import serve_api

ledger = seed_delivery(Path(sys.argv[1]))
ledger.consent("甲银行", INDIVIDUAL, "AUTH-SOLE-TRADER-7")
with serve_api(ledger.settings) as base:
    answer = httpx.get(
        f"{base}/v1/products/credit_risk/scores/{INDIVIDUAL}",
        params={"purpose": "贷前审查", "consent": "AUTH-SOLE-TRADER-7"},
        headers={"X-API-Key": ledger.keys["甲银行"]},
    )
provider.force_flush()
spans = [
    {"name": s.name, "attributes": {k: str(v) for k, v in (s.attributes or {}).items()}}
    for s in exporter.get_finished_spans()
]
print(json.dumps({"status": answer.status_code, "spans": spans}, ensure_ascii=False))
"""


def test_a_lookup_leaves_no_identifier_in_the_process_tracer(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["status"] == 200  # the lookup was served while the tracer listened
    exported = json.dumps(report["spans"], ensure_ascii=False)
    assert "92310000MA1P0001X8" not in exported
    assert "AUTH-SOLE-TRADER-7" not in exported
    assert report["spans"] == []  # FastAPI's request spans are off altogether
