"""`pdo signoff list|show|approve|reject|continue|export`: the reviewer's side of the gate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from pdo.cli.root import console, emit_json, fail, prepare_prefect, settings, workspace
from pdo.ledger.db import session_scope
from pdo.ledger.models import PipelineRun
from pdo.review_report import NoReviewPackage, run_review_html
from pdo.signoff import SignOffError, decide, pending, progress


def register(app: typer.Typer) -> None:
    """Attach the `signoff` group."""
    group = typer.Typer(no_args_is_help=True, help="合规签核 / compliance sign-off")
    app.add_typer(group, name="signoff")

    @group.command("list")
    def list_command(as_json: bool = typer.Option(False, "--json")) -> None:
        """Runs waiting at the gate."""
        ws = workspace()
        with session_scope(ws.engine) as s:
            rows = [
                {
                    "run_id": r.id,
                    "started_by": r.started_by,
                    "started_at": r.started_at.isoformat(),
                    "review_package_hash": r.review_package_hash,
                    "tables": len(r.review_package.get("tables", [])),
                    "rows_quarantined": sum(
                        t["rows_quarantined"] for t in r.review_package.get("tables", [])
                    ),
                }
                for r in pending(s)
            ]
        if as_json:
            emit_json(rows)
            return
        table = Table("run", "started by", "started at", "tables", "quarantined", "package hash")
        for r in rows:
            table.add_row(
                r["run_id"],
                r["started_by"],
                r["started_at"][:19],
                str(r["tables"]),
                str(r["rows_quarantined"]),
                str(r["review_package_hash"])[:16],
            )
        console.print(table if rows else "no runs await sign-off")

    def _decide(
        run_id: str, user: str, approve: bool, comment: str, continue_run: bool = False
    ) -> None:
        ws = workspace()
        try:
            with session_scope(ws.engine) as s:
                d = decide(s, ws.lake, run_id, user, approve, comment)
                run = s.get(PipelineRun, run_id)
                assert run is not None
                given, needed = progress(s, run)
                status = run.status
        except SignOffError as exc:
            raise fail(str(exc)) from exc
        console.print(f"run {run_id}: {d.decision} by {user}")
        if approve and status == "awaiting_signoff":
            console.print(
                f"{given} of {needed} approvals: another reviewer must approve (重要数据需双人审核)"
            )
            return
        _continue(run_id, status, continue_run)

    def _continue(run_id: str, status: str, publish: bool) -> None:
        """The decision closes the paused Prefect run; an approval then continues to publish."""
        prepare_prefect()
        from flows.gate import mirror_decision

        s_ = settings()
        home, url = str(s_.resolved_home), s_.database_url
        mirrored = mirror_decision(home, url, run_id)
        if mirrored:
            console.print(f"Prefect run of {run_id}: {mirrored}")
        if status != "approved" or not publish:
            if status == "approved":
                console.print(f"continue with `pdo publish {run_id}`")
            return
        from flows.context import ledger_secret
        from flows.publish import publish_flow

        try:
            versions = publish_flow(run_id, home, ledger_secret(url), "pipeline")
        except Exception as exc:
            message = f"approved, but publishing failed ({exc}); retry: pdo publish {run_id}"
            raise fail(message) from exc
        console.print(
            f"run {run_id} continued: published [bold]{', '.join(versions)}[/]", markup=True
        )

    @group.command("approve")
    def approve_command(
        run_id: str,
        user: str = typer.Option(..., "--as", help="reviewer user name"),
        comment: str = typer.Option("", "--comment"),
        publish: bool = typer.Option(
            True, "--publish/--no-publish", help="continue the run to publishing when approved"
        ),
    ) -> None:
        """Approve a run's review package (bound to its hash); the last approval continues it."""
        _decide(run_id, user, True, comment, publish)

    @group.command("reject")
    def reject_command(
        run_id: str,
        user: str = typer.Option(..., "--as", help="reviewer user name"),
        comment: str = typer.Option(..., "--comment", help="why (required)"),
    ) -> None:
        """Reject a run; nothing of it will be published."""
        _decide(run_id, user, False, comment)

    @group.command("continue")
    def continue_command(run_id: str) -> None:
        """Carry a decided run on: close its paused Prefect run; publish it if approved."""
        ws = workspace()
        with session_scope(ws.engine) as s:
            run = s.get(PipelineRun, run_id)
            if run is None:
                raise fail(f"no run {run_id}")
            status = run.status
        if status not in ("approved", "rejected"):
            raise fail(f"run {run_id} is {status}: nothing to continue")
        console.print(f"continuing run {run_id} ({status})")
        _continue(run_id, status, publish=True)

    @group.command("show")
    def show_command(run_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
        """Where a run stands at the gate: status, approvals, every decision with its reason."""
        from sqlmodel import col, select

        from pdo.ledger.models import SignOff

        ws = workspace()
        with session_scope(ws.engine) as s:
            run = s.get(PipelineRun, run_id)
            if run is None:
                raise fail(f"no run {run_id}")
            given, needed = progress(s, run) if run.review_package else (0, 0)
            rows = s.exec(
                select(SignOff).where(SignOff.run_id == run_id).order_by(col(SignOff.decided_at))
            ).all()
            report: dict[str, Any] = {
                "run_id": run.id,
                "status": run.status,
                "started_by": run.started_by,
                "approvals": f"{given}/{needed}",
                "error": run.error,
                "decisions": [
                    {
                        "reviewer": d.reviewer,
                        "decision": d.decision,
                        "comment": d.comment,
                        "decided_at": d.decided_at.isoformat(),
                        "covers_hash": d.covers_hash,
                    }
                    for d in rows
                ],
            }
        if as_json:
            emit_json(report)
            return
        console.print(
            f"run {run_id}: [bold]{report['status']}[/] (started by "
            f"{escape(str(report['started_by']))}; approvals {report['approvals']})",
            markup=True,
        )
        if run.error:
            console.print(f"error: {run.error}")
        for d in report["decisions"]:
            console.print(
                f"  {d['decided_at'][:19]}  {d['reviewer']}: {d['decision']}"
                + (f" — {d['comment']}" if d["comment"] else "")
            )

    @group.command("export")
    def export_command(
        run_id: str,
        out: Path | None = typer.Option(
            None, "--out", help="HTML file to write (default: review-<run id first 12>.html)"
        ),
    ) -> None:
        """Write a run's review package as one self-contained HTML page (中文) to read offline."""
        ws = workspace()
        try:
            with session_scope(ws.engine) as s:
                html = run_review_html(s, run_id)
        except NoReviewPackage as exc:
            raise fail(str(exc)) from exc
        path = out if out is not None else Path(f"review-{run_id[:12]}.html")
        try:
            path.write_text(html, encoding="utf-8")
        except OSError as exc:
            raise fail(f"cannot write {path}: {exc.strerror or exc}") from exc
        typer.echo(str(path.resolve()))
