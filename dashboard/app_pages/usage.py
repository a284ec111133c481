"""用量: calls and billed amounts per bank, product version and purpose, in 元 from fen."""

from __future__ import annotations

import streamlit as st

from dashboard import auth, queries
from dashboard.state import workspace
from pdo.ledger.db import session_scope

auth.require_user()
st.title("用量")
st.caption("每次调用记为一条用量事件；金额以分（整数）记账，按元显示。")

with session_scope(workspace().engine) as session:
    report = queries.usage_report(session)

c1, c2 = st.columns(2)
c1.metric("调用总次数", report.calls)
c2.metric("计费总额（元）", queries.yuan(report.billed_fen))

if report.calls == 0:
    st.info("暂无调用记录。")

sections = (
    ("按银行", report.by_subscriber, "暂无接入银行。"),
    ("按产品版本", report.by_product_version, "暂无产品调用。"),
    ("按用途", report.by_purpose, "暂无调用用途。"),
)
for title, frame, empty in sections:
    st.subheader(title)
    if frame.is_empty():
        st.caption(empty)
    else:
        st.dataframe(frame, hide_index=True, width="stretch")
