"""The gate's rules on a real ledger and lake: who may decide, and what an approval covers."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from sqlmodel import Session

from pdo.lake import Lake
from pdo.ledger.db import make_engine, session_scope
from pdo.ledger.models import PipelineRun
from pdo.registration import grant_authorization, register_departments
from pdo.signoff import (
    SignOffError,
    decide,
    package_hash,
    progress,
    require_approval,
    required_approvals,
)
from pdo.users import Role, add_user


@pytest.fixture
def gate(tmp_path: Path) -> tuple:
    engine = make_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    lake = Lake(tmp_path / "lake")
    m = lake.write(
        pl.DataFrame({"uscc": ["A"], "v": [1]}),
        table="tax_credit",
        zone="desensitized",
        stage="desensitize",
    )
    with session_scope(engine) as s:
        register_departments(s, "admin")
        auth = grant_authorization(
            s,
            reference="R",
            tables=["tax_credit"],
            purposes=["贷前审查"],
            days=10,
            actor="authority",
        )
        for name, role in (
            ("olga", Role.OPERATOR),
            ("rita", Role.REVIEWER),
            ("rick", Role.REVIEWER),
        ):
            add_user(s, name, role, "password-123", "admin")
        package = {"datasets": [{"table": m.table, "zone": m.zone, "id": m.id, "rows": 1}]}
        run = PipelineRun(
            source_dir="/x",
            authorization_id=auth.id,
            started_by="rick",
            status="awaiting_signoff",
            review_package=package,
            review_package_hash=package_hash(package),
        )
        s.add(run)
        s.flush()
        run_id = run.id
    return engine, lake, run_id, m


def _decide(engine, lake, run_id: str, who: str, approve: bool = True, comment: str = "") -> None:
    with session_scope(engine) as s:
        decide(s, lake, run_id, who, approve, comment)


def test_only_reviewers_decide_and_not_on_their_own_run(gate: tuple) -> None:
    engine, lake, run_id, _ = gate
    with pytest.raises(SignOffError, match="not a reviewer"):
        _decide(engine, lake, run_id, "olga")
    with pytest.raises(SignOffError, match="cannot decide"):
        _decide(engine, lake, run_id, "rick")
    with pytest.raises(SignOffError, match="needs a comment"):
        _decide(engine, lake, run_id, "rita", approve=False)
    with Session(engine) as s, pytest.raises(SignOffError, match="no approval"):
        require_approval(s, lake, run_id)
    _decide(engine, lake, run_id, "rita")
    with Session(engine) as s:
        assert require_approval(s, lake, run_id).reviewer == "rita"


def test_changed_dataset_invalidates_approval(gate: tuple) -> None:
    engine, lake, run_id, m = gate
    _decide(engine, lake, run_id, "rita")
    pl.DataFrame({"uscc": ["B"], "v": [2]}).write_parquet(lake.dir_for(m) / m.file_name)
    with Session(engine) as s, pytest.raises(SignOffError, match="changed on disk"):
        require_approval(s, lake, run_id)


def test_changed_dataset_refuses_a_pending_approval(gate: tuple) -> None:
    engine, lake, run_id, m = gate
    (lake.dir_for(m) / m.file_name).unlink()
    with pytest.raises(SignOffError, match="reviewed data changed"):
        _decide(engine, lake, run_id, "rita")


def test_changed_review_package_is_refused(gate: tuple) -> None:
    engine, lake, run_id, _ = gate
    with session_scope(engine) as s:
        run = s.get(PipelineRun, run_id)
        assert run is not None
        run.review_package = {**run.review_package, "datasets": []}
        s.add(run)
    with pytest.raises(SignOffError, match="review package changed"):
        _decide(engine, lake, run_id, "rita")


def test_rejection_is_final(gate: tuple) -> None:
    engine, lake, run_id, _ = gate
    _decide(engine, lake, run_id, "rita", approve=False, comment="字段范围超出授权")
    with Session(engine) as s, pytest.raises(SignOffError, match="no approval"):
        require_approval(s, lake, run_id)
    with pytest.raises(SignOffError, match="not awaiting"):
        _decide(engine, lake, run_id, "rick")


def _classify(engine, run_id: str, tables: list[dict]) -> None:
    """Put tables in the run's review package (re-hashed, as the pipeline would generate it)."""
    with session_scope(engine) as s:
        run = s.get(PipelineRun, run_id)
        assert run is not None
        run.review_package = {**run.review_package, "tables": tables}
        run.review_package_hash = package_hash(run.review_package)
        s.add(run)


