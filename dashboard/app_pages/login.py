"""登录: the only page reachable before a user has authenticated against the ledger."""

from __future__ import annotations

import streamlit as st

from dashboard import auth
from dashboard.i18n import t

_FAILED = "login_failed"


def _submit() -> None:
    """Runs before the next script run, so a success lands straight on the console pages."""
    name = st.session_state.get("login_name", "")
    password = st.session_state.get("login_password", "")
    st.session_state[_FAILED] = auth.login(name, password) is None


_, middle, _ = st.columns([1, 2, 1])
with middle:
    st.title(t("监管与运营控制台", "Authority & operations console"))
    st.caption(
        t(
            "公共数据授权运营 · 签核、用量、收益分配与审计",
            "Public-data authorized operation · sign-off, usage, revenue and audit",
        )
    )
    if auth.session_expired() and not st.session_state.get(_FAILED):
        st.info(t("会话已过期，请重新登录。", "Your session expired; please log in again."))
    with st.form("login"):
        st.text_input(t("用户名", "User name"), key="login_name")
        st.text_input(t("密码", "Password"), type="password", key="login_password")
        st.form_submit_button(
            t("登录", "Log in"), type="primary", key="login_submit", on_click=_submit
        )
    if st.session_state.get(_FAILED):
        st.error(t("登录失败：用户名或密码错误。", "Login failed: wrong user name or password."))
