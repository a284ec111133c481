"""What the console shows, as plain functions over a ledger Session: testable without Streamlit."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from sqlmodel import Session, col, select

from pdo import audit, settlement
from pdo.ledger.models import (
    AuditEvent,
    Department,
    PipelineRun,
    Product,
    ProductVersion,
    Settlement,
    SignOff,
)
from pdo.revenue import OPERATOR
from pdo.review_report import (
    DIMENSION_ZH,
    RUN_STATUS_ZH,
    ZONE_ZH,
    CardTable,
    Cell,
    Code,
    Fact,
    Verdict,
    below_k_target,
    bin_tables,
    build_facts,
    card_overview,
    card_tables,
    cell_text,
    column_label,
    drift_verdict,
    generic_card,
    is_scorecard,
    l_diversity_text,
    local_time,
    local_time_text,
    policy_zh,
    product_facts,
    render_review_html,
    residual_text,
    scoring_facts,
    share_percent,
)
from pdo.signoff import approvals, pending, required_approvals

OPERATOR_ZH = "授权运营单位"

DECISION_ZH = {"approved": "批准", "rejected": "驳回"}
# Every action the ledger records, as the console names it (中文, English); a code missing here
# would show as stored (tests/test_action_labels.py reads every action the code records).
ACTION_LABELS = {
    "user.add": ("新增用户", "User added"),
    "departments.register": ("登记部门", "Departments registered"),
    "authorization.grant": ("授予授权", "Authorization granted"),
    "authorization.revoke": ("撤销授权", "Authorization revoked"),
    "authorization.renew": ("授权续期", "Authorization renewed"),
    "run.start": ("启动运行", "Run started"),
    "run.failed": ("运行失败", "Run failed"),
    "run.abandoned": ("运行中止", "Run abandoned"),
    "run.awaiting_signoff": ("等待签核", "Awaiting sign-off"),
    "stage.ingest": ("采集", "Ingest"),
    "stage.desensitize": ("脱敏", "Desensitization"),
    "stage.validate_raw": ("原始区校验", "Raw-zone validation"),
    "stage.validate": ("校验", "Validation"),
    "stage.package": ("产品打包", "Packaging"),
    "docs.built": ("生成质量报告", "Quality report built"),
    "signoff.approved": ("签核批准", "Sign-off approved"),
    "signoff.rejected": ("签核驳回", "Sign-off rejected"),
    "product.publish": ("产品发布", "Product published"),
    "subscriber.add": ("接入银行", "Bank onboarded"),
    "apikey.issue": ("签发密钥", "API key issued"),
    "apikey.revoke": ("吊销密钥", "API key revoked"),
    "plan.add": ("新增套餐", "Plan added"),
    "subscription.add": ("订阅套餐", "Subscribed to a plan"),
    "consent.add": ("登记企业授权", "Consent registered"),
    "consent.revoke": ("撤回企业授权", "Consent withdrawn"),
    "query.serve": ("查询（计费）", "Lookup served (billed)"),
    "query.refused": ("查询被拒", "Lookup refused"),
    "delivery.alert": ("预警交付（计费）", "Alert delivered (billed)"),
    "delivery.batch": ("批量文件交付（计费）", "Batch file delivered (billed)"),
    "batch.deliver": ("生成批量文件", "Batch file made"),
    "watchlist.create": ("新建监测名单", "Watchlist created"),
    "watchlist.members.add": ("监测名单加入企业", "Watchlist members added"),
    "watchlist.members.remove": ("监测名单移出企业", "Watchlist members removed"),
    "alerts.raise": ("生成预警", "Alerts raised"),
    "alerts.release": ("放行预警", "Alerts released"),
    "alerts.withdraw": ("撤回预警", "Alerts withdrawn"),
    "alert.dead": ("预警推送失败", "Alert dead-lettered"),
    "alert.requeue": ("预警重新推送", "Alert requeued"),
    "objection.raise": ("登记异议", "Objection raised"),
    "objection.resolve": ("异议处理", "Objection resolved"),
    "settlement.close": ("月度结算", "Month settled"),
    "export.usage": ("导出用量", "Usage exported"),
    "export.settlement": ("导出结算", "Settlement exported"),
    "audit.verify": ("审计链核验", "Audit chain verified"),
    "audit.checkpoint": ("签发检查点", "Checkpoint signed"),
}


# --- formatting: exact money, local time, short hashes -----------------------------------


def each(series: pl.Series, function: Callable[[Any], str | None], name: str) -> pl.Series:
    """function over each non-null value, on the calling thread: a polars UDF runs on polars'
    workers, which wait for the GIL, and another page's thread holding it in a polars call that
    waits for those workers (`to_pandas`) would hang both (tests/test_no_polars_udfs.py)."""
    return pl.Series(
        name, [None if v is None else function(v) for v in series.to_list()], dtype=pl.String
    )


def yuan(fen: int) -> str:
    """Integer fen as 元 with two decimals, by integer division only (never floats)."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(int(fen)), 100)
    return f"{sign}{whole:,}.{cents:02d}"


