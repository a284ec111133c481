"""Console entrypoint: settings read once, workspace cached, pages chosen by who is logged in."""

from __future__ import annotations

import streamlit as st

from dashboard import auth, state
from pdo.settings import Settings

st.set_page_config(
    page_title="监管与运营控制台 · 公共数据授权运营",
    page_icon=":material/account_balance:",
    layout="wide",
)

if not state.is_bound():
    state.bind(Settings())  # the only place the console reads PDO_* from the environment

account = auth.current_user()
if account is None:
    page = st.navigation(
        [st.Page("app_pages/login.py", title="登录", icon=":material/login:", url_path="login")]
    )
else:
    page = st.navigation(
        {
            "运营": [
                st.Page(
                    "app_pages/signoff.py",
                    title="签核队列",
                    icon=":material/fact_check:",
                    url_path="signoff",
                    default=True,
                ),
                st.Page("app_pages/quality.py", title="质量报告", icon=":material/rule:"),
                st.Page("app_pages/products.py", title="数据产品", icon=":material/analytics:"),
                st.Page("app_pages/usage.py", title="用量", icon=":material/query_stats:"),
                st.Page("app_pages/revenue.py", title="收益分配", icon=":material/pie_chart:"),
            ],
            "监管": [st.Page("app_pages/audit.py", title="审计", icon=":material/verified_user:")],
        }
    )
    with st.sidebar:
        st.markdown(f"当前用户：**{account.name}**")
        st.markdown(f"角色：**{account.role_zh}**")
        st.button("退出登录", key="logout", icon=":material/logout:", on_click=auth.logout)

page.run()
