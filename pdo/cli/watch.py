"""`pdo watchlist|alerts`: banks' watchlists, pushing their alerts, and the dead-letter queue."""

from __future__ import annotations

import time
from typing import Any

import typer
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import select

from pdo.cli.root import console, emit_json, err_console, fail, settings, workspace
from pdo.delivery.alerts import alert_view, dead_alerts, requeue_alert
from pdo.delivery.egress import Egress
from pdo.delivery.watchlists import Refusal, list_watchlists, member_counts
from pdo.delivery.webhooks import dispatch_due
from pdo.driver_errors import driver_error_code
from pdo.ledger.db import session_scope
from pdo.ledger.models import Alert, Subscriber

# A failed pass is tried again after the interval, doubling up to this while failures repeat.
MAX_RETRY_WAIT_S = 300.0


# What a pass can fail with and still leave the next one worth trying: the ledger's errors, and a
# stored value that no longer decodes (JSONDecodeError is a ValueError), which the operator mends.
PASS_FAILURES = (SQLAlchemyError, ValueError, TypeError)


def _failure(exc: Exception) -> str:
    """What failed, without the statement or its parameters (they can hold an alert's data)."""
    code = driver_error_code(exc)
    return f"{type(exc).__name__} ({code})" if code else type(exc).__name__


def _dead_row(alert: Alert) -> dict[str, Any]:
    return alert_view(alert) | {
        "subscriber": alert.subscriber_id,
        "attempts": alert.attempts,
        "last_error": alert.last_error,
    }


def register(app: typer.Typer) -> None:
    """Attach the watchlist and alerts groups."""
    watchlist = typer.Typer(no_args_is_help=True, help="观察名单 / banks' watchlists")
    alerts = typer.Typer(no_args_is_help=True, help="预警 / alerts pushed to banks")
    app.add_typer(watchlist, name="watchlist")
    app.add_typer(alerts, name="alerts")

    @watchlist.command("list")
    def watchlist_list(as_json: bool = typer.Option(False, "--json")) -> None:
        """Every bank's watchlists: product, purpose, webhook and member count."""
        ws = workspace()
        with session_scope(ws.engine) as s:
            found = list_watchlists(s)
            counts = member_counts(s, (w.id for w in found))
            banks = {b.id: b.name for b in s.exec(select(Subscriber))}
            rows = [
                {
                    "id": w.id,
                    "subscriber": banks.get(w.subscriber_id, w.subscriber_id),
                    "name": w.name,
                    "product": w.product_name,
                    "purpose": w.purpose,
                    "webhook": w.webhook_url is not None,
                    "members": counts[w.id],
                    "created_at": w.created_at.isoformat(),
                }
                for w in found
            ]
        if as_json:
            emit_json(rows)
            return
        if not rows:
            console.print("no watchlists")
        for r in rows:
            push = "webhook" if r["webhook"] else "pull only"
            console.print(
                f"{r['id']}  {r['subscriber']}  {r['name']}  {r['product']}/{r['purpose']}"
                f"  {r['members']} members  {push}"
            )

    @alerts.command("dispatch")
    def alerts_dispatch(
        once: bool = typer.Option(False, "--once", help="one pass, then exit"),
        interval: float = typer.Option(10.0, "--interval", min=0.0, help="seconds between passes"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Push due alerts to banks' webhooks (signed, retried with backoff); Ctrl-C to stop.

        A pass that fails (the ledger locked, restarting or unreachable; a stored alert that no
        longer decodes) bills nothing: its claims lapse and a later pass takes them up, so a push
        whose outcome was not recorded is sent again under the same alert id and metered once.
        The dispatcher says so on stderr and tries again after the interval, doubling the wait
        while failures repeat; with --once it exits 1.
        """
        ws = workspace()
        config = settings()
        server_key = config.read_pseudonym_key()[1]
        egress = Egress.allowing(config.webhook_allowed_networks)
        failures = 0
        try:
            while True:
                try:
                    report = dispatch_due(ws.engine, server_key, egress=egress).as_dict()
                except PASS_FAILURES as exc:
                    if once:
                        raise fail(f"the dispatch pass failed: {_failure(exc)}") from exc
                    failures += 1
                    wait = min(MAX_RETRY_WAIT_S, max(interval, 1.0) * 2 ** min(failures - 1, 9))
                    err_console.print(
                        f"error: the dispatch pass failed: {_failure(exc)}; "
                        f"trying again in {wait:g} s (failure {failures} in a row)"
                    )
                    time.sleep(wait)
                    continue
                failures = 0
                if as_json:
                    emit_json(report)
                elif report["due"] or once:
                    console.print(
                        f"{report['due']} due: {report['delivered']} delivered, "
                        f"{report['failed']} to retry, {report['dead']} dead-lettered"
                    )
                if once:
                    return
                time.sleep(interval)
        except KeyboardInterrupt:
            err_console.print("stopped")  # stdout: only the reports (JSON documents with --json)

    @alerts.command("dead")
    def alerts_dead(as_json: bool = typer.Option(False, "--json")) -> None:
        """Dead-lettered alerts: pushes that failed every attempt (still available to pull)."""
        ws = workspace()
        with session_scope(ws.engine) as s:
            rows = [_dead_row(a) for a in dead_alerts(s)]
        if as_json:
            emit_json(rows)
            return
        if not rows:
            console.print("no dead-lettered alerts")
        for r in rows:
            console.print(
                f"{r['id']}  {r['kind']}  {r['enterprise']}  watchlist {r['watchlist']}"
                f"  {r['attempts']} attempts  last error: {r['last_error']}"
            )

    @alerts.command("requeue")
    def alerts_requeue(
        alert_id: str = typer.Argument(..., help="the dead alert's id"),
        actor: str = typer.Option(..., "--as", help="the operator re-queuing it"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Put a dead-lettered alert back in the push queue with a fresh attempt budget."""
        ws = workspace()
        try:
            with session_scope(ws.engine) as s:
                alert = requeue_alert(s, alert_id, actor)
                out = {
                    "id": alert.id,
                    "status": alert.status,
                    "next_attempt_at": alert.next_attempt_at,
                }
        except Refusal as refusal:
            raise fail(refusal.message) from refusal
        if as_json:
            emit_json(out)
        else:
            console.print(f"alert {alert_id} re-queued by {actor}")