def percent(part: int, whole: int) -> str:
    """A share as a percentage with two decimals (rounded down), from integers."""
    if whole <= 0:
        return "—"
    bp = part * 10_000 // whole
    return f"{bp // 100}.{bp % 100:02d}%"


def short_hash(value: str | None, n: int = 12) -> str:
    return (value or "")[:n]


# --- sign-off queue ----------------------------------------------------------------------

_TABLE_SCHEMA = {
    "数据表": pl.String,
    "名称": pl.String,
    "分级": pl.String,
    "输入行数": pl.Int64,
    "输出行数": pl.Int64,
    "隔离行数": pl.Int64,
    "行数核对": pl.String,
}
_VALIDATION_SCHEMA = {
    "数据表": pl.String,
    "规则集": pl.String,
    "结果": pl.String,
    "已评估": pl.Int64,
    "通过": pl.Int64,
    "阻断项": pl.Int64,
    "告警项": pl.Int64,
}
_DATASET_SCHEMA = {"数据表": pl.String, "区域": pl.String, "行数": pl.Int64, "哈希": pl.String}
_AUTHORIZATION_SCHEMA = {"项目": pl.String, "内容": pl.String}
_POLICY_SCHEMA = {
    "数据表": pl.String,
    "字段": pl.String,
    "中文名": pl.String,
    "脱敏策略": pl.String,
    "是否发布": pl.String,
}
_PRIVACY_SCHEMA = {
    "数据表": pl.String,
    "残留个人信息": pl.String,
    "假名密钥编号": pl.String,
    "k": pl.Int64,
    "目标 k": pl.Int64,
    "k-匿名": pl.String,
    "l-多样性": pl.String,
    "唯一记录占比": pl.String,
    "最大重识别概率": pl.String,
}


@dataclass(frozen=True)
class PendingRun:
    """One run at the gate, as much of its review package as a reviewer needs to decide."""

    id: str
    started_by: str
    started_at: str
    package_hash: str
    authorization: str
    purposes: list[str]
    tables: pl.DataFrame
    validation: pl.DataFrame
    datasets: pl.DataFrame
    approved_by: list[str]
    approvals_needed: int
    authorization_facts: pl.DataFrame
    policies: pl.DataFrame
    privacy: pl.DataFrame
    quality: pl.DataFrame
    products: list[ProductCandidate]
    review_html: str  # the same page `pdo signoff export` writes

    @property
    def rows_quarantined(self) -> int:
        return int(self.tables["隔离行数"].sum()) if self.tables.height else 0

    @property
    def validation_ok(self) -> bool:
        return bool((self.validation["结果"] == "通过").all()) if self.validation.height else True


def _tables_frame(tables: list[dict[str, Any]]) -> pl.DataFrame:
    rows = []
    for t in tables:
        rows_in, rows_out, rows_q = (
            int(t.get("rows_in", 0)),
            int(t.get("rows_out", 0)),
            int(t.get("rows_quarantined", 0)),
        )
        rows.append(
            {
                "数据表": t.get("table", ""),
                "名称": t.get("label_zh", ""),
                "分级": t.get("classification", ""),
                "输入行数": rows_in,
                "输出行数": rows_out,
                "隔离行数": rows_q,
                "行数核对": "✓" if rows_in == rows_out + rows_q else "✗ 不平衡",
            }
        )
    return pl.DataFrame(rows, schema=_TABLE_SCHEMA)


