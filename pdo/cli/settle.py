"""`pdo settle` and `pdo statement`: close a month's revenue to the fen, and show what banks owe."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.table import Table
from sqlmodel import Session, func, select

from pdo import settlement
from pdo.checkpoints import create_checkpoint
from pdo.cli.root import Workspace, console, emit_json, fail, workspace
from pdo.ledger.db import read_scope, session_scope
from pdo.ledger.models import AuditCheckpoint, AuditEvent, Settlement, Subscriber
from pdo.ledger.types import utcnow
from pdo.settlement_report import FORMATS, check_formats, export, party_names, statement_frame


def _yuan(fen: int) -> str:
    sign, whole = ("-", -fen) if fen < 0 else ("", fen)
    return f"{sign}{whole // 100:,}.{whole % 100:02d} 元"


def _summary(figures: settlement.PeriodFigures, names: dict[str, str]) -> dict[str, Any]:
    return {
        "period": figures.period,
        "settled": figures.settled,
        "events": figures.events,
        "billed_fen": figures.billed_fen,
        "refunded_fen": figures.refunded_fen,
        "net_fen": figures.net_fen,
        "by_party": figures.by_party(),
        "versions": [
            {
                "version": v.version_id,
                "events": v.events,
                "billed_fen": v.billed_fen,
                "refunded_fen": v.refunded_fen,
                "net_fen": v.net_fen,
                "weights": v.weights,
                "parts": v.parts,
            }
            for v in figures.versions
        ],
        "party_names": {p: names.get(p, p) for p in figures.by_party()},
    }


def _print(summary: dict[str, Any], note: str) -> None:
    console.print(
        f"{summary['period']}  {note}  events {summary['events']}  "
        f"billed {_yuan(summary['billed_fen'])}  refunds {_yuan(summary['refunded_fen'])}  "
        f"net {_yuan(summary['net_fen'])}"
    )
    table = Table("分配方 party", "代码 code", "金额 amount")
    for party, fen in summary["by_party"].items():
        table.add_row(summary["party_names"][party], party, _yuan(fen))
    console.print(table)


def _signing_key(ws: Workspace) -> Ed25519PrivateKey:
    """Load the checkpoint key before settling, so a close that could not be sealed is refused
    with nothing written."""
    try:
        return ws.settings.read_audit_signing_key()
    except (OSError, ValueError) as exc:
        raise fail(f"the audit signing key does not load, nothing was settled: {exc}") from exc


def _close_is_sealed(s: Session, period: str) -> bool:
    """Whether a checkpoint covers the period's settlement.close record: a rerun seals a close
    whose checkpoint failed."""
    close = s.exec(
        select(func.max(AuditEvent.seq)).where(
            AuditEvent.action == "settlement.close", AuditEvent.subject == period
        )
    ).one()
    sealed = s.exec(select(func.max(AuditCheckpoint.last_seq))).one()
    return close is None or (sealed is not None and sealed >= close)


def _seal_close(ws: Workspace, key: Ed25519PrivateKey, actor: str, period: str) -> dict[str, Any]:
    """A checkpoint over the chain up to this close; a failure says the month is closed anyway."""
    try:
        with session_scope(ws.engine) as s:
            sealed = create_checkpoint(s, key, actor)
            return {"id": sealed.id, "last_seq": sealed.last_seq, "merkle_root": sealed.merkle_root}
    except ValueError as exc:
        raise fail(
            f"period {period} is closed, but its audit checkpoint failed: {exc}; "
            f"run `pdo settle --period {period}` again to seal it"
        ) from exc


def _export(
    ws: Workspace, figures: settlement.PeriodFigures, out_dir: Path, formats: tuple[str, ...]
) -> list[Path]:
    """Write the files once the ledger holds what they show; a failure says whether the month
    was closed."""
    try:
        with read_scope(ws.engine) as s:
            return export(s, figures, out_dir, formats)
    except OSError as exc:
        state = (
            f"period {figures.period} is closed"
            if figures.settled
            else f"nothing was settled for {figures.period}"
        )
        raise fail(f"{state}, but writing its files to {out_dir} failed: {exc}") from exc


def register(app: typer.Typer) -> None:
    @app.command("settle")
    def settle_command(
        period: str = typer.Option(..., "--period", help="结算期间 business month, e.g. 2026-11"),
        export_dir: Path = typer.Option(
            None, "--export", help="write allocations and statements (CSV/XLSX) to this folder"
        ),
        fmt: list[str] = typer.Option(list(FORMATS), "--format", help="csv and/or xlsx"),
        dry_run: bool = typer.Option(
            False, "--dry-run", help="show what settling now would allocate; write nothing"
        ),
        actor: str = typer.Option("operator", "--as"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """结算: close a month once; its revenue is split by each version's rule, to the fen."""
        ws = workspace()
        checkpoint: dict[str, Any] | None = None
        files: list[Path] = []
        try:
            check_formats(tuple(fmt))
            if dry_run:
                with read_scope(ws.engine) as s:
                    figures = settlement.figures(s, period)
                    names = party_names(s)
                note = "已结算 closed" if figures.settled else "试算 provisional (nothing written)"
                reconciled = None
            else:
                key = _signing_key(ws)
                with session_scope(ws.engine) as s:
                    before = s.get(Settlement, period)
                    closed = settlement.settle(s, period, actor, utcnow())
                    figures = settlement.figures(s, period)
                    names = party_names(s)
                    reconciled = settlement.reconciles(s, closed)
                    sealed = _close_is_sealed(s, period)
                note = (
                    "已结算（未变）already closed, unchanged" if before else "结算完成 closed now"
                )
                if not sealed:  # each close seals the chain so far: a monthly checkpoint
                    checkpoint = _seal_close(ws, key, actor, period)
        except ValueError as exc:
            raise fail(str(exc)) from exc
        if export_dir:
            files = _export(ws, figures, export_dir, tuple(fmt))
        summary = _summary(figures, names) | {
            "reconciles": reconciled,
            "files": [str(f) for f in files],
            "checkpoint": checkpoint,
        }
        if as_json:
            emit_json(summary)
        else:
            _print(summary, note)
            for f in files:
                console.print(f"wrote {f}")
            if checkpoint is not None:
                console.print(
                    f"audit checkpoint #{checkpoint['id']} seals events up to "
                    f"{checkpoint['last_seq']} (root {checkpoint['merkle_root'][:16]}…): "
                    f"give `pdo audit export-checkpoint {checkpoint['id']} --out FILE` "
                    "to the authority"
                )
        if reconciled is False:
            raise fail(
                "the events this period took in no longer give its recorded lines: "
                "run `pdo audit verify`"
            )

    @app.command("statement")
    def statement_command(
        period: str = typer.Option(..., "--period", help="business month, e.g. 2026-11"),
        subscriber: str = typer.Option(None, "--subscriber", help="one bank, by name"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """对账单: each bank's usage, overage, refunds and amount due for a month."""
        ws = workspace()
        try:
            with read_scope(ws.engine) as s:
                figures = settlement.figures(s, period)
                closed = s.get(Settlement, period)
                reconciled = settlement.reconciles(s, closed) if closed is not None else None
                frame = statement_frame(s, figures)
                if subscriber is not None:
                    known = {b.name for b in s.exec(select(Subscriber))}
                    if subscriber not in known:
                        raise ValueError(f"no subscriber named {subscriber!r}")
                    frame = frame.filter(frame["银行 subscriber"] == subscriber)
        except ValueError as exc:
            raise fail(str(exc)) from exc
        if as_json:
            emit_json(
                {
                    "period": period,
                    "settled": figures.settled,
                    "reconciles": reconciled,
                    "lines": frame.to_dicts(),
                }
            )
        else:
            state = "已结算 settled" if figures.settled else "未结算 provisional"
            console.print(f"{period} 对账单 statements ({state})")
            if frame.is_empty():
                console.print("no usage in this period")
            for line in frame.iter_rows(named=True):  # one line each: fits any terminal
                quota = line["月配额 quota"]
                console.print(
                    f"{line['银行 subscriber']}  {line['套餐 plan'] or '—'}  {line['类型 kind']}  "
                    f"用量 {line['用量 units']}（配额 {quota if quota is not None else '不限'}，"
                    f"超额 {line['超额 overage']}，异议暂缓 {line['异议暂缓 withheld']}）  "
                    f"计费 {_yuan(line['计费（分）charged'])}  "
                    f"退款 {_yuan(line['退款（分）refunded'])}  "
                    f"应付 {_yuan(line['应付（分）due'])}",
                    markup=False,
                )
        if reconciled is False:
            raise fail(
                "these are the amounts billed at settlement, but the usage events no longer "
                "give them: run `pdo audit verify`"
            )
