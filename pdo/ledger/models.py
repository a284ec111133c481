"""The operating ledger: SQLModel entities from DESIGN §3 that the pipeline and services need."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, BigInteger, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel
from uuid6 import uuid7

from pdo.ledger.types import UTCDateTime, utcnow

if TYPE_CHECKING:
    from pdo.lake import Manifest


def _ts(**kw: Any) -> Any:
    return Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False), **kw)


def _ts_opt() -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


def _json(default: Any) -> Any:
    return Field(default_factory=lambda: type(default)(), sa_column=Column(JSON, nullable=False))


def _big(**kw: Any) -> Any:
    """A 64-bit column: fen and counts outgrow PostgreSQL's 32-bit INTEGER (21.47M 元)."""
    return Field(sa_type=BigInteger, **kw)


def new_id() -> str:
    """A time-ordered UUID (version 7) as 32 hex digits: new rows land at the end of the key's
    index, not on a random page (random ids and hashes: 152 µs a row to commit, against 4)."""
    return uuid7().hex


# --- departments, tables, authorizations -------------------------------------------------


class Department(SQLModel, table=True):
    code: str = Field(primary_key=True)
    name_zh: str
    name_en: str


class SourceTableRecord(SQLModel, table=True):
    __tablename__ = "source_table"
    name: str = Field(primary_key=True)
    department_code: str = Field(foreign_key="department.code", index=True)
    label_zh: str
    classification: str
    contract_hash: str


class AuthorizationBase(SQLModel):
    reference: str = Field(index=True, unique=True)
    authority: str
    operator: str
    tables: list[str] = _json([])
    purposes: list[str] = _json([])
    # 数据产品经营权 covers these products only; the grant names them.
    products: list[str] = Field(
        default_factory=lambda: ["credit_risk"], sa_column=Column(JSON, nullable=False)
    )
    # 三权分置: right name (数据资源持有权 / 数据加工使用权 / 数据产品经营权) → who holds it.
    rights: dict[str, Any] = _json({})
    # Revenue terms (收益分配): the least share of billed revenue the source departments receive,
    # in basis points, and the parties besides departments and operator a product may pay.
    min_department_share_bp: int = Field(default=0, ge=0, le=10_000)
    revenue_parties: list[str] = _json([])
    valid_from: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    valid_until: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class Authorization(AuthorizationBase, table=True):
    id: str = Field(default_factory=new_id, primary_key=True)
    status: str = "active"  # active | revoked (expiry is read from valid_until, not stored)
    granted_by: str
    created_at: dt.datetime = _ts()
    revoked_at: dt.datetime | None = _ts_opt()
    revoked_by: str | None = None
    revoke_reason: str | None = None


# --- users -------------------------------------------------------------------------------


class User(SQLModel, table=True):
    name: str = Field(primary_key=True)
    role: str  # operator | reviewer | regulator
    password_hash: str
    created_at: dt.datetime = _ts()


# --- runs, datasets, validation, sign-off ------------------------------------------------


class PipelineRun(SQLModel, table=True):
    __tablename__ = "pipeline_run"
    id: str = Field(default_factory=new_id, primary_key=True)
    source_dir: str  # "" when every table comes from a database
    # tables read from departments' databases: {table: {"url": URL without password, "table"}}
    database_sources: dict[str, Any] = _json({})
    authorization_id: str = Field(foreign_key="authorization.id")
    started_by: str
    status: str = "running"  # running | awaiting_signoff | approved | rejected | published | failed
    prefect_flow_run_id: str | None = None
    review_package_hash: str | None = None
    review_package: dict[str, Any] = _json({})
    error: str | None = None
    started_at: dt.datetime = _ts()
    finished_at: dt.datetime | None = _ts_opt()


class StageRun(SQLModel, table=True):
    __tablename__ = "stage_run"
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="pipeline_run.id", index=True)
    stage: str
    table_name: str | None = None
    status: str
    rows_in: int = 0
    rows_out: int = 0
    rows_quarantined: int = 0
    input_hashes: list[str] = _json([])
    output_hashes: list[str] = _json([])
    details: dict[str, Any] = _json({})
    started_at: dt.datetime = _ts()
    finished_at: dt.datetime | None = _ts_opt()