def _validation_frame(validations: list[dict[str, Any]]) -> pl.DataFrame:
    rows = [
        {
            "数据表": v.get("table", ""),
            "规则集": v.get("suite", ""),
            "结果": "通过" if v.get("success") else "未通过",
            "已评估": int(v.get("evaluated", 0)),
            "通过": int(v.get("successful", 0)),
            "阻断项": len(v.get("failures") or []),
            "告警项": len(v.get("warnings") or []),
        }
        for v in validations
    ]
    return pl.DataFrame(rows, schema=_VALIDATION_SCHEMA)


def _datasets_frame(datasets: list[dict[str, Any]]) -> pl.DataFrame:
    rows = [
        {
            "数据表": d.get("table", ""),
            "区域": ZONE_ZH.get(d.get("zone", ""), d.get("zone")),
            "行数": int(d.get("rows", 0)),
            "哈希": short_hash(d.get("id")),
        }
        for d in datasets
    ]
    return pl.DataFrame(rows, schema=_DATASET_SCHEMA)


def _authorization_frame(
    authorization: dict[str, Any], tables: list[dict[str, Any]]
) -> pl.DataFrame:
    """The grant as label/value rows: reference, tables, purposes, valid until (Beijing time)."""
    labels = {t.get("table"): t.get("label_zh") for t in tables}
    granted = [
        f"{t}（{labels[t]}）" if labels.get(t) else t for t in authorization.get("tables") or []
    ]
    rows = [
        ("授权文号", str(authorization.get("reference") or "—")),
        ("授权表", "、".join(granted) or "—"),
        ("用途", "、".join(authorization.get("purposes") or []) or "—"),
        ("有效期至（北京时间）", local_time_text(authorization.get("valid_until")) or "—"),
    ]
    return pl.DataFrame([{"项目": k, "内容": v} for k, v in rows], schema=_AUTHORIZATION_SCHEMA)


def _policies_frame(tables: list[dict[str, Any]]) -> pl.DataFrame:
    """Every field of every table with its desensitization policy, in Chinese."""
    rows = [
        {
            "数据表": t.get("table", ""),
            "字段": column,
            "中文名": column_label(str(t.get("table", "")), column),
            "脱敏策略": policy_zh(str(policy)),
            "是否发布": "否（删除）" if policy == "drop" else "是",
        }
        for t in tables
        for column, policy in (t.get("policies") or {}).items()
    ]
    return pl.DataFrame(rows, schema=_POLICY_SCHEMA)


def _privacy_frame(privacy: dict[str, Any]) -> pl.DataFrame:
    """Per table: the residual scan's verdict and, where assessed, k-anonymity and l-diversity."""
    rows = []
    for name, p in sorted(privacy.items()):
        risk = p.get("risk") or {}
        verdict = "低于目标" if below_k_target(risk) else "达到目标"
        rows.append(
            {
                "数据表": name,
                "残留个人信息": residual_text(p.get("residual_pii") or {}),
                "假名密钥编号": p.get("pseudonym_key_id") or "—",
                "k": risk.get("k"),
                "目标 k": risk.get("k_target"),
                "k-匿名": verdict if risk else "未评估（无准标识符）",
                "l-多样性": l_diversity_text(name, risk) if risk else "—",
                "唯一记录占比": share_percent(risk.get("share_unique")),
                "最大重识别概率": share_percent(risk.get("prosecutor_risk_max")),
            }
        )
    return pl.DataFrame(rows, schema=_PRIVACY_SCHEMA)


def pending_runs(session: Session) -> list[PendingRun]:
    """Runs awaiting sign-off (oldest first), from `pdo.signoff.pending`."""
    out = []
    for run in pending(session):
        package = run.review_package or {}
        authorization = package.get("authorization") or {}
        approved_by = [a.reviewer for a in approvals(session, run)]
        needed = required_approvals(package)
        out.append(
            PendingRun(
                id=run.id,
                started_by=run.started_by,
                started_at=local_time(run.started_at),
                package_hash=run.review_package_hash or "",
                authorization=str(authorization.get("reference", "")),
                purposes=list(authorization.get("purposes", [])),
                tables=_tables_frame(package.get("tables", [])),
                validation=_validation_frame(package.get("validation", [])),
                datasets=_datasets_frame(package.get("datasets", [])),
                approved_by=approved_by,
                approvals_needed=needed,
                authorization_facts=_authorization_frame(authorization, package.get("tables", [])),
                policies=_policies_frame(package.get("tables", [])),
                privacy=_privacy_frame(package.get("privacy") or {}),
                quality=_quality_frame(package.get("quality") or {}),
                products=_product_candidates(package),
                review_html=render_review_html(run, package, approved_by, needed),
            )
        )
    return out


