"""Audit chain checkpoints and `pdo audit verify`: every kind of tampering is caught and named.

Each test builds a real ledger (SQLite file; PostgreSQL too when PDO_TEST_POSTGRES_URL is set) with
the real units of work, tampers with it in raw SQL as someone with database access would, and runs
`pdo audit verify` on the real CLI app.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import stat
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import JSON, bindparam, create_engine, event, insert, text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel
from typer.testing import CliRunner

from pdo import audit, checkpoints
from pdo.cli import app
from pdo.ledger.db import make_engine, read_scope, session_scope
from pdo.ledger.models import AuditCheckpoint
from pdo.ledger.types import UTCDateTime
from pdo.registration import (
    grant_authorization,
    register_departments,
    renew_authorization,
    revoke_authorization,
)
from pdo.settings import Settings

# --- a real ledger -----------------------------------------------------------------------


@dataclass
class Ledger:
    engine: Engine
    settings: Settings
    env: dict[str, str]
    first_checkpoint: int  # checkpoint ids
    second_checkpoint: int

    def pdo(self, *args: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, list(args), env=self.env)
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.exit_code, result.output

    def verify(self, *args: str) -> tuple[int, dict[str, Any]]:
        code, out = self.pdo("audit", "verify", "--json", *args)
        return code, json.loads(out)

    def rows(self) -> list[dict[str, Any]]:
        with read_scope(self.engine) as s:
            return [dict(zip(_NAMES, r, strict=True)) for r in audit.events(s)]

    def checkpoint(self, cid: int) -> AuditCheckpoint:
        with read_scope(self.engine) as s:
            cp = s.get(AuditCheckpoint, cid)
            assert cp is not None
            s.expunge(cp)
            return cp


_NAMES = ("seq", "at", "actor", "action", "subject", "details", "prev_hash", "hash")


def _activity(engine: Engine, batch: int) -> None:
    """A few dozen consequential actions, through the real units of work and audit.record."""
    with session_scope(engine) as s:
        if batch == 0:
            register_departments(s, "admin")
            grant = grant_authorization(
                s,
                reference="数授-2026-001",
                tables=["tax_credit"],
                purposes=["贷前审查", "贷后管理"],
                days=365,
                actor="authority",
            )
            revoke_authorization(s, grant.id, "authority", "复核中 / under review")
            renew_authorization(s, grant.id, 30, "authority")
    for i in range(12):
        with session_scope(engine) as s:
            audit.record(
                s,
                ["pipeline", "reviewer", "api", "settlement"][i % 4],
                ["run.finish", "signoff.approve", "usage.query", "settlement.close"][i % 4],
                f"subject-{batch}-{i}",
                n=i,
                fen=1234 * i,
                note="企业信用评分 ✓" if i % 2 else None,
                tables=["tax_credit", "court_judgment"][: i % 3],
                nested={"period": "2026-11", "at": dt.datetime(2026, 11, 1, tzinfo=dt.UTC)},
            )


def _build(engine: Engine, home: Path, url: str) -> tuple[int, int]:
    """The ledger every test starts from: two checkpoints, and events after the last one."""
    key = Settings(home=home, database_url=url).read_audit_signing_key()
    _activity(engine, 0)
    with session_scope(engine) as s:
        first = checkpoints.create_checkpoint(s, key, "operator").id
    _activity(engine, 1)
    with session_scope(engine) as s:
        second = checkpoints.create_checkpoint(s, key, "operator").id
    with session_scope(engine) as s:
        for i in range(4):
            audit.record(s, "api", "usage.query", f"tail-{i}", n=i)
    assert first is not None and second is not None
    return first, second


def _ledger(engine: Engine, home: Path, url: str, ids: tuple[int, int]) -> Ledger:
    settings = Settings(home=home, database_url=url)
    env = {"PDO_HOME": str(home), "PDO_DATABASE_URL": url}
    return Ledger(engine, settings, env, *ids)


# Built once per module and copied for each test (a copy is ~10x faster than a build).


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, tuple[int, int]]:
    root = tmp_path_factory.mktemp("template")
    engine = make_engine(f"sqlite:///{root / 'ledger.db'}")
    ids = _build(engine, root / "home", f"sqlite:///{root / 'ledger.db'}")
    engine.dispose()  # the last connection closing folds the WAL into the file
    return root, ids


@pytest.fixture(scope="module")
def postgres_template(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, Path, tuple[int, int]]]:
    from tests.pg import fresh_database

    home = tmp_path_factory.mktemp("pg-template") / "home"
    with fresh_database() as url:
        engine = make_engine(url)
        ids = _build(engine, home, url)
        engine.dispose()  # a template database must have no connections
        yield url, home, ids


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    home = tmp_path / "home"
    if request.param == "sqlite":
        root, ids = request.getfixturevalue("sqlite_template")
        shutil.copy(root / "ledger.db", tmp_path / "ledger.db")
        shutil.copytree(root / "home", home)
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
        yield _ledger(make_engine(url), home, url, ids)
        return
    template, template_home, ids = request.getfixturevalue("postgres_template")
    name = f"pdo_{uuid.uuid4().hex[:10]}"
    admin = create_engine(os.environ["PDO_TEST_POSTGRES_URL"], isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f"CREATE DATABASE {name} TEMPLATE {template.rsplit('/', 1)[1]}"))
    url = template.rsplit("/", 1)[0] + "/" + name
    shutil.copytree(template_home, home)  # the key that signed the copied checkpoints
    engine = make_engine(url)
    try:
        yield _ledger(engine, home, url, ids)
    finally:
        engine.dispose()
        with admin.connect() as c:
            c.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def _sql(ledger: Ledger, *statements: str, **params: Any) -> None:
    with ledger.engine.begin() as c:
        for statement in statements:
            c.execute(text(statement), params)


def _insert(c: Connection, row: dict[str, Any]) -> None:
    """A raw INSERT of an event row (binding `at` and `details` as the ledger stores them)."""
    c.execute(
        text(
            "INSERT INTO audit_event (seq, at, actor, action, subject, details, prev_hash, hash) "
            "VALUES (:seq, :at, :actor, :action, :subject, :details, :prev_hash, :hash)"
        ).bindparams(bindparam("at", type_=UTCDateTime()), bindparam("details", type_=JSON)),
        row,
    )


def _forged(seq: int, prev_hash: str, **changes: Any) -> dict[str, Any]:
    """An event forged with a correct hash: it passes every check made on it alone."""
    row: dict[str, Any] = {
        "seq": seq,
        "at": dt.datetime.now(dt.UTC),
        "actor": "mallory",
        "action": "settlement.close",
        "subject": "forged",
        "details": {"fen": 1},
        "prev_hash": prev_hash,
    } | changes
    return row | {"hash": audit.digest(**{k: row[k] for k in _DIGESTED}, prev_hash=prev_hash)}


_DIGESTED = ("seq", "at", "actor", "action", "subject", "details")


def _shift(ledger: Ledger, after: int, by: int) -> None:
    """Renumber the events after `after` by `by` (two steps: seq is the primary key)."""
    _sql(
        ledger,
        "UPDATE audit_event SET seq = seq + 1000000 WHERE seq > :after",
        f"UPDATE audit_event SET seq = seq - 1000000 + ({by}) WHERE seq > 1000000",
        after=after,
    )


# --- tampering, kind by kind -------------------------------------------------------------


def test_a_clean_chain_verifies(ledger: Ledger) -> None:
    code, report = ledger.verify()
    assert code == 0 and report["ok"], report
    assert report["events"] == len(ledger.rows()) > 30
    assert report["checkpoints"] == [
        f"ledger checkpoint #{ledger.first_checkpoint}",
        f"ledger checkpoint #{ledger.second_checkpoint}",
    ]
    code, out = ledger.pdo("audit", "verify")
    assert (
        code == 0
        and "audit chain intact" in out
        and "2 ledger checkpoints and 0 checkpoint files match" in out
    )


def test_updated_content_is_named(ledger: Ledger) -> None:
    _sql(ledger, "UPDATE audit_event SET details = :d WHERE seq = 7", d='{"fen": 0}')
    code, report = ledger.verify()
    assert code == 1 and report["broken_at"] == 7
    assert report["action"] == ledger.rows()[6]["action"]
    assert "content does not match its hash" in report["reason"]
    # the ledger's first checkpoint covers event 7: it no longer matches either
    assert any("merkle root differs" in f["reason"] for f in report["findings"])

    code, out = ledger.pdo("audit", "verify")
    assert code == 1 and "broken at event 7" in out


def test_an_updated_actor_is_named(ledger: Ledger) -> None:
    _sql(ledger, "UPDATE audit_event SET actor = 'mallory' WHERE seq = 20")
    code, report = ledger.verify()
    assert code == 1 and report["broken_at"] == 20


def test_a_deleted_middle_event_is_a_gap(ledger: Ledger) -> None:
    _sql(ledger, "DELETE FROM audit_event WHERE seq = 10")
    code, report = ledger.verify()
    assert code == 1 and report["broken_at"] == 11
    assert report["reason"] == "gap: expected seq 10, found 11 (event 10 deleted)"


def test_a_deleted_middle_event_hidden_by_renumbering_is_named(ledger: Ledger) -> None:
    _sql(ledger, "DELETE FROM audit_event WHERE seq = 10")
    _shift(ledger, 10, -1)
    code, report = ledger.verify()
    assert code == 1 and report["broken_at"] == 10
    assert "prev_hash" in report["reason"] and "links to no event" in report["reason"]


def test_deleted_tail_events_are_caught_by_the_stored_checkpoints(ledger: Ledger) -> None:
    last = ledger.checkpoint(ledger.second_checkpoint).last_seq
    _sql(ledger, "DELETE FROM audit_event WHERE seq >= :cut", cut=last - 5)
    code, report = ledger.verify()
    assert code == 1 and report["broken_at"] == last - 5
    assert f"events after {last - 6} deleted" in report["reason"]
    reasons = [f["reason"] for f in report["findings"]]
    assert f"events {last - 5}..{last} missing (chain shorter than checkpoint)" in reasons


def test_deleting_from_a_checkpoints_own_record_on_is_caught(ledger: Ledger) -> None:
    last = ledger.checkpoint(ledger.second_checkpoint).last_seq
    _sql(ledger, "DELETE FROM audit_event WHERE seq > :last", last=last)
    code, report = ledger.verify()
    assert code == 1 and report["broken_at"] == last + 1
    assert report["reason"] == (
        f"events after {last} deleted: the audit.checkpoint record of checkpoint "
        f"#{ledger.second_checkpoint} (event {last + 1}) is missing"
    )


@pytest.mark.parametrize(
    ("tamper", "column"),
    [
        ("UPDATE audit_event SET at = 'yesterday' WHERE seq = 5", "at"),
        ("UPDATE audit_event SET details = '{not json' WHERE seq = 5", "details"),
    ],
    ids=["at-not-a-timestamp", "details-not-json"],
)
def test_an_unreadable_stored_value_is_named_not_crashed_on(
    ledger: Ledger, tamper: str, column: str
) -> None:
    if ledger.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's typed columns refuse such values")
    _sql(ledger, tamper)
    code, out = ledger.pdo("audit", "verify")  # raises if the command crashed
    assert code == 1
    assert f"audit chain broken at event 5 ({ledger.rows()[4]['action']}): unreadable" in out
    assert f"its {column} is not a valid stored value" in out
    assert "yesterday" not in out and "not json" not in out  # the stored text is not echoed
    code, report = ledger.verify()
    assert code == 1 and report["broken_at"] == 5


def test_an_event_inserted_in_the_middle_by_renumbering_is_named(ledger: Ledger) -> None:
    rows = ledger.rows()
    _shift(ledger, 12, +1)
    with ledger.engine.begin() as c:
        _insert(c, _forged(13, rows[11]["hash"]))  # links to event 12, hash correct
    code, report = ledger.verify()
    assert code == 1 and report["broken_at"] == 13
    assert report["action"] == "settlement.close"
    assert report["reason"] == (
        "inserted: not part of the chain (event 14 was hashed as event 13 and links to event 12, "
        "so event 13 was inserted before it)"
    )


@pytest.mark.parametrize(("copied", "at"), [(20, None), (10, 25)], ids=["appended", "inserted"])
def test_a_replayed_copy_of_an_event_is_named_as_the_copy(
    ledger: Ledger, copied: int, at: int | None
) -> None:
    """The hash is not unique in the table, so a genuine event can be stored twice: the copy is
    named, not the genuine events between the two."""
    rows = ledger.rows()
    if at is None:
        at = len(rows) + 1
    else:
        _shift(ledger, at - 1, +1)
    with ledger.engine.begin() as c:
        _insert(c, dict(rows[copied - 1]) | {"seq": at})
    code, report = ledger.verify()
    assert code == 1 and report["broken_at"] == at
    assert report["reason"] == f"duplicated: a copy of event {copied}"


def test_an_event_forged_at_the_end_is_named(ledger: Ledger) -> None:
    rows = ledger.rows()
    forged = _forged(len(rows) + 1, rows[-1]["hash"]) | {"hash": "f" * 64}  # not its hash
    with ledger.engine.begin() as c:
        _insert(c, forged)
    code, report = ledger.verify()
    assert code == 1 and report["broken_at"] == len(rows) + 1
    assert report["reason"] == "content does not match its hash"


def test_an_event_forged_at_the_end_with_a_wrong_link_is_named(ledger: Ledger) -> None:
    rows = ledger.rows()
    with ledger.engine.begin() as c:
        _insert(c, _forged(len(rows) + 1, rows[-3]["hash"]))
    code, report = ledger.verify()
    assert code == 1 and report["broken_at"] == len(rows) + 1
    assert report["reason"] == (
        f"forged: its prev_hash links back to event {len(rows) - 2}, "
        f"skipping event {len(rows) - 1}..{len(rows)}"
    )


def test_two_swapped_events_are_named(ledger: Ledger) -> None:
    rows = ledger.rows()
    _sql(
        ledger,
        "UPDATE audit_event SET seq = -1 WHERE seq = 15",
        "UPDATE audit_event SET seq = 15 WHERE seq = 16",
        "UPDATE audit_event SET seq = 16 WHERE seq = -1",
    )
    code, report = ledger.verify()
    assert code == 1 and report["broken_at"] == 15
    assert report["action"] == rows[15]["action"]  # the event now at 15 was 16
    assert report["reason"] == "reordered: its prev_hash links to the later event 16"
    assert [f["reason"] for f in report["findings"] if f["source"] == "chain"] == [
        "reordered: its prev_hash links to the later event 16",
        "reordered: it was hashed as event 15, which now precedes it",
        "reordered: its prev_hash links to event 15, which was moved there",
    ]


def test_many_swapped_pairs_are_each_named_from_two_reads_of_the_hashes(ledger: Ledger) -> None:
    """The hash is not indexed, so each lookup reads the chain: ten findings, two reads."""
    pairs = (5, 9, 13, 17)
    for a in pairs:
        _sql(
            ledger,
            f"UPDATE audit_event SET seq = -1 WHERE seq = {a}",
            f"UPDATE audit_event SET seq = {a} WHERE seq = {a + 1}",
            f"UPDATE audit_event SET seq = {a + 1} WHERE seq = -1",
        )
    hash_reads: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        where = statement.partition("WHERE")[2]
        if "FROM audit_event" in statement and "audit_event.hash" in where:
            hash_reads.append(statement)

    event.listen(ledger.engine, "before_cursor_execute", count)
    try:
        with read_scope(ledger.engine) as s:
            report = audit.verify(s)
    finally:
        event.remove(ledger.engine, "before_cursor_execute", count)
    chain = [f.reason for f in report.findings if f.source == "chain"]
    for a in pairs[:3]:  # the fourth pair's last findings fall beyond the ten diagnosed
        assert f"reordered: its prev_hash links to the later event {a + 1}" in chain
        assert f"reordered: it was hashed as event {a}, which now precedes it" in chain
    assert len(hash_reads) == 2


def test_an_altered_prev_hash_is_named(ledger: Ledger) -> None:
    _sql(ledger, "UPDATE audit_event SET prev_hash = :h WHERE seq = 25", h="ab" * 32)
    code, report = ledger.verify()
    assert code == 1 and report["broken_at"] == 25
    assert "prev_hash does not match" in report["reason"]


def test_a_tampered_stored_checkpoint_is_reported(ledger: Ledger) -> None:
    _sql(
        ledger,
        "UPDATE audit_checkpoint SET merkle_root = :r WHERE id = :id",
        r="00" * 32,
        id=ledger.first_checkpoint,
    )
    code, report = ledger.verify()
    assert code == 1 and report["broken_at"] is None
    assert report["reason"] == (
        f"ledger checkpoint #{ledger.first_checkpoint}: "
        "stored merkle_root differs from its signed document"
    )


def test_a_deleted_stored_checkpoint_is_reported(ledger: Ledger) -> None:
    _sql(ledger, "DELETE FROM audit_checkpoint WHERE id = :id", id=ledger.first_checkpoint)
    code, report = ledger.verify()
    announced = ledger.checkpoint(ledger.second_checkpoint).first_seq  # its record follows it
    assert code == 1 and report["broken_at"] == announced
    assert report["reason"] == (
        f"records checkpoint #{ledger.first_checkpoint}, which is no longer in the ledger"
    )


# --- checkpoints kept elsewhere ----------------------------------------------------------


def _rewrite_whole_chain(ledger: Ledger) -> None:
    """What someone with write access can do: new content everywhere, every hash recomputed so
    the chain checks out on its own, and the ledger's checkpoints (which give it away) deleted."""
    prev = audit.GENESIS
    with ledger.engine.begin() as c:
        c.execute(text("DELETE FROM audit_checkpoint"))
        for row in ledger.rows():
            action = "note" if row["action"] == "audit.checkpoint" else row["action"]
            row |= {"actor": "mallory", "action": action, "prev_hash": prev}
            row["hash"] = audit.digest(**{k: row[k] for k in _DIGESTED}, prev_hash=prev)
            c.execute(
                text(
                    "UPDATE audit_event SET actor = :actor, action = :action, "
                    "prev_hash = :prev_hash, hash = :hash WHERE seq = :seq"
                ),
                {k: row[k] for k in ("actor", "action", "prev_hash", "hash", "seq")},
            )
            prev = row["hash"]


