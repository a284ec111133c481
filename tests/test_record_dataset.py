"""Two runs at once that make the same content-addressed dataset version both go on.

The same delivery ingested twice at once (two runs, one ledger) gives the same version id: the
run committing second found it missing when it looked, then lost the insert (PostgreSQL; SQLite
serializes the two at BEGIN). Real ledgers (SQLite, and PostgreSQL when PDO_TEST_POSTGRES_URL is
set), two sessions on two connections.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select

from flows.stages import record_dataset
from pdo.lake import Manifest
from pdo.ledger.models import DatasetVersion
from pdo.settings import Settings
from pdo.workspace import Workspace
from tests.pg import fresh_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def workspace(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Workspace]:
    if request.param == "sqlite":
        yield Workspace.open(Settings(home=tmp_path))
        return
    with fresh_database() as url:
        ws = Workspace.open(Settings(home=tmp_path, database_url=url))
        yield ws
        ws.engine.dispose()


def _manifest(version: str) -> Manifest:
    return Manifest(
        id=version,
        table="tax_credit",
        zone="raw",
        stage="ingest",
        row_count=3,
        data_hash="d" * 64,
        schema={"uscc": "String"},
    )


def test_a_version_recorded_by_a_concurrent_run_does_not_fail_this_one(
    workspace: Workspace, tmp_path: Path
) -> None:
    same = _manifest("a" * 64)
    first = Session(workspace.engine)
    record_dataset(first, same, tmp_path / "raw")
    first.flush()  # the first run's insert holds the row until it commits
    failures: list[BaseException] = []

    def second_run() -> None:
        with Session(workspace.engine) as second:
            try:
                record_dataset(second, same, tmp_path / "raw")
                record_dataset(second, _manifest("b" * 64), tmp_path / "raw")
                second.commit()
            except BaseException as exc:
                failures.append(exc)

    racer = threading.Thread(target=second_run)
    racer.start()
    racer.join(timeout=0.5)  # it looked before the first committed, and now waits on its insert
    first.commit()
    first.close()
    racer.join(timeout=30)
    assert not racer.is_alive() and failures == []
    with Session(workspace.engine) as s:
        recorded = sorted(v.id for v in s.exec(select(DatasetVersion)))
    assert recorded == ["a" * 64, "b" * 64]  # once each, the second run's own work kept
