"""Every console page rendered on a ledger of a million usage events, against a trivial page.

Data: a fresh pdo home (SQLite under a temporary directory or ``--home``; or a temporary
database created on the PostgreSQL server of ``--database-url`` and dropped afterwards) seeded by
``tests.console_seed.seed_console`` (users olga/rita/rick/rosa/regina, departments, the grant, a
published and a pending run with its review package, ``credit_risk@1`` and two banks), then
through the project's own functions: product ``operating_status`` and its version (its real
revenue rule), ``--banks`` banks in all (``add_subscriber``; four on a quota plan with an
overage price made by ``add_plan``/``subscribe``). Then, inserted in bulk (``executemany`` in
chunks inside one transaction on SQLite, with no rollback journal and the secondary indexes
built afterwards; ``COPY`` on PostgreSQL), rows shaped exactly as the serving worker writes them:

- ``--events`` usage events over the last ``--days`` days (Beijing business hours, fewer at
  weekends): 2 product versions, 3 purposes (贷后管理 only on the bank's watchlist), queries
  under a registered consent, alerts and batch files (units > 1), 0.3% withheld as disputed,
  overage beyond the quota plan's monthly quota; one bank's one-day spike (2% of all calls)
  and another's off-hours bulk run at 02:00–04:00 (0.5%); 10% of enterprises are 个体工商户,
  stored by keyed pseudonym;
- ~1% refused calls (flagged out-of-consent, out-of-portfolio and budget attempts mostly from
  one bank; quota, unknown-enterprise and bad-key refusals);
- consents (one per bank and enterprise it queries), a watchlist per bank, served scores,
  objections (open and resolved);
- every usage event, bank refusal and objection on the audit chain, in time order, each hash
  computed by ``pdo.audit.digest`` (the seed's own events are re-dated to before the window and
  re-linked, so the chain verifies and reads chronologically).

Every business month of the window that has ended is then closed with
``pdo.settlement.settle`` (its real SQL over all those events), except the latest
``--unsettled-months`` (default 0): on the 1st of a month, before anyone has run ``pdo settle``,
the whole previous month is still open usage that pages aggregate live.

Subject: each page of ``dashboard.registry.PAGES`` through ``streamlit.testing.v1.AppTest``
on ``dashboard/app.py`` as the regulator (who may open every page), and the sign-off queue
again as a reviewer; ``at.run()`` is timed on the page's first render in this process (cold:
its SQL and caches are fresh) and on a second render (warm). A throwaway session first loads
the console and opens the ledger (a failed login), so no page pays for imports or the engine.

Baseline: AppTest rendering a one-line Streamlit script (``st.write``), the floor of an AppTest
run on this machine; ``ratios.<page>_vs_trivial`` is a page's cold time over it.

The target (issue 9): every page under 2 s with 1M usage events: ``figures.all_pages_under_2s``
over cold and warm renders. Exit status 1 when a page raised an exception.

``--home DIR`` keeps the ledger; run again with the same ``--home`` and parameters and the
generated ledger is reused (a marker file records what was generated).

The last line of output is one JSON object: {"bench": "console", "figures", "ratios", "params"}.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this file's folder leads sys.path and bench/api.py would shadow the api package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

TARGET_SECONDS = 2.0
APP = ROOT / "dashboard" / "app.py"
MARKER = "bench-console.json"
CHUNK = 50_000
ENDPOINT = "GET /v1/products/{product}/scores/{uscc}"
USAGE_COLUMNS = (
    "id", "subscriber_id", "api_key_id", "subscription_id", "product_version_id", "kind",
    "status", "uscc", "purpose", "consent_id", "units", "price_fen", "overage", "delivery_key",
    "served_at",
)  # fmt: skip
REFUSED_COLUMNS = (
    "at", "subscriber_id", "api_key_id", "endpoint", "product_name", "uscc", "purpose",
    "status", "code", "flagged",
)  # fmt: skip
AUDIT_COLUMNS = ("seq", "at", "actor", "action", "subject", "details", "prev_hash", "hash")
BANK_NAMES = (
    "江南农商银行", "城东商业银行", "海港银行", "北山村镇银行", "西湖银行", "长河农商银行",
    "华中商业银行", "东湖银行", "南岭银行", "滨江农商银行", "云岭商业银行", "天府银行",
    "珠江银行", "黄河农商银行", "松花江银行", "太湖村镇银行", "渤海湾银行", "青山商业银行",
    "金沙银行", "白云农商银行", "明珠银行", "燕山银行",
)  # fmt: skip
QUOTA_PLAN = "monthly"  # credit_risk/monthly: a quota per business month, overage beyond it
PURPOSES = {
    "credit_risk@1": (("贷前审查", "贷后管理"), (0.6, 0.4)),
    "operating_status@1": (("贷前审查", "贷后管理", "供应商准入"), (0.45, 0.2, 0.35)),
}
PORTFOLIO = 400  # watchlist members per bank (贷后管理 is only for them)
POOL = 2_000  # enterprises each bank queries
REFUSALS = (  # code, HTTP status, flagged, share of refusals, from the suspicious bank
    ("consent_not_found", 403, True, 0.18, True),
    ("consent_other_enterprise", 403, True, 0.06, True),
    ("consent_expired", 403, True, 0.08, False),
    ("consent_purpose", 403, True, 0.05, True),
    ("not_in_portfolio", 403, True, 0.12, True),
    ("disclosure_budget_exceeded", 429, True, 0.04, True),
    ("consent_required", 403, True, 0.03, False),
    ("unknown_enterprise", 404, False, 0.22, False),
    ("quota_exceeded", 429, False, 0.07, False),
    ("purpose_not_subscribed", 403, False, 0.05, False),
    ("invalid_api_key", 401, False, 0.10, False),
)


_STARTED = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - _STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


# --- the ledger --------------------------------------------------------------------------


@contextlib.contextmanager
def postgres_database(url: str) -> Iterator[str]:
    """A throwaway database on the server of `url`, dropped afterwards."""
    from sqlalchemy import create_engine, text

    name = f"pdo_bench_console_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield url.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as c:
            c.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def _business_months(start: dt.datetime, end: dt.datetime) -> list[str]:
    """The business months (Beijing) from the one holding `start` to the one holding `end`."""
    from pdo.delivery.periods import BUSINESS_TZ

    first, last = start.astimezone(BUSINESS_TZ), end.astimezone(BUSINESS_TZ)
    y, m, out = first.year, first.month, []
    while (y, m) <= (last.year, last.month):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def _served_times(
    rng: np.random.Generator, n: int, start_day: dt.datetime, days: int, now: dt.datetime
) -> np.ndarray:
    """n instants (µs since epoch, UTC) on Beijing business days and hours before `now`."""
    day_index = np.arange(days)
    weekday = np.array([(start_day + dt.timedelta(days=int(d))).weekday() for d in day_index])
    day_w = np.where(weekday >= 5, 0.3, 1.0)
    day = rng.choice(days, size=n, p=day_w / day_w.sum())
    hour_w = np.array(
        [0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0.4, 1.0, 3.0, 6.0, 8.0, 8.0,
         5.0, 6.0, 8.0, 8.0, 7.0, 5.0, 3.0, 2.0, 1.5, 1.0, 0.6, 0.3]
    )  # fmt: skip
    hour = rng.choice(24, size=n, p=hour_w / hour_w.sum())
    seconds = hour * 3600.0 + rng.random(n) * 3600.0
    start_us = int(start_day.timestamp() * 1_000_000)
    us = start_us + day * 86_400_000_000 + (seconds * 1_000_000).astype(np.int64)
    # the current day only up to now: squeeze later instants into what has passed of it
    now_us = int(now.timestamp() * 1_000_000)
    today_start = start_us + (days - 1) * 86_400_000_000
    late = us >= now_us
    us[late] = today_start + ((us[late] - today_start) * ((now_us - today_start) / 86_400e6))
    return np.minimum(us, now_us - 1).astype(np.int64)


def _hex_ids(rng: np.random.Generator, n: int) -> list[str]:
    raw = np.frombuffer(rng.bytes(16 * n), dtype="S16")
    return [bytes(b).hex() for b in raw]


class Bulk:
    """Plain INSERTs of many rows inside one transaction: executemany on SQLite, COPY on PG."""

    def __init__(self, conn: Any) -> None:
        self.sqlite = conn.dialect.name == "sqlite"
        self.raw: Any = conn.connection.dbapi_connection
        self.rows = 0
        if self.sqlite:  # random primary keys (uuid hex): keep their index in memory
            conn.exec_driver_sql("PRAGMA cache_size = -1048576")

    def ts(self, us: int) -> Any:
        """One timestamp as the ledger stores it (SQLite: naive UTC text)."""
        at = _at(us)
        return at.strftime("%Y-%m-%d %H:%M:%S.%f") if self.sqlite else at

    def ts_expr(self, name: str) -> pl.Expr:
        """A column of µs since the epoch as the ledger stores timestamps."""
        utc = pl.from_epoch(name, time_unit="us")
        fmt = "%Y-%m-%d %H:%M:%S%.6f" if self.sqlite else "%Y-%m-%d %H:%M:%S%.6f+00:00"
        return utc.dt.strftime(fmt).alias(name)

    def flag(self, name: str) -> pl.Expr:
        return pl.col(name).cast(pl.Int8) if self.sqlite else pl.col(name)

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        names = ", ".join(columns)
        cursor = self.raw.cursor()
        if self.sqlite:
            marks = ", ".join("?" * len(columns))
            for i in range(0, len(rows), CHUNK):
                cursor.executemany(
                    f"INSERT INTO {table} ({names}) VALUES ({marks})", rows[i : i + CHUNK]
                )
        else:
            with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        self.rows += len(rows)


# --- the audit chain, computed column-wise ---------------------------------------------------
# pdo.audit.digest hashes canonical JSON (sorted keys, no spaces, UTF-8) of seq, at, actor,
# action, subject, details and prev. Everything but prev is known up front, so each event's
# canonical text is built as prefix + prev + suffix by polars, and only the sha256 runs in a
# Python loop. A sample is checked against pdo.audit.digest itself.


def _jstr(name: str) -> pl.Expr:
    """A text column as a JSON string (ids, codes, Chinese words: nothing to escape) or null."""
    return (
        pl.when(pl.col(name).is_null())
        .then(pl.lit("null"))
        .otherwise(pl.format('"{}"', pl.col(name)))
    )


def _iso(name: str) -> pl.Expr:
    """µs since the epoch as datetime.isoformat() of an aware UTC datetime writes it."""
    utc = pl.from_epoch(name, time_unit="us")
    return (
        pl.when(pl.col(name) % 1_000_000 == 0)
        .then(utc.dt.strftime("%Y-%m-%dT%H:%M:%S+00:00"))
        .otherwise(utc.dt.strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00"))
    )


def _usage_details_json() -> pl.Expr:
    """pdo.delivery.metering.usage_details as canonical JSON (+ delivery_key for deliveries)."""
    return pl.concat_str(
        pl.lit('{"consent":'), _jstr("consent"),
        pl.when(pl.col("delivery_key").is_null()).then(pl.lit(""))
        .otherwise(pl.format(',"delivery_key":"{}"', pl.col("delivery_key"))),
        pl.lit(',"entity":'), _jstr("uscc"),
        pl.lit(',"kind":'), _jstr("kind"),
        pl.lit(',"overage":'),
        pl.when(pl.col("overage")).then(pl.lit("true")).otherwise(pl.lit("false")),
        pl.lit(',"price_fen":'), pl.col("price").cast(pl.String),
        pl.lit(',"purpose":'), _jstr("purpose"),
        pl.lit(',"served_at":"'), _iso("served_us"),
        pl.lit('","status":'), _jstr("status"),
        pl.lit(',"subscriber":'), _jstr("sid"),
        pl.lit(',"subscription":'), pl.col("subscription_id").cast(pl.String).fill_null("null"),
        pl.lit(',"units":'), pl.col("units").cast(pl.String),
        pl.lit(',"usage_id":'), _jstr("id"),
        pl.lit(',"version":'), _jstr("version"),
        pl.lit("}"),
    )  # fmt: skip


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _link(chain: pl.DataFrame, bulk: Bulk, checks: int = 200) -> Iterator[list[tuple[Any, ...]]]:
    """audit_event rows for the chain's entries in order, CHUNK at a time: seq from 1, each hash
    over the previous one; every n/checks-th is recomputed with pdo.audit.digest itself."""
    import hashlib

    from pdo import audit

    n = chain.height
    step = max(1, n // checks)
    framed = chain.with_columns(pl.int_range(1, n + 1, dtype=pl.Int64).alias("seq")).select(
        "seq",
        bulk.ts_expr("at_us").alias("at"),
        "actor",
        "action",
        "subject",
        "details",
        pl.concat_str(
            pl.lit('{"action":'), pl.col("action_json"),
            pl.lit(',"actor":'), pl.col("actor_json"),
            pl.lit(',"at":"'), _iso("at_us"),
            pl.lit('","details":'), pl.col("details"),
            pl.lit(',"prev":"'),
        ).alias("prefix"),
        pl.concat_str(
            pl.lit('","seq":'), pl.col("seq").cast(pl.String),
            pl.lit(',"subject":'), pl.col("subject_json"),
            pl.lit("}"),
        ).alias("suffix"),
        "at_us",
    )  # fmt: skip
    prev = audit.GENESIS
    sha256 = hashlib.sha256
    for part in framed.iter_slices(CHUNK):
        rows: list[tuple[Any, ...]] = []
        for seq, at, actor, action, subject, details, prefix, suffix, at_us in part.iter_rows():
            h = sha256(f"{prefix}{prev}{suffix}".encode()).hexdigest()
            if seq % step == 0 or seq == n:
                again = audit.digest(
                    seq, _at(at_us), actor, action, subject, json.loads(details), prev
                )
                if again != h:
                    raise AssertionError(f"bench chain: event {seq} does not hash as pdo.audit")
            rows.append((seq, at, actor, action, subject, details, prev, h))
            prev = h
        yield rows


@contextlib.contextmanager
def _without_indexes(conn: Any, *tables: Any) -> Iterator[None]:
    """Drop the tables' secondary indexes for a bulk load and build them once afterwards."""
    indexes = [index for table in tables for index in table.indexes]
    for index in indexes:
        index.drop(conn)
    yield
    log(f"building {len(indexes)} indexes…")
    for index in indexes:
        index.create(conn)