def recent_decisions(session: Session, limit: int = 20) -> pl.DataFrame:
    """The latest sign-off decisions, newest first."""
    rows = session.exec(select(SignOff).order_by(col(SignOff.decided_at).desc()).limit(limit))
    return pl.DataFrame(
        [
            {
                "时间": local_time(d.decided_at),
                "运行": short_hash(d.run_id),
                "审核人": d.reviewer,
                "决定": DECISION_ZH.get(d.decision, d.decision),
                "意见": d.comment,
                "覆盖哈希": short_hash(d.covers_hash, 16),
            }
            for d in rows
        ],
        schema={k: pl.String for k in ("时间", "运行", "审核人", "决定", "意见", "覆盖哈希")},
    )


# --- quality report and Data Docs -------------------------------------------------------

ZONE_SUITE_ZH = {"raw": "原始区规则集", "desensitized": "脱敏区规则集", "product": "产品规则集"}


@dataclass(frozen=True)
class DocsRun:
    """A run whose Data Docs were built, with its quality summary from the review package."""

    id: str
    status: str
    started_by: str
    started_at: str
    site: Path
    quality: pl.DataFrame

    @property
    def label(self) -> str:
        status = RUN_STATUS_ZH.get(self.status, self.status)
        return f"{self.id[:12]} · {status} · {self.started_by} · {self.started_at}"


def _quality_frame(quality: dict[str, Any]) -> pl.DataFrame:
    """Per table and zone, the share passing along each dimension (— where nothing checked it)."""
    rows = [
        {
            "数据表": name,
            "区域": ZONE_ZH.get(zone, zone),
            **{zh: share_percent((scores or {}).get(d)) for d, zh in DIMENSION_ZH.items()},
        }
        for name, zones in sorted(quality.items())
        for zone, scores in zones.items()
    ]
    schema = dict.fromkeys(["数据表", "区域", *DIMENSION_ZH.values()], pl.String)
    return pl.DataFrame(rows, schema=schema)


def docs_runs(session: Session, docs_dir: Path) -> list[DocsRun]:
    """Runs with a built Data Docs site under docs_dir, newest first."""
    runs = session.exec(select(PipelineRun).order_by(col(PipelineRun.started_at).desc())).all()
    return [
        DocsRun(
            id=run.id,
            status=run.status,
            started_by=run.started_by,
            started_at=local_time(run.started_at),
            site=docs_dir / run.id,
            quality=_quality_frame((run.review_package or {}).get("quality") or {}),
        )
        for run in runs
        if (docs_dir / run.id / "index.html").is_file()
    ]


def docs_page_label(suite: str, batch: str) -> str:
    """A validation page's label: the table and which zone's suite it checked."""
    table, _, zone = batch.rpartition("-")
    return f"{table} · {ZONE_SUITE_ZH.get(zone, zone)}（{suite}）"


# --- usage per bank ----------------------------------------------------------------------


# --- revenue per department --------------------------------------------------------------


@dataclass(frozen=True)
class RevenueReport:
    """Billed, refunded and allocated fen, per party and per period; `balanced` checks exactness.

    Closed periods come from their settlements; usage no settlement has taken in yet is shown
    as it would be allocated now (未结算).
    """

    billed_fen: int
    refunded_fen: int
    allocated_fen: int
    by_party: pl.DataFrame
    by_period: pl.DataFrame

    @property
    def balanced(self) -> bool:
        return self.allocated_fen == self.billed_fen - self.refunded_fen


def party_name(code: str, departments: dict[str, str]) -> str:
    if code == OPERATOR:
        return OPERATOR_ZH
    return departments.get(code, code)


