"""收益分配 page data: which months there are, one month's figures, the trend, all-time totals.

Closed months are read from what their settlement recorded (``settlement``,
``settlement_line``: a handful of rows per month); a month's own figures and the open month come
from ``pdo.settlement.figures`` (aggregated in SQL over the month's usage events). Nothing here
loads usage events into Python. Money stays integer fen; the page formats 元.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from dashboard.queries import OPERATOR_ZH, each, percent, yuan
from pdo import audit, settlement
from pdo.delivery.periods import BUSINESS_TZ, business_month
from pdo.exports import csv_bytes, xlsx_bytes
from pdo.ledger.db import session_scope
from pdo.ledger.models import Department, Settlement, SettlementLine, UsageEvent
from pdo.revenue import OPERATOR
from pdo.settlement import PeriodFigures
from pdo.settlement_report import allocation_frame, statement_frame

Text = Callable[[str, str], str]  # dashboard.i18n.t: (zh, en) -> the session's language


def _zh(zh: str, en: str) -> str:
    return zh


# --- months ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Month:
    """A month the page can show: closed by a settlement, ended but not settled, or current."""

    period: str
    settled: bool
    ended: bool  # the business month is over (a settled month always is)

    def label(self, t: Text = _zh) -> str:
        if self.settled:
            return t(f"{self.period}（已结算）", f"{self.period} (settled)")
        if self.ended:
            return t(f"{self.period}（已结束，待结算）", f"{self.period} (ended, not settled)")
        return t(f"{self.period}（本月，试算）", f"{self.period} (this month, provisional)")


def _next(period: str) -> str:
    year, month = int(period[:4]), int(period[5:])
    return f"{year + month // 12:04d}-{month % 12 + 1:02d}"


def months(session: Session, now: dt.datetime) -> list[Month]:
    """Newest first: the current month, months that ended without a settlement, closed months.

    Unsettled ended months are those after the last settlement (or, with none yet, from the
    month of the first usage event), read from the calendar and two indexed lookups.
    """
    current = business_month(now)
    closed = list(
        session.exec(select(Settlement.period).order_by(col(Settlement.period).desc())).all()
    )
    if closed:
        first_open = _next(closed[0])
    else:
        first = session.exec(select(func.min(UsageEvent.served_at))).one()
        first_open = business_month(_aware(first)) if first is not None else current
    pending = []
    period = first_open
    while period < current:
        pending.append(Month(period, settled=False, ended=True))
        period = _next(period)
    out = [Month(current, settled=False, ended=False)] if current not in closed else []
    return out + pending[::-1] + [Month(p, settled=True, ended=True) for p in closed]


def _aware(value: dt.datetime) -> dt.datetime:
    """A timestamp from an aggregate (SQLite hands MIN() back naive): UTC, timezone-aware."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def closes_at(period: str) -> str:
    """When a month closes, in Beijing time (the first instant after it)."""
    _, end = settlement.period_bounds(period)
    return end.astimezone(BUSINESS_TZ).strftime("%Y-%m-%d %H:%M")


# --- one month ---------------------------------------------------------------------------


def party_names(session: Session, t: Text = _zh) -> dict[str, str]:
    """Departments by their name in the session's language, and the operator."""
    names = {d.code: t(d.name_zh, d.name_en) for d in session.exec(select(Department))}
    return names | {OPERATOR: t(OPERATOR_ZH, "Authorized operator")}


def name_of(party: str, names: dict[str, str], t: Text = _zh) -> str:
    """A party by name: a department, the operator, or another party the rule names (by code)."""
    return names.get(party) or t(f"其他方（{party}）", f"Other party ({party})")


@dataclass(frozen=True)
class Recorded:
    """What a month's settlement wrote (plain values: usable after the session closed)."""

    closed_at: dt.datetime
    closed_by: str
    billed_fen: int
    refunded_fen: int
    net_fen: int
    digest: str


@dataclass(frozen=True)
class MonthView:
    """A month's figures as the page shows them."""

    figures: PeriodFigures
    recorded: Recorded | None  # what the settlement wrote, for a closed month

    @property
    def allocated_fen(self) -> int:
        return sum(self.figures.by_party().values())

    @property
    def reconciles(self) -> bool:
        """Allocations equal net revenue to the fen (and, closed, equal what was recorded)."""
        f = self.figures
        ok = self.allocated_fen == f.net_fen
        if self.recorded is not None:
            r = self.recorded
            ok = ok and (r.billed_fen, r.refunded_fen, r.net_fen) == (
                f.billed_fen,
                f.refunded_fen,
                f.net_fen,
            )
        return ok


def month_view(session: Session, period: str, unsettled: PeriodFigures | None = None) -> MonthView:
    """`pdo.settlement.figures` for the month: as settled if closed, else provisional.

    `unsettled` (all usage no settlement took in, already aggregated for the totals) is the
    open month's provisional figures whenever no usage was served after the month's end —
    always so for the current month — and is then used instead of aggregating the same events
    a second time.
    """
    closed = session.get(Settlement, period)
    recorded = (
        Recorded(
            closed.closed_at,
            closed.closed_by,
            closed.billed_fen,
            closed.refunded_fen,
            closed.net_fen,
            closed.digest,
        )
        if closed is not None
        else None
    )
    if closed is None and unsettled is not None:
        _, end = settlement.period_bounds(period)
        last = session.exec(select(func.max(UsageEvent.served_at))).one()
        if last is None or _aware(last) < end:
            return MonthView(dataclasses.replace(unsettled, period=period), None)
    return MonthView(settlement.figures(session, period), recorded)


