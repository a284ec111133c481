"""Shared test harness: one Prefect test server per session, temp pdo homes, marker gating."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

POSTGRES_URL = os.environ.get("PDO_TEST_POSTGRES_URL")
IN_CI = bool(os.environ.get("CI"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """slow/postgres/browser tests run when enabled or available; in CI they always run."""
    chromium = Path("/usr/bin/chromium").exists()
    run_slow = IN_CI or bool(os.environ.get("PDO_TEST_SLOW"))
    for item in items:
        if "slow" in item.keywords and not run_slow:
            item.add_marker(pytest.mark.skip(reason="slow: set PDO_TEST_SLOW=1 (always on in CI)"))
        if "postgres" in item.keywords and not POSTGRES_URL:
            if IN_CI:
                raise pytest.UsageError("CI must provide PostgreSQL: PDO_TEST_POSTGRES_URL unset")
            item.add_marker(pytest.mark.skip(reason="set PDO_TEST_POSTGRES_URL to run"))
        if "browser" in item.keywords and not chromium:
            if IN_CI:
                raise pytest.UsageError("CI must provide /usr/bin/chromium for browser tests")
            item.add_marker(pytest.mark.skip(reason="/usr/bin/chromium not installed"))


@pytest.fixture(autouse=True, scope="module")
def _prefect_events_drained() -> Iterator[None]:
    """A module that ran flows stops Prefect's events worker when it ends, as Prefect's own
    harness does on exit: the worker's websocket pings draw from the global `random` in a
    background thread, which hypothesis flags when one lands during a later module's draw."""
    yield
    worker = sys.modules.get("prefect.events.worker")
    if worker is not None:
        worker.EventsWorker.drain_all(timeout=30, at_exit=False)


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One ephemeral Prefect API for the whole session (startup costs 10–18 s)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with (
        prefect_test_harness(server_startup_timeout=180),
        temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        yield