def test_an_exported_checkpoint_catches_a_rewrite_of_the_whole_chain(
    ledger: Ledger, tmp_path: Path
) -> None:
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    for cid, path in ((ledger.first_checkpoint, first), (ledger.second_checkpoint, second)):
        code, out = ledger.pdo("audit", "export-checkpoint", str(cid), "--out", str(path))
        assert code == 0 and str(path) in out
    public_key = json.loads(first.read_text())["public_key"]
    assert ledger.verify("--checkpoint", str(first), "--public-key", public_key)[0] == 0

    _rewrite_whole_chain(ledger)
    code, report = ledger.verify()
    assert code == 0, report  # consistent on its own: only a checkpoint kept elsewhere tells

    code, report = ledger.verify("--checkpoint", str(first))
    assert code == 1 and report["broken_at"] == 1
    last = json.loads(first.read_text())["last_seq"]
    assert report["reason"] == (
        f"checkpoint file first.json: events 1..{last} no longer match the checkpoint "
        "(merkle root differs)"
    )
    heads = [f for f in report["findings"] if f["seq"] == last]
    assert heads and "is not the checkpoint's head hash" in heads[0]["reason"]

    code, report = ledger.verify("--checkpoint", str(second))
    assert code == 1 and report["broken_at"] == last + 1

    code, out = ledger.pdo("audit", "verify", "--checkpoint", str(first))
    assert code == 1 and "broken at event 1" in out and "merkle root differs" in out


