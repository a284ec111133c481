"""The opened state of one pdo home: settings, ledger engine and lake, built once per process."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy.engine import Engine

from pdo.lake import Lake
from pdo.ledger.db import make_engine
from pdo.settings import Settings


@dataclass(frozen=True)
class Workspace:
    """Everything a unit of work needs, injected rather than read from the environment."""

    settings: Settings
    engine: Engine
    lake: Lake

    @classmethod
    def open(cls, settings: Settings) -> Workspace:
        return _open(settings.db_url, str(settings.resolved_home), settings)


@lru_cache(maxsize=8)
def _open_cached(db_url: str, home: str) -> tuple[Engine, Lake]:
    return make_engine(db_url), Lake(Settings(home=home).lake_dir)


def _open(db_url: str, home: str, settings: Settings) -> Workspace:
    engine, lake = _open_cached(db_url, home)
    return Workspace(settings=settings, engine=engine, lake=lake)
