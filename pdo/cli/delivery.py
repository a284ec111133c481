"""`pdo plan|key|consent`: the catalog, API keys and enterprise consents for bank delivery."""

from __future__ import annotations

import datetime as dt
import hashlib
import unicodedata
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from pdo.cli.root import console, emit_json, fail, settings, workspace
from pdo.delivery.consents import consents_of, register_consent, revoke_consent
from pdo.delivery.identity import shown_as
from pdo.delivery.objections import NOT_A_USCC
from pdo.delivery.periods import BUSINESS_TZ, business_day
from pdo.delivery.plans import add_plan, list_plans
from pdo.ledger.db import session_scope
from pdo.ledger.models import Consent
from pdo.privacy.checksums import is_valid_uscc
from pdo.privacy.entity_key import entity_key
from pdo.privacy.pseudonym import Pseudonymizer
from pdo.subscribers import find_subscriber, issue_key, revoke_key, subscribe


def _day(text: str, end: bool = False) -> dt.datetime:
    """A YYYY-MM-DD date as the start (or end) of that day in Beijing."""
    try:
        day = dt.date.fromisoformat(text)
    except ValueError as exc:
        raise fail(f"not a date (YYYY-MM-DD): {text!r}") from exc
    moment = dt.datetime.combine(day, dt.time.max if end else dt.time.min)
    return moment.replace(tzinfo=BUSINESS_TZ)