def recheck(session: Session, period: str) -> bool:
    """Whether a closed month's usage events still give the lines its settlement recorded
    (`pdo.settlement.reconciles`: re-aggregates the month's events, so only on request)."""
    closed = session.get(Settlement, period)
    if closed is None:
        raise ValueError(f"{period} is not settled")
    return settlement.reconciles(session, closed)


def party_frame(figures: PeriodFigures, names: dict[str, str], t: Text = _zh) -> pl.DataFrame:
    """Each party's share of the month, largest first: name, code, 元, share, and fen (charts)."""
    parts = figures.by_party()
    total = sum(parts.values())
    return pl.DataFrame(
        [
            {
                "name": name_of(party, names, t),
                "code": party,
                "yuan": yuan(fen),
                "share": percent(fen, total),
                "fen": fen,
            }
            for party, fen in parts.items()
        ],
        schema={
            "name": pl.String,
            "code": pl.String,
            "yuan": pl.String,
            "share": pl.String,
            "fen": pl.Int64,
        },
    ).rename(
        {
            "name": t("分配方", "Party"),
            "code": t("代码", "Code"),
            "yuan": t("金额（元）", "Amount (CNY)"),
            "share": t("占比", "Share"),
            "fen": t("金额（分）", "Amount (fen)"),
        }
    )


def version_frame(figures: PeriodFigures, t: Text = _zh) -> pl.DataFrame:
    """Per product version: events, billed, refunded and net revenue, in 元."""
    rows = [
        {
            "version": v.version_id,
            "events": v.events,
            "billed": yuan(v.billed_fen),
            "refunded": yuan(v.refunded_fen),
            "net": yuan(v.net_fen),
        }
        for v in figures.versions
    ]
    schema = {"version": pl.String, "events": pl.Int64}
    schema |= dict.fromkeys(("billed", "refunded", "net"), pl.String)
    return pl.DataFrame(rows, schema=schema).rename(
        {
            "version": t("产品版本", "Version"),
            "events": t("调用/交付次数", "Calls/deliveries"),
            "billed": t("计费（元）", "Billed (CNY)"),
            "refunded": t("退款（元）", "Refunded (CNY)"),
            "net": t("净收入（元）", "Net (CNY)"),
        }
    )


def allocation_table(session: Session, figures: PeriodFigures, t: Text = _zh) -> pl.DataFrame:
    """`allocation_frame` for people: version, party, weight of total, amount in 元."""
    frame = allocation_frame(session, figures)
    names = party_names(session, t)
    shown = {code: name_of(code, names, t) for code in frame["代码 code"].unique()}
    return frame.select(
        pl.col("产品版本 version").alias(t("产品版本", "Version")),
        pl.col("代码 code").replace_strict(shown, return_dtype=pl.String)
        .alias(t("分配方", "Party")),
        pl.col("代码 code").alias(t("代码", "Code")),
        pl.format("{} / {}", "权重 weight", "权重合计 of").alias(t("权重", "Weight")),
        pl.col("金额（元）yuan").alias(t("金额（元）", "Amount (CNY)")),
    )  # fmt: skip


KIND_ZH = {
    "query": ("查询", "query"),
    "alert": ("预警推送", "alert"),
    "batch": ("批量文件", "batch"),
}


def statement_table(session: Session, figures: PeriodFigures, t: Text = _zh) -> pl.DataFrame:
    """`statement_frame` for people: each bank's usage, overage, withheld, charges, due in 元."""
    frame = statement_frame(session, figures)
    kinds = {k: t(zh, en) for k, (zh, en) in KIND_ZH.items()}
    as_yuan = [
        each(frame[c], yuan, label)
        for c, label in (
            ("计费（分）charged", t("计费（元）", "Charged (CNY)")),
            ("退款（分）refunded", t("退款（元）", "Refunded (CNY)")),
            ("应付（分）due", t("应付（元）", "Due (CNY)")),
        )
    ]
    return frame.select(
        pl.col("银行 subscriber").alias(t("银行", "Bank")),
        pl.col("套餐 plan").fill_null("—").alias(t("套餐", "Plan")),
        pl.col("类型 kind").replace_strict(kinds, default=pl.col("类型 kind"))
        .alias(t("类型", "Kind")),
        pl.col("用量 units").alias(t("用量", "Units")),
        pl.col("超额 overage").alias(t("超额", "Overage")),
        pl.col("异议暂缓 withheld").alias(t("异议暂缓", "Withheld")),
        *as_yuan,
    )  # fmt: skip


@dataclass(frozen=True)
class Download:
    """One of the month's files: made when the user asks for it, not on every page render."""

    key: str  # allocations | statements | workbook
    label_zh: str
    label_en: str
    file_name: str
    mime: str


