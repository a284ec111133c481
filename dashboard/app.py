"""Console entrypoint: settings read once, workspace cached, pages chosen by who is logged in."""

from __future__ import annotations

import streamlit as st
from streamlit.navigation.page import StreamlitPage

from dashboard import auth, state
from dashboard.i18n import language_toggle, t
from dashboard.registry import SECTIONS, landing_page, pages_for
from pdo.settings import Settings

st.set_page_config(
    page_title="监管与运营控制台 · 公共数据授权运营",
    page_icon=":material/account_balance:",
    layout="wide",
)

if not state.is_bound():
    state.bind(Settings())  # the only place the console reads PDO_* from the environment

account = auth.current_user()
with st.sidebar:
    language_toggle()
if account is None:
    page = st.navigation(
        [
            st.Page(
                "app_pages/login.py",
                title=t("登录", "Log in"),
                icon=":material/login:",
                url_path="login",
            )
        ]
    )
else:
    menu: dict[str, list[StreamlitPage]] = {}
    for entry in pages_for(account.role):
        section = t(*SECTIONS[entry.section])
        menu.setdefault(section, []).append(
            st.Page(
                entry.path,
                title=t(entry.title_zh, entry.title_en),
                icon=entry.icon,
                url_path=entry.key,
                default=entry.key == landing_page(account.role),
            )
        )
    page = st.navigation(menu)
    with st.sidebar:
        st.markdown(t(f"当前用户：**{account.name}**", f"User: **{account.name}**"))
        st.markdown(t(f"角色：**{account.role_label}**", f"Role: **{account.role_label}**"))
        st.button(
            t("退出登录", "Log out"), key="logout", icon=":material/logout:", on_click=auth.logout
        )

page.run()
