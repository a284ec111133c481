"""A period's settlement as tables for people: allocations, statements, and their CSV/XLSX files."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from sqlmodel import Session, select

from pdo.exports import csv_bytes, write_together, xlsx_bytes
from pdo.ledger.models import Department, Subscriber
from pdo.revenue import OPERATOR
from pdo.settlement import PeriodFigures

FORMATS = ("csv", "xlsx")


def _yuan(fen: int) -> str:
    sign, whole = ("-", -fen) if fen < 0 else ("", fen)
    return f"{sign}{whole // 100}.{whole % 100:02d}"


def party_names(session: Session) -> dict[str, str]:
    """Department codes (and the operator) by their Chinese names."""
    names = {d.code: d.name_zh for d in session.exec(select(Department))}
    return names | {OPERATOR: "授权运营单位"}


def allocation_frame(session: Session, figures: PeriodFigures) -> pl.DataFrame:
    """One row per product version and party: weight, share and amount in fen and yuan."""
    names = party_names(session)
    rows = [
        {
            "期间 period": figures.period,
            "产品版本 version": v.version_id,
            "分配方 party": names.get(party, party),
            "代码 code": party,
            "权重 weight": v.weights[party],
            "权重合计 of": sum(v.weights.values()),
            "金额（分）fen": fen,
            "金额（元）yuan": _yuan(fen),
        }
        for v in figures.versions
        for party, fen in v.parts.items()
    ]
    return pl.DataFrame(
        rows,
        schema={
            "期间 period": pl.String,
            "产品版本 version": pl.String,
            "分配方 party": pl.String,
            "代码 code": pl.String,
            "权重 weight": pl.Int64,
            "权重合计 of": pl.Int64,
            "金额（分）fen": pl.Int64,
            "金额（元）yuan": pl.String,
        },
    )


def statement_frame(session: Session, figures: PeriodFigures) -> pl.DataFrame:
    """Each bank's statement lines: usage, overage and withheld units, charges, refunds, due."""
    banks = {s.id: s.name for s in session.exec(select(Subscriber))}
    rows = [
        {
            "期间 period": figures.period,
            "银行 subscriber": banks.get(st.subscriber_id, st.subscriber_id),
            "订阅 subscription": st.subscription_id,
            "套餐 plan": st.plan_id,
            "类型 kind": st.kind,
            "月配额 quota": st.monthly_quota,
            "用量 units": st.units,
            "超额 overage": st.overage_units,
            "异议暂缓 withheld": st.withheld_units,
            "计费（分）charged": st.charged_fen,
            "退款（分）refunded": st.refunded_fen,
            "应付（分）due": st.net_fen,
            "应付（元）due yuan": _yuan(st.net_fen),
        }
        for st in figures.statements
    ]
    return pl.DataFrame(
        rows,
        schema={
            "期间 period": pl.String,
            "银行 subscriber": pl.String,
            "订阅 subscription": pl.Int64,
            "套餐 plan": pl.String,
            "类型 kind": pl.String,
            "月配额 quota": pl.Int64,
            "用量 units": pl.Int64,
            "超额 overage": pl.Int64,
            "异议暂缓 withheld": pl.Int64,
            "计费（分）charged": pl.Int64,
            "退款（分）refunded": pl.Int64,
            "应付（分）due": pl.Int64,
            "应付（元）due yuan": pl.String,
        },
    )


def check_formats(formats: tuple[str, ...]) -> None:
    """Refuse an unknown format before anything is settled or written."""
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"unknown export format(s) {unknown}; choose from {list(FORMATS)}")


def export(
    session: Session, figures: PeriodFigures, out_dir: Path, formats: tuple[str, ...] = FORMATS
) -> list[Path]:
    """Write the period's allocations and statements, all or none; returns the files written."""
    check_formats(formats)
    state = "settled" if figures.settled else "provisional"
    stem = f"settlement-{figures.period}-{state}"
    allocations = allocation_frame(session, figures)
    statements = statement_frame(session, figures)
    files: dict[str, bytes] = {}
    if "csv" in formats:
        files[f"{stem}-allocations.csv"] = csv_bytes(allocations)
        files[f"{stem}-statements.csv"] = csv_bytes(statements)
    if "xlsx" in formats:
        sheets = {"收益分配 allocations": allocations, "对账单 statements": statements}
        files[f"{stem}.xlsx"] = xlsx_bytes(sheets)
    return write_together(out_dir, files)