_FILES = (
    ("allocations", "分配明细 CSV", "allocations CSV", "-allocations.csv", "text/csv"),
    ("statements", "对账单 CSV", "statements CSV", "-statements.csv", "text/csv"),
    (
        "workbook",
        "工作簿 XLSX",
        "workbook XLSX",
        ".xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
)


def downloads(period: str, settled: bool) -> list[Download]:
    """The month's files, named as `pdo settle --export` names them."""
    stem = f"settlement-{period}-{'settled' if settled else 'provisional'}"
    return [Download(key, zh, en, f"{stem}{suffix}", mime) for key, zh, en, suffix, mime in _FILES]


def file_bytes(session: Session, figures: PeriodFigures, key: str) -> bytes:
    """A month's file: the same frames and encodings as `pdo.settlement_report.export`."""
    if key == "allocations":
        return csv_bytes(allocation_frame(session, figures))
    if key == "statements":
        return csv_bytes(statement_frame(session, figures))
    if key == "workbook":
        return xlsx_bytes(
            {
                "收益分配 allocations": allocation_frame(session, figures),
                "对账单 statements": statement_frame(session, figures),
            }
        )
    raise ValueError(f"unknown file {key!r}; known: {[f[0] for f in _FILES]}")


def file_maker(engine: Engine, period: str, key: str, actor: str) -> Callable[[], bytes]:
    """What the download button calls when clicked: the month's figures read afresh, and who
    took which file recorded on the audit chain in the same transaction."""

    def make() -> bytes:
        with session_scope(engine) as session:
            made = file_bytes(session, settlement.figures(session, period), key)
            audit.record(session, actor, "export.settlement", period, file=key, bytes=len(made))
            return made

    return make


# --- across months -----------------------------------------------------------------------


def trend(session: Session, names: dict[str, str], t: Text = _zh) -> pl.DataFrame:
    """Net revenue per settled month and party, from the settlement lines (summed in SQL)."""
    rows = session.exec(
        select(SettlementLine.period, SettlementLine.party, func.sum(SettlementLine.amount_fen))
        .group_by(col(SettlementLine.period), col(SettlementLine.party))
        .order_by(col(SettlementLine.period), col(SettlementLine.party))
    ).all()
    return pl.DataFrame(
        [
            {
                "period": period,
                "party": name_of(party, names, t),
                "fen": int(fen),
                "yuan_text": yuan(int(fen)),
            }
            for period, party, fen in rows
        ],
        schema={"period": pl.String, "party": pl.String, "fen": pl.Int64, "yuan_text": pl.String},
    ).with_columns((pl.col("fen") / 100).alias("yuan"))


@dataclass(frozen=True)
class Totals:
    """All periods together: closed months as recorded, plus usage no settlement took in yet."""

    billed_fen: int
    refunded_fen: int
    by_party: dict[str, int]
    unsettled: PeriodFigures  # usage no settlement has taken in yet

    @property
    def open_events(self) -> int:
        return self.unsettled.events

    @property
    def allocated_fen(self) -> int:
        return sum(self.by_party.values())

    @property
    def balanced(self) -> bool:
        return self.allocated_fen == self.billed_fen - self.refunded_fen


def totals(session: Session) -> Totals:
    """The same sums as `dashboard.queries.revenue_report`, without re-aggregating closed months'
    events: their recorded totals and lines (few rows), plus `settlement.unsettled`."""
    billed, refunded = session.exec(
        select(
            func.coalesce(func.sum(Settlement.billed_fen), 0),
            func.coalesce(func.sum(Settlement.refunded_fen), 0),
        )
    ).one()
    by_party = {
        party: int(fen)
        for party, fen in session.exec(
            select(SettlementLine.party, func.sum(SettlementLine.amount_fen)).group_by(
                col(SettlementLine.party)
            )
        )
    }
    unsettled = settlement.unsettled(session)
    for party, fen in unsettled.by_party().items():
        by_party[party] = by_party.get(party, 0) + fen
    return Totals(
        billed_fen=int(billed) + unsettled.billed_fen,
        refunded_fen=int(refunded) + unsettled.refunded_fen,
        by_party=dict(sorted(by_party.items(), key=lambda kv: (-kv[1], kv[0]))),
        unsettled=unsettled,
    )


def totals_frame(totals: Totals, names: dict[str, str], t: Text = _zh) -> pl.DataFrame:
    """All-time shares per party: 分配方, 代码, 金额（元）, 占比 (as revenue_report's table)."""
    allocated = totals.allocated_fen
    return pl.DataFrame(
        [
            {
                t("分配方", "Party"): name_of(party, names, t),
                t("代码", "Code"): party,
                t("金额（元）", "Amount (CNY)"): yuan(fen),
                t("占比", "Share"): percent(fen, allocated),
            }
            for party, fen in totals.by_party.items()
        ],
        schema=dict.fromkeys(
            (
                t("分配方", "Party"),
                t("代码", "Code"),
                t("金额（元）", "Amount (CNY)"),
                t("占比", "Share"),
            ),
            pl.String,
        ),
    )
