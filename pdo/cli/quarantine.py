"""`pdo quarantine list|show RUN_ID`: what a run set aside and why, without the values."""

from __future__ import annotations

import dataclasses

import typer
from rich.table import Table

from pdo import quarantine
from pdo.cli.root import console, emit_json, fail, workspace
from pdo.ledger.db import session_scope


def register(app: typer.Typer) -> None:
    """Attach the `quarantine` group."""
    group = typer.Typer(no_args_is_help=True, help="隔离数据 / quarantined rows of a run")
    app.add_typer(group, name="quarantine")

    @group.command("list")
    def list_command(run_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
        """Per table and stage: rows in, rows quarantined and the reasons, counted."""
        ws = workspace()
        try:
            with session_scope(ws.engine) as s:
                found = quarantine.counts(s, run_id)
        except quarantine.UnknownRun as exc:
            raise fail(str(exc)) from exc
        if as_json:
            emit_json([dataclasses.asdict(c) for c in found])
            return
        table = Table("table 表", "stage 阶段", "rows in", "quarantined 隔离", "reasons 原因")
        for c in found:
            reasons = "\n".join(f"{n} × {reason}" for reason, n in sorted(c.reasons.items()))
            table.add_row(c.table, c.stage, str(c.rows_in), str(c.rows_quarantined), reasons)
        console.print(table)
        total = sum(c.rows_quarantined for c in found)
        console.print(
            f"run {run_id}: {total} rows quarantined (kept in the raw zone, never shipped)"
        )

    @group.command("show")
    def show_command(
        run_id: str,
        table_name: str | None = typer.Option(None, "--table", help="one table only"),
        limit: int = typer.Option(50, help="rows to print (all with --json)"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Each quarantined row: table, stage, data row (from 1, header excluded) and reason."""
        ws = workspace()
        try:
            with session_scope(ws.engine) as s:
                found = quarantine.rows(s, ws.lake, run_id, table_name)
        except quarantine.UnknownRun as exc:
            raise fail(str(exc)) from exc
        if as_json:
            emit_json(found.to_dicts())
            return
        table = Table("table 表", "stage 阶段", "data row 数据行（不含表头）", "reason 原因")
        for row in found.head(limit).iter_rows():
            table.add_row(row[0], row[1], str(row[2]), row[3])
        console.print(table)
        if found.height > limit:
            console.print(f"… {found.height - limit} more (use --limit or --json)")