@pytest.mark.parametrize(
    ("tables", "needed"),
    [
        ([], 1),
        ([{"table": "tax_credit", "classification": "一般"}], 1),
        ([{"table": "tax_credit"}, {"table": "enterprise_registry"}], 2),  # contract: 重要
        ([{"table": "tax_credit", "classification": "重要"}], 2),  # the package can raise it
        ([{"table": "enterprise_registry", "classification": "一般"}], 2),  # never lower it
        ([{"table": "x", "classification": "核心"}], 2),
    ],
)
def test_required_approvals_follow_the_highest_classification(tables: list, needed: int) -> None:
    assert required_approvals({"tables": tables}) == needed


def test_important_data_needs_two_distinct_reviewers(gate: tuple) -> None:
    engine, lake, run_id, _ = gate
    _classify(engine, run_id, [{"table": "enterprise_registry", "classification": "重要"}])
    _decide(engine, lake, run_id, "rita")
    with Session(engine) as s:
        run = s.get(PipelineRun, run_id)
        assert run is not None and run.status == "awaiting_signoff"
        assert progress(s, run) == (1, 2)
        with pytest.raises(SignOffError, match="no approval"):
            require_approval(s, lake, run_id)
    with pytest.raises(SignOffError, match="already approved"):
        _decide(engine, lake, run_id, "rita")
    with pytest.raises(SignOffError, match="cannot decide"):
        _decide(engine, lake, run_id, "rick")  # the starter still cannot be the second
    with session_scope(engine) as s:
        add_user(s, "rosa", Role.REVIEWER, "password-123", "admin")
    _decide(engine, lake, run_id, "rosa")
    with Session(engine) as s:
        assert require_approval(s, lake, run_id).reviewer == "rosa"
        run = s.get(PipelineRun, run_id)
        assert run is not None and run.status == "approved" and progress(s, run) == (2, 2)


def test_a_rejection_by_either_reviewer_ends_an_important_run(gate: tuple) -> None:
    engine, lake, run_id, _ = gate
    _classify(engine, run_id, [{"table": "court_cases"}])
    _decide(engine, lake, run_id, "rita")
    with session_scope(engine) as s:
        add_user(s, "rosa", Role.REVIEWER, "password-123", "admin")
    _decide(engine, lake, run_id, "rosa", approve=False, comment="执行标的字段超出授权用途")
    with Session(engine) as s:
        run = s.get(PipelineRun, run_id)
        assert run is not None and run.status == "rejected"
        with pytest.raises(SignOffError, match="no approval"):
            require_approval(s, lake, run_id)


def test_a_revoked_authorization_refuses_publishing_an_approved_run(gate: tuple) -> None:
    from pdo.registration import revoke_authorization

    engine, lake, run_id, _ = gate
    _decide(engine, lake, run_id, "rita")
    with session_scope(engine) as s:
        run = s.get(PipelineRun, run_id)
        assert run is not None
        revoke_authorization(s, run.authorization_id, "authority", "数据用途超出授权范围")
    with Session(engine) as s, pytest.raises(SignOffError, match="revoked; publish refused"):
        require_approval(s, lake, run_id)


def test_a_rejection_through_the_cli_is_shown_to_the_data_group(
    gate: tuple, tmp_path: Path
) -> None:
    """The data group sees the rejection and its reason; nothing of the run can be published."""
    import json

    from typer.testing import CliRunner

    from pdo.cli import app

    run_id = gate[2]
    runner = CliRunner()
    env = {"PDO_HOME": str(tmp_path), "PDO_DATABASE_URL": None}
    rejected = runner.invoke(
        app, ["signoff", "reject", run_id, "--as", "rita", "--comment", "用途超出授权"], env=env
    )
    assert rejected.exit_code == 0, rejected.output
    shown = runner.invoke(app, ["signoff", "show", run_id, "--json"], env=env)
    assert shown.exit_code == 0, shown.output
    report = json.loads(shown.output)
    assert report["status"] == "rejected"
    assert [(d["reviewer"], d["decision"], d["comment"]) for d in report["decisions"]] == [
        ("rita", "rejected", "用途超出授权")
    ]
    published = runner.invoke(app, ["publish", run_id], env=env)
    assert published.exit_code != 0 and "no approval" in published.output
    missing = runner.invoke(app, ["signoff", "show", "no-such-run"], env=env)
    assert missing.exit_code != 0 and "no run no-such-run" in missing.output
