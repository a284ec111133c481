"""Continue a decided run from a process that only records decisions (the console)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pdo.settings import Settings


def continue_in_background(settings: Settings, run_id: str) -> Path:
    """Start `pdo signoff continue RUN_ID` detached, logging to PDO_HOME/logs; returns the log."""
    logs = settings.resolved_home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"continue-{run_id[:12]}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PDO_")}
    env["PDO_HOME"] = str(settings.resolved_home)
    if settings.database_url:
        env["PDO_DATABASE_URL"] = settings.database_url
    with log.open("ab") as out:
        subprocess.Popen(
            [sys.executable, "-m", "pdo.cli.entry", "signoff", "continue", run_id],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # outlives the console's script run
        )
    return log