def _edit(path: Path, out: Path, **changes: Any) -> Path:
    document = json.loads(path.read_text()) | changes
    out.write_text(json.dumps(document))
    return out


def test_a_tampered_checkpoint_file_is_rejected(ledger: Ledger, tmp_path: Path) -> None:
    good = tmp_path / "cp.json"
    ledger.pdo("audit", "export-checkpoint", str(ledger.second_checkpoint), "--out", str(good))
    document = json.loads(good.read_text())
    other = ledger.checkpoint(ledger.first_checkpoint).document

    cases = {
        "edited root": _edit(good, tmp_path / "root.json", merkle_root="11" * 32),
        "edited range": _edit(good, tmp_path / "range.json", last_seq=document["last_seq"] - 1),
        "wrong signature": _edit(good, tmp_path / "sig.json", signature=other["signature"]),
        "not json": tmp_path / "garbage.json",
    }
    cases["not json"].write_text("{not json")
    for name, path in cases.items():
        code, report = ledger.verify("--checkpoint", str(path))
        assert code == 1, name
        assert report["broken_at"] is None, name  # an edited file says nothing about the chain
        if name == "not json":
            assert "not a checkpoint" in report["reason"]
        elif name == "edited range":
            assert "malformed checkpoint: range" in report["reason"]
        else:
            assert report["reason"] == f"checkpoint file {path.name}: signature invalid", name

    stranger = checkpoints.public_key_hex(Ed25519PrivateKey.generate())
    code, report = ledger.verify("--checkpoint", str(good), "--public-key", stranger)
    assert code == 1 and "not the pinned public key" in report["reason"]
    assert ledger.verify("--checkpoint", str(good), "--public-key", document["public_key"])[0] == 0

    assert (
        ledger.pdo("audit", "verify", "--public-key", "xyz")[0] == 2
    )  # a usage error, not a verdict


