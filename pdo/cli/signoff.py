"""`pdo signoff list|approve|reject`: the reviewer's side of the gate."""

from __future__ import annotations

import typer
from rich.table import Table

from pdo.cli.root import console, emit_json, fail, workspace
from pdo.ledger.db import session_scope
from pdo.ledger.models import PipelineRun
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

    def _decide(run_id: str, user: str, approve: bool, comment: str) -> None:
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

    @group.command("approve")
    def approve_command(
        run_id: str,
        user: str = typer.Option(..., "--as", help="reviewer user name"),
        comment: str = typer.Option("", "--comment"),
    ) -> None:
        """Approve a run's review package (bound to its hash)."""
        _decide(run_id, user, True, comment)

    @group.command("reject")
    def reject_command(
        run_id: str,
        user: str = typer.Option(..., "--as", help="reviewer user name"),
        comment: str = typer.Option(..., "--comment", help="why (required)"),
    ) -> None:
        """Reject a run; nothing of it will be published."""
        _decide(run_id, user, False, comment)
