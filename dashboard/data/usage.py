"""使用审计 page data: filtered usage aggregated once in SQL, single calls a page at a time.

One SQL aggregate over the filtered window (bank × product version × purpose × Beijing day, a
GROUP BY per day) gives every breakdown the page shows — by bank, version, purpose, department
and day — so a render reads the window's usage events once, whatever their number. Single calls
are read newest first with LIMIT/OFFSET on the ``served_at`` index; the export is capped at
:data:`EXPORT_CAP` rows and built only when someone clicks it. Money stays integer fen; the page
formats 元.

The window, time-bucket and enterprise-key helpers at the top are shared with the overview and
anomaly pages.
"""

from __future__ import annotations

import datetime as dt
import functools
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import polars as pl
from sqlalchemy import BigInteger, ColumnElement, Integer, cast, false, func, literal_column
from sqlalchemy import select as sql_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from dashboard.queries import OPERATOR_ZH, each, yuan
from pdo.delivery.identity import shown_as
from pdo.delivery.periods import BUSINESS_TZ
from pdo.ledger.db import read_scope
from pdo.ledger.models import Consent, Department, Product, ProductVersion, Subscriber, UsageEvent
from pdo.privacy.pseudonym import PREFIX as PSEUDONYM_PREFIX
from pdo.revenue import OPERATOR

Text = Callable[[str, str], str]  # dashboard.i18n.t: (zh, en) -> the session's language
T = TypeVar("T")

PAGE_SIZE = 100  # single calls per page of the drill-down
EXPORT_CAP = 100_000  # calls per export file; the page says so when the filter matches more

KIND_ZH = {
    "query": ("单笔查询", "Query"),
    "alert": ("预警推送", "Alert"),
    "batch": ("批量文件", "Batch"),
}
STATUS_ZH = {
    "served": ("已返回结果", "Served"),
    "withheld": ("异议暂缓（无评分）", "Withheld (disputed)"),
}


def _zh(zh: str, en: str) -> str:
    return zh


# --- shared: Beijing-day windows, time buckets, enterprise keys, concurrent reads -------

WORKERS = 2  # read connections a page's independent aggregates run on at once


def concurrently(engine: Engine, jobs: Sequence[Callable[[Session], T]]) -> list[T]:
    """Run read-only jobs, each on its own connection, at once; results in the jobs' order.

    SQLite and the PostgreSQL driver release the GIL while a query runs, so aggregates over
    different days or periods use more than one core.
    """

    def run(job: Callable[[Session], T]) -> T:
        with read_scope(engine) as session:
            return job(session)

    if len(jobs) <= 1:
        return [run(job) for job in jobs]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:  # callers pass a few jobs
        return list(pool.map(run, jobs))


def beijing_today(now: dt.datetime | None = None) -> dt.date:
    """Today's date in Beijing (the console's calendar)."""
    return (now or dt.datetime.now(dt.UTC)).astimezone(BUSINESS_TZ).date()


def day_start(day: dt.date) -> dt.datetime:
    """00:00 Beijing time of a day, as a UTC instant (what the ledger stores)."""
    return dt.datetime(day.year, day.month, day.day, tzinfo=BUSINESS_TZ).astimezone(dt.UTC)


@dataclass(frozen=True)
class Window:
    """Whole Beijing days ``first``…``last``; as UTC instants [start, end)."""

    first: dt.date
    last: dt.date

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValueError(f"a window must not end ({self.last}) before it starts")

    @property
    def start(self) -> dt.datetime:
        return day_start(self.first)

    @property
    def end(self) -> dt.datetime:
        return day_start(self.last + dt.timedelta(days=1))

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def previous(self) -> Window:
        """The window of the same length just before this one."""
        last = self.first - dt.timedelta(days=1)
        return Window(last - dt.timedelta(days=self.days - 1), last)

    def dates(self) -> list[dt.date]:
        return [self.first + dt.timedelta(days=i) for i in range(self.days)]

    def label(self) -> str:
        if self.first == self.last:
            return self.first.isoformat()
        return f"{self.first.isoformat()} ~ {self.last.isoformat()}"


def last_days(days: int, today: dt.date | None = None) -> Window:
    """The last ``days`` Beijing days, today included."""
    last = today or beijing_today()
    return Window(last - dt.timedelta(days=days - 1), last)


