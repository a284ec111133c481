"""`pdo user|department|authorization|subscriber|audit`: administering the operation."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlmodel import Session, select

from pdo import audit, checkpoints
from pdo.checkpoints import CheckpointError, create_checkpoint
from pdo.cli.root import console, emit_json, err_console, fail, workspace
from pdo.delivery.periods import business_day
from pdo.exports import write_atomically
from pdo.ledger.db import read_scope, session_scope, snapshot_scope
from pdo.ledger.models import AuditCheckpoint, Authorization
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
from pdo.usage_chain import check_usage
from pdo.users import Role, add_user


def ungrantable(products: list[str], purposes: list[str]) -> str | None:
    """Why a grant names a product no package declares, or a purpose none of them serves: a typo
    would otherwise surface only when a run reaches packaging, hours later."""
    from products.registry import PRODUCTS

    known = {spec.name: spec for spec in PRODUCTS}
    unknown = [name for name in products if name.strip() not in known]  # blanks: refused later
    if unknown:
        return f"unknown product {', '.join(unknown)}; known: {', '.join(known)}"
    lawful = {purpose for name in products for purpose in known[name].purposes}
    stray = [p.strip() for p in purposes if p.strip() and p.strip() not in lawful]
    if stray:
        return (
            f"no granted product serves the purpose {', '.join(stray)}; "
            f"they serve: {', '.join(sorted(lawful))}"
        )
    return None


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
        unfit = ungrantable(product, purposes.split(","))
        if unfit:
            raise fail(unfit)
        ws = workspace()
        try:
            with session_scope(ws.engine) as s:
                register_departments(s, actor)
                existed = s.exec(
                    select(Authorization.id).where(Authorization.reference == reference)
                ).first()
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
                ends = a.valid_until
                out = {
                    "id": a.id,
                    "reference": a.reference,
                    "valid_until": a.valid_until,
                    "products": a.products,
                    "rights": a.rights,
                    "min_department_share_bp": a.min_department_share_bp,
                    "revenue_parties": a.revenue_parties,
                    "state": authorization_state(a),
                    "new": existed is None,
                }
        except ValueError as exc:
            raise fail(str(exc)) from exc
        if as_json:
            emit_json(out)
        elif out["new"]:
            console.print(f"authorization {out['reference']} granted: id {out['id']}")
        else:
            console.print(
                f"authorization {out['reference']} was already granted: id {out['id']}, "
                f"{out['state']} until {business_day(ends)} (nothing changed)"
            )

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
            console.print(
                f"subscriber {escape(name)} added; API key (shown once): [bold]{key}[/]",
                markup=True,
            )

    @aud.command("checkpoint")
    def audit_checkpoint(
        out: Path = typer.Option(
            None,
            "--out",
            help="检查点文件 / where to write the signed JSON (default: under PDO_HOME)",
        ),
        actor: str = typer.Option("operator", "--as", help="签发人 / who makes the checkpoint"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """生成检查点 / Sign a checkpoint: the Merkle root of the events since the last one."""
        ws = workspace()
        try:
            key = ws.settings.read_audit_signing_key()
        except (OSError, ValueError) as exc:
            raise fail(f"the audit signing key does not load, nothing was signed: {exc}") from exc
        if out is not None and out.is_dir():  # found before signing, not after
            raise fail(f"cannot write the checkpoint to {out}: it is a directory; name a file")
        try:
            with session_scope(ws.engine) as s:
                before = audit.head(s)
                cp = create_checkpoint(s, key, actor)
                row = _checkpoint_row(cp) | {"new": audit.head(s) != before}
                document = cp.document
        except CheckpointError as exc:
            raise fail(str(exc)) from exc
        path = out or ws.settings.resolved_home / "checkpoints" / f"audit-{row['last_seq']}.json"
        try:
            write_atomically(path, checkpoints.dumps(document).encode())
        except OSError as exc:
            raise fail(
                f"checkpoint #{row['id']} is made and stored, but {path} cannot be written "
                f"({exc.strerror or type(exc).__name__}): write it with `pdo audit "
                f"export-checkpoint {row['id']} --out FILE`"
            ) from exc
        if as_json:
            emit_json(row | {"file": str(path), "document": document})
            return
        if not row["new"]:
            console.print(f"no new events since checkpoint #{row['id']}: it stands")
        console.print(
            f"checkpoint #{row['id']}: events {row['first_seq']}..{row['last_seq']} "
            f"({row['events']})\n  merkle root {row['merkle_root']}\n"
            f"  public key  {row['public_key']}\n  written to  {path}",
            markup=False,
            highlight=False,
        )

    @aud.command("checkpoints")
    def audit_checkpoints(as_json: bool = typer.Option(False, "--json")) -> None:
        """检查点列表 / The ledger's checkpoints, oldest first."""
        ws = workspace()
        with read_scope(ws.engine) as s:
            rows = [_checkpoint_row(cp) for cp in checkpoints.stored(s)]
        if as_json:
            emit_json(rows)
            return
        if not rows:
            console.print("no checkpoints yet: `pdo audit checkpoint` makes one")
        for r in rows:
            console.print(
                f"#{r['id']}  events {r['first_seq']}..{r['last_seq']}  "
                f"root {r['merkle_root'][:16]}…  {r['created_at'][:19]}  by {r['created_by']}",
                markup=False,
                highlight=False,
            )

    @aud.command("export-checkpoint")
    def audit_export_checkpoint(
        checkpoint_id: int = typer.Argument(..., help="检查点编号 / checkpoint id (see list)"),
        out: Path = typer.Option(..., "--out", help="检查点文件 / where to write the signed JSON"),
    ) -> None:
        """导出检查点 / Write a stored checkpoint's signed JSON for the authority to keep."""
        ws = workspace()
        with read_scope(ws.engine) as s:
            cp = s.get(AuditCheckpoint, checkpoint_id)
            document = cp.document if cp else None
        if document is None:
            raise fail(f"no checkpoint #{checkpoint_id}")
        try:
            write_atomically(out, checkpoints.dumps(document).encode())
        except OSError as exc:
            raise fail(f"cannot write {out}: {exc.strerror or type(exc).__name__}") from exc
        console.print(f"checkpoint #{checkpoint_id} written to {out}", markup=False)

    @aud.command("verify")
    def audit_verify(
        checkpoint: list[Path] = typer.Option(
            [],
            "--checkpoint",
            exists=True,
            dir_okay=False,
            help="检查点文件 / a checkpoint exported earlier, to check the chain against "
            "(repeatable)",
        ),
        public_key: str = typer.Option(
            None,
            "--public-key",
            help="运营方公钥 / the Ed25519 public key (hex) every checkpoint must be signed by",
        ),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """校验审计链 / Recompute the hash chain and check it against every checkpoint.

        Exits 1 and names the first broken record if any event was inserted, altered, deleted or
        moved, or a checkpoint (stored in the ledger or given as a file) no longer matches."""
        if public_key is not None and not _is_public_key(public_key):
            raise typer.BadParameter(
                "64 hex digits (a raw Ed25519 public key)", param_hint="--public-key"
            )
        documents = [(f"checkpoint file {p.name}", _load_checkpoint(p)) for p in checkpoint]
        ws = workspace()
        with snapshot_scope(ws.engine) as s:  # the chain and usage_event as of one moment
            if as_json:
                report = audit.verify(s, documents, public_key)
            else:
                report = _verify_with_progress(s, documents, public_key)
            usage = check_usage(s)  # billing evidence: usage_event against its chain records
        if as_json:
            emit_json(
                report.as_dict()
                | {
                    "usage": {
                        "ok": usage.ok,
                        "events": usage.events,
                        "matched": usage.matched,
                        "problems": usage.problem_count,
                        "first_problems": usage.problems,
                    }
                }
            )
        elif report.ok:
            stored = len(report.checkpoints) - len(documents)
            console.print(
                f"audit chain intact: {report.events} events; {stored} ledger checkpoints and "
                f"{len(documents)} checkpoint files match"
            )
        else:
            where = f"event {report.broken_at}" if report.broken_at is not None else "checkpoint"
            action = f" ({report.action})" if report.action else ""
            console.print(
                f"[red]audit chain broken at {where}{action}: {escape(report.reason)}[/]",
                markup=True,
            )
            for finding in report.findings[1:10]:
                console.print(f"  also: {finding.describe()}", markup=False, highlight=False)
            if report.problems > 10:
                console.print(f"  … {report.problems} problems in all")
        if not as_json:
            if usage.ok:
                console.print(f"usage events: all {usage.events} match their audit records")
            else:
                console.print(
                    f"[red]usage events: {usage.problem_count} of {usage.events} do not match "
                    "the audit chain (billing must not rely on them):[/]",
                    markup=True,
                )
                for usage_id, what in usage.problems[:10]:
                    console.print(f"  {usage_id}: {what}", markup=False, highlight=False)
        if not report.ok or not usage.ok:
            raise typer.Exit(1)


def _checkpoint_row(cp: AuditCheckpoint) -> dict[str, Any]:
    return {
        "id": cp.id,
        "first_seq": cp.first_seq,
        "last_seq": cp.last_seq,
        "events": cp.last_seq - cp.first_seq + 1,
        "merkle_root": cp.merkle_root,
        "head_hash": cp.head_hash,
        "created_at": cp.created_at.isoformat(),
        "created_by": cp.created_by,
        "public_key": cp.document.get("public_key"),
    }


def _is_public_key(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdefABCDEF" for c in value)


def _load_checkpoint(path: Path) -> Any:
    """A checkpoint file's JSON; a file that is not JSON is reported by verify, not crashed on."""
    try:
        return checkpoints.load(path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def _verify_with_progress(
    session: Session, documents: list[tuple[str, Any]], public_key: str | None
) -> audit.ChainReport:
    """audit.verify with a progress bar when the chain is long enough to wait for."""
    total = audit.head(session)
    if total < _PROGRESS_FROM:
        return audit.verify(session, documents, public_key)
    with Progress(
        TextColumn("verifying audit chain"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task("verify", total=total)
        return audit.verify(
            session, documents, public_key, progress=lambda n: bar.update(task, completed=n)
        )


_PROGRESS_FROM = 50_000  # events: below this verify takes well under a second
