"""The gate's rules on a real ledger and lake: who may decide, and what an approval covers."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from pdo.lake import Lake, frame_hash
from pdo.ledger.db import make_engine, session_scope
from pdo.ledger.models import PipelineRun, SignOff
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
    return _seed_gate(make_engine(f"sqlite:///{tmp_path / 'ledger.db'}"), Lake(tmp_path / "lake"))


def _seed_gate(engine: Engine, lake: Lake) -> tuple:
    """A run of one general table awaiting sign-off, started by rick; reviewers rita and rick."""
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


def test_a_changed_dataset_whose_manifest_was_edited_to_match_is_still_refused(
    gate: tuple,
) -> None:
    """The manifest's data hash is the writer's claim: the id the reviewers signed is recomputed
    from it, so data and manifest changed together do not pass for the reviewed version."""
    engine, lake, run_id, m = gate
    _decide(engine, lake, run_id, "rita")
    changed = pl.DataFrame({"uscc": ["A"], "v": [999]})
    changed.write_parquet(lake.dir_for(m) / m.file_name)
    manifest_file = lake.dir_for(m) / "manifest.json"
    stored = json.loads(manifest_file.read_text())
    stored["data_hash"] = frame_hash(changed)
    manifest_file.write_text(json.dumps(stored))
    assert lake.verify(lake.manifest(m.zone, m.table, m.id))  # the data matches its manifest
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


@pytest.mark.postgres
def test_two_decisions_at_once_on_postgresql_do_not_both_count(tmp_path: Path) -> None:
    """rita approves while rosa rejects: the second waits for the first and is then refused, so
    a run is never recorded both rejected and approved (and published)."""
    from tests.pg import fresh_database

    with fresh_database() as url:
        engine = make_engine(url)
        try:
            engine, lake, run_id, _ = _seed_gate(engine, Lake(tmp_path / "lake"))
            with session_scope(engine) as s:
                add_user(s, "rosa", Role.REVIEWER, "password-123", "admin")
            first_decided, release = threading.Event(), threading.Event()
            outcome: dict[str, object] = {}

            def approve_and_hold() -> None:
                with session_scope(engine) as s:
                    decide(s, lake, run_id, "rita", True, "")
                    first_decided.set()
                    release.wait(30)  # rita's transaction stays open meanwhile

            def reject() -> None:
                try:
                    _decide(engine, lake, run_id, "rosa", approve=False, comment="缺字段说明")
                    outcome["rosa"] = "recorded"
                except SignOffError as refused:
                    outcome["rosa"] = str(refused)

            holder = threading.Thread(target=approve_and_hold)
            holder.start()
            assert first_decided.wait(30)
            second = threading.Thread(target=reject)
            second.start()
            second.join(timeout=2)  # waits for rita's transaction (or, before, did not)
            release.set()
            holder.join(30)
            second.join(30)
            with Session(engine) as s:
                run = s.get(PipelineRun, run_id)
                assert run is not None
                decisions = [d.decision for d in s.exec(select(SignOff))]
            assert outcome["rosa"] == f"run {run_id} is approved, not awaiting sign-off"
            assert (run.status, decisions) == ("approved", ["approved"])
        finally:
            engine.dispose()


def test_a_build_is_not_published_over_a_version_its_reviewers_never_saw(tmp_path: Path) -> None:
    """The pending run was reviewed against credit_risk@1; once another run's credit_risk@2 is
    live, publishing it would replace a version nobody compared it with: refused with why."""
    from flows.publish import publication_refusals
    from pdo.ledger.models import ProductVersion
    from pdo.settings import Settings
    from pdo.workspace import Workspace
    from tests.console_seed import seed_console

    seed = seed_console(tmp_path)
    engine = Workspace.open(Settings(home=tmp_path)).engine
    with session_scope(engine) as s:
        run = s.get(PipelineRun, seed.pending_run_id)
        assert run is not None
        (card,) = run.review_package["products"]

        def stale(problems: list[str]) -> list[str]:  # (the seed's grant has revenue issues too)
            return [p for p in problems if "went live" in p]

        assert stale(publication_refusals(s, run, card)) == []  # @1 is still the live version
        live = s.get(ProductVersion, "credit_risk@1")
        assert live is not None
        live.status = "superseded"
        s.add(live)
        s.add(
            ProductVersion(
                id="credit_risk@2", product_name="credit_risk", version=2, run_id=live.run_id,
                signoff_id=live.signoff_id, output_hash="e" * 64, as_of=live.as_of,
            )
        )  # fmt: skip
        s.flush()
        assert stale(publication_refusals(s, run, card)) == [
            "credit_risk: credit_risk@2 went live after this run was reviewed against "
            "credit_risk@1; process the delivery again to review it anew"
        ]


def test_publishing_refused_by_the_grants_revenue_terms_is_one_line_and_delivers_nothing(
    prefect_harness: None, tmp_path: Path
) -> None:
    """The seeded build's revenue rule pays a party the grant does not name: every product is
    checked before any is delivered, and `pdo publish` says why in one line."""
    from typer.testing import CliRunner

    from pdo.cli import app
    from pdo.ledger.models import ProductVersion
    from pdo.settings import Settings
    from pdo.workspace import Workspace
    from tests.console_seed import seed_console

    seed = seed_console(tmp_path)
    env = {"PDO_HOME": str(tmp_path), "PDO_DATABASE_URL": None}
    for reviewer in ("rita", "rosa"):
        approved = CliRunner().invoke(
            app, ["signoff", "approve", seed.pending_run_id, "--as", reviewer, "--no-publish"],
            env=env,
        )  # fmt: skip
        assert approved.exit_code == 0, approved.output
    published = CliRunner().invoke(app, ["publish", seed.pending_run_id], env=env)
    assert published.exit_code == 1 and isinstance(published.exception, SystemExit)
    assert "is not published: credit_risk: the revenue rule breaks authorization" in (
        published.output
    )
    with session_scope(Workspace.open(Settings(home=tmp_path)).engine) as s:
        versions = s.exec(select(ProductVersion.id)).all()
    assert versions == ["credit_risk@1"]  # only the seed's earlier version