def generate(
    home: Path,
    database_url: str | None,
    events: int,
    days: int,
    banks: int,
    seed: int,
    unsettled_months: int = 0,
) -> dict[str, Any]:
    """Build the bench ledger; returns what was generated (counts, periods settled)."""
    from sqlmodel import col, select

    from pdo import settlement
    from pdo.delivery.identity import shown_as
    from pdo.delivery.metering import USAGE_ACTIONS
    from pdo.delivery.periods import BUSINESS_TZ
    from pdo.delivery.plans import add_plan, ensure_default_plan
    from pdo.gen.ids import unique_usccs
    from pdo.ledger.db import make_engine, session_scope
    from pdo.ledger.models import (
        AuditEvent,
        PipelineRun,
        Product,
        ProductVersion,
        RefusedCall,
        SignOff,
        Subscriber,
        Subscription,
        UsageEvent,
    )
    from pdo.privacy.pseudonym import Pseudonymizer
    from pdo.settings import Settings
    from pdo.subscribers import add_subscriber, subscribe
    from products.operating_status import SPEC as OPERATING_STATUS
    from tests.console_seed import seed_console

    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    log("seeding the console ledger (tests/console_seed.py)…")
    if database_url is not None:  # seed_console's Settings(home=...) reads the URL from there
        os.environ["PDO_DATABASE_URL"] = database_url
    seed_console(home)
    settings = Settings(home=home, database_url=database_url)
    engine = make_engine(settings.db_url)
    pseudo = Pseudonymizer.from_settings(settings)
    now = dt.datetime.now(dt.UTC)
    local_now = now.astimezone(BUSINESS_TZ)
    start_day = (local_now - dt.timedelta(days=days - 1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )

    # --- products, banks, plans (the project's own functions) ---------------------------
    with session_scope(engine) as s:
        run = s.exec(select(PipelineRun).where(PipelineRun.status == "published")).one()
        approval = s.exec(select(SignOff).where(SignOff.run_id == run.id)).one()
        assert approval.id is not None
        s.add(
            Product(
                name=OPERATING_STATUS.name,
                title_zh=OPERATING_STATUS.title_zh,
                title_en=OPERATING_STATUS.title_en,
                purposes=list(OPERATING_STATUS.purposes),
                price_fen=OPERATING_STATUS.price_fen,
            )
        )
        s.flush()
        s.add(
            ProductVersion(
                id="operating_status@1",
                product_name=OPERATING_STATUS.name,
                version=1,
                run_id=run.id,
                signoff_id=approval.id,
                output_hash="c" * 64,
                as_of=dt.date(2025, 12, 31),
                metrics={"n_verified": POOL * banks, "status_counts": {}},
                revenue_rule=OPERATING_STATUS.revenue.describe(),
                revenue_weights=OPERATING_STATUS.revenue_weights(),
            )
        )
        s.flush()
        ensure_default_plan(s, s.get(Product, OPERATING_STATUS.name))  # type: ignore[arg-type]
        add_plan(
            s,
            product_name="credit_risk",
            name=QUOTA_PLAN,
            title_zh="中小企业信用风险评分 包月套餐",
            price_fen=150,
            monthly_quota=max(100, events // (banks * 4)),
            overage_price_fen=250,
            validity_days=365,
            refund_withheld=True,
            actor="olga",
        )
        existing = list(s.exec(select(Subscriber).order_by(col(Subscriber.created_at))))
        for sub in existing:
            subscribe(s, sub, f"{OPERATING_STATUS.name}/standard", "olga")
        for name in BANK_NAMES[: max(0, banks - len(existing))]:
            add_subscriber(s, name, "olga", ["credit_risk", OPERATING_STATUS.name])
        bank_rows = list(s.exec(select(Subscriber).order_by(col(Subscriber.created_at))))
        for sub in bank_rows[2:6]:
            subscribe(s, sub, f"credit_risk/{QUOTA_PLAN}", "olga")
        subs: dict[tuple[str, str], Subscription] = {}
        for sub_row in s.exec(select(Subscription).where(col(Subscription.cancelled_at).is_(None))):
            subs[(sub_row.subscriber_id, sub_row.product_name)] = sub_row
        from pdo.ledger.models import ApiKey

        keys = {k.subscriber_id: k.id for k in s.exec(select(ApiKey))}
        bank_ids = [b.id for b in bank_rows]
        sub_terms = {
            k: (v.id, v.price_fen, v.monthly_quota, v.overage_price_fen) for k, v in subs.items()
        }

    # --- enterprises: companies by USCC, 个体工商户 by pseudonym --------------------------
    n_banks = len(bank_ids)
    n_entities = POOL * n_banks // 2
    individual = rng.random(n_entities) < 0.10
    regions = rng.choice(["310101", "310104", "310115", "320102", "330106"], size=n_entities)
    codes = unique_usccs(rng, np.where(individual, 2, 1), regions, rng.random(n_entities) < 0.7)
    keys_of = [pseudo.pseudonym(c) if ind else c for c, ind in zip(codes, individual, strict=True)]
    entity = np.array(keys_of, dtype=object)
    pools = np.stack([rng.choice(n_entities, size=POOL, replace=False) for _ in range(n_banks)])
    consent_ids = np.array(_hex_ids(rng, n_banks * POOL), dtype=object).reshape(n_banks, POOL)

    # --- usage events ---------------------------------------------------------------------
    log(f"generating {events:,} usage events over {days} days…")
    n_spike, n_bulk = events // 50, events // 200
    n_normal = events - n_spike - n_bulk
    bank_w = 1.0 / (np.arange(n_banks) + 1.0) ** 0.8
    bank = np.concatenate(
        [
            rng.choice(n_banks, size=n_normal, p=bank_w / bank_w.sum()),
            np.full(n_spike, 3 % n_banks),
            np.full(n_bulk, 7 % n_banks),
        ]
    )
    served_us = _served_times(rng, n_normal, start_day, days, now)
    spike_day = start_day + dt.timedelta(days=max(0, days - 6), hours=9)
    spike_us = int(spike_day.timestamp() * 1e6) + (rng.random(n_spike) * 9 * 3600e6).astype(
        np.int64
    )
    bulk_day = start_day + dt.timedelta(days=max(0, days - 4), hours=2)
    bulk_us = int(bulk_day.timestamp() * 1e6) + (rng.random(n_bulk) * 2 * 3600e6).astype(np.int64)
    served_us = np.minimum(
        np.concatenate([served_us, spike_us, bulk_us]), int(now.timestamp() * 1e6) - 1
    )
    version = np.where(rng.random(events) < 0.8, "credit_risk@1", "operating_status@1")
    purpose = np.empty(events, dtype=object)
    for v, (names, weights) in PURPOSES.items():
        mask = version == v
        purpose[mask] = rng.choice(names, size=int(mask.sum()), p=weights)
    purpose[n_normal:] = "贷前审查"  # the spike and the bulk run are pre-loan checks
    kind_draw = rng.random(events)
    kind = np.where(kind_draw < 0.97, "query", np.where(kind_draw < 0.99, "alert", "batch"))
    kind[n_normal:] = "query"
    units = np.where(kind == "batch", rng.integers(20, 500, size=events), 1)
    in_portfolio = (purpose == "贷后管理") | (kind != "query")
    slot = np.where(
        in_portfolio, rng.integers(PORTFOLIO, size=events), rng.integers(POOL, size=events)
    )
    ent = pools[bank, slot]
    withheld = (kind == "query") & (rng.random(events) < 0.003)

    sid_of = dict(enumerate(bank_ids))
    consent = np.where(kind == "query", consent_ids[bank, slot], None)
    uscc = np.where(kind == "batch", None, entity[ent])
    frame = (
        pl.DataFrame(
            {
                "bank": bank,
                "served_us": served_us,
                "version": version,
                "purpose": purpose.astype(str),
                "kind": kind,
                "units": units,
                "withheld": withheld,
                "consent": pl.Series(list(consent), dtype=pl.String),
                "uscc": pl.Series(list(uscc), dtype=pl.String),
            }
        )
        .sort("served_us", maintain_order=True)
        .with_columns(
            pl.from_epoch("served_us", time_unit="us")
            .dt.replace_time_zone("UTC")
            .dt.convert_time_zone("Asia/Shanghai")
            .dt.strftime("%Y-%m")
            .alias("month"),
            pl.col("version").str.split("@").list.first().alias("product"),
        )
    )
    # overage: beyond a quota plan's monthly quota, each call at the overage price
    terms = pl.DataFrame(
        [
            {
                "bank": i,
                "product": product,
                "subscription_id": sub_terms[(bid, product)][0],
                "price_fen": sub_terms[(bid, product)][1],
                "quota": sub_terms[(bid, product)][2],
                "overage_price": sub_terms[(bid, product)][3],
            }
            for i, bid in enumerate(bank_ids)
            for product in ("credit_risk", OPERATING_STATUS.name)
        ],
        schema_overrides={"quota": pl.Int64, "overage_price": pl.Int64},
    )
    frame = (
        frame.join(terms, on=["bank", "product"], how="left", maintain_order="left")
        .with_columns(
            (pl.col("units").cum_sum().over(["bank", "product", "month"]) > pl.col("quota"))
            .fill_null(False)
            .alias("overage"),
            pl.Series("id", _hex_ids(rng, events)),
            pl.col("bank").replace_strict(sid_of, return_dtype=pl.String).alias("sid"),
            pl.col("bank")
            .replace_strict({i: keys[b] for i, b in sid_of.items()}, return_dtype=pl.String)
            .alias("key"),
            pl.when(pl.col("withheld")).then(pl.lit("withheld")).otherwise(pl.lit("served"))
            .alias("status"),
        )
        .with_columns(
            (
                pl.when(pl.col("overage")).then(pl.col("overage_price"))
                .otherwise(pl.col("price_fen")) * pl.col("units")
            ).alias("price"),
            pl.when(pl.col("kind") != "query").then(pl.format("{}:{}", "kind", "id"))
            .alias("delivery_key"),
        )
    )  # fmt: skip

    # --- refused calls --------------------------------------------------------------------
    n_refused = max(1, events // 100)
    shares = np.array([r[3] for r in REFUSALS])
    which = rng.choice(len(REFUSALS), size=n_refused, p=shares / shares.sum())
    suspicious = np.array([r[4] for r in REFUSALS])[which] & (rng.random(n_refused) < 0.7)
    refused_bank = np.where(suspicious, 5 % n_banks, rng.choice(n_banks, size=n_refused))
    refused_us = np.sort(_served_times(rng, n_refused, start_day, days, now))
    refused_ent = pools[refused_bank, rng.integers(POOL, size=n_refused)]
    refused = pl.DataFrame(
        {
            "at_us": refused_us,
            "sid": [
                None if REFUSALS[w][0] == "invalid_api_key" else bank_ids[b]
                for w, b in zip(which, refused_bank, strict=True)
            ],
            "product": np.where(np.arange(n_refused) % 5, "credit_risk", OPERATING_STATUS.name),
            "uscc": entity[refused_ent].tolist(),
            "purpose": [
                "贷后管理" if REFUSALS[w][0] == "not_in_portfolio" else "贷前审查" for w in which
            ],
            "status": [REFUSALS[w][1] for w in which],
            "code": [REFUSALS[w][0] for w in which],
            "flagged": [REFUSALS[w][2] for w in which],
        },
        schema_overrides={"sid": pl.String},
    ).with_columns(
        pl.col("sid").replace_strict(
            {b: keys[b] for b in bank_ids}, default=None, return_dtype=pl.String
        ).alias("key"),
        pl.lit(ENDPOINT).alias("endpoint"),
    )  # fmt: skip
    objections = _objections(rng, entity, codes, n_entities, start_day, now, days)

    sqlite = engine.dialect.name == "sqlite"
    with contextlib.ExitStack() as stack:
        conn = stack.enter_context(engine.connect())
        raw: Any = conn.connection.dbapi_connection
        if sqlite:  # a throwaway ledger: no rollback journal for the bulk load, and rows
            # consistent by construction (no foreign-key lookups per row)
            raw.execute("PRAGMA journal_mode = OFF")
            raw.execute("PRAGMA foreign_keys = OFF")
            stack.callback(raw.execute, "PRAGMA journal_mode = WAL")
            stack.callback(raw.execute, "PRAGMA foreign_keys = ON")
        stack.enter_context(conn.begin())
        stack.enter_context(
            _without_indexes(
                conn,
                UsageEvent.__table__,  # type: ignore[attr-defined]
                AuditEvent.__table__,  # type: ignore[attr-defined]
                RefusedCall.__table__,  # type: ignore[attr-defined]
            )
        )
        bulk = Bulk(conn)
        # consents, watchlists and members, served scores
        valid_from = bulk.ts(int((start_day - dt.timedelta(days=30)).timestamp() * 1e6))
        valid_until = bulk.ts(int((now + dt.timedelta(days=335)).timestamp() * 1e6))
        created = valid_from
        consent_purposes = json.dumps(["供应商准入", "贷前审查", "贷后管理"], ensure_ascii=False)
        bulk.insert(
            "consent",
            (
                "id", "subscriber_id", "uscc", "reference", "purposes", "valid_from",
                "valid_until", "registered_by", "created_at", "revoked_at",
            ),
            [
                (
                    consent_ids[b, j], bank_ids[b], entity[pools[b, j]], f"SQ-{b:02d}-{j:05d}",
                    consent_purposes, valid_from, valid_until, "olga", created,
                    created if j % 97 == 0 else None,
                )
                for b in range(n_banks)
                for j in range(POOL)
            ],
        )  # fmt: skip
        watchlists = _hex_ids(rng, n_banks)
        bulk.insert(
            "watchlist",
            ("id", "subscriber_id", "name", "product_name", "purpose", "created_at"),
            [
                (watchlists[b], bank_ids[b], "贷后管理名单", "credit_risk", "贷后管理", created)
                for b in range(n_banks)
            ],
        )
        bulk.insert(
            "watchlist_member",
            ("watchlist_id", "uscc", "shown_as", "reference", "added_at"),
            [
                (watchlists[b], entity[pools[b, j]], shown_as(codes[pools[b, j]]),
                 f"LN{b:02d}{j:05d}", created)
                for b in range(n_banks)
                for j in range(PORTFOLIO)
            ],
        )  # fmt: skip
        scores = rng.integers(350, 900, size=n_entities)
        grades = np.array(list("EDCBA"))[np.clip((scores - 350) // 110, 0, 4)]
        bulk.insert(
            "served_score",
            ("product_version_id", "uscc", "score", "grade", "details"),
            [
                ("credit_risk@1", entity[i], int(scores[i]), str(grades[i]), "{}")
                for i in range(n_entities)
            ],
        )
        log(f"inserting {events:,} usage events…")
        for part in frame.iter_slices(CHUNK):
            bulk.insert(
                "usage_event",
                USAGE_COLUMNS,
                part.select(
                    "id", "sid", "key", "subscription_id", "version", "kind", "status", "uscc",
                    "purpose", "consent", "units", "price", bulk.flag("overage"), "delivery_key",
                    bulk.ts_expr("served_us"),
                ).rows(),
            )  # fmt: skip
        bulk.insert(
            "refused_call",
            REFUSED_COLUMNS,
            refused.select(
                bulk.ts_expr("at_us"), "sid", "key", "endpoint", "product", "uscc", "purpose",
                "status", "code", bulk.flag("flagged"),
            ).rows(),
        )  # fmt: skip
        bulk.insert(
            "objection",
            (
                "id", "uscc", "product_name", "item", "reason", "status", "outcome",
                "raised_by", "raised_at", "resolved_by", "resolved_at", "resolution",
            ),
            [
                (
                    o["id"], o["uscc"], "credit_risk", o["item"], o["reason"], o["status"],
                    o["outcome"], "olga", bulk.ts(o["raised_us"]), o["resolved_by"],
                    bulk.ts(o["resolved_us"]) if o["resolved_us"] else None,
                    json.dumps(o["resolution"], ensure_ascii=False),
                )
                for o in objections
            ],
        )  # fmt: skip

        # the chain: the seed's events re-dated before the window, then everything in time order
        log("linking the audit chain…")
        before = int((start_day - dt.timedelta(days=1)).timestamp() * 1e6)
        seeded = conn.execute(
            select(
                col(AuditEvent.actor),
                col(AuditEvent.action),
                col(AuditEvent.subject),
                col(AuditEvent.details),
            ).order_by(col(AuditEvent.seq))
        ).all()
        conn.execute(AuditEvent.__table__.delete())  # type: ignore[attr-defined]
        others: list[tuple[int, str, str, str, dict[str, Any]]] = [
            (before + i * 1_000_000, actor, action, subject, details)
            for i, (actor, action, subject, details) in enumerate(seeded)
        ]
        for r in refused.filter(pl.col("sid").is_not_null()).iter_rows(named=True):
            details = {
                "key": r["key"], "product": r["product"], "entity": r["uscc"],
                "purpose": r["purpose"], "status": r["status"], "code": r["code"],
                "flagged": r["flagged"], "at": _at(r["at_us"]).isoformat(),
            }  # fmt: skip
            others.append(
                (r["at_us"], f"subscriber:{r['sid']}", "query.refused", ENDPOINT, details)
            )
        for o in objections:
            others.append(
                (o["raised_us"], "olga", "objection.raise", o["id"],
                 {"product": "credit_risk", "version": "credit_risk@1", "table": "tax_credit"})
            )  # fmt: skip
            if o["resolved_us"]:
                others.append(
                    (o["resolved_us"], "olga", "objection.resolve", o["id"],
                     {"product": "credit_risk", "version": "credit_risk@1",
                      "outcome": o["outcome"], "grade_changed": False})
                )  # fmt: skip
        chain = pl.concat(
            [
                frame.select(
                    pl.col("served_us").alias("at_us"),
                    pl.format("subscriber:{}", "sid").alias("actor"),
                    pl.col("kind").replace_strict(USAGE_ACTIONS, return_dtype=pl.String)
                    .alias("action"),
                    pl.col("id").alias("subject"),
                    _usage_details_json().alias("details"),
                ).with_columns(
                    _jstr("actor").alias("actor_json"),
                    _jstr("action").alias("action_json"),
                    _jstr("subject").alias("subject_json"),
                ),
                pl.DataFrame(
                    [
                        (at_us, actor, action, subject, _canonical(details), _canonical(actor),
                         _canonical(action), _canonical(subject))
                        for at_us, actor, action, subject, details in others
                    ],
                    schema=["at_us", "actor", "action", "subject", "details", "actor_json",
                            "action_json", "subject_json"],
                    orient="row",
                ),
            ]
        ).sort("at_us", maintain_order=True)  # fmt: skip
        del frame
        n_audit = chain.height
        log(f"linking and inserting {n_audit:,} audit events…")
        for rows in _link(chain, bulk):
            bulk.insert("audit_event", AUDIT_COLUMNS, rows)
        del chain
        inserted = bulk.rows
    log("committed")

    # --- settle every ended month, oldest first (pdo.settlement.settle) -------------------
    ended = [p for p in _business_months(start_day, now) if settlement.period_bounds(p)[1] <= now]
    settled = []
    for period in ended[: max(0, len(ended) - unsettled_months)]:
        _, end = settlement.period_bounds(period)
        with session_scope(engine) as s:
            settlement.settle(s, period, "olga", end + dt.timedelta(hours=9))
        settled.append(period)
        log(f"settled {period}")
    engine.dispose()
    return {
        "events": events,
        "refused_calls": n_refused,
        "banks": n_banks,
        "consents": n_banks * POOL,
        "objections": len(objections),
        "audit_events": n_audit,
        "rows_inserted": inserted,
        "settled_periods": settled,
        "generate_seconds": round(time.perf_counter() - started, 1),
    }


def _at(us: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=int(us))


def _objections(
    rng: np.random.Generator,
    entity: np.ndarray,
    codes: np.ndarray,
    n_entities: int,
    start_day: dt.datetime,
    now: dt.datetime,
    days: int,
) -> list[dict[str, Any]]:
    """Objections over the window: most resolved within days, the recent ones still open."""
    from pdo.delivery.identity import shown_as

    out = []
    window_us = days * 86_400_000_000
    start_us = int(start_day.timestamp() * 1e6)
    now_us = int(now.timestamp() * 1e6)
    for i, e in enumerate(rng.choice(n_entities, size=40, replace=False)):
        raised = start_us + int(rng.random() * window_us * 0.95)
        resolved = raised + int(rng.gamma(2.0, 3.0) * 86_400e6)
        open_ = resolved >= now_us or i % 7 == 0
        outcome = None if open_ else ("upheld" if i % 3 == 0 else "rejected")
        out.append(
            {
                "id": uuid.UUID(bytes=rng.bytes(16)).hex,
                "uscc": entity[e],
                "item": f"tax_credit:year={2023 + i % 3}",
                "reason": "纳税信用等级评定有误，已申请复评",
                "status": "open" if open_ else "resolved",
                "outcome": outcome,
                "raised_us": raised,
                "resolved_by": None if open_ else "olga",
                "resolved_us": None if open_ else resolved,
                "resolution": {"enterprise": shown_as(str(codes[e]))}
                | ({} if open_ else {"note": "经核实处理", "version": "credit_risk@1"}),
            }
        )
    return out


# --- rendering ---------------------------------------------------------------------------


def _timed_run(at: Any) -> float:
    started = time.perf_counter()
    at.run(timeout=300)
    return time.perf_counter() - started


class Sessions:
    """New AppTest sessions that share the first one's component registry.

    Each AppTest discovers the installed Streamlit components on its first run (~1 s here):
    a cost of the test harness, not of a page, so later sessions reuse the first registry.
    """

    def __init__(self) -> None:
        self.registry: Any = None

    def _new(self, at: Any) -> Any:
        if self.registry is not None and hasattr(at, "_bidi_component_manager"):
            at._bidi_component_manager = self.registry
        return at

    def _keep(self, at: Any) -> None:
        if self.registry is None:
            self.registry = getattr(at, "_bidi_component_manager", None)

    def script(self, text: str) -> Any:
        from streamlit.testing.v1 import AppTest

        return self._new(AppTest.from_string(text, default_timeout=300))

    def console(self, user: tuple[str, str] | None = None) -> Any:
        """The console; with (name, role), logged in as auth.login leaves a session."""
        from streamlit.testing.v1 import AppTest

        at = self._new(AppTest.from_file(str(APP), default_timeout=300))
        if user is not None:
            name, role = user
            at.session_state["pdo_user"] = {"name": name, "role": role, "exp": time.time() + 3600}
        return at

    def warm_up(self) -> None:
        """Load the console and open the ledger (a failed login), as any first visitor does."""
        at = self.console()
        at.run(timeout=300)
        self._keep(at)
        at.text_input(key="login_name").input("nobody")
        at.text_input(key="login_password").input("not-a-password")
        at.button(key="login_submit").click().run(timeout=300)


def _problems(at: Any) -> list[str]:
    return [str(e.value)[:300] for e in at.exception]


def _quiet_streamlit() -> None:
    """AppTest runs pages without `streamlit run`; Streamlit warns so on every cached call."""
    import logging

    for name in list(logging.root.manager.loggerDict):
        if name.startswith("streamlit"):
            logging.getLogger(name).setLevel(logging.ERROR)


def render_pages(keys: Sequence[str]) -> dict[str, Any]:
    """Cold and warm render times of each page; the trivial script's, for the baseline."""
    from dashboard.registry import landing_page, page

    sessions = Sessions()
    sessions.warm_up()
    _quiet_streamlit()
    trivial = sessions.script("import streamlit as st\nst.write('ok')")
    trivial_cold = _timed_run(trivial)
    trivial_warm = statistics.median(_timed_run(trivial) for _ in range(5))

    cold: dict[str, float] = {}
    warm: dict[str, float] = {}
    errors: dict[str, list[str]] = {}
    at = sessions.console(("regina", "regulator"))
    landing = landing_page("regulator")
    order = [landing, *[k for k in keys if k != landing]] if landing in keys else list(keys)
    for i, key in enumerate(order):
        if i > 0 or key != landing:
            at.switch_page(page(key).path)
        cold[key] = _timed_run(at)
        problems = _problems(at)
        warm[key] = _timed_run(at)
        problems += _problems(at)
        if problems:
            errors[key] = problems
        log(f"{key:<15} cold {cold[key]:.3f}s warm {warm[key]:.3f}s{' ERROR' if problems else ''}")
    if "signoff" in keys:  # the queue as the reviewers see it: with approve/reject forms
        reviewer = sessions.console(("rita", "reviewer"))
        cold["signoff_reviewer"] = _timed_run(reviewer)
        warm["signoff_reviewer"] = _timed_run(reviewer)
        if _problems(reviewer):
            errors["signoff_reviewer"] = _problems(reviewer)
        log(
            f"{'signoff (rita)':<15} cold {cold['signoff_reviewer']:.3f}s "
            f"warm {warm['signoff_reviewer']:.3f}s"
        )
    return {
        "cold": cold,
        "warm": warm,
        "errors": errors,
        "trivial_cold": trivial_cold,
        "trivial_warm": trivial_warm,
    }


def main(argv: Sequence[str] | None = None) -> int:
    from dashboard.registry import PAGES

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--banks", type=int, default=20)
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument(
        "--unsettled-months",
        type=int,
        default=0,
        help="leave the latest N ended months unsettled (as before `pdo settle` has run): "
        "their usage is then aggregated live by the pages",
    )
    parser.add_argument(
        "--home", type=Path, help="keep the ledger here (reused when generated with these args)"
    )
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server: the ledger goes to a temporary database created there",
    )
    parser.add_argument(
        "--pages", nargs="*", help="only these page keys (default: every registered page)"
    )
    args = parser.parse_args(list(argv) if argv is not None else None)
    keys = args.pages or [p.key for p in PAGES]
    unknown = sorted(set(keys) - {p.key for p in PAGES})
    if unknown:
        parser.error(f"unknown pages {unknown}; known: {[p.key for p in PAGES]}")

    wanted = {
        "events": args.events,
        "days": args.days,
        "banks": args.banks,
        "seed": args.seed,
        "unsettled_months": args.unsettled_months,
        "backend": "postgresql" if args.database_url else "sqlite",
    }
    home = args.home.resolve() if args.home else Path(tempfile.mkdtemp(prefix="pdo-bench-console-"))
    with contextlib.ExitStack() as stack:
        if args.home is None:
            stack.callback(shutil.rmtree, home, ignore_errors=True)
        db_url = None
        if args.database_url:
            db_url = stack.enter_context(postgres_database(args.database_url))
        marker = home / MARKER
        reuse = (
            args.home is not None
            and db_url is None
            and marker.exists()
            and json.loads(marker.read_text()).get("params") == wanted
        )
        if reuse:
            generated = json.loads(marker.read_text())["generated"]
            log(f"reusing the ledger in {home}")
        else:
            if args.home is not None and home.exists():
                shutil.rmtree(home)
            home.mkdir(parents=True, exist_ok=True)
            generated = generate(
                home,
                db_url,
                args.events,
                args.days,
                args.banks,
                args.seed,
                args.unsettled_months,
            )
            marker.write_text(json.dumps({"params": wanted, "generated": generated}))
            log(f"generated in {generated['generate_seconds']}s")

        os.environ["PDO_HOME"] = str(home)
        os.environ.pop("PDO_DATABASE_URL", None)
        if db_url is not None:
            os.environ["PDO_DATABASE_URL"] = db_url
        os.environ["PDO_CONSOLE_CONTINUES_RUNS"] = "false"
        timed = render_pages(keys)

    cold, warm = timed["cold"], timed["warm"]
    trivial = timed["trivial_warm"]
    slowest = max([*cold.values(), *warm.values()])
    figures: dict[str, Any] = {
        "page_seconds": {k: round(v, 3) for k, v in cold.items()},
        "page_seconds_warm": {k: round(v, 3) for k, v in warm.items()},
        "max_page_seconds": round(slowest, 3),
        "slowest_page": max([*cold, *warm], key=lambda k: max(cold[k], warm[k])),
        "all_pages_under_2s": slowest < TARGET_SECONDS,
        "trivial_page_seconds": round(trivial, 4),
        "trivial_page_seconds_cold": round(timed["trivial_cold"], 4),
        "events": generated["events"],
        "refused_calls": generated["refused_calls"],
        "settled_periods": generated["settled_periods"],
        "generate_seconds": generated["generate_seconds"],
        "page_errors": timed["errors"],
    }
    ratios = {f"{k}_vs_trivial": round(v / trivial, 1) for k, v in cold.items()}
    ratios["max_page_vs_trivial"] = round(slowest / trivial, 1)
    params = {
        **wanted,
        "pages": keys,
        "target_seconds": TARGET_SECONDS,
        "cpus": os.cpu_count(),
        "reused_ledger": reuse,
    }
    print(json.dumps({"bench": "console", "figures": figures, "ratios": ratios, "params": params},
                     ensure_ascii=False))  # fmt: skip
    return 1 if timed["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
