"""How flows reach the workspace: by plain, serializable parameters, never by environment."""

from __future__ import annotations

from pdo.settings import Settings
from pdo.workspace import Workspace


def open_workspace(home: str, database_url: str | None) -> Workspace:
    """The workspace a flow was started for (the key file/env is read at this root only)."""
    return Workspace.open(Settings(home=home, database_url=database_url))