def _offset_hours() -> int:
    """Beijing's offset from UTC in whole hours (China has kept UTC+8 without DST since 1991)."""
    offset = dt.datetime(2026, 1, 1, tzinfo=BUSINESS_TZ).utcoffset()
    assert offset is not None
    return int(offset.total_seconds()) // 3600


_BUCKET_SECONDS = {"day": 86_400, "hour": 3_600}


def time_bucket(session: Session, column: Any, unit: str) -> ColumnElement[int]:
    """A timestamp column as whole Beijing days (or hours) since 1970-01-01 00:00 Beijing time.

    Integer arithmetic on epoch seconds, so day boundaries are exact and SQLite sorts small
    integers (about a third faster than grouping on strftime text); :func:`bucket_text` turns
    the numbers into "2026-11-30" or "2026-11-30 14" after the aggregate.
    """
    size, offset = _BUCKET_SECONDS[unit], _offset_hours() * 3600
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        if sqlite3.sqlite_version_info >= (3, 38):
            seconds: ColumnElement[int] = func.unixepoch(column, type_=Integer)
        else:
            seconds = cast(func.strftime("%s", column), Integer)
        return (seconds + offset) // size
    if dialect == "postgresql":
        epoch = func.extract("epoch", column)
        return cast(func.floor((epoch + offset) / size), BigInteger)
    raise NotImplementedError(f"no Beijing-time bucket for {dialect}")


def bucket_text(name: str, unit: str) -> pl.Expr:
    """A :func:`time_bucket` column as "2026-11-30" (day) or "2026-11-30 14" (hour)."""
    if unit == "day":
        return pl.col(name).cast(pl.Int32).cast(pl.Date).dt.strftime("%Y-%m-%d").alias(name)
    micros = pl.col(name).cast(pl.Int64) * 3_600_000_000
    return micros.cast(pl.Datetime("us")).dt.strftime("%Y-%m-%d %H").alias(name)


def entity_label(key: str | None) -> str:
    """How the console names an enterprise: a company by its USCC, a 个体工商户 by its pseudonym.

    Usage and refusals hold the entity key; a natural person's code never belongs there, and if
    one ever did it is masked as the delivery API masks it.
    """
    if not key:
        return "—"
    if key.startswith(PSEUDONYM_PREFIX):
        return key
    return shown_as(key)


def named(
    frame: pl.DataFrame, columns: Sequence[tuple[str, str, str]], t: Text = _zh
) -> pl.DataFrame:
    """Keep and rename columns for a table: (column, 中文, English) in display order."""
    return frame.select(pl.col(c).alias(t(zh, en)) for c, zh, en in columns)


# --- filter options ---------------------------------------------------------------------


@dataclass(frozen=True)
class Version:
    """A product version and the departments whose data it is built from."""

    id: str
    product: str
    title_zh: str
    departments: tuple[str, ...]


@dataclass(frozen=True)
class Options:
    """What the sidebar offers: read from small tables, never from usage events."""

    banks: dict[str, str]  # subscriber id → name, by name
    products: dict[str, str]  # product name → Chinese title
    purposes: list[str]
    departments: dict[str, str]  # department code → Chinese name (those feeding a version)
    versions: dict[str, Version]

    def bank_name(self, subscriber_id: str) -> str:
        return self.banks.get(subscriber_id, subscriber_id)

    def department_name(self, code: str) -> str:
        if code == OPERATOR:
            return OPERATOR_ZH
        return self.departments.get(code, code)


def options(session: Session) -> Options:
    """Banks, products, purposes, departments and versions for the filters.

    A version's departments are the department codes among its frozen revenue weights: the
    departments whose tables feed it and who share its revenue (the operator and any other
    party are not departments).
    """
    banks = {s.id: s.name for s in session.exec(select(Subscriber).order_by(col(Subscriber.name)))}
    products = session.exec(select(Product).order_by(col(Product.name))).all()
    known = {
        d.code: d.name_zh for d in session.exec(select(Department).order_by(col(Department.code)))
    }
    rows = session.exec(
        select(
            ProductVersion.id,
            ProductVersion.product_name,
            ProductVersion.revenue_weights,
        ).order_by(col(ProductVersion.product_name), col(ProductVersion.version))
    ).all()
    titles = {p.name: p.title_zh for p in products}
    versions = {
        vid: Version(
            vid,
            name,
            titles.get(name, name),
            tuple(sorted(c for c in (weights or {}) if c in known)),
        )
        for vid, name, weights in rows
    }
    feeding = {c for v in versions.values() for c in v.departments}
    purposes = sorted({p for product in products for p in product.purposes})
    return Options(
        banks=banks,
        products=titles,
        purposes=purposes,
        departments={c: n for c, n in known.items() if c in feeding},
        versions=versions,
    )