def test_verify_checkpoint_names_what_no_longer_matches(ledger: Ledger) -> None:
    document = ledger.checkpoint(ledger.second_checkpoint).document
    first, last = document["first_seq"], document["last_seq"]
    with read_scope(ledger.engine) as s:
        report = checkpoints.verify_checkpoint(s, document, document["public_key"])
    assert report.ok and (report.first_seq, report.last_seq) == (first, last)

    row = ledger.rows()[last - 1] | {"actor": "mallory"}  # its hash recomputed: it fits alone
    row["hash"] = audit.digest(**{k: row[k] for k in _DIGESTED}, prev_hash=row["prev_hash"])
    _sql(
        ledger,
        "UPDATE audit_event SET actor = 'mallory', hash = :h WHERE seq = :last",
        h=row["hash"],
        last=last,
    )
    with read_scope(ledger.engine) as s:
        report = checkpoints.verify_checkpoint(s, document)
    assert [f.describe() for f in report.findings] == [
        f"checkpoint: events {first}..{last} no longer match the checkpoint (merkle root differs)",
        f"checkpoint: event {last} ({row['action']}): its hash {row['hash'][:12]}… is not the "
        f"checkpoint's head hash {document['head_hash'][:12]}…",
    ]

    _sql(ledger, "UPDATE audit_event SET subject = 'x' WHERE seq = :seq", seq=first + 2)
    with read_scope(ledger.engine) as s:
        report = checkpoints.verify_checkpoint(s, document)
    action = ledger.rows()[first + 1]["action"]
    assert (
        report.reason
        == f"checkpoint: event {first + 2} ({action}): content does not match its hash"
    )
    assert len(report.findings) == 3

    _sql(ledger, "DELETE FROM audit_event WHERE seq > :cut", cut=last - 3)
    with read_scope(ledger.engine) as s:
        report = checkpoints.verify_checkpoint(s, document)
    missing = f"checkpoint: events {last - 2}..{last} missing (chain shorter than checkpoint)"
    assert missing in [f.describe() for f in report.findings]

    forged = dict(document, merkle_root="00" * 32)
    with read_scope(ledger.engine) as s:
        report = checkpoints.verify_checkpoint(s, forged)
    assert report.reason == "checkpoint: signature invalid"


