"""A partition that fails names its own error, and the run is recorded as failed."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from pdo.cli import app
from pdo.ledger.db import session_scope
from pdo.ledger.models import DatasetVersion, PipelineRun
from pdo.settings import Settings
from pdo.workspace import Workspace


def _granted_run(source: Path, env: dict[str, str]) -> tuple[int, str]:
    """Register the departments, grant every table, run the delivery in two partitions."""

    def pdo(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, list(args), env=env)
        return result.exit_code, result.output

    assert pdo("department", "register")[0] == 0
    assert pdo("authorization", "grant", "--reference", "数授〔2026〕F号")[0] == 0
    return pdo("run", "--source", str(source), "--partitions", "2")


def test_a_failed_partition_fails_the_run_with_its_own_error(
    prefect_harness: None, tmp_path: Path
) -> None:
    from pdo.gen import generate

    source = tmp_path / "delivery"
    generate(source, enterprises=120, seed=3, progress=False)
    env = {"PDO_HOME": str(tmp_path / "home"), "PDO_PSEUDONYM_KEY": ""}  # an unusable key
    code, out = _granted_run(source, env)
    assert code == 1
    (error,) = [line for line in out.splitlines() if line.startswith("error:")]
    assert error.endswith("failed: pseudonym key must not be empty")  # the cause, not NotReady
    ws = Workspace.open(Settings(home=tmp_path / "home"))
    with session_scope(ws.engine) as s:
        (run,) = s.query(PipelineRun).all()
        assert run.status == "failed" and "pseudonym key" in (run.error or "")
        zones = {v.zone for v in s.query(DatasetVersion).all()}
    assert "desensitized" not in zones and "product" not in zones  # nothing half-published


def test_a_run_refused_for_residual_personal_data_leaves_no_staged_partition(
    prefect_harness: None, tmp_path: Path
) -> None:
    """The refused partitions hold the personal value: the failed run removes them."""
    import polars as pl

    from pdo.gen import generate
    from pdo.sources.tables import table

    source = tmp_path / "delivery"
    generate(source, enterprises=120, seed=3, progress=False)
    registry = source / table("enterprise_registry").file_name
    names = pl.read_csv(registry, infer_schema=False)
    mobile = "13812345678"  # a synthetic mobile hidden in one business name
    names.with_columns(
        pl.when(pl.int_range(pl.len()) == 0)
        .then(pl.lit(f"杭州市西湖区{mobile}商行"))
        .otherwise(pl.col("name"))
        .alias("name")
    ).write_csv(registry)
    home = tmp_path / "home"
    code, out = _granted_run(source, {"PDO_HOME": str(home)})
    assert code == 1 and "desensitization refused" in out and mobile not in out, out
    staged = home / "lake" / ".staging"
    left = [p for p in staged.rglob("*") if p.is_file()] if staged.exists() else []
    assert left == []
    ws = Workspace.open(Settings(home=home))
    with session_scope(ws.engine) as s:
        (run,) = s.query(PipelineRun).all()
        assert run.status == "failed" and mobile not in (run.error or "")
