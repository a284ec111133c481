"""The CLI's composition root: settings read once, workspace opened, Prefect environment set."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy.exc import SQLAlchemyError

from pdo.settings import Settings
from pdo.workspace import Workspace

# No markup by default: names, reasons and errors hold what users typed, and a `[/]` in one
# crashed rich after the command had already saved its change. Styled lines opt in and escape.
console = Console(soft_wrap=True, markup=False)
err_console = Console(stderr=True, soft_wrap=True, markup=False)


def settings() -> Settings:
    """Read from the environment at each command (cheap), so tests can point PDO_HOME anywhere."""
    return Settings()


def workspace() -> Workspace:
    """The home's ledger and lake; a home or database that cannot be opened is one clear line."""
    current = settings()
    try:
        return Workspace.open(current)
    except OSError as exc:
        raise fail(
            f"cannot open the pdo home {current.resolved_home}: {exc.strerror or exc}"
        ) from exc
    except (SQLAlchemyError, ImportError) as exc:  # unreachable, not a database, no driver
        from pdo.sources.database import display_url

        where = display_url(current.db_url)
        raise fail(f"cannot open the ledger database {where}: {type(exc).__name__}") from exc


def prepare_prefect() -> None:
    """Keep Prefect's state under PDO_HOME and quiet, unless the user configured Prefect."""
    home = settings().resolved_home
    os.environ.setdefault("PREFECT_HOME", str(home / "prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print a clear error on stderr and return the exit to raise."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", markup=True)
    return typer.Exit(code)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