def register(app: typer.Typer) -> None:
    """Attach `pdo plan`, `pdo key` and `pdo consent`, and `pdo subscriber subscribe`."""
    plan = typer.Typer(no_args_is_help=True, help="套餐 / plans in the catalog")
    key = typer.Typer(no_args_is_help=True, help="API 密钥 / bank API keys")
    consent = typer.Typer(no_args_is_help=True, help="企业授权 / enterprise consents")
    app.add_typer(plan, name="plan")
    app.add_typer(key, name="key")
    app.add_typer(consent, name="consent")

    @plan.command("add")
    def plan_add(
        product: str,
        name: str,
        price_fen: int = typer.Option(..., "--price-fen", help="price per call in fen"),
        monthly_quota: int = typer.Option(None, "--monthly-quota", help="calls per month"),
        overage_fen: int = typer.Option(
            None,
            "--overage-price-fen",
            help="超额单价: price per call beyond the quota (default: the quota is a hard limit)",
        ),
        days: int = typer.Option(365, "--days", help="validity of a subscription"),
        title: str = typer.Option("", "--title"),
        no_refund: bool = typer.Option(False, "--no-refund", help="withheld results billed"),
        actor: str = typer.Option("operator", "--as"),
    ) -> None:
        """Add a plan (price per call, monthly quota, validity); plans are never edited."""
        ws = workspace()
        try:
            with session_scope(ws.engine) as s:
                made = add_plan(
                    s,
                    product_name=product,
                    name=name,
                    title_zh=title or name,
                    price_fen=price_fen,
                    monthly_quota=monthly_quota,
                    validity_days=days,
                    refund_withheld=not no_refund,
                    actor=actor,
                    overage_price_fen=overage_fen,
                )
                plan_id = made.id
        except ValueError as exc:
            raise fail(str(exc)) from exc
        console.print(f"plan {plan_id} added")

    @plan.command("list")
    def plan_list(as_json: bool = typer.Option(False, "--json")) -> None:
        """The catalog: every plan with its price and quota."""
        ws = workspace()
        with session_scope(ws.engine) as s:
            rows = [p.model_dump(exclude={"created_at"}) for p in list_plans(s)]
        if as_json:
            emit_json(rows)
            return
        if not rows:
            console.print("no plans yet: a product gets its standard plan when first published")
        for r in rows:
            quota = r["monthly_quota"] or "不限 / unlimited"
            over = r["overage_price_fen"]
            beyond = f"超额 {over} 分/次" if over is not None else "超额拒绝"
            console.print(
                f"{r['id']}  {r['title_zh']}  {r['price_fen']} 分/次  月配额 {quota}  "
                f"{beyond if r['monthly_quota'] else ''}  {r['validity_days']} 天",
                markup=False,
            )

    @app.command("subscribe")
    def subscribe_command(
        subscriber: str,
        plan_id: str = typer.Option(..., "--plan", help="e.g. credit_risk/standard"),
        purposes: str = typer.Option("", "--purposes", help="comma-separated scope"),
        actor: str = typer.Option("operator", "--as"),
    ) -> None:
        """Subscribe a bank to a plan (replaces its live subscription to that product)."""
        ws = workspace()
        scope = [p for p in purposes.split(",") if p] or None
        try:
            with session_scope(ws.engine) as s:
                made = subscribe(s, find_subscriber(s, subscriber), plan_id, actor, scope)
                until = made.valid_until
        except ValueError as exc:
            raise fail(str(exc)) from exc
        ends = f"{until.astimezone(BUSINESS_TZ):%Y-%m-%d %H:%M} (北京时间)"
        console.print(f"{subscriber} subscribed to {plan_id} until {ends}")

    @key.command("issue")
    def key_issue(
        subscriber: str,
        actor: str = typer.Option("operator", "--as"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Issue another API key; it is printed once and stored only as a hash."""
        ws = workspace()
        try:
            with session_scope(ws.engine) as s:
                plaintext = issue_key(s, find_subscriber(s, subscriber), actor)
        except ValueError as exc:
            raise fail(str(exc)) from exc
        if as_json:
            emit_json({"subscriber": subscriber, "api_key": plaintext})
        else:
            console.print(
                f"API key for {escape(subscriber)} (shown once): [bold]{plaintext}[/]", markup=True
            )

    @key.command("revoke")
    def key_revoke(key_id: str, actor: str = typer.Option("operator", "--as")) -> None:
        """Revoke a key by its id (the part after `pdo_`); refused from the next call on."""
        ws = workspace()
        try:
            with session_scope(ws.engine) as s:
                revoke_key(s, key_id, actor)
        except ValueError as exc:
            raise fail(str(exc)) from exc
        console.print(f"API key {key_id} revoked")

    @consent.command("add")
    def consent_add(
        uscc: str,
        subscriber: str = typer.Option(..., "--subscriber", help="the bank (name or id)"),
        reference: str = typer.Option(..., "--reference", help="the consent document number"),
        purposes: str = typer.Option("贷前审查", "--purposes", help="comma-separated"),
        valid_from: str = typer.Option(None, "--from", help="YYYY-MM-DD (default today)"),
        valid_until: str = typer.Option(..., "--until", help="YYYY-MM-DD, last valid day"),
        evidence: Path = typer.Option(None, "--evidence", help="the signed letter: hashed"),
        actor: str = typer.Option("operator", "--as"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Register an enterprise's consent for a bank; lookups must then name its reference."""
        code = unicodedata.normalize("NFKC", uscc).strip().upper()
        if not is_valid_uscc(code):
            raise fail(NOT_A_USCC)  # not echoed: it may be a person's number typed by mistake
        if evidence is not None and not evidence.is_file():
            raise fail(f"no evidence file at {evidence}")
        start = _day(valid_from) if valid_from else dt.datetime.now(BUSINESS_TZ)
        evidence_hash = hashlib.sha256(evidence.read_bytes()).hexdigest() if evidence else None
        ws = workspace()
        pseudo = Pseudonymizer.from_settings(settings())
        try:
            with session_scope(ws.engine) as s:
                made = register_consent(
                    s,
                    subscriber=find_subscriber(s, subscriber),
                    entity=entity_key(code, pseudo),
                    reference=reference,
                    purposes=[p for p in purposes.split(",") if p],
                    valid_from=start,
                    valid_until=_day(valid_until, end=True),
                    evidence_sha256=evidence_hash,
                    actor=actor,
                )
                out = {
                    "id": made.id,
                    "reference": made.reference,
                    "enterprise": shown_as(code),
                    "purposes": made.purposes,
                    "valid_until": made.valid_until,
                }
        except ValueError as exc:
            raise fail(str(exc)) from exc
        if as_json:
            emit_json(out)
        else:
            console.print(f"consent {reference} registered for {out['enterprise']}", markup=False)

    @consent.command("revoke")
    def consent_revoke(consent_id: str, actor: str = typer.Option("operator", "--as")) -> None:
        """The enterprise withdrew its consent: lookups under it are refused from now on."""
        ws = workspace()
        try:
            with session_scope(ws.engine) as s:
                found = s.get(Consent, consent_id)
                if found is None:
                    raise ValueError(f"no consent {consent_id!r}")
                revoke_consent(s, found, actor)
        except ValueError as exc:
            raise fail(str(exc)) from exc
        console.print(f"consent {consent_id} revoked")

    @consent.command("list")
    def consent_list(
        subscriber: str = typer.Option(..., "--subscriber"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """A bank's consents, newest first."""
        ws = workspace()
        try:
            with session_scope(ws.engine) as s:
                bank = find_subscriber(s, subscriber)
                rows: list[dict[str, Any]] = [
                    {
                        "id": c.id,
                        "reference": c.reference,
                        "purposes": c.purposes,
                        "valid_until": c.valid_until,
                        "revoked": c.revoked_at is not None,
                    }
                    for c in consents_of(s, bank.id)
                ]
        except ValueError as exc:
            raise fail(str(exc)) from exc
        if as_json:
            emit_json(rows)
            return
        for r in rows:
            state = "已撤回" if r["revoked"] else f"至 {business_day(r['valid_until'])}"
            console.print(
                f"{r['id']}  {r['reference']}  {','.join(r['purposes'])}  {state}", markup=False
            )
