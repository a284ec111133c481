"""异议: enterprises' objections to data items, open and resolved, and how long resolving takes."""

from __future__ import annotations

import altair as alt
import streamlit as st

from dashboard import auth
from dashboard.data import objections as data
from dashboard.i18n import t
from dashboard.state import workspace
from pdo.ledger.db import read_scope

_, entry = auth.require_page("objections")
st.title(t(entry.title_zh, entry.title_en))
st.caption(
    t(
        "企业对数据产品所用数据项提出的异议：处理期间该企业的结果暂停提供（标记为争议），"
        "异议成立则更正后重新评分，不成立则恢复原结果。企业以统一社会信用代码显示，"
        "个体工商户以假名显示。",
        "Enterprises' objections to data items: results are withheld while open, re-scored when "
        "upheld, served again when rejected. Companies by USCC, sole proprietors by pseudonym.",
    )
)

STATUS_FILTER = {
    "all": ("全部", "All"),
    "open": ("处理中", "Open"),
    "resolved": ("已解决", "Resolved"),
}

with read_scope(workspace().engine) as session:
    names = data.products(session)
    with st.sidebar:
        status = st.radio(
            t("状态", "Status"),
            list(STATUS_FILTER),
            format_func=lambda k: t(*STATUS_FILTER[k]),
            key="objections-status",
        )
        chosen = st.multiselect(
            t("产品", "Products"),
            names,
            default=names,
            key="objections-products",
            disabled=not names,
        )
    product_filter = chosen if names else None
    kpis = data.kpis(session, product_filter)
    rows = data.listing(session, None if status == "all" else status, product_filter)
    weekly = data.per_week(session, product_filter)

if not names:
    st.info(
        t(
            "暂无异议：企业提出异议后（`pdo objection add`）在此显示，并可跟踪处理用时。",
            "No objections yet: they appear here once raised (`pdo objection add`).",
        )
    )
    st.stop()

c1, c2, c3, c4, c5 = st.columns(5)
c1.metric(t("处理中", "Open"), kpis.open)
c2.metric(t("已解决", "Resolved"), kpis.resolved)
c3.metric(t("其中异议成立", "Upheld"), kpis.upheld)
c4.metric(t("解决用时中位数（天）", "Median days to resolve"), data.days_text(kpis.median_days))
c5.metric(t("最长解决用时（天）", "Longest days to resolve"), data.days_text(kpis.max_days))
if kpis.oldest_open_days is not None:
    st.caption(
        t(
            f"最早一件未解决的异议已等待 {kpis.oldest_open_days:.2f} 天。",
            f"The oldest open objection has waited {kpis.oldest_open_days:.2f} days.",
        )
    )

st.subheader(t("每周异议数", "Objections per week"))
if weekly.height:
    week, kind, count = weekly.columns
    chart = (
        alt.Chart(weekly.with_columns(weekly[week].cast(str)).to_pandas())
        .mark_bar()
        .encode(
            x=alt.X(f"{week}:O", title=week, axis=alt.Axis(labelAngle=0)),
            xOffset=alt.XOffset(f"{kind}:N"),
            y=alt.Y(f"{count}:Q", title=count, axis=alt.Axis(tickMinStep=1)),
            color=alt.Color(f"{kind}:N", title=kind),
            tooltip=[week, kind, count],
        )
    )
    st.altair_chart(chart, width="stretch")
else:
    st.caption(t("所选产品暂无异议。", "No objections for the chosen products."))

st.subheader(t("异议列表", "Objections"))
if rows.height:
    st.dataframe(rows, hide_index=True, width="stretch")
else:
    st.info(
        t(
            "没有符合筛选条件的异议：请在侧栏调整状态或产品。",
            "No objection matches the filters: adjust status or products in the sidebar.",
        )
    )
