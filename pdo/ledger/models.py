"""The operating ledger: SQLModel entities from DESIGN §3 that the pipeline and services need."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from pdo.ledger.types import UTCDateTime, utcnow


def _ts(**kw: Any) -> Any:
    return Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False), **kw)


def _ts_opt() -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


def _json(default: Any) -> Any:
    return Field(default_factory=lambda: type(default)(), sa_column=Column(JSON, nullable=False))


def new_id() -> str:
    return uuid.uuid4().hex


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
    source_dir: str
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
    price_fen: int
    revenue_shares_bp: dict[str, int] = _json({})


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


class Subscription(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: str = Field(foreign_key="subscriber.id", index=True)
    product_name: str = Field(foreign_key="product.name")
    price_fen: int
    valid_until: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class UsageEvent(SQLModel, table=True):
    __tablename__ = "usage_event"
    id: str = Field(default_factory=new_id, primary_key=True)
    subscriber_id: str = Field(foreign_key="subscriber.id", index=True)
    api_key_id: str
    product_version_id: str = Field(foreign_key="product_version.id")
    uscc: str
    purpose: str
    price_fen: int
    served_at: dt.datetime = _ts()


class RevenueAllocation(SQLModel, table=True):
    __tablename__ = "revenue_allocation"
    id: int | None = Field(default=None, primary_key=True)
    usage_event_id: str = Field(foreign_key="usage_event.id", index=True)
    party: str  # department code or "operator"
    amount_fen: int


# --- audit -------------------------------------------------------------------------------


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"
    seq: int = Field(primary_key=True)
    at: dt.datetime = _ts()
    actor: str
    action: str
    subject: str
    details: dict[str, Any] = _json({})
    prev_hash: str
    hash: str = Field(unique=True)
