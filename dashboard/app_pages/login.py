"""登录: the only page reachable before a user has authenticated against the ledger."""

from __future__ import annotations

import streamlit as st

from dashboard import auth

_FAILED = "login_failed"


def _submit() -> None:
    """Runs before the next script run, so a success lands straight on the console pages."""
    name = st.session_state.get("login_name", "")
    password = st.session_state.get("login_password", "")
    st.session_state[_FAILED] = auth.login(name, password) is None


_, middle, _ = st.columns([1, 2, 1])
with middle:
    st.title("监管与运营控制台")
    st.caption("公共数据授权运营 · 签核、用量、收益分配与审计")
    with st.form("login"):
        st.text_input("用户名", key="login_name")
        st.text_input("密码", type="password", key="login_password")
        st.form_submit_button("登录", type="primary", key="login_submit", on_click=_submit)
    if st.session_state.get(_FAILED):
        st.error("登录失败：用户名或密码错误。")