def revenue_report(session: Session) -> RevenueReport:
    """Every period's allocation per party, named in Chinese, summed in SQL per version."""
    departments = {d.code: d.name_zh for d in session.exec(select(Department))}
    periods = [
        settlement.figures(session, p)
        for p in session.exec(select(Settlement.period).order_by(col(Settlement.period)))
    ]
    periods.append(settlement.unsettled(session))
    totals: dict[str, int] = {}
    for figures in periods:
        for party, fen in figures.by_party().items():
            totals[party] = totals.get(party, 0) + fen
    allocated = sum(totals.values())
    per_party = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))
    frame = pl.DataFrame(
        [
            {
                "分配方": party_name(party, departments),
                "代码": party,
                "金额（元）": yuan(int(fen)),
                "占比": percent(int(fen), allocated),
            }
            for party, fen in per_party
        ],
        schema={"分配方": pl.String, "代码": pl.String, "金额（元）": pl.String, "占比": pl.String},
    )
    by_period = pl.DataFrame(
        [
            {
                "期间": f.period if f.settled else "未结算",
                "状态": "已结算" if f.settled else "待结算",
                "调用/交付": f.events,
                "计费（元）": yuan(f.billed_fen),
                "退款（元）": yuan(f.refunded_fen),
                "净收入（元）": yuan(f.net_fen),
            }
            for f in periods
            if f.events
        ],
        schema={
            "期间": pl.String,
            "状态": pl.String,
            "调用/交付": pl.Int64,
            "计费（元）": pl.String,
            "退款（元）": pl.String,
            "净收入（元）": pl.String,
        },
    )
    return RevenueReport(
        billed_fen=sum(f.billed_fen for f in periods),
        refunded_fen=sum(f.refunded_fen for f in periods),
        allocated_fen=allocated,
        by_party=frame,
        by_period=by_period,
    )


# --- audit -------------------------------------------------------------------------------


def audit_chain(session: Session) -> audit.ChainReport:
    return audit.verify(session)


def _details(details: dict[str, Any]) -> str:
    """Event details as compact JSON; free-text errors are withheld (they may quote source rows)."""
    shown = {k: ("（已隐藏）" if k == "error" else v) for k, v in details.items()}
    return json.dumps(shown, ensure_ascii=False, sort_keys=True, default=str)[:200]


_UNREADABLE = "（无法读取）"


AUDIT_COLUMNS = {  # 中文 → English headers of the latest-events table
    "序号": "Seq",
    "时间": "Time",
    "操作人": "Actor",
    "动作": "Action",
    "对象": "Subject",
    "详情": "Details",
    "哈希": "Hash",
}


def latest_audit_events(session: Session, limit: int = 50, english: bool = False) -> pl.DataFrame:
    """The newest audit events, newest first, with their (short) chain hashes; read as the
    verification reads them, so a stored value that cannot be decoded shows, not crashes."""
    newest = select(AuditEvent.seq).order_by(col(AuditEvent.seq).desc())
    first = session.exec(newest.offset(limit - 1).limit(1)).first() or 1
    rows = reversed(list(audit.events(session, first)))
    label, unreadable = (1, "(unreadable)") if english else (0, _UNREADABLE)
    frame = pl.DataFrame(
        [
            {
                "序号": seq,
                "时间": unreadable if isinstance(at, audit.Unreadable) else local_time(at),
                "操作人": actor,
                "动作": ACTION_LABELS[action][label] if action in ACTION_LABELS else action,
                "对象": short_hash(subject, 32),
                "详情": unreadable if isinstance(details, audit.Unreadable) else _details(details),
                "哈希": short_hash(stored),
            }
            for seq, at, actor, action, subject, details, _, stored in rows
        ],
        schema={
            "序号": pl.Int64,
            **{k: pl.String for k in ("时间", "操作人", "动作", "对象", "详情", "哈希")},
        },
    )
    return frame.rename(AUDIT_COLUMNS) if english else frame


# --- messages ----------------------------------------------------------------------------

_SIGNOFF_REASONS_ZH = (
    ("cannot decide on it", "发起人不能签核自己发起的运行"),
    ("is not a reviewer", "仅审核员可以签核"),
    ("needs a comment", "驳回必须填写意见"),
    ("already approved", "您已批准该运行，重要数据需另一名审核员批准"),
    ("not awaiting sign-off", "该运行已不在待签核状态"),
    ("review package changed", "审核包在生成后被修改"),
    ("reviewed data changed", "所审核的数据集已变化"),
    ("no run", "运行不存在"),
)

