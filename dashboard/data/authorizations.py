"""授权管理: every grant with its scope, 三权分置 rights, revenue terms, validity and state.

Reading is plain SQL over the (small) authorization table; acting goes through
`pdo.registration`, which checks the actor's role in the ledger once more and writes the audit
event, so the console adds no rule of its own.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl
from sqlmodel import Session, col, select

from dashboard.i18n import t
from pdo.delivery.periods import BUSINESS_TZ
from pdo.ledger.models import Authorization, Product
from pdo.ledger.types import utcnow
from pdo.registration import (
    authorization_state,
    renew_authorization,
    revoke_authorization,
    state_message,
)
from pdo.review_report import local_time
from pdo.sources.departments import DEPARTMENTS
from pdo.sources.tables import SOURCE_TABLES

STATES = ("active", "not_yet_valid", "expired", "revoked")
STATE_ZH = {"active": "有效", "expired": "已到期", "revoked": "已撤销", "not_yet_valid": "尚未生效"}
STATE_EN = {
    "active": "Active",
    "expired": "Expired",
    "revoked": "Revoked",
    "not_yet_valid": "Not yet valid",
}
RIGHT_EN = {
    "数据资源持有权": "Data holding",
    "数据加工使用权": "Processing",
    "数据产品经营权": "Operation",
}
MAX_RENEW_DAYS = 3650


def state_label(state: str) -> str:
    return t(STATE_ZH.get(state, state), STATE_EN.get(state, state))


def bp_percent(bp: int) -> str:
    """Basis points as a percentage with two decimals, from integers only."""
    return f"{bp // 100}.{bp % 100:02d}%"


def _department(table_name: str) -> tuple[str, str]:
    """The table's Chinese label and its department's name (zh, en), or the raw names."""
    for source in SOURCE_TABLES:
        if source.name == table_name:
            for d in DEPARTMENTS:
                if d.code == source.department:
                    return source.label_zh, t(d.name_zh, d.name_en)
            return source.label_zh, source.department
    return "", t("未登记", "not registered")


@dataclass(frozen=True)
class Grant:
    """One authorization as the page shows it (no secret, nothing personal)."""

    id: str
    reference: str
    authority: str
    operator: str
    state: str
    message: str
    valid_from: str
    valid_until: str
    revoked_at: str
    revoked_by: str
    revoke_reason: str
    table_names: tuple[str, ...]
    purposes: tuple[str, ...]
    products: tuple[str, ...]
    facts: pl.DataFrame  # 项目 / 内容
    tables: pl.DataFrame  # 数据表 / 名称 / 提供部门

    @property
    def state_label(self) -> str:
        return state_label(self.state)

    @property
    def label(self) -> str:
        return f"{self.reference} · {self.state_label}"


@dataclass(frozen=True)
class _BeijingTerms:
    """A grant's terms with its dates in Beijing time, so `state_message` names local days."""

    reference: str
    status: str
    valid_from: dt.datetime
    valid_until: dt.datetime


def _named(reference: str) -> str:
    """How the Chinese text names a grant: its reference, without a doubled "授权"."""
    return reference if reference.startswith("授权") else f"授权 {reference}"


def _message(auth: Authorization, state: str) -> str:
    """`pdo.registration.state_message` is bilingual ("zh / en"): the session's half of it."""
    if state == "active":
        until = local_time(auth.valid_until)
        return t(
            f"{_named(auth.reference)} 有效，至 {until}（北京时间）",
            f"Authorization {auth.reference} is active until {until} (Beijing)",
        )
    local = _BeijingTerms(
        auth.reference,
        auth.status,
        auth.valid_from.astimezone(BUSINESS_TZ),
        auth.valid_until.astimezone(BUSINESS_TZ),
    )
    zh, _, en = state_message(local, state).partition(" / ")
    zh = zh.replace(f"授权 {auth.reference}", _named(auth.reference), 1)
    return t(zh, en or zh)


