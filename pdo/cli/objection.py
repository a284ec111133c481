"""`pdo objection add|resolve|list`: an enterprise's 异议 recorded, resolved and followed up."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import typer

from pdo.cli.root import console, emit_json, fail, workspace
from pdo.delivery.objections import (
    ITEM_FORMAT,
    ObjectionError,
    describe,
    list_objections,
    objection_redactor,
    raise_objection,
    resolve_objection,
)
from pdo.ledger.db import session_scope
from pdo.privacy.pseudonym import Pseudonymizer


class OutcomeChoice(StrEnum):
    upheld = "upheld"
    rejected = "rejected"


class StatusChoice(StrEnum):
    open = "open"
    resolved = "resolved"


def _headline(row: dict[str, Any] | None) -> str:
    return "—" if row is None else f"{row['score']} / {row['grade']}"


def _line(d: dict[str, Any]) -> str:
    """One objection in a line: who, what, state and how long it has taken."""
    took = (
        f"resolved {d['outcome']} in {d['days_to_resolve']} d"
        if d["status"] == "resolved"
        else f"open {d['age_days']} d"
    )
    return f"{d['id']}  {d['product']}  {d['enterprise']}  {d['item']}  {took}"


def register(app: typer.Typer) -> None:
    """Attach `pdo objection`."""
    group = typer.Typer(no_args_is_help=True, help="异议 / objections to data items")
    app.add_typer(group, name="objection")

    @group.command("add")
    def add(
        uscc: str = typer.Argument(..., help="the enterprise's unified social credit code"),
        product_name: str = typer.Option(..., "--product", help="the product whose result"),
        item: str = typer.Option(..., "--item", help=f"the disputed data item: {ITEM_FORMAT}"),
        reason: str = typer.Option(..., "--reason", help="the enterprise's reason"),
        actor: str = typer.Option(..., "--as", help="the operator recording it"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Record an objection: the result is withheld as disputed until it is resolved."""
        ws = workspace()
        pseudo = Pseudonymizer.from_settings(ws.settings)
        try:
            with session_scope(ws.engine) as s:
                shown = describe(
                    raise_objection(
                        s,
                        uscc=uscc,
                        pseudonymizer=pseudo,
                        product_name=product_name,
                        item=item,
                        reason=reason,
                        actor=actor,
                        lake=ws.lake,
                        redact=objection_redactor(ws.settings.models_dir),
                    )
                )
        except ObjectionError as exc:
            raise fail(str(exc)) from exc
        if as_json:
            emit_json(shown)
            return
        console.print(
            f"objection {shown['id']} recorded for {shown['enterprise']} ({shown['product']}); "
            "its result is withheld as disputed until resolved"
        )

    @group.command("resolve")
    def resolve(
        objection_id: str = typer.Argument(..., help="the objection's id"),
        outcome: OutcomeChoice = typer.Option(..., "--outcome"),
        note: str = typer.Option(..., "--note", help="what the check found"),
        actor: str = typer.Option(..., "--as", help="the operator resolving it"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Resolve an objection: upheld re-scores without the item, rejected serves as signed."""
        ws = workspace()
        try:
            with session_scope(ws.engine) as s:
                shown = describe(
                    resolve_objection(
                        s,
                        objection_id,
                        outcome="upheld" if outcome is OutcomeChoice.upheld else "rejected",
                        note=note,
                        actor=actor,
                        lake=ws.lake,
                        redact=objection_redactor(ws.settings.models_dir),
                    )
                )
        except ObjectionError as exc:
            raise fail(str(exc)) from exc
        if as_json:
            emit_json(shown)
            return
        r = shown["resolution"]
        console.print(
            f"objection {shown['id']} resolved ({shown['outcome']}) for {shown['enterprise']}: "
            f"{_headline(r['old'])} → "
            + (_headline(r["new"]) if shown["outcome"] == "upheld" else "served as signed")
        )

    @group.command("list")
    def list_command(
        status: StatusChoice | None = typer.Option(None, "--status"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Objections, newest first: enterprise (as banks see it), age and time to resolve."""
        ws = workspace()
        with session_scope(ws.engine) as s:
            rows = [describe(o) for o in list_objections(s, status.value if status else None)]
        if as_json:
            emit_json(rows)
            return
        if not rows:
            console.print("no objections")
        for d in rows:
            console.print(_line(d), markup=False, highlight=False)
