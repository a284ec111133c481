"""The same pipeline on a Dask cluster (prefect-dask, LocalCluster) gives the same datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlmodel import select

from flows.pipeline import run_to_gate, start_run
from flows.runners import RunnerChoice
from pdo.ledger.db import session_scope
from pdo.ledger.models import DatasetVersion, PipelineRun, StageRun
from pdo.registration import grant_every_table
from pdo.settings import Settings
from pdo.sources.tables import SOURCE_TABLES
from pdo.workspace import Workspace
from products.registry import PRODUCTS

pytestmark = pytest.mark.slow
PARTITIONS = 3
KEY = "ab" * 32  # both runs pseudonymize with one key, as one operator's runs do


def _run(home: Path, source: Path, runner: RunnerChoice) -> dict[str, object]:
    ws = Workspace.open(Settings(home=home))
    (home / "secrets").mkdir(parents=True, exist_ok=True)
    (home / "secrets" / "pseudonym.key").write_text(KEY)
    with session_scope(ws.engine) as s:
        auth = grant_every_table(
            s, reference="数授〔2026〕D1号", products=[p.name for p in PRODUCTS], actor="test"
        )
        auth_id = auth.id
    run = start_run(ws, source, "alice", auth_id)
    status = run_to_gate(run.id, str(home), None, runner=runner, partitions=PARTITIONS)
    with session_scope(ws.engine) as s:
        done = s.get(PipelineRun, run.id)
        assert done is not None
        versions = s.exec(select(DatasetVersion)).all()
        parts = [
            p
            for r in s.exec(
                select(StageRun).where(StageRun.run_id == run.id, StageRun.stage == "desensitize")
            ).all()
            for p in r.details["partitions"]
        ]
        return {
            "status": status,
            "datasets": sorted(
                (v.zone, v.table_name, v.id) for v in versions if v.zone != "quarantine"
            )
            + sorted((v.zone, v.table_name, v.id) for v in versions if v.zone == "quarantine"),
            "package": done.review_package["datasets"],
            "workers": {p["worker"] for p in parts},
            "parts": len(parts),
        }


def test_dask_run_gives_the_same_content_hashes_as_a_local_run(
    prefect_harness: None, tmp_path: Path
) -> None:
    from pdo.gen import generate

    source = tmp_path / "delivery"
    generate(source, enterprises=400, seed=11, progress=False)
    local = _run(tmp_path / "local", source, RunnerChoice("local", workers=2))
    dask = _run(tmp_path / "dask", source, RunnerChoice("dask", workers=2))

    assert local["status"] == dask["status"] == "awaiting_signoff"
    # every table was desensitized in PARTITIONS mapped tasks, on Dask in worker processes
    assert local["parts"] == dask["parts"] == PARTITIONS * len(SOURCE_TABLES)
    here = f"{os.uname().nodename}:{os.getpid()}"
    assert local["workers"] == {here}
    assert here not in dask["workers"] and len(dask["workers"]) >= 1
    # byte-identical outputs: every dataset version (raw, quarantine, desensitized, release,
    # product) has the same content-addressed id, and the reviewer signs the same hashes
    assert dask["datasets"] == local["datasets"]
    assert dask["package"] == local["package"]
    zones = {zone for zone, _, _ in local["datasets"]}  # type: ignore[union-attr]
    assert {"raw", "desensitized", "release", "product"} <= zones