class DatasetVersion(SQLModel, table=True):
    __tablename__ = "dataset_version"
    id: str = Field(primary_key=True)  # content hash
    table_name: str = Field(index=True)
    zone: str = Field(index=True)  # raw | quarantine | desensitized | product
    path: str
    row_count: int
    schema_: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column("schema", JSON, nullable=False)
    )
    parents: list[str] = _json([])
    stage: str
    policy_hash: str
    code_hash: str
    created_at: dt.datetime = _ts()

    @classmethod
    def of(cls, m: Manifest, path: Path) -> DatasetVersion:
        """The ledger row of a lake version stored at path."""
        return cls(
            id=m.id,
            table_name=m.table,
            zone=m.zone,
            path=str(path),
            row_count=m.row_count,
            schema_=m.schema,
            parents=m.parents,
            stage=m.stage,
            policy_hash=m.policy_hash,
            code_hash=m.code_hash,
        )


class ValidationResult(SQLModel, table=True):
    __tablename__ = "validation_result"
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="pipeline_run.id", index=True)
    table_name: str
    dataset_id: str
    suite: str
    success: bool
    evaluated: int
    successful: int
    statistics: dict[str, Any] = _json({})
    created_at: dt.datetime = _ts()


class SignOffBase(SQLModel):
    run_id: str = Field(foreign_key="pipeline_run.id", index=True)
    reviewer: str
    decision: str  # approved | rejected
    comment: str = ""


class SignOff(SignOffBase, table=True):
    __tablename__ = "sign_off"
    id: int | None = Field(default=None, primary_key=True)
    role: str
    covers_hash: str
    decided_at: dt.datetime = _ts()


class SignOffPublic(SignOffBase):
    id: int
    role: str
    covers_hash: str
    decided_at: dt.datetime


# --- products and the serving store ------------------------------------------------------


class Product(SQLModel, table=True):
    name: str = Field(primary_key=True)
    title_zh: str
    title_en: str
    purposes: list[str] = _json([])
    price_fen: int = _big()


class ProductVersion(SQLModel, table=True):
    __tablename__ = "product_version"
    id: str = Field(primary_key=True)  # "<product>@<n>"
    product_name: str = Field(foreign_key="product.name", index=True)
    version: int
    run_id: str = Field(foreign_key="pipeline_run.id")
    signoff_id: int = Field(foreign_key="sign_off.id")
    status: str = "published"  # published | superseded
    input_hashes: list[str] = _json([])
    output_hash: str
    metrics: dict[str, Any] = _json({})  # the model card: validation pack, drift, scoring
    model: dict[str, Any] = _json({})  # the frozen model (e.g. scorecard bins and points)
    # The revenue rule as declared and as resolved at publishing: party → integer weight.
    revenue_rule: dict[str, Any] = _json({})
    revenue_weights: dict[str, int] = _json({})
    as_of: dt.date
    published_at: dt.datetime = _ts()


class ServedScore(SQLModel, table=True):
    __tablename__ = "served_score"
    __table_args__ = (UniqueConstraint("product_version_id", "uscc"),)
    id: int | None = Field(default=None, primary_key=True)
    product_version_id: str = Field(foreign_key="product_version.id", index=True)
    uscc: str = Field(index=True)
    score: int | None = None
    grade: str | None = None
    details: dict[str, Any] = _json({})  # the product's other declared outputs


# --- subscribers, keys, usage, revenue ---------------------------------------------------


class SubscriberBase(SQLModel):
    name: str = Field(index=True, unique=True)
    # Disclosure limit: distinct enterprises this bank may look up per business day (UTC+8).
    daily_enterprise_budget: int = 1000
    # Calls per second per key, enforced in each API process (a token bucket).
    rate_limit_per_second: int = 100


class Subscriber(SubscriberBase, table=True):
    id: str = Field(default_factory=new_id, primary_key=True)
    created_at: dt.datetime = _ts()


class SubscriberPublic(SubscriberBase):
    id: str
    created_at: dt.datetime


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_key"
    id: str = Field(primary_key=True)  # the public key prefix
    subscriber_id: str = Field(foreign_key="subscriber.id", index=True)
    key_hash: str
    revoked: bool = False
    created_at: dt.datetime = _ts()
    revoked_at: dt.datetime | None = _ts_opt()


class PlanBase(SQLModel):
    product_name: str = Field(foreign_key="product.name", index=True)
    name: str
    title_zh: str
    price_fen: int = _big(ge=0)  # per served call or delivered record
    monthly_quota: int | None = _big(default=None)  # served calls a business month; None = no limit
    # Price of each call beyond the quota; None = the quota is a hard limit (429 quota_exceeded).
    overage_price_fen: int | None = _big(default=None, ge=0)
    validity_days: int = 365
    refund_withheld: bool = True  # results withheld as disputed are refunded at settlement