# --- making checkpoints ------------------------------------------------------------------


def test_checkpoints_chain_and_a_repeat_is_a_no_op(ledger: Ledger, tmp_path: Path) -> None:
    one, two = (
        ledger.checkpoint(ledger.first_checkpoint),
        ledger.checkpoint(ledger.second_checkpoint),
    )
    assert one.first_seq == 1 and one.document["prev_checkpoint"] is None
    assert two.first_seq == one.last_seq + 1  # it covers the first one's audit.checkpoint record
    assert two.prev_checkpoint == checkpoints.document_digest(one.document)
    rows = ledger.rows()
    assert rows[one.last_seq]["action"] == "audit.checkpoint"
    assert rows[one.last_seq]["details"] == {
        "last_seq": one.last_seq,
        "merkle_root": one.merkle_root,
    }
    assert one.merkle_root == checkpoints.merkle_root(r["hash"] for r in rows[: one.last_seq])

    out = tmp_path / "third.json"
    code, text_out = ledger.pdo("audit", "checkpoint", "--out", str(out), "--as", "auditor")
    assert code == 0 and str(out) in text_out
    third = json.loads(out.read_text())
    assert third["first_seq"] == two.last_seq + 1 and third["created_by"] == "auditor"
    assert third["last_seq"] == len(rows) and third["events"] == len(rows) - two.last_seq
    assert third["format"] == "pdo-audit-checkpoint/1"
    assert checkpoints.signature_valid(third)
    events_after = len(ledger.rows())

    code, again = ledger.pdo("audit", "checkpoint", "--json")  # nothing new since: the same one
    made = json.loads(again)
    assert code == 0 and made["document"] == third and made["new"] is False
    assert made["file"] == str(
        Path(ledger.env["PDO_HOME"]) / "checkpoints" / f"audit-{len(rows)}.json"
    )
    assert json.loads(Path(made["file"]).read_text()) == third
    assert len(ledger.rows()) == events_after

    code, listing = ledger.pdo("audit", "checkpoints", "--json")
    assert [c["last_seq"] for c in json.loads(listing)] == [one.last_seq, two.last_seq, len(rows)]
    code, listing = ledger.pdo("audit", "checkpoints")
    assert code == 0 and listing.count("events ") == 3
    assert ledger.verify()[0] == 0


