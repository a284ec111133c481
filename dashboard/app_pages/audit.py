"""审计: whether the hash-chained audit log is intact, and its latest events."""

from __future__ import annotations

import streamlit as st

from dashboard import auth, queries
from dashboard.state import workspace
from pdo.ledger.db import session_scope

auth.require_user()
st.title("审计")
st.caption("审计事件逐条哈希链接；任何事后修改都会使校验失败。")

with session_scope(workspace().engine) as session:
    chain = queries.audit_chain(session)
    events = queries.latest_audit_events(session)

c1, c2 = st.columns(2)
c1.metric("审计链", "完整" if chain.ok else "已损坏")
c2.metric("事件数", chain.events)
if chain.ok:
    st.success(f"审计链完整：{chain.events} 条事件逐条重算哈希，全部一致。")
else:
    st.error(
        f"审计链已损坏：第 {chain.broken_at} 条事件{queries.chain_reason_zh(chain.reason)}"
        f"（{chain.reason}）。"
    )

st.subheader("最近的审计事件")
if events.is_empty():
    st.info("暂无审计事件。")
else:
    st.dataframe(events, hide_index=True, width="stretch")
