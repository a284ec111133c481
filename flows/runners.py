"""Which Prefect task runner executes a pipeline: threads in this process, or a Dask cluster."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

RunnerKind = Literal["local", "dask"]


@dataclass(frozen=True)
class RunnerChoice:
    """local: threads in this process; dask: prefect-dask on an address or a LocalCluster."""

    kind: RunnerKind = "local"
    dask_address: str | None = None
    workers: int = 2

    def describe(self) -> str:
        if self.kind == "local":
            return f"local ({self.workers} threads)"
        return f"dask ({self.dask_address or f'LocalCluster, {self.workers} workers'})"


def task_runner(choice: RunnerChoice) -> Any:
    """The Prefect task runner for a choice; the flow's code is the same for every runner."""
    if choice.kind == "local":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=choice.workers)
    if choice.kind == "dask":
        from prefect_dask import DaskTaskRunner

        if choice.dask_address:
            return DaskTaskRunner(address=choice.dask_address)
        return DaskTaskRunner(
            cluster_kwargs={
                "n_workers": choice.workers,
                "threads_per_worker": 1,
                "processes": True,
                "dashboard_address": None,
            }
        )
    raise ValueError(f"unknown runner {choice.kind!r} (local or dask)")
