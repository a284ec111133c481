"""异议: enterprises' objections, open and resolved, time to resolve, and objections per week.

Counts come from SQL; the listing reads only the columns it shows (no reason text, nothing
personal: an enterprise appears as its entity key, a 个体工商户 by its pseudonym).
"""

from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass
from typing import Any

import polars as pl
from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from dashboard.i18n import t
from pdo.delivery.periods import BUSINESS_TZ
from pdo.ledger.models import Objection, Product
from pdo.ledger.types import utcnow
from pdo.privacy.checksums import INDIVIDUAL_PREFIX
from pdo.privacy.pseudonym import PREFIX as PSEUDONYM_PREFIX
from pdo.review_report import local_time

STATUS = {"open": ("处理中", "Open"), "resolved": ("已解决", "Resolved")}
OUTCOME = {
    "upheld": ("异议成立（已更正）", "Upheld (corrected)"),
    "rejected": ("异议不成立（维持原数据）", "Rejected (data stands)"),
}
DAY = 86_400


def _pair(table: dict[str, tuple[str, str]], key: str | None) -> str:
    if key is None:
        return "—"
    zh, en = table.get(key, (key, key))
    return t(zh, en)


def status_label(status: str) -> str:
    return _pair(STATUS, status)


def entity(key: str) -> str:
    """An entity key as the console shows it: a company's USCC, a 个体工商户's pseudonym.

    The same as `pdo.delivery.identity.shown_as` for a company; a person's code (which the
    ledger never holds: it keys a 个体工商户 by pseudonym) would be masked as it masks one.
    """
    if key.startswith(PSEUDONYM_PREFIX):
        return key
    code = key.strip().upper()
    if code.startswith(INDIVIDUAL_PREFIX):
        return code[:6] + "*" * (len(code) - 10) + code[-4:]
    return code


def days_between(start: dt.datetime, end: dt.datetime) -> float:
    return round((end - start).total_seconds() / DAY, 2)


def days_text(days: float | None) -> str:
    return "—" if days is None else f"{days:.2f}"


def products(session: Session) -> list[str]:
    """Products that have objections, for the filter."""
    return list(
        session.exec(
            select(Objection.product_name).distinct().order_by(col(Objection.product_name))
        ).all()
    )


@dataclass(frozen=True)
class Kpis:
    total: int
    open: int
    resolved: int
    upheld: int
    median_days: float | None  # time to resolve, resolved objections
    max_days: float | None
    oldest_open_days: float | None


def _filtered(query: Any, product_names: list[str] | None) -> Any:
    if product_names is not None:
        query = query.where(col(Objection.product_name).in_(product_names))
    return query


def kpis(
    session: Session, product_names: list[str] | None = None, now: dt.datetime | None = None
) -> Kpis:
    """Counts per status and outcome in SQL; resolve times from the resolved rows' two dates."""
    now = now or utcnow()
    by_status: dict[str, int] = {}
    upheld = 0
    for status, outcome, n in session.exec(
        _filtered(
            select(Objection.status, Objection.outcome, func.count()).group_by(
                col(Objection.status), col(Objection.outcome)
            ),
            product_names,
        )
    ).all():
        by_status[status] = by_status.get(status, 0) + int(n)
        upheld += int(n) if outcome == "upheld" else 0
    spans = session.exec(
        _filtered(
            select(Objection.raised_at, Objection.resolved_at).where(
                Objection.status == "resolved", col(Objection.resolved_at).is_not(None)
            ),
            product_names,
        )
    ).all()
    days = [days_between(a, b) for a, b in spans if b is not None]
    oldest = session.exec(
        _filtered(
            select(func.min(Objection.raised_at)).where(Objection.status == "open"),
            product_names,
        )
    ).one()
    oldest_days = None
    if oldest is not None:
        if oldest.tzinfo is None:  # an aggregate skips the column type: SQLite gives naive UTC
            oldest = oldest.replace(tzinfo=dt.UTC)
        oldest_days = days_between(oldest, now)
    return Kpis(
        total=sum(by_status.values()),
        open=by_status.get("open", 0),
        resolved=by_status.get("resolved", 0),
        upheld=upheld,
        median_days=round(statistics.median(days), 2) if days else None,
        max_days=max(days) if days else None,
        oldest_open_days=oldest_days,
    )


def listing(
    session: Session,
    status: str | None = None,
    product_names: list[str] | None = None,
    now: dt.datetime | None = None,
    limit: int = 5000,
) -> pl.DataFrame:
    """Objections newest first: product, enterprise, item, dates, outcome and days."""
    now = now or utcnow()
    titles = {p.name: p.title_zh for p in session.exec(select(Product))}
    query = sa_select(
        col(Objection.id),
        col(Objection.product_name),
        col(Objection.uscc),
        col(Objection.item),
        col(Objection.status),
        col(Objection.outcome),
        col(Objection.raised_at),
        col(Objection.resolved_at),
    ).order_by(col(Objection.raised_at).desc())
    if status is not None:
        query = query.where(col(Objection.status) == status)
    rows = session.exec(_filtered(query, product_names).limit(limit)).all()
    cols = [
        t("产品", "Product"),
        t("企业", "Enterprise"),
        t("异议数据项", "Disputed item"),
        t("状态", "Status"),
        t("提出时间（北京时间）", "Raised (Beijing)"),
        t("解决时间（北京时间）", "Resolved (Beijing)"),
        t("处理结果", "Outcome"),
        t("解决用时（天）", "Days to resolve"),
        t("已等待（天）", "Days open"),
        t("编号", "Id"),
    ]
    schema: dict[str, Any] = dict.fromkeys(cols, pl.String)
    schema[cols[7]] = schema[cols[8]] = pl.Float64
    out = []
    for oid, product, key, item, st_, outcome, raised, resolved in rows:
        title = titles.get(product)
        values = [
            f"{title}（{product}）" if title else product,
            entity(key),
            item,
            status_label(st_),
            local_time(raised),
            local_time(resolved) or "—",
            _pair(OUTCOME, outcome),
            days_between(raised, resolved) if resolved is not None else None,
            days_between(raised, now) if st_ == "open" else None,
            oid[:12],
        ]
        out.append(dict(zip(cols, values, strict=True)))
    return pl.DataFrame(out, schema=schema)


def week_start(at: dt.datetime) -> dt.date:
    """The Monday (Beijing time) of the week an instant falls in."""
    day = at.astimezone(BUSINESS_TZ).date()
    return day - dt.timedelta(days=day.weekday())


def per_week(session: Session, product_names: list[str] | None = None) -> pl.DataFrame:
    """Objections raised and resolved per week (Monday, Beijing time), long form for a chart."""
    raised: dict[dt.date, int] = {}
    resolved: dict[dt.date, int] = {}
    query = select(Objection.raised_at, Objection.resolved_at)
    for a, b in session.exec(_filtered(query, product_names)).all():
        raised[week_start(a)] = raised.get(week_start(a), 0) + 1
        if b is not None:
            resolved[week_start(b)] = resolved.get(week_start(b), 0) + 1
    week, kind, n = t("周（周一）", "Week of"), t("类别", "Kind"), t("件数", "Count")
    rows = [
        {week: w, kind: label, n: c}
        for label, counts in ((t("提出", "Raised"), raised), (t("解决", "Resolved"), resolved))
        for w, c in sorted(counts.items())
    ]
    return pl.DataFrame(rows, schema={week: pl.Date, kind: pl.String, n: pl.Int64})
