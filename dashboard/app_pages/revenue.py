"""收益分配: what each department and the operator received, checked against billed usage."""

from __future__ import annotations

import streamlit as st

from dashboard import auth, queries
from dashboard.state import workspace
from pdo.ledger.db import session_scope

auth.require_user()
st.title("收益分配")
st.caption(
    "每月结算时，各产品版本的净收入（计费减退款）按其收益分配规则，以最大余数法精确到分"
    "分配给各数据提供部门、授权运营单位及授权文书列明的其他方。"
)

with session_scope(workspace().engine) as session:
    report = queries.revenue_report(session)

c1, c2, c3, c4 = st.columns(4)
c1.metric("计费总额（元）", queries.yuan(report.billed_fen))
c2.metric("退款（元）", queries.yuan(report.refunded_fen))
c3.metric("分配合计（元）", queries.yuan(report.allocated_fen))
c4.metric("核对", "一致" if report.balanced else "不一致")

if report.by_party.is_empty():
    st.info("暂无收益分配记录。")
else:
    st.dataframe(report.by_party, hide_index=True, width="stretch")
    st.subheader("按结算期间")
    st.dataframe(report.by_period, hide_index=True, width="stretch")

if report.balanced:
    st.success(
        f"各方分配合计 {queries.yuan(report.allocated_fen)} 元，与计费总额减退款一致（精确到分）。"
    )
else:
    st.error(
        f"分配合计 {queries.yuan(report.allocated_fen)} 元与计费总额 "
        f"{queries.yuan(report.billed_fen)} 元减退款 {queries.yuan(report.refunded_fen)} 元不一致。"
    )
