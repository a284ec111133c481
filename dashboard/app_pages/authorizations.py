"""授权管理: each grant's scope, rights, revenue terms, validity and state; revoke/renew.

Buttons only file a request in session state; the request is carried out below after the role is
read again from the session, and `pdo.registration` checks the actor's ledger role a third time.
A forged request from another role is refused and changes nothing.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import auth
from dashboard.data import authorizations as data
from dashboard.i18n import english, t
from dashboard.registry import REGULATOR
from dashboard.state import workspace
from pdo.ledger.db import read_scope, session_scope
from pdo.registration import AuthorizationError
from pdo.review_report import local_time

_REQUEST = "authorizations_request"


def _file(action: str, grant_id: str) -> None:
    """Button callback: remember what was asked (carried out by `_carry_out`, role checked)."""
    st.session_state[_REQUEST] = {
        "action": action,
        "grant": grant_id,
        "reason": str(st.session_state.get(f"revoke-reason-{grant_id}", "")),
        "days": st.session_state.get(f"renew-days-{grant_id}", 0),
    }


def _carry_out() -> None:
    """Act on a filed request, only for a regulator, reading the role right before acting."""
    request: dict[str, Any] | None = st.session_state.pop(_REQUEST, None)
    if not request:
        return
    current = auth.current_user()
    if current is None or current.role != REGULATOR:
        st.error(
            t(
                "无权操作：仅监管员可以撤销或续期授权，本次请求未执行。",
                "Not allowed: only a regulator may revoke or renew an authorization; "
                "nothing was changed.",
            ),
            icon=":material/block:",
        )
        return
    grant_id, action = str(request.get("grant", "")), request.get("action")
    try:
        with session_scope(workspace().engine) as s:
            if action == "revoke":
                reason = str(request.get("reason", "")).strip()
                if not reason:
                    st.error(t("撤销授权须填写理由。", "A revocation needs a reason."))
                    return
                done = data.revoke(s, grant_id, current.name, reason)
                message = t(
                    f"已撤销「{done.reference}」：新的运行将被拒绝，基于该授权的产品即刻停止交付。"
                    "撤销已记入台账与审计链。",
                    f"Authorization {done.reference} revoked: new runs are refused and its "
                    "products stop being delivered. Recorded in the ledger and audit chain.",
                )
            elif action == "renew":
                days = int(request.get("days") or 0)
                done = data.renew(s, grant_id, days, current.name)
                until = local_time(done.valid_until)
                message = t(
                    f"已将「{done.reference}」续期 {days} 天，有效期至 {until}（北京时间）。"
                    "续期已记入台账与审计链。",
                    f"Authorization {done.reference} renewed by {days} days, valid until "
                    f"{until} (Beijing). Recorded in the ledger and audit chain.",
                )
            else:
                return
    except (AuthorizationError, LookupError, ValueError) as exc:
        st.error(t(f"操作失败：{exc}", f"Failed: {exc}"))
        return
    st.success(message, icon=":material/check_circle:")


def _actions(grant: data.Grant) -> None:
    """Revoke (with a reason) and renew (by N days): drawn for regulators only."""
    revoke_col, renew_col = st.columns(2)
    with revoke_col:
        if grant.state == "revoked":
            st.caption(
                t(
                    "该授权已撤销；续期将恢复授权（撤销记录保留在审计链中）。",
                    "This grant is revoked; renewing reinstates it (the revocation stays in "
                    "the audit chain).",
                )
            )
        else:
            with st.form(f"revoke-form-{grant.id}", border=True):
                st.markdown(t("**撤销授权**", "**Revoke**"))
                st.text_area(
                    t("撤销理由（必填）", "Reason (required)"),
                    key=f"revoke-reason-{grant.id}",
                    placeholder=t("例如：运营单位违反授权用途", "e.g. purpose breached"),
                )
                st.form_submit_button(
                    t("撤销授权", "Revoke"),
                    type="primary",
                    icon=":material/block:",
                    key=f"revoke-{grant.id}",
                    on_click=_file,
                    args=("revoke", grant.id),
                )
    with renew_col, st.form(f"renew-form-{grant.id}", border=True):
        st.markdown(t("**续期**", "**Renew**"))
        st.number_input(
            t("延长天数", "Extend by (days)"),
            min_value=1,
            max_value=data.MAX_RENEW_DAYS,
            value=365,
            step=1,
            key=f"renew-days-{grant.id}",
            help=t(
                "自当前到期日起延长；已到期或已撤销的授权自今天起计算。",
                "Extends from the current end; a lapsed or revoked grant from today.",
            ),
        )
        st.form_submit_button(
            t("续期", "Renew"),
            icon=":material/event_repeat:",
            key=f"renew-{grant.id}",
            on_click=_file,
            args=("renew", grant.id),
        )


account, entry = auth.require_page("authorizations")
st.title(t(entry.title_zh, entry.title_en))
st.caption(
    t(
        "数据主管部门向授权运营单位授予的数据范围、用途、产品经营权与收益条款；"
        "状态在每次使用时按有效期与撤销记录实时判定。",
        "What the data authority granted the operator: tables, purposes, products and revenue "
        "terms. Status is read at every use from validity and revocation.",
    )
)
is_regulator = account.role == REGULATOR
_carry_out()
if not is_regulator:
    st.info(
        t(
            f"您的角色是{account.role_zh}：授权信息为只读，仅监管员可以撤销或续期授权。",
            f"Your role is {account.role_label}: read only; only a regulator may revoke or "
            "renew an authorization.",
        )
    )

with read_scope(workspace().engine) as session:
    grants = data.grants(session)

if not grants:
    st.info(
        t(
            "暂无授权：数据主管部门用 `pdo authorization grant` 授予后在此显示。",
            "No authorizations yet: they appear here once the authority grants one "
            "(`pdo authorization grant`).",
        )
    )
    st.stop()

counts = data.state_counts(grants)
c_all, c_active, c_expired, c_revoked, c_pending = st.columns(5)
c_all.metric(t("授权总数", "Grants"), len(grants))
c_active.metric(data.state_label("active"), counts["active"])
c_expired.metric(data.state_label("expired"), counts["expired"])
c_revoked.metric(data.state_label("revoked"), counts["revoked"])
c_pending.metric(data.state_label("not_yet_valid"), counts["not_yet_valid"])

with st.sidebar:
    shown_states = st.multiselect(
        t("授权状态", "Status"),
        list(data.STATES),
        default=list(data.STATES),
        format_func=data.state_label,
        key=f"authorizations-states-{'en' if english() else 'zh'}",  # labels follow language
    )
selected = [g for g in grants if g.state in shown_states]

st.subheader(t("授权一览", "All grants"))
if not selected:
    st.info(t("没有符合筛选条件的授权：请在侧栏调整状态筛选。", "No grant matches the filter."))
    st.stop()
st.dataframe(data.summary(selected), hide_index=True, width="stretch")

st.subheader(t("授权详情", "Grant details"))
for grant in selected:
    with st.container(border=True):
        st.markdown(f"#### {grant.reference} · {grant.state_label}")
        if grant.state == "active":
            st.caption(grant.message)
        else:
            st.warning(grant.message, icon=":material/warning:")
        facts_col, tables_col = st.columns([3, 2])
        with facts_col:
            st.table(grant.facts, hide_index=True)
        with tables_col:
            st.markdown(t("**授权数据表与提供部门**", "**Tables and departments**"))
            if grant.tables.height:
                st.table(grant.tables, hide_index=True)
            else:
                st.caption(t("该授权未列明数据表。", "This grant names no table."))
        if is_regulator:
            _actions(grant)
