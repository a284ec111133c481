"""The ledger on SQLite (and PostgreSQL when marked): schema, aware timestamps, audit chain."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from pdo import audit
from pdo.ledger.db import make_engine, session_scope
from pdo.ledger.models import Department
from pdo.registration import (
    AuthorizationError,
    check_authorization,
    grant_authorization,
    register_departments,
)
from pdo.sources.tables import SOURCE_TABLES


def _sqlite(tmp_path) -> Engine:
    return make_engine(f"sqlite:///{tmp_path / 'ledger.db'}")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:
    if request.param == "sqlite":
        yield _sqlite(tmp_path)
        return
    from tests.pg import fresh_database

    with fresh_database() as url:
        eng = make_engine(url)
        yield eng
        eng.dispose()


def test_chain_verifies_and_detects_an_altered_row(engine: Engine) -> None:
    with session_scope(engine) as s:
        for i in range(5):
            audit.record(s, "tester", "thing.happen", f"subject-{i}", n=i, note="原文")
    with session_scope(engine) as s:
        report = audit.verify(s)
    assert report.ok and report.events == 5
    with engine.begin() as c:
        c.execute(text("UPDATE audit_event SET subject = 'forged' WHERE seq = 3"))
    with session_scope(engine) as s:
        broken = audit.verify(s)
    assert not broken.ok and broken.broken_at == 3


def test_chain_detects_a_deleted_row(engine: Engine) -> None:
    with session_scope(engine) as s:
        for i in range(3):
            audit.record(s, "tester", "x", str(i))
    with engine.begin() as c:
        c.execute(text("DELETE FROM audit_event WHERE seq = 2"))
    with session_scope(engine) as s:
        report = audit.verify(s)
    assert not report.ok and report.broken_at == 3


def test_timestamps_come_back_timezone_aware(engine: Engine) -> None:
    with session_scope(engine) as s:
        event = audit.record(s, "tester", "x", "y")
        seq = event.seq
    with session_scope(engine) as s:
        from pdo.ledger.models import AuditEvent

        again = s.get(AuditEvent, seq)
        assert again is not None and again.at.tzinfo is not None
        assert abs(again.at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)


def test_authorization_must_cover_every_table(engine: Engine) -> None:
    with session_scope(engine) as s:
        assert register_departments(s, "admin") > 0
        assert register_departments(s, "admin") == 0  # idempotent
        assert s.get(Department, "tax") is not None
        auth = grant_authorization(
            s,
            reference="数授-T1",
            tables=["tax_credit"],
            purposes=["贷前审查"],
            days=30,
            actor="authority",
        )
        auth_id = auth.id
    with session_scope(engine) as s:
        assert check_authorization(s, auth_id, ["tax_credit"]).reference == "数授-T1"
        with pytest.raises(AuthorizationError, match="does not cover"):
            check_authorization(s, auth_id, [t.name for t in SOURCE_TABLES])
        with pytest.raises(AuthorizationError, match="does not exist"):
            check_authorization(s, "nope", ["tax_credit"])