# --- filters ----------------------------------------------------------------------------


@dataclass(frozen=True)
class UsageFilter:
    """The sidebar's choices; an empty tuple means "all"."""

    window: Window
    banks: tuple[str, ...] = ()  # subscriber ids
    products: tuple[str, ...] = ()
    purposes: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()

    def version_ids(self, opts: Options) -> list[str] | None:
        """The versions products and departments allow, or None when neither is chosen."""
        if not self.products and not self.departments:
            return None
        return [
            v.id
            for v in opts.versions.values()
            if (not self.products or v.product in self.products)
            and (not self.departments or set(v.departments) & set(self.departments))
        ]


def conditions(
    f: UsageFilter, opts: Options, window: Window | None = None
) -> list[ColumnElement[bool]]:
    """The filter as SQL conditions on usage_event, over ``window`` (default: the filter's).

    The window goes first and picks the ``served_at`` index; the bank is compared as
    ``subscriber_id || ''`` so that SQLite does not read a bank's whole history through the
    subscriber index instead of the window's rows.
    """
    w = window or f.window
    out: list[ColumnElement[bool]] = [
        col(UsageEvent.served_at) >= w.start,
        col(UsageEvent.served_at) < w.end,
    ]
    if f.banks:
        out.append((col(UsageEvent.subscriber_id) + "").in_(f.banks))
    versions = f.version_ids(opts)
    if versions is not None:
        out.append(col(UsageEvent.product_version_id).in_(versions) if versions else false())
    if f.purposes:
        out.append(col(UsageEvent.purpose).in_(f.purposes))
    if f.kinds:
        out.append(col(UsageEvent.kind).in_(f.kinds))
    if f.statuses:
        out.append(col(UsageEvent.status).in_(f.statuses))
    return out


def any_usage(session: Session) -> bool:
    """Whether any bank has ever called (tells an empty ledger from an empty filter)."""
    return session.exec(select(UsageEvent.id).limit(1)).first() is not None


# --- aggregates -------------------------------------------------------------------------

_CUBE_SCHEMA = {
    "bank_id": pl.String,
    "version": pl.String,
    "purpose": pl.String,
    "day": pl.String,
    "calls": pl.Int64,
    "fen": pl.Int64,
}
_MONEY = ("计费金额（元）", "Billed (CNY)")


@dataclass(frozen=True)
class UsageAudit:
    """Totals and breakdowns of the filtered calls; frames carry the display column names.

    ``by_department`` attributes each call to every department whose data feeds its version,
    so its rows add up to more than the total when a version has several departments.
    """

    calls: int
    billed_fen: int
    by_bank: pl.DataFrame
    by_version: pl.DataFrame
    by_purpose: pl.DataFrame
    by_department: pl.DataFrame
    by_day: pl.DataFrame  # day, calls, fen, yuan (float, for the chart), yuan_text


def _cube_rows(
    session: Session, f: UsageFilter, opts: Options, days: Sequence[dt.date]
) -> list[tuple[Any, ...]]:
    keys = (
        col(UsageEvent.subscriber_id),
        col(UsageEvent.product_version_id),
        col(UsageEvent.purpose),
    )
    measures = (func.count(literal_column("*")), func.coalesce(func.sum(UsageEvent.price_fen), 0))
    rows: list[tuple[Any, ...]] = []
    for day in days:
        stmt = (
            sql_select(*keys, *measures)
            .where(*conditions(f, opts, Window(day, day)))
            .group_by(*keys)
        )
        label = day.isoformat()
        rows += [(r[0], r[1], r[2], label, r[3], r[4]) for r in session.execute(stmt).all()]
    return rows


