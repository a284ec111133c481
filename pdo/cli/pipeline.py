"""`pdo run` and `pdo publish`: start the pipeline to the gate; publish an approved run."""

from __future__ import annotations

from pathlib import Path

import typer

from pdo.cli.root import (
    console,
    emit_json,
    err_console,
    fail,
    prepare_prefect,
    settings,
    workspace,
)
from pdo.ledger.db import session_scope
from pdo.registration import AuthorizationError, active_authorization


def _delivered(source: Path) -> list[str]:
    from flows.pipeline import discover

    return list(discover(source)) if source.is_dir() else []


def register(app: typer.Typer) -> None:
    """Attach `pdo run` and `pdo publish`."""

    @app.command("run")
    def run_command(
        source: Path | None = typer.Option(
            None, "--source", help="目录：部门交付的源文件 / delivered files"
        ),
        from_db: list[str] = typer.Option(
            [],
            "--from-db",
            help="TABLE=URL#SOURCE_TABLE: read a contracted table from a department's database "
            "(SQLAlchemy URL; password from ~/.pgpass or PGPASSWORD), repeatable",
        ),
        actor: str = typer.Option("operator", "--as", help="who starts the run"),
        authorization: str | None = typer.Option(None, help="authorization id (default: latest)"),
        runner: str | None = typer.Option(
            None, "--runner", help="local | dask (default: PDO_RUNNER, local)"
        ),
        dask_address: str | None = typer.Option(
            None, "--dask-address", help="tcp://scheduler:8786 (default: a LocalCluster)"
        ),
        workers: int | None = typer.Option(None, "--workers", min=1, help="threads or workers"),
        partitions: int | None = typer.Option(
            None, "--partitions", min=1, help="partitions per table (default: by size)"
        ),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Run ingest → desensitize → validate and stop at the sign-off gate; prints the run id."""
        prepare_prefect()
        import time

        from flows.pipeline import DatabaseSource, abandon_orphaned_runs, run_to_gate, start_run
        from flows.runners import RunnerChoice
        from pdo.cli.run_progress import RunProgress, stage_figures, stage_table
        from pdo.ledger.models import Authorization

        ws = workspace()
        with session_scope(ws.engine) as s:
            auth = active_authorization(s) if authorization is None else None
            auth_id = authorization or (auth.id if auth else None)
        if auth_id is None:
            raise fail("no active authorization; grant one with `pdo authorization grant`")
        if source is None and not from_db:
            raise fail("give --source DIR and/or --from-db TABLE=URL#SOURCE_TABLE")
        s_ = settings()
        kind = runner or s_.runner
        if kind not in ("local", "dask"):
            raise fail(f"--runner must be local or dask, not {kind!r}")
        choice = RunnerChoice(
            "dask" if kind == "dask" else "local",
            dask_address=dask_address or s_.dask_address,
            workers=workers or s_.workers,
        )
        for gone in abandon_orphaned_runs(ws):
            err_console.print(
                f"run {gone} was left running by a process that has ended: marked failed "
                "(abandoned)",
                highlight=False,
            )
        try:
            databases = dict(DatabaseSource.parse(spec) for spec in from_db)
            run = start_run(ws, source, actor, auth_id, databases)
        except (AuthorizationError, FileNotFoundError, ValueError, KeyError) as exc:
            raise fail(str(exc)) from exc
        (err_console if as_json else console).print(  # --json keeps stdout one JSON document
            f"run id: [bold]{run.id}[/] on {choice.describe()}", highlight=False, markup=True
        )
        tables = len(run.database_sources) + (len(_delivered(source)) if source else 0)
        with session_scope(ws.engine) as s:  # the run packages what its authorization covers
            granted = s.get(Authorization, run.authorization_id)
            products = len(granted.products) if granted is not None else 0
        started = time.monotonic()
        try:
            with RunProgress(ws.engine, run.id, tables, products, err_console):
                status = run_to_gate(
                    run.id, str(s_.resolved_home), s_.database_url, choice, partitions
                )
        except Exception as exc:
            raise fail(f"run {run.id} failed: {exc}") from exc
        seconds = time.monotonic() - started
        figures = stage_figures(ws.engine, run.id)
        if as_json:
            emit_json(
                {
                    "run_id": run.id,
                    "status": status,
                    "seconds": round(seconds, 1),
                    "stages": {
                        f.stage: {"tables": f.done, "rows_in": f.rows_in, "seconds": f.seconds}
                        for f in figures
                    },
                }
            )
        else:
            console.print(stage_table(figures, seconds))
            console.print(f"run {run.id}: {status} — review with `pdo signoff list`")

    @app.command("publish")
    def publish_command(
        run_id: str = typer.Argument(...),
        actor: str = typer.Option("operator", "--as"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Deliver the reviewed products of an approved run (refused without an approval)."""
        prepare_prefect()
        from flows.context import ledger_secret
        from flows.publish import publish_flow
        from pdo.signoff import SignOffError, require_approval

        ws = workspace()
        try:
            with session_scope(ws.engine) as s:
                require_approval(s, ws.lake, run_id)
        except SignOffError as exc:
            raise fail(str(exc)) from exc
        s_ = settings()
        ledger = ledger_secret(s_.database_url)
        try:
            versions = publish_flow(run_id, str(s_.resolved_home), ledger, actor)
        except (ValueError, SignOffError) as exc:  # refused: nothing (more) was delivered
            raise fail(str(exc)) from exc
        if as_json:
            emit_json({"run_id": run_id, "product_versions": versions})
        else:
            console.print(f"published [bold]{', '.join(versions)}[/]", markup=True)