_CHAIN_REASONS_ZH = (  # first match wins: the specific findings before the generic ones
    ("inserted", "系插入的伪造事件"),
    ("reordered", "顺序被调换"),
    ("forged", "系伪造（跳过了其间事件）"),
    ("gap", "序号不连续（事件被删除）"),
    ("deleted", "之后的事件被删除"),
    ("signed checkpoint", "与签名检查点不符"),
    ("merkle root", "与检查点的 Merkle 根不符（链被改写）"),
    ("signature", "检查点签名无效"),
    ("prev_hash", "前序哈希不匹配"),
    ("unreadable", "存储值无法读取（内容被改动）"),
    ("content does not match", "内容与哈希不符"),
)


_USAGE_REASONS_ZH = (
    ("no record on the audit chain", "审计链上没有它的记录（可能绕过 API 插入）"),
    ("more than once", "在审计链上被记录了不止一次"),
    ("differs from its audit record", "与其审计记录不符（计费字段被改动）"),
    ("missing from usage_event", "审计链上有记录，但用量表中已不存在（可能被删除）"),
    ("unreadable", "存储值无法读取（内容被改动）"),
)


def _match(message: str, table: tuple[tuple[str, str], ...], fallback: str) -> str:
    return next((zh for needle, zh in table if needle in message), fallback)


def signoff_error_zh(message: str) -> str:
    """A Chinese reason for a gate refusal; the original message is shown alongside it."""
    return _match(message, _SIGNOFF_REASONS_ZH, "签核被拒绝")


def chain_reason_zh(message: str) -> str:
    return _match(message, _CHAIN_REASONS_ZH, "校验失败")


def usage_reason_zh(message: str) -> str:
    """A Chinese reason for a usage event that does not match its audit-chain record."""
    return _match(message, _USAGE_REASONS_ZH, "与审计链记录不符")


# --- products and their model cards ------------------------------------------------------

_FACT_SCHEMA = {"项目": pl.String, "内容": pl.String}
VERSION_STATUS_ZH = {"published": "现行（已发布）", "superseded": "已被取代"}


def console_text(cell: Cell) -> str:
    """A card cell in the console: a hash shortened as elsewhere in the console (the exported
    page keeps it whole), everything else as the page words it."""
    if isinstance(cell, Code) and cell.digest and len(cell.value) > 16:
        return f"{short_hash(cell.value, 16)}…"
    return cell_text(cell)


def facts_frame(facts: Sequence[Fact]) -> pl.DataFrame:
    """Label/value facts as a two-column table (the English labels stay in the HTML page)."""
    rows = [{"项目": zh, "内容": console_text(value)} for zh, _, value in facts]
    return pl.DataFrame(rows, schema=_FACT_SCHEMA)


def card_frame(table: CardTable) -> pl.DataFrame:
    """A model-card table as text columns under its Chinese headers."""
    schema = dict.fromkeys((zh for zh, _ in table.head), pl.String)
    rows = [[console_text(c) for c in row] for row in table.rows]
    return pl.DataFrame(rows, schema=schema, orient="row")


@dataclass(frozen=True)
class CardSection:
    """One titled table of a model card, with the line that says how to read it."""

    key: str
    title: str
    note: str
    frame: pl.DataFrame
    empty: str


def _sections(tables: Sequence[CardTable]) -> list[CardSection]:
    """Model-card tables as titled console frames."""
    return [CardSection(t.key, t.zh, t.note, card_frame(t), t.empty) for t in tables]


@dataclass(frozen=True)
class ModelCard:
    """A model card as the console shows it: the same rows as the review package's section 十."""

    scorecard: bool
    overview: pl.DataFrame
    scoring: pl.DataFrame
    sections: list[CardSection]
    bins: list[CardSection]

    def part(self, *keys: str) -> list[CardSection]:
        """The sections of some kinds, in reading order (e.g. "discrimination", "calibration")."""
        return [s for s in self.sections if s.key in keys]


def model_card(
    card: dict[str, Any], live: dict[str, Any] | None = None, live_id: str | None = None
) -> ModelCard:
    """A scorecard's full validation pack, or a rule product's counts as they were recorded."""
    if not is_scorecard(card):
        facts, tables = generic_card(card)
        return ModelCard(False, facts_frame(facts), facts_frame([]), _sections(tables), [])
    return ModelCard(
        True,
        facts_frame(card_overview(card)),
        facts_frame(scoring_facts(card)),
        _sections(card_tables(card, live, live_id)),
        [
            CardSection(t.key, f"{t.zh}（{t.en}）· {t.note}", "", card_frame(t), t.empty)
            for t in bin_tables(card)
        ],
    )


