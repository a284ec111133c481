"""How flows reach the workspace: by plain, serializable parameters, never by environment."""

from __future__ import annotations

from pydantic import SecretStr

from pdo.settings import Settings
from pdo.workspace import Workspace


def ledger_secret(database_url: str | SecretStr | None) -> SecretStr | None:
    """The ledger URL as a flow parameter: Prefect stores and shows it as '**********'.

    A PostgreSQL ledger's URL may carry its password, and a flow run's parameters are readable by
    anyone with the Prefect UI or API (a shared server, on a cluster).
    """
    if database_url is None or isinstance(database_url, SecretStr):
        return database_url
    return SecretStr(database_url)


def revealed(database_url: str | SecretStr | None) -> str | None:
    """The ledger URL itself, for the flow's tasks (whose parameters Prefect does not store)."""
    return database_url.get_secret_value() if isinstance(database_url, SecretStr) else database_url


def open_workspace(home: str, database_url: str | SecretStr | None) -> Workspace:
    """The workspace a flow was started for (the key file/env is read at this root only)."""
    return Workspace.open(Settings(home=home, database_url=revealed(database_url)))
