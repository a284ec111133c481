"""`pdo user|department|authorization|subscriber|audit`: administering the operation."""

from __future__ import annotations

import sys

import typer

from pdo import audit
from pdo.cli.root import console, emit_json, fail, workspace
from pdo.ledger.db import session_scope
from pdo.registration import grant_authorization, register_departments
from pdo.sources.tables import SOURCE_TABLES
from pdo.subscribers import add_subscriber
from pdo.users import Role, add_user


def _read_password() -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    return str(typer.prompt("password", hide_input=True, confirmation_prompt=True))


def register(app: typer.Typer) -> None:
    """Attach the administrative groups."""
    user = typer.Typer(no_args_is_help=True, help="用户 / users")
    dept = typer.Typer(no_args_is_help=True, help="数据提供部门 / departments")
    auth = typer.Typer(no_args_is_help=True, help="授权 / authorizations")
    sub = typer.Typer(no_args_is_help=True, help="订阅银行 / subscribers")
    aud = typer.Typer(no_args_is_help=True, help="审计 / audit chain")
    for name, group in (
        ("user", user),
        ("department", dept),
        ("authorization", auth),
        ("subscriber", sub),
        ("audit", aud),
    ):
        app.add_typer(group, name=name)

    @user.command("add")
    def user_add(
        name: str,
        role: Role = typer.Option(..., "--role"),
        actor: str = typer.Option("admin", "--as"),
    ) -> None:
        """Add a user; the password is read from stdin or prompted, never from arguments."""
        password = _read_password()
        ws = workspace()
        try:
            with session_scope(ws.engine) as s:
                add_user(s, name, role, password, actor)
        except ValueError as exc:
            raise fail(str(exc)) from exc
        console.print(f"user {name} ({role.value}) added")

    @dept.command("register")
    def dept_register(actor: str = typer.Option("admin", "--as")) -> None:
        """Register the departments and their source table contracts (idempotent)."""
        ws = workspace()
        with session_scope(ws.engine) as s:
            added = register_departments(s, actor)
        console.print(f"{added} new departments/tables registered")

    @auth.command("grant")
    def auth_grant(
        reference: str = typer.Option(..., "--reference", help="授权文书编号"),
        tables: str = typer.Option("all", help="comma-separated table names, or 'all'"),
        purposes: str = typer.Option("贷前审查,贷后管理", help="comma-separated allowed purposes"),
        days: int = typer.Option(365, help="validity in days"),
        actor: str = typer.Option("authority", "--as"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Record the data authority's grant to the operator."""
        names = [t.name for t in SOURCE_TABLES] if tables == "all" else tables.split(",")
        ws = workspace()
        try:
            with session_scope(ws.engine) as s:
                register_departments(s, actor)
                a = grant_authorization(
                    s,
                    reference=reference,
                    tables=names,
                    purposes=purposes.split(","),
                    days=days,
                    actor=actor,
                )
                out = {"id": a.id, "reference": a.reference, "valid_until": a.valid_until}
        except ValueError as exc:
            raise fail(str(exc)) from exc
        if as_json:
            emit_json(out)
        else:
            console.print(f"authorization {out['reference']} granted: id {out['id']}")

    @sub.command("add")
    def sub_add(
        name: str,
        products: str = typer.Option("credit_risk", help="comma-separated products"),
        actor: str = typer.Option("operator", "--as"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Onboard a bank; its API key is printed once and stored only as a hash."""
        ws = workspace()
        try:
            with session_scope(ws.engine) as s:
                subscriber, key = add_subscriber(s, name, actor, products.split(","))
                out = {"subscriber_id": subscriber.id, "name": name, "api_key": key}
        except ValueError as exc:
            raise fail(str(exc)) from exc
        if as_json:
            emit_json(out)
        else:
            console.print(f"subscriber {name} added; API key (shown once): [bold]{key}[/]")

    @aud.command("verify")
    def audit_verify(as_json: bool = typer.Option(False, "--json")) -> None:
        """Recompute the audit hash chain; exits non-zero if any event was altered."""
        ws = workspace()
        with session_scope(ws.engine) as s:
            report = audit.verify(s)
        if as_json:
            emit_json(report.__dict__)
        elif report.ok:
            console.print(f"audit chain intact: {report.events} events")
        else:
            console.print(
                f"[red]audit chain broken at event {report.broken_at}: {report.reason}[/]"
            )
        if not report.ok:
            raise typer.Exit(1)