def cube(engine: Engine, f: UsageFilter, opts: Options) -> pl.DataFrame:
    """The filtered calls counted and summed per bank, version, purpose and Beijing day.

    One GROUP BY per day of the window: SQLite groups by sorting, and a day's events sort in
    memory where a month's spill to temporary files (about twice as fast at 500k events). The
    days are split between :data:`WORKERS` read connections working at once.
    """
    dates = f.window.dates()
    size = -(-len(dates) // WORKERS)
    parts = [dates[i : i + size] for i in range(0, len(dates), size)]
    jobs = [functools.partial(_cube_rows, f=f, opts=opts, days=part) for part in parts]
    rows = [row for part in concurrently(engine, jobs) for row in part]
    return pl.DataFrame(rows, schema=_CUBE_SCHEMA, orient="row")


def _totals(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    return (
        frame.group_by(keys)
        .agg(pl.col("calls").sum(), pl.col("fen").sum())
        .sort(["calls", *keys], descending=[True, *([False] * len(keys))])
    )


def _money(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(each(frame["fen"], yuan, "yuan_text"))


def audit(engine: Engine, f: UsageFilter, opts: Options, t: Text = _zh) -> UsageAudit:
    """Every breakdown of the filtered calls, from one SQL aggregate."""
    c = cube(engine, f, opts)
    calls_col = ("calls", "调用次数", "Calls")
    money_col = ("yuan_text", *_MONEY)

    banks = _totals(c, ["bank_id"]).with_columns(
        pl.col("bank_id").replace_strict(opts.banks, default=pl.col("bank_id")).alias("bank")
    )
    versions = _totals(c, ["version"]).with_columns(
        pl.col("version")
        .replace_strict(
            {v.id: v.title_zh for v in opts.versions.values()}, default=pl.col("version")
        )
        .alias("title")
    )
    purposes = _totals(c, ["purpose"])
    dept_rows = [
        {"code": code, "calls": calls, "fen": fen}
        for version, calls, fen in versions.select("version", "calls", "fen").iter_rows()
        for code in (opts.versions[version].departments if version in opts.versions else ())
        if not f.departments or code in f.departments
    ]
    departments = _totals(
        pl.DataFrame(dept_rows, schema={"code": pl.String, "calls": pl.Int64, "fen": pl.Int64}),
        ["code"],
    )
    departments = departments.with_columns(each(departments["code"], opts.department_name, "name"))
    per_day = c.group_by("day").agg(pl.col("calls").sum(), pl.col("fen").sum())
    calendar = pl.DataFrame({"day": [d.isoformat() for d in f.window.dates()]})
    days = (
        calendar.join(per_day, on="day", how="left")
        .with_columns(pl.col("calls").fill_null(0), pl.col("fen").fill_null(0))
        .with_columns((pl.col("fen") / 100).alias("yuan"))
        .sort("day")
    )
    days = _money(days)
    return UsageAudit(
        calls=int(c["calls"].sum()),
        billed_fen=int(c["fen"].sum()),
        by_bank=named(_money(banks), [("bank", "银行", "Bank"), calls_col, money_col], t),
        by_version=named(
            _money(versions),
            [("title", "产品", "Product"), ("version", "版本", "Version"), calls_col, money_col],
            t,
        ),
        by_purpose=named(
            _money(purposes), [("purpose", "用途", "Purpose"), calls_col, money_col], t
        ),
        by_department=named(
            _money(departments),
            [("name", "部门", "Department"), ("code", "代码", "Code"), calls_col, money_col],
            t,
        ),
        by_day=days,
    )


# --- single calls -----------------------------------------------------------------------

_CALL_COLUMNS = (
    ("time", "时间（北京时间）", "Time (Beijing)"),
    ("bank", "银行", "Bank"),
    ("version", "产品版本", "Product version"),
    ("purpose", "用途", "Purpose"),
    ("kind", "类型", "Kind"),
    ("consent", "同意书编号", "Consent reference"),
    ("enterprise", "企业", "Enterprise"),
    ("status", "状态", "Status"),
    ("price", "金额（元）", "Price (CNY)"),
    ("id", "用量编号", "Usage id"),
)
_RAW_SCHEMA: dict[str, Any] = {
    "served_at": pl.Datetime("us", "UTC"),
    "bank_id": pl.String,
    "version": pl.String,
    "purpose": pl.String,
    "kind": pl.String,
    "consent_id": pl.String,
    "uscc": pl.String,
    "status": pl.String,
    "fen": pl.Int64,
    "id": pl.String,
}


def _calls_stmt(f: UsageFilter, opts: Options) -> Any:
    """Filtered calls newest first (on the served_at index; no join, names are mapped after)."""
    return (
        sql_select(
            col(UsageEvent.served_at),
            col(UsageEvent.subscriber_id),
            col(UsageEvent.product_version_id),
            col(UsageEvent.purpose),
            col(UsageEvent.kind),
            col(UsageEvent.consent_id),
            col(UsageEvent.uscc),
            col(UsageEvent.status),
            col(UsageEvent.price_fen),
            col(UsageEvent.id),
        )
        .where(*conditions(f, opts))
        .order_by(col(UsageEvent.served_at).desc(), col(UsageEvent.id).desc())
    )


def _consent_references(session: Session, ids: Iterable[str]) -> dict[str, str]:
    """Consent id → the bank's consent reference, looked up in chunks."""
    wanted = sorted(set(ids))
    found: dict[str, str] = {}
    for i in range(0, len(wanted), 5_000):
        chunk = wanted[i : i + 5_000]
        found |= dict(
            session.exec(
                select(Consent.id, Consent.reference).where(col(Consent.id).in_(chunk))
            ).all()
        )
    return found


def _labelled(session: Session, raw: pl.DataFrame, opts: Options, t: Text) -> pl.DataFrame:
    """Raw call rows as the page shows them: names, references, Beijing time, 元."""
    references = _consent_references(session, raw["consent_id"].drop_nulls())
    kinds = {k: t(*v) for k, v in KIND_ZH.items()}
    statuses = {k: t(*v) for k, v in STATUS_ZH.items()}
    frame = raw.with_columns(
        pl.col("served_at")
        .dt.convert_time_zone(BUSINESS_TZ.key)
        .dt.strftime("%Y-%m-%d %H:%M:%S")
        .alias("time"),
        pl.col("bank_id").replace_strict(opts.banks, default=pl.col("bank_id")).alias("bank"),
        pl.col("kind").replace_strict(kinds, default=pl.col("kind")).alias("kind"),
        pl.col("status").replace_strict(statuses, default=pl.col("status")).alias("status"),
        pl.col("consent_id")
        .replace_strict(references, default=None)
        .fill_null("—")
        .alias("consent"),
        each(raw["uscc"], entity_label, "enterprise").fill_null("—"),
        each(raw["fen"], yuan, "price"),
    )
    return named(frame, _CALL_COLUMNS, t)


def _raw(session: Session, stmt: Any) -> pl.DataFrame:
    rows = [tuple(r) for r in session.execute(stmt).all()]
    return pl.DataFrame(rows, schema=_RAW_SCHEMA, orient="row")


def calls_page(
    session: Session, f: UsageFilter, opts: Options, page: int = 1, t: Text = _zh
) -> pl.DataFrame:
    """One page (1-based) of the filtered calls, newest first, :data:`PAGE_SIZE` per page."""
    offset = (max(page, 1) - 1) * PAGE_SIZE
    raw = _raw(session, _calls_stmt(f, opts).limit(PAGE_SIZE).offset(offset))
    return _labelled(session, raw, opts, t)


def calls_export(
    session: Session, f: UsageFilter, opts: Options, t: Text = _zh, cap: int = EXPORT_CAP
) -> pl.DataFrame:
    """The filtered calls for a file, newest first, at most ``cap`` of them."""
    return _labelled(session, _raw(session, _calls_stmt(f, opts).limit(cap)), opts, t)


def pages(calls: int) -> int:
    """How many drill-down pages the filtered calls fill (at least one)."""
    return max(1, -(-calls // PAGE_SIZE))


# --- chart (shared with the overview) -----------------------------------------------------


def daily_chart(days: pl.DataFrame, t: Text = _zh) -> Any:
    """Calls (bars) and billed 元 (line, its own axis) per Beijing day, from ``day, calls, fen``."""
    import altair as alt

    frame = _money(days.select("day", "calls", "fen")).with_columns(
        (pl.col("fen") / 100).alias("yuan")
    )
    calls_title, money_title = t("调用次数", "Calls"), t("计费金额（元）", "Billed (CNY)")
    tooltip = [
        alt.Tooltip("day:N", title=t("日期", "Date")),
        alt.Tooltip("calls:Q", title=calls_title, format=","),
        alt.Tooltip("yuan_text:N", title=money_title),
    ]
    base = alt.Chart(frame).encode(
        x=alt.X(
            "day:T", title=t("日期（北京时间）", "Date (Beijing)"), axis=alt.Axis(format="%m-%d")
        )
    )
    bars = base.mark_bar(opacity=0.55).encode(
        y=alt.Y("calls:Q", title=calls_title), tooltip=tooltip
    )
    line = base.mark_line(point=True, color="#d62728").encode(
        y=alt.Y("yuan:Q", title=money_title), tooltip=tooltip
    )
    return alt.layer(bars, line).resolve_scale(y="independent").properties(height=280)
