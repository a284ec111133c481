"""How many name-scan processes a desensitize task starts: per core locally, one on Dask."""

from __future__ import annotations

import os
from pathlib import Path

from distributed import Client, LocalCluster

from pdo.settings import Settings


def _processes(home: str) -> int:
    return Settings(home=Path(home), runner="local").scan_worker_processes()


def test_a_task_on_a_dask_worker_scans_in_one_process_whatever_its_settings_say(
    tmp_path: Path,
) -> None:
    """`pdo run --runner dask` reaches workers as no setting: the worker itself is the signal,
    or every worker would start one model process per core of its machine."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert _processes(str(tmp_path)) == cores
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        assert client.submit(_processes, str(tmp_path)).result(timeout=60) == 1
    explicit = Settings(home=tmp_path, scan_processes=3).scan_worker_processes()
    assert explicit == 3  # PDO_SCAN_PROCESSES still wins
