"""`pdo run` and `pdo publish`: start the pipeline to the gate; publish an approved run."""

from __future__ import annotations

from pathlib import Path

import typer

from pdo.cli.root import console, emit_json, fail, prepare_prefect, settings, workspace
from pdo.ledger.db import session_scope
from pdo.registration import AuthorizationError, active_authorization


def register(app: typer.Typer) -> None:
    """Attach `pdo run` and `pdo publish`."""

    @app.command("run")
    def run_command(
        source: Path = typer.Option(
            ..., "--source", help="目录：部门交付的源文件 / delivered files"
        ),
        actor: str = typer.Option("operator", "--as", help="who starts the run"),
        authorization: str | None = typer.Option(None, help="authorization id (default: latest)"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Run ingest → desensitize → validate and stop at the sign-off gate; prints the run id."""
        prepare_prefect()
        from flows.pipeline import run_to_gate, start_run

        ws = workspace()
        with session_scope(ws.engine) as s:
            auth = active_authorization(s) if authorization is None else None
            auth_id = authorization or (auth.id if auth else None)
        if auth_id is None:
            raise fail("no active authorization; grant one with `pdo authorization grant`")
        try:
            run = start_run(ws, source, actor, auth_id)
        except (AuthorizationError, FileNotFoundError) as exc:
            raise fail(str(exc)) from exc
        console.print(f"run id: [bold]{run.id}[/]", highlight=False)
        s_ = settings()
        try:
            status = run_to_gate(run.id, str(s_.resolved_home), s_.database_url)
        except Exception as exc:
            raise fail(f"run {run.id} failed: {exc}") from exc
        if as_json:
            emit_json({"run_id": run.id, "status": status})
        else:
            console.print(f"run {run.id}: {status} — review with `pdo signoff list`")

    @app.command("publish")
    def publish_command(
        run_id: str = typer.Argument(...),
        actor: str = typer.Option("operator", "--as"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Deliver the reviewed products of an approved run (refused without an approval)."""
        prepare_prefect()
        from flows.publish import publish_flow
        from pdo.signoff import SignOffError, require_approval

        ws = workspace()
        try:
            with session_scope(ws.engine) as s:
                require_approval(s, ws.lake, run_id)
        except SignOffError as exc:
            raise fail(str(exc)) from exc
        s_ = settings()
        versions = publish_flow(run_id, str(s_.resolved_home), s_.database_url, actor)
        if as_json:
            emit_json({"run_id": run_id, "product_versions": versions})
        else:
            console.print(f"published [bold]{', '.join(versions)}[/]")