class Plan(PlanBase, table=True):
    __table_args__ = (UniqueConstraint("product_name", "name"),)
    id: str = Field(primary_key=True)  # "<product>/<plan>"
    created_at: dt.datetime = _ts()


class PlanPublic(PlanBase):
    id: str


class Subscription(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: str = Field(foreign_key="subscriber.id", index=True)
    product_name: str = Field(foreign_key="product.name")
    plan_id: str | None = Field(default=None, foreign_key="plan.id")
    price_fen: int = _big()
    monthly_quota: int | None = _big(default=None)
    overage_price_fen: int | None = _big(default=None)
    purposes: list[str] = _json([])  # the scope: purposes this bank may declare (⊆ the product's)
    valid_from: dt.datetime = _ts()
    valid_until: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    cancelled_at: dt.datetime | None = _ts_opt()


class ServingCounter(SQLModel, table=True):
    """Running counts the serving transaction checks and bumps, one row per counter and period.

    "quota:<subscription id>" per business month (calls served), "disclosed:<subscriber id>" per
    business day (distinct enterprises disclosed): O(1) to check, however busy the day.
    """

    __tablename__ = "serving_counter"
    __table_args__ = (UniqueConstraint("counter", "period"),)
    id: int | None = Field(default=None, primary_key=True)
    counter: str
    period: str  # "2026-11" or "2026-11-30" (Asia/Shanghai)
    used: int = _big(default=0)


class DisclosedEnterprise(SQLModel, table=True):
    """The distinct enterprises disclosed to a bank per business day (the disclosure budget)."""

    __tablename__ = "disclosed_enterprise"
    __table_args__ = (UniqueConstraint("subscriber_id", "day", "uscc"),)
    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: str = Field(foreign_key="subscriber.id")
    day: dt.date
    uscc: str  # entity key


class ConsentBase(SQLModel):
    reference: str = Field(min_length=1, max_length=120)  # the bank's consent document number
    purposes: list[str] = _json([])
    valid_from: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    valid_until: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class Consent(ConsentBase, table=True):
    """An enterprise's authorization for one bank to query it for the named purposes."""

    __table_args__ = (UniqueConstraint("subscriber_id", "reference"),)
    id: str = Field(default_factory=new_id, primary_key=True)
    subscriber_id: str = Field(foreign_key="subscriber.id", index=True)
    uscc: str = Field(index=True)  # entity key: a 个体工商户 by its pseudonym
    evidence_sha256: str | None = None  # hash of the signed authorization letter, if filed
    registered_by: str
    created_at: dt.datetime = _ts()
    revoked_at: dt.datetime | None = _ts_opt()


class RefusedCall(SQLModel, table=True):
    """A refused request: audited for the console, never billed."""

    __tablename__ = "refused_call"
    __table_args__ = (Index("ix_refused_call_at", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    at: dt.datetime = _ts()
    subscriber_id: str | None = Field(default=None, index=True)
    api_key_id: str | None = None
    endpoint: str
    product_name: str | None = None
    uscc: str | None = None  # entity key, when the request named an enterprise
    purpose: str | None = None
    status: int
    code: str = Field(index=True)
    flagged: bool = False  # out of consent / portfolio, budget breach: shown as an anomaly


class UsageEvent(SQLModel, table=True):
    __tablename__ = "usage_event"
    # The console aggregates by time window and by version over millions of events.
    __table_args__ = (
        Index("ix_usage_event_served_at", "served_at"),
        Index("ix_usage_event_version_served_at", "product_version_id", "served_at"),
        Index("ix_usage_event_version_subscriber", "product_version_id", "subscriber_id"),
    )
    id: str = Field(default_factory=new_id, primary_key=True)
    subscriber_id: str = Field(foreign_key="subscriber.id", index=True)
    api_key_id: str | None = None
    subscription_id: int | None = Field(default=None, foreign_key="subscription.id")
    product_version_id: str = Field(foreign_key="product_version.id")
    kind: str = "query"  # query | alert | batch
    status: str = "served"  # served | withheld (disputed result: answered, no score)
    uscc: str | None = None  # entity key; None for a batch file
    purpose: str
    consent_id: str | None = None
    units: int = _big(default=1)  # calls, alerts or records delivered
    price_fen: int = _big()  # the whole event's price: units × unit price
    overage: bool = False  # served beyond the plan's monthly quota, at its overage price
    # One event per delivery: "alert:<id>", "batch:<id>"; a retry cannot bill twice.
    delivery_key: str | None = Field(default=None, unique=True)
    served_at: dt.datetime = _ts()
    # The settlement period that billed it ("2026-11"); None until a settlement takes it in.
    # Usage committed after its month closed is taken in by the next settlement (never rewrites).
    settled_period: str | None = Field(default=None, index=True)


class Settlement(SQLModel, table=True):
    """A closed settlement period: immutable once written; its lines sum to net_fen exactly."""

    period: str = Field(primary_key=True)  # "2026-11", a business month (UTC+8)
    closed_at: dt.datetime = _ts()
    closed_by: str
    events: int = _big()
    billed_fen: int = _big()
    refunded_fen: int = _big()
    net_fen: int = _big()
    digest: str  # sha256 of the canonical lines; recorded in the audit chain
    # Per product version as billed: {"<version>": {"events", "billed_fen", "refunded_fen"}}.
    versions: dict[str, Any] = _json({})


class SettlementLine(SQLModel, table=True):
    """One party's share of one product version's net revenue in one period."""

    __tablename__ = "settlement_line"
    __table_args__ = (UniqueConstraint("period", "product_version_id", "party"),)
    id: int | None = Field(default=None, primary_key=True)
    period: str = Field(foreign_key="settlement.period", index=True)
    product_version_id: str = Field(foreign_key="product_version.id")
    party: str  # department code, "operator" or a party the authorization names
    weight: int  # the party's weight in the version's rule
    amount_fen: int = _big()


class StatementLine(SQLModel, table=True):
    """A monthly statement line per subscriber, subscription and kind, frozen at settlement."""

    __tablename__ = "statement_line"
    __table_args__ = (UniqueConstraint("period", "subscription_id", "kind"),)
    id: int | None = Field(default=None, primary_key=True)
    period: str = Field(foreign_key="settlement.period", index=True)
    subscriber_id: str = Field(foreign_key="subscriber.id", index=True)
    subscription_id: int | None = None
    plan_id: str | None = None
    kind: str  # query | alert | batch
    monthly_quota: int | None = _big(default=None)
    units: int = _big()
    overage_units: int = _big()
    withheld_units: int = _big()
    charged_fen: int = _big()
    refunded_fen: int = _big()
    net_fen: int = _big()


# --- watchlists, alerts, batch files, objections ------------------------------------------


class WatchlistBase(SQLModel):
    name: str = Field(min_length=1, max_length=120)
    product_name: str = Field(foreign_key="product.name")
    purpose: str = "贷后管理"
    webhook_url: str | None = None


class Watchlist(WatchlistBase, table=True):
    """A bank's loan book for one product: its members are the bank's portfolio."""

    __table_args__ = (UniqueConstraint("subscriber_id", "name"),)
    id: str = Field(default_factory=new_id, primary_key=True)
    subscriber_id: str = Field(foreign_key="subscriber.id", index=True)
    created_at: dt.datetime = _ts()


class WatchlistMember(SQLModel, table=True):
    __tablename__ = "watchlist_member"
    __table_args__ = (UniqueConstraint("watchlist_id", "uscc"),)
    id: int | None = Field(default=None, primary_key=True)
    watchlist_id: str = Field(foreign_key="watchlist.id", index=True)
    uscc: str = Field(index=True)  # entity key
    shown_as: str  # what the bank sees: a company's USCC, a 个体工商户's masked code
    reference: str | None = None  # the bank's own reference (loan or customer number)
    added_at: dt.datetime = _ts()


class Alert(SQLModel, table=True):
    """A warning on a watched enterprise; pushed by webhook and/or pulled, metered once."""

    id: str = Field(default_factory=new_id, primary_key=True)
    watchlist_id: str = Field(foreign_key="watchlist.id", index=True)
    subscriber_id: str = Field(foreign_key="subscriber.id", index=True)
    # None once the member was removed: the row stays, so a bank's `after=` cursor on it resumes
    member_id: int | None = Field(default=None, foreign_key="watchlist_member.id")
    kind: str  # new_version | grade_drop | dishonest_debtor | abnormal_listing | dispute_*
    product_version_id: str | None = None
    payload: dict[str, Any] = _json({})
    dedupe_key: str = Field(unique=True)  # the same event never alerts twice
    status: str = Field(default="pending", index=True)  # pending | delivered | dead | withdrawn
    attempts: int = 0
    next_attempt_at: dt.datetime | None = _ts_opt()
    last_error: str | None = None
    created_at: dt.datetime = _ts()
    # when it became listable: raised, or released again by a rejected objection (pull cursor)
    queued_at: dt.datetime = _ts()
    delivered_at: dt.datetime | None = _ts_opt()


class WebhookAttempt(SQLModel, table=True):
    __tablename__ = "webhook_attempt"
    id: int | None = Field(default=None, primary_key=True)
    alert_id: str = Field(foreign_key="alert.id", index=True)
    at: dt.datetime = _ts()
    status_code: int | None = None
    error: str | None = None
    ok: bool = False


class BatchFile(SQLModel, table=True):
    """A delivered portfolio file: content hash in the manifest, one usage event."""

    __tablename__ = "batch_file"
    id: str = Field(default_factory=new_id, primary_key=True)
    subscriber_id: str = Field(foreign_key="subscriber.id", index=True)
    watchlist_id: str = Field(foreign_key="watchlist.id")
    product_version_id: str = Field(foreign_key="product_version.id")
    format: str  # parquet | csv
    path: str
    sha256: str
    rows: int
    manifest: dict[str, Any] = _json({})
    created_at: dt.datetime = _ts()


class BatchEntity(SQLModel, table=True):
    """An enterprise a batch file holds (entity key): its delivery stops when one of them is
    disputed or corrected, even after the bank took it off the watchlist."""

    __tablename__ = "batch_entity"
    batch_id: str = Field(foreign_key="batch_file.id", primary_key=True)
    uscc: str = Field(primary_key=True, index=True)  # entity key


class Objection(SQLModel, table=True):
    """An enterprise's 异议 to a data item; its results are withheld until it is resolved."""

    id: str = Field(default_factory=new_id, primary_key=True)
    uscc: str = Field(index=True)  # entity key
    product_name: str = Field(foreign_key="product.name")
    item: str  # the disputed data item, e.g. a factor code or a record reference
    reason: str
    status: str = Field(default="open", index=True)  # open | resolved
    outcome: str | None = None  # upheld (data corrected) | rejected (data stands)
    raised_by: str
    raised_at: dt.datetime = _ts()
    resolved_by: str | None = None
    resolved_at: dt.datetime | None = _ts_opt()
    resolution: dict[str, Any] = _json({})


class ScoreCorrection(SQLModel, table=True):
    """A result re-scored after an upheld objection; served instead of the signed row.

    The signed version stays immutable: the correction sits beside it, naming its objection.
    """

    __tablename__ = "score_correction"
    __table_args__ = (UniqueConstraint("product_version_id", "uscc"),)
    id: int | None = Field(default=None, primary_key=True)
    product_version_id: str = Field(foreign_key="product_version.id", index=True)
    uscc: str  # entity key
    objection_id: str = Field(foreign_key="objection.id")
    score: int | None = None
    grade: str | None = None
    details: dict[str, Any] = _json({})
    created_at: dt.datetime = _ts()


class ServingGeneration(SQLModel, table=True):
    """Bumped by every change the API caches (keys, subscriptions, versions, grants)."""

    __tablename__ = "serving_generation"
    id: int = Field(default=1, primary_key=True)
    n: int = 0


# --- audit -------------------------------------------------------------------------------


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"
    seq: int = Field(primary_key=True)
    at: dt.datetime = _ts()
    actor: str
    action: str
    subject: str = Field(index=True)  # e.g. a usage id: its record is found without a scan
    details: dict[str, Any] = _json({})
    prev_hash: str
    # Not indexed: a random digest put each appended event on a random index page, the largest
    # part of every serving commit; the rare lookup by hash (diagnosing a break) scans instead.
    hash: str


class AuditCheckpoint(SQLModel, table=True):
    """A signed Merkle root over a run of audit events, for the authority to keep elsewhere."""

    __tablename__ = "audit_checkpoint"
    id: int | None = Field(default=None, primary_key=True)
    first_seq: int
    last_seq: int = Field(unique=True)
    head_hash: str  # the hash of event last_seq
    merkle_root: str
    prev_checkpoint: str | None = None  # sha256 of the previous checkpoint's document
    created_at: dt.datetime = _ts()
    created_by: str
    document: dict[str, Any] = _json({})  # the signed JSON exactly as exported
