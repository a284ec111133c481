"""The sign-off gate as Prefect sees it: a run waits Paused; the ledger's decision closes it.

The ledger is the source of truth. The pipeline flow ends at the gate in a ``Paused`` state
(no process waits, so the wait survives restarts of everything); when reviewers decide, the
paused Prefect run is set to ``Completed`` (approved) or ``Cancelled`` (rejected) so the
Prefect UI tells the same story. A Prefect API that is unreachable never blocks a decision.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any
from uuid import UUID

from prefect.states import Cancelled, Completed, Paused, State

from flows.context import open_workspace
from pdo.ledger.db import session_scope
from pdo.ledger.models import PipelineRun
from pdo.ledger.types import utcnow

PAUSE_KEY = "signoff"
log = logging.getLogger(__name__)


def waiting_state(run_id: str, until: dt.datetime) -> State[Any]:
    """Paused until a decision, at most until the authorization ends (then nothing can pass)."""
    seconds = max(60, int((until - utcnow()).total_seconds()))
    return Paused(
        timeout_seconds=seconds,
        pause_key=PAUSE_KEY,
        message=f"等待合规签核 awaiting sign-off: pdo signoff approve|reject {run_id}",
    )


def closing_state(run: PipelineRun) -> State[Any] | None:
    """The Prefect state that mirrors the run's decision; None while it still waits."""
    if run.status in ("approved", "published"):
        return Completed(message=f"签核通过 approved at the gate (run {run.id})")
    if run.status == "rejected":
        return Cancelled(message=f"签核驳回 rejected at the gate (run {run.id})")
    return None


def mirror_decision(home: str, database_url: str | None, run_id: str) -> str | None:
    """Set the run's paused Prefect flow run to its decided state; returns the new state name."""
    from prefect.client.orchestration import get_client

    with session_scope(open_workspace(home, database_url).engine) as s:
        run = s.get(PipelineRun, run_id)
        if run is None or not run.prefect_flow_run_id:
            return None
        state = closing_state(run)
        flow_run_id = UUID(run.prefect_flow_run_id)
    if state is None:
        return None
    try:
        with get_client(sync_client=True) as client:
            current = client.read_flow_run(flow_run_id).state
            if current is None or not current.is_paused():
                return None
            client.set_flow_run_state(flow_run_id, state, force=True)
    except Exception as exc:  # the ledger holds the decision; Prefect only mirrors it
        log.warning("could not mirror run %s's decision to Prefect: %s", run_id, exc)
        return None
    return state.name
