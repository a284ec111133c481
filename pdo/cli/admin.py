"""`pdo user|department|authorization|subscriber|audit`: administering the operation."""

from __future__ import annotations

import sys
from typing import Any

import typer

from pdo import audit
from pdo.cli.root import console, emit_json, fail, workspace
from pdo.ledger.db import session_scope
from pdo.ledger.models import Authorization
from pdo.registration import (
    AuthorizationError,
    authorization_state,
    grant_authorization,
    list_authorizations,
    register_departments,
    renew_authorization,
    revoke_authorization,
    versions_built_on,
)
from pdo.sources.tables import SOURCE_TABLES
from pdo.subscribers import add_subscriber
from pdo.users import Role, add_user


def _read_password() -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    return str(typer.prompt("password", hide_input=True, confirmation_prompt=True))


def _describe(a: Authorization) -> dict[str, Any]:
    """What `authorization list` shows: state, validity and rights (a grant holds no secrets)."""
    return {
        "id": a.id,
        "reference": a.reference,
        "state": authorization_state(a),
        "status": a.status,
        "authority": a.authority,
        "operator": a.operator,
        "valid_from": a.valid_from.isoformat(),
        "valid_until": a.valid_until.isoformat(),
        "tables": a.tables,
        "purposes": a.purposes,
        "products": a.products,
        "rights": a.rights,
        "granted_by": a.granted_by,
        "revoked_at": a.revoked_at.isoformat() if a.revoked_at else None,
        "revoked_by": a.revoked_by,
        "revoke_reason": a.revoke_reason,
    }


def _grant_lines(r: dict[str, Any]) -> list[str]:
    """A grant as a few readable lines: state and validity, scope, each right and its holder."""
    lines = [
        f"{r['reference']}  {r['state']}  {r['valid_from'][:10]} → {r['valid_until'][:10]}"
        f"  id {r['id']}",
        f"  products: {', '.join(r['products'])}  purposes: {', '.join(r['purposes'])}"
        f"  tables: {len(r['tables'])}",
    ]
    for right, holder in r["rights"].items():
        lines.append(f"  {right}: {'、'.join(holder) if isinstance(holder, list) else holder}")
    if r["revoked_at"]:
        lines.append(f"  revoked {r['revoked_at'][:10]} by {r['revoked_by']}: {r['revoke_reason']}")
    return lines


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
        product: list[str] = typer.Option(
            ["credit_risk"], "--product", help="数据产品经营权 for this product (repeatable)"
        ),
        min_department_share: int = typer.Option(
            0,
            "--min-department-share-bp",
            min=0,
            max=10_000,
            help="收益反哺下限: least share of revenue for source departments, basis points",
        ),
        revenue_party: list[str] = typer.Option(
            [], "--revenue-party", help="another party products may pay, e.g. an exchange"
        ),
        actor: str = typer.Option("authority", "--as"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Record the data authority's grant to the operator (三权分置 rights included)."""
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
                    products=product,
                    min_department_share_bp=min_department_share,
                    revenue_parties=revenue_party,
                )
                out = {
                    "id": a.id,
                    "reference": a.reference,
                    "valid_until": a.valid_until,
                    "products": a.products,
                    "rights": a.rights,
                    "min_department_share_bp": a.min_department_share_bp,
                    "revenue_parties": a.revenue_parties,
                }
        except ValueError as exc:
            raise fail(str(exc)) from exc
        if as_json:
            emit_json(out)
        else:
            console.print(f"authorization {out['reference']} granted: id {out['id']}")

    @auth.command("revoke")
    def auth_revoke(
        authorization: str = typer.Argument(..., help="authorization id or reference"),
        actor: str = typer.Option(..., "--as", help="'authority' or a regulator user"),
        reason: str = typer.Option("", "--reason", help="why (required)"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Revoke a grant: new runs are refused and its products stop being delivered at once."""
        ws = workspace()
        try:
            with session_scope(ws.engine) as s:
                a = revoke_authorization(s, authorization, actor, reason)
                out = _describe(a) | {"suspended": versions_built_on(s, a.id)}
        except (LookupError, AuthorizationError, ValueError) as exc:
            raise fail(str(exc)) from exc
        if as_json:
            emit_json(out)
        else:
            suspended = ", ".join(out["suspended"]) or "none"
            console.print(
                f"authorization {out['reference']} revoked by {actor}; "
                f"delivery suspended: {suspended}"
            )

    @auth.command("renew")
    def auth_renew(
        authorization: str = typer.Argument(..., help="authorization id or reference"),
        days: int = typer.Option(..., "--days", help="days to add (from now if it lapsed)"),
        actor: str = typer.Option(..., "--as", help="'authority' or a regulator user"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Extend a grant; a revoked grant is reinstated and its products are delivered again."""
        ws = workspace()
        try:
            with session_scope(ws.engine) as s:
                a = renew_authorization(s, authorization, days, actor)
                out = _describe(a)
        except (LookupError, AuthorizationError, ValueError) as exc:
            raise fail(str(exc)) from exc
        if as_json:
            emit_json(out)
        else:
            console.print(
                f"authorization {out['reference']} renewed by {actor}: "
                f"valid until {out['valid_until'][:10]}"
            )

    @auth.command("list")
    def auth_list(as_json: bool = typer.Option(False, "--json")) -> None:
        """Every grant with its state, validity, products and 三权分置 rights."""
        ws = workspace()
        with session_scope(ws.engine) as s:
            rows = [_describe(a) for a in list_authorizations(s)]
        if as_json:
            emit_json(rows)
            return
        if not rows:
            console.print("no authorizations granted yet")
        for r in rows:
            console.print("\n".join(_grant_lines(r)), markup=False, highlight=False)

    @sub.command("add")
    def sub_add(
        name: str,
        products: str = typer.Option("credit_risk", help="comma-separated products"),
        daily_budget: int = typer.Option(
            1000, "--daily-budget", min=1, help="distinct enterprises a business day"
        ),
        rate_limit: int = typer.Option(100, "--rate-limit", min=1, help="calls a second per key"),
        actor: str = typer.Option("operator", "--as"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Onboard a bank; its API key is printed once and stored only as a hash."""
        ws = workspace()
        try:
            with session_scope(ws.engine) as s:
                subscriber, key = add_subscriber(
                    s,
                    name,
                    actor,
                    products.split(","),
                    daily_enterprise_budget=daily_budget,
                    rate_limit_per_second=rate_limit,
                )
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