@dataclass(frozen=True)
class ProductCandidate:
    """A product a pending run built before the gate: its spec, the build and its model card."""

    name: str
    title_zh: str
    spec: pl.DataFrame
    build: pl.DataFrame
    drift: str
    drift_flagged: bool
    card: ModelCard | None  # None: the run did not build this product


def _product_candidates(package: dict[str, Any]) -> list[ProductCandidate]:
    """Each product entry of a review package as the sign-off queue shows it."""
    out = []
    for p in package.get("products") or []:
        candidate = p.get("candidate") or {}
        live = p.get("live_version") or {}
        drift = drift_verdict(candidate.get("drift"))
        card = (
            model_card(candidate.get("model_card") or {}, live.get("metrics"), live.get("id"))
            if candidate
            else None
        )
        out.append(
            ProductCandidate(
                name=str(p.get("product", "")),
                title_zh=str(p.get("title_zh", "")),
                spec=facts_frame(product_facts(p)),
                build=facts_frame(build_facts(candidate) if candidate else []),
                drift=cell_text(drift),
                drift_flagged=isinstance(drift, Verdict) and not drift.ok,
                card=card,
            )
        )
    return out


@dataclass(frozen=True)
class PublishedVersion:
    """A product version that was (or is) served, with the model card it was signed off with."""

    id: str
    product: str
    title_zh: str
    status: str
    as_of: str
    facts: pl.DataFrame
    drift_flagged: bool
    card: ModelCard

    @property
    def label(self) -> str:
        status = VERSION_STATUS_ZH.get(self.status, self.status)
        return f"{self.title_zh} · {self.id} · {status} · 基准日 {self.as_of}"


def _version_facts(v: ProductVersion, title: str) -> tuple[pl.DataFrame, bool]:
    """The version's ledger facts, and whether it drifted from its predecessor when built."""
    drift = drift_verdict((v.metrics or {}).get("drift"))
    facts: list[Fact] = [
        ("产品", "Product", f"{title}（{v.product_name}）"),
        ("版本", "Version", v.id),
        ("状态", "Status", VERSION_STATUS_ZH.get(v.status, v.status)),
        ("基准日", "As of", v.as_of.isoformat()),
        ("发布时间（北京时间）", "Published at", local_time(v.published_at)),
        ("来源运行", "Run", v.run_id),
        ("签核记录编号", "Sign-off", str(v.signoff_id)),
        ("产品数据集哈希（SHA-256）", "Output hash", Code(v.output_hash, digest=True)),
        ("相对前一版本的漂移", "Drift at build", cell_text(drift)),
    ]
    return facts_frame(facts), isinstance(drift, Verdict) and not drift.ok


def product_versions(session: Session) -> list[PublishedVersion]:
    """Every published or superseded version, live ones first, newest version first."""
    titles = {p.name: p.title_zh for p in session.exec(select(Product))}
    versions = session.exec(
        select(ProductVersion).order_by(
            col(ProductVersion.status),
            col(ProductVersion.product_name),
            col(ProductVersion.version).desc(),
        )
    ).all()
    out = []
    for v in versions:
        title = titles.get(v.product_name, v.product_name)
        facts, flagged = _version_facts(v, title)
        metrics = {k: val for k, val in (v.metrics or {}).items() if k != "drift"}
        out.append(
            PublishedVersion(
                id=v.id,
                product=v.product_name,
                title_zh=title,
                status=v.status,
                as_of=v.as_of.isoformat(),
                facts=facts,
                drift_flagged=flagged,
                card=model_card(metrics),
            )
        )
    return out


def product_catalog(session: Session) -> pl.DataFrame:
    """The registered products: purposes, price per call and the version now served."""
    live = {
        v.product_name: v.id
        for v in session.exec(select(ProductVersion).where(ProductVersion.status == "published"))
    }
    rows = [
        {
            "产品": p.name,
            "名称": p.title_zh,
            "用途": "、".join(p.purposes),
            "单价（元/次）": yuan(p.price_fen),
            "现行版本": live.get(p.name, "尚无"),
        }
        for p in session.exec(select(Product).order_by(col(Product.name)))
    ]
    return pl.DataFrame(
        rows, schema=dict.fromkeys(["产品", "名称", "用途", "单价（元/次）", "现行版本"], pl.String)
    )