def test_a_checkpoint_file_that_cannot_be_written_is_one_line_and_signs_nothing_first(
    ledger: Ledger, tmp_path: Path
) -> None:
    """A directory given as the file is refused before signing; a file that cannot be written
    after signing says the checkpoint stands and how to write it again."""
    made_before = len(ledger.rows())
    code, out = ledger.pdo("audit", "checkpoint", "--out", str(tmp_path))
    assert code == 1 and "is a directory" in out and "Traceback" not in out
    assert len(ledger.rows()) == made_before  # nothing signed, nothing chained

    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    code, out = ledger.pdo("audit", "checkpoint", "--out", str(blocker / "cp.json"))
    assert code == 1 and "is made and stored" in out and "export-checkpoint" in out
    (stored,) = [r for r in ledger.rows() if r["action"] == "audit.checkpoint"][-1:]
    code, out = ledger.pdo("audit", "export-checkpoint", "1", "--out", str(tmp_path))
    assert code == 1 and "cannot write" in out and "Traceback" not in out
    code, out = ledger.pdo("audit", "export-checkpoint", "1", "--out", str(tmp_path / "1.json"))
    assert code == 0 and checkpoints.signature_valid(json.loads((tmp_path / "1.json").read_text()))
    assert stored["details"]["last_seq"] >= made_before