def _facts(auth: Authorization, state: str, titles: dict[str, str]) -> pl.DataFrame:
    rights = "；".join(
        f"{t(name, RIGHT_EN.get(name, name))}：{'、'.join(h) if isinstance(h, list) else h}"
        for name, h in (auth.rights or {}).items()
    )
    products = "、".join(f"{titles[p]}（{p}）" if p in titles else p for p in auth.products or [])
    rows: list[tuple[str, str]] = [
        (t("授权文号", "Reference"), auth.reference),
        (t("授权机关", "Authority"), auth.authority),
        (t("授权运营单位", "Operator"), auth.operator),
        (t("状态", "Status"), state_label(state)),
        (t("用途", "Purposes"), "、".join(auth.purposes or []) or "—"),
        (t("数据产品", "Products"), products or "—"),
        (t("三权分置", "Separated rights"), rights or "—"),
        (
            t("部门最低分成比例", "Least department share"),
            bp_percent(auth.min_department_share_bp),
        ),
        (
            t("其他收益方", "Other revenue parties"),
            "、".join(auth.revenue_parties or []) or t("无", "none"),
        ),
        (t("生效时间（北京时间）", "Valid from (Beijing)"), local_time(auth.valid_from)),
        (t("到期时间（北京时间）", "Valid until (Beijing)"), local_time(auth.valid_until)),
        (t("授予人", "Granted by"), auth.granted_by),
    ]
    if auth.revoked_at is not None:
        rows += [
            (t("撤销时间（北京时间）", "Revoked at (Beijing)"), local_time(auth.revoked_at)),
            (t("撤销人", "Revoked by"), auth.revoked_by or ""),
            (t("撤销理由", "Reason"), auth.revoke_reason or ""),
        ]
    item, content = t("项目", "Item"), t("内容", "Value")
    return pl.DataFrame(
        [{item: k, content: v} for k, v in rows], schema={item: pl.String, content: pl.String}
    )


def _tables(auth: Authorization) -> pl.DataFrame:
    name, label, dept = t("数据表", "Table"), t("名称", "Name"), t("提供部门", "Department")
    rows = []
    for table_name in auth.tables or []:
        zh, department = _department(table_name)
        rows.append({name: table_name, label: zh, dept: department})
    return pl.DataFrame(rows, schema=dict.fromkeys([name, label, dept], pl.String))


def grants(session: Session, now: dt.datetime | None = None) -> list[Grant]:
    """Every grant, newest first, with its state read now (expiry is never stored)."""
    now = now or utcnow()
    titles = {p.name: p.title_zh for p in session.exec(select(Product))}
    rows = session.exec(select(Authorization).order_by(col(Authorization.created_at).desc()))
    out = []
    for auth in rows:
        state = authorization_state(auth, now)
        out.append(
            Grant(
                id=auth.id,
                reference=auth.reference,
                authority=auth.authority,
                operator=auth.operator,
                state=state,
                message=_message(auth, state),
                valid_from=local_time(auth.valid_from),
                valid_until=local_time(auth.valid_until),
                revoked_at=local_time(auth.revoked_at),
                revoked_by=auth.revoked_by or "",
                revoke_reason=auth.revoke_reason or "",
                table_names=tuple(auth.tables or ()),
                purposes=tuple(auth.purposes or ()),
                products=tuple(auth.products or ()),
                facts=_facts(auth, state, titles),
                tables=_tables(auth),
            )
        )
    return out


def state_counts(items: list[Grant]) -> dict[str, int]:
    """How many grants are in each state (every state present, zero included)."""
    counts = dict.fromkeys(STATES, 0)
    for g in items:
        counts[g.state] = counts.get(g.state, 0) + 1
    return counts


def summary(items: list[Grant]) -> pl.DataFrame:
    """One row per grant: reference, parties, scope, validity and state."""
    cols = [
        t("授权文号", "Reference"),
        t("授权机关", "Authority"),
        t("运营单位", "Operator"),
        t("状态", "Status"),
        t("数据表", "Tables"),
        t("用途", "Purposes"),
        t("数据产品", "Products"),
        t("生效时间（北京时间）", "Valid from (Beijing)"),
        t("到期时间（北京时间）", "Valid until (Beijing)"),
    ]
    rows = [
        dict(
            zip(
                cols,
                [
                    g.reference,
                    g.authority,
                    g.operator,
                    g.state_label,
                    "、".join(g.table_names),
                    "、".join(g.purposes),
                    "、".join(g.products),
                    g.valid_from,
                    g.valid_until,
                ],
                strict=True,
            )
        )
        for g in items
    ]
    return pl.DataFrame(rows, schema=dict.fromkeys(cols, pl.String))


# --- actions: the real registration functions, which check the actor's role again ---------


def revoke(session: Session, grant_id: str, actor: str, reason: str) -> Authorization:
    """Revoke through `pdo.registration` (refuses non-regulators and an empty reason)."""
    return revoke_authorization(session, grant_id, actor, reason)


def renew(session: Session, grant_id: str, days: int, actor: str) -> Authorization:
    """Extend validity by `days` through `pdo.registration` (reinstates a revoked grant)."""
    if days > MAX_RENEW_DAYS:
        raise ValueError(
            f"续期天数不能超过 {MAX_RENEW_DAYS} / --days must be at most {MAX_RENEW_DAYS}"
        )
    return renew_authorization(session, grant_id, days, actor)