def test_a_signing_key_that_does_not_load_signs_nothing_and_says_so(ledger: Ledger) -> None:
    key_file = Path(ledger.env["PDO_HOME"]) / "secrets" / "audit-signing.pem"
    ledger.pdo("audit", "checkpoint")  # the key exists from here on
    key_file.write_text("not a key")
    made_before = len(ledger.rows())
    code, out = ledger.pdo("audit", "checkpoint")
    assert code == 1 and "the audit signing key does not load, nothing was signed" in out
    assert len(ledger.rows()) == made_before


def test_a_broken_chain_is_never_signed(ledger: Ledger) -> None:
    _sql(
        ledger, "UPDATE audit_event SET actor = 'mallory' WHERE seq = :seq", seq=len(ledger.rows())
    )
    assert ledger.pdo("audit", "checkpoint")[0] == 1
    key = ledger.settings.read_audit_signing_key()
    refused = pytest.raises(checkpoints.CheckpointError, match="refusing to sign a broken chain")
    with session_scope(ledger.engine) as s, refused:
        checkpoints.create_checkpoint(s, key, "op")


def test_an_empty_chain_has_no_checkpoint(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with session_scope(engine) as s, pytest.raises(checkpoints.CheckpointError, match="empty"):
        checkpoints.create_checkpoint(s, Ed25519PrivateKey.generate(), "op")
    with read_scope(engine) as s:
        assert audit.verify(s) == audit.ChainReport(True, 0)


def test_the_signing_key_is_made_once_and_private(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    key = settings.read_audit_signing_key()
    path = tmp_path / "secrets" / "audit-signing.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    again = Settings(home=tmp_path).read_audit_signing_key()
    assert checkpoints.public_key_hex(again) == checkpoints.public_key_hex(key)
    assert [p.name for p in path.parent.iterdir()] == ["audit-signing.pem"]
    elsewhere = Settings(home=tmp_path, audit_signing_key_file=tmp_path / "k.pem")
    assert checkpoints.public_key_hex(elsewhere.read_audit_signing_key()) != (
        checkpoints.public_key_hex(key)
    )


def test_the_progress_bar_path(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    from pdo.cli import admin

    monkeypatch.setattr(admin, "_PROGRESS_FROM", 1)
    seen: list[int] = []
    with read_scope(ledger.engine) as s:
        audit.verify(s, progress=seen.append)
    assert seen[-1] == len(ledger.rows())
    code, out = ledger.pdo("audit", "verify")
    assert code == 0 and "audit chain intact" in out


# --- the Merkle tree ---------------------------------------------------------------------


def _reference_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1 as written: MTH of n > 1 leaves splits at the largest power of two < n."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(
        b"\x01" + _reference_root(leaves[:k]) + _reference_root(leaves[k:])
    ).digest()


def _root(leaves: list[bytes]) -> str:
    acc = checkpoints.MerkleAccumulator()
    for leaf in leaves:
        acc.add(leaf)
    return acc.root()


def test_merkle_root_matches_the_rfc_6962_test_vectors() -> None:
    # The leaves and roots of the certificate-transparency reference tests.
    leaves = [
        bytes.fromhex(h)
        for h in (
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        )
    ]
    assert _root([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert _root(leaves[:1]) == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    assert _root(leaves) == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"


_leaves = st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=70)


@settings(max_examples=60, deadline=None)
@given(leaves=_leaves, data=st.data())
def test_merkle_root_is_the_reference_and_changes_with_any_leaf(
    leaves: list[bytes], data: st.DataObject
) -> None:
    root = _root(leaves)
    assert root == _reference_root(leaves).hex()
    assert root == checkpoints.merkle_root(leaf.hex() for leaf in leaves)
    i = data.draw(st.integers(0, len(leaves) - 1), label="leaf")
    other = data.draw(st.binary(min_size=32, max_size=32).filter(lambda b: b != leaves[i]))
    assert _root([*leaves[:i], other, *leaves[i + 1 :]]) != root
    if len(leaves) > 1:  # order matters too
        j = data.draw(st.integers(0, len(leaves) - 1).filter(lambda j: leaves[j] != leaves[i]))
        swapped = list(leaves)
        swapped[i], swapped[j] = swapped[j], swapped[i]
        assert i == j or _root(swapped) != root
    assert _root(leaves[:-1]) != root  # and so does length


# --- concurrency (PostgreSQL) and scale --------------------------------------------------


@pytest.mark.postgres
def test_on_postgresql_checkpoints_made_while_writers_append_stay_contiguous() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from tests.pg import fresh_database

    key = Ed25519PrivateKey.generate()
    with fresh_database() as url:
        engine = make_engine(url)

        def write(worker: int) -> None:
            for i in range(25):
                with session_scope(engine) as s:
                    audit.record(s, f"w{worker}", "usage.query", f"{worker}-{i}", n=i)

        def checkpoint(_: int) -> None:
            made = 0
            while made < 6:
                try:
                    with session_scope(engine) as s:
                        checkpoints.create_checkpoint(s, key, "op")
                    made += 1
                except checkpoints.CheckpointError as exc:  # no writer has committed yet
                    assert "chain is empty" in str(exc)
                    time.sleep(0.01)

        with ThreadPoolExecutor(6) as pool:
            list(
                pool.map(
                    lambda f: f[0](f[1]),
                    [(write, w) for w in range(4)] + [(checkpoint, c) for c in range(2)],
                )
            )
        with session_scope(engine) as s:
            checkpoints.create_checkpoint(s, key, "op")
        with read_scope(engine) as s:
            report = audit.verify(s)
            ranges = [(c.first_seq, c.last_seq) for c in checkpoints.stored(s)]
        engine.dispose()
    assert report.ok, report
    assert report.events == 100 + len(ranges)  # each checkpoint adds its audit.checkpoint record
    assert len(ranges) > 2 and ranges[0][0] == 1
    assert [first for first, _ in ranges[1:]] == [last + 1 for _, last in ranges[:-1]]


@pytest.mark.slow
def test_verify_streams_200k_events_on_sqlite(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'big.db'}")
    _bulk(engine, 200_000)
    started = time.perf_counter()
    with read_scope(engine) as s:
        report = audit.verify(s)
    seconds = time.perf_counter() - started
    print(f"verify of 200k events on SQLite: {seconds:.1f} s")
    assert report.ok and report.events == 200_000
    assert seconds < 60


def _bulk(engine: Engine, n: int, chunk: int = 20_000) -> None:
    """n events linked with audit.link and inserted in bulk (audit.record would take minutes)."""
    tail: tuple[int, str] | None = None
    at = dt.datetime.now(dt.UTC)
    for start in range(0, n, chunk):
        entries = [
            audit.Entry("api", "usage.query", f"usage-{i}", {"n": i, "fen": 150, "ok": True})
            for i in range(start, min(n, start + chunk))
        ]
        linked = audit.link(tail, at, entries)
        with engine.begin() as c:
            c.execute(
                insert(SQLModel.metadata.tables["audit_event"]),
                [
                    {
                        "seq": e.seq,
                        "at": e.at,
                        "actor": e.entry.actor,
                        "action": e.entry.action,
                        "subject": e.entry.subject,
                        "details": e.entry.details,
                        "prev_hash": e.prev_hash,
                        "hash": e.hash,
                    }
                    for e in linked
                ],
            )
        tail = (linked[-1].seq, linked[-1].hash)


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(
    seq=st.integers(min_value=1, max_value=10**12),
    actor=st.text(),
    action=st.text(),
    subject=st.text(),
    details=st.dictionaries(st.text(), _JSON_VALUES, max_size=6),
)
def test_digest_is_the_hash_of_the_canonical_event(
    seq: int, actor: str, action: str, subject: str, details: dict[str, Any]
) -> None:
    """The spelled-out digest (and link's pre-serialized details) equal the documented form."""
    at = dt.datetime(2026, 12, 1, 8, 30, 0, 123456, tzinfo=dt.UTC)
    body = {
        "seq": seq,
        "at": at.isoformat(),
        "actor": actor,
        "action": action,
        "subject": subject,
        "details": details,
        "prev": audit.GENESIS,
    }
    expected = hashlib.sha256(
        json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()
    ).hexdigest()
    assert audit.digest(seq, at, actor, action, subject, details, audit.GENESIS) == expected
    (placed,) = audit.link(
        (seq - 1, audit.GENESIS), at, [audit.Entry(actor, action, subject, details)]
    )
    assert placed.hash == expected
    assert json.loads(placed.details_json) == details
