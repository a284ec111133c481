"""收益分配: billed revenue and each party's allocation per month, checked to the fen."""

from __future__ import annotations

import altair as alt
import polars as pl
import streamlit as st

from dashboard import auth
from dashboard.data import revenue
from dashboard.i18n import t
from dashboard.queries import yuan
from dashboard.state import workspace
from pdo.ledger.db import read_scope
from pdo.ledger.types import utcnow
from pdo.review_report import local_time

account, entry = auth.require_page("revenue")
st.title(t(entry.title_zh, entry.title_en))
st.caption(
    t(
        "每月结算时，各产品版本的净收入（计费减退款）按其收益分配规则，以最大余数法精确到分"
        "分配给各数据提供部门、授权运营单位及授权文书列明的其他方。",
        "At each monthly settlement, every product version's net revenue (billed less refunds) "
        "is split by its revenue rule, to the fen by the largest-remainder method, among the "
        "departments that supply its data, the authorized operator and any other party the "
        "authorization names.",
    )
)

engine = workspace().engine
with read_scope(engine) as session:
    names = revenue.party_names(session, t)
    totals = revenue.totals(session)
    available = revenue.months(session, utcnow())
    labels = {m.period: m.label(t) for m in available}
    with st.sidebar:
        period = st.selectbox(
            t("结算月份", "Month"),
            options=list(labels),
            format_func=labels.__getitem__,
            key="revenue_period",
            help=t(
                "已结算月份取自结算记录；本月及已结束未结算的月份为试算。",
                "Settled months as recorded; this month and ended, unsettled ones provisional.",
            ),
        )
    month = next(m for m in available if m.period == period)
    view = revenue.month_view(session, period, totals.unsettled)
    figures = view.figures
    parties = revenue.party_frame(figures, names, t)
    versions = revenue.version_frame(figures, t)
    allocations = revenue.allocation_table(session, figures, t)
    statements = revenue.statement_table(session, figures, t)
    files = revenue.downloads(period, figures.settled)
    history = revenue.trend(session, names, t)

# --- all periods -------------------------------------------------------------------------

st.subheader(t("累计（全部期间）", "All periods"))
c1, c2, c3, c4 = st.columns(4)
c1.metric(t("计费总额（元）", "Billed (CNY)"), yuan(totals.billed_fen))
c2.metric(t("退款（元）", "Refunds (CNY)"), yuan(totals.refunded_fen))
c3.metric(t("分配合计（元）", "Allocated (CNY)"), yuan(totals.allocated_fen))
c4.metric(t("核对", "Reconciled"), t("一致", "yes") if totals.balanced else t("不一致", "NO"))
if not totals.by_party:
    st.info(t("暂无收益分配记录。", "No revenue allocated yet."))
else:
    st.dataframe(revenue.totals_frame(totals, names, t), hide_index=True, width="stretch")
if totals.balanced:
    st.success(
        t(
            f"各方分配合计 {yuan(totals.allocated_fen)} 元，与计费总额减退款一致（精确到分）。",
            f"Allocations total {yuan(totals.allocated_fen)} CNY, equal to billed less refunds "
            "(to the fen).",
        )
    )
else:
    st.error(
        t(
            f"分配合计 {yuan(totals.allocated_fen)} 元与计费总额 {yuan(totals.billed_fen)} 元"
            f"减退款 {yuan(totals.refunded_fen)} 元不一致。",
            f"Allocations of {yuan(totals.allocated_fen)} CNY differ from billed "
            f"{yuan(totals.billed_fen)} CNY less refunds {yuan(totals.refunded_fen)} CNY.",
        )
    )

# --- the chosen month --------------------------------------------------------------------

st.subheader(t(f"{period} 月度结算", f"{period} settlement"))
if view.recorded is not None:
    r = view.recorded
    st.caption(
        t(
            f"已于 {local_time(r.closed_at)}（北京时间）由 {r.closed_by} 结算，"
            f"结算摘要 {r.digest[:16]}… 已记入审计链。",
            f"Settled by {r.closed_by} at {local_time(r.closed_at)} (Beijing time); "
            f"digest {r.digest[:16]}… is on the audit chain.",
        )
    )
elif month.ended:
    st.warning(
        t(
            f"{period} 已于 {revenue.closes_at(period)}（北京时间）结束，但尚未结算：以下为试算数字"
            f"（未结算）。请由运营方运行 `pdo settle --period {period}` 结算。",
            f"{period} ended at {revenue.closes_at(period)} (Beijing time) but is not settled: "
            f"the figures below are provisional. The operator closes it with "
            f"`pdo settle --period {period}`.",
        ),
        icon=":material/pending_actions:",
    )
else:
    st.info(
        t(
            f"{period} 尚未结束：以下为试算数字（未结算），随新的调用变化。本月于 "
            f"{revenue.closes_at(period)}（北京时间）结束后，由运营方运行 "
            f"`pdo settle --period {period}` 结算，结算后数字不再改变。",
            f"{period} is still open: the figures below are provisional (not settled) and grow "
            f"with new calls. After it ends at {revenue.closes_at(period)} (Beijing time) the "
            f"operator closes it with `pdo settle --period {period}`; then it never changes.",
        ),
        icon=":material/hourglass_top:",
    )
if view.recorded is not None and st.button(
    t("与调用记录重新核对", "Re-check against the usage events"),
    key="revenue-recheck",
    icon=":material/fact_check:",
    help=t(
        "重新汇总本期已结算的调用记录，与结算时记入审计链的摘要比对。",
        "Re-aggregates the month's settled usage events and compares them with the digest "
        "recorded on the audit chain at settlement.",
    ),
):
    with read_scope(engine) as session:
        intact = revenue.recheck(session, period)
    if intact:
        st.success(
            t(
                f"重新核对一致：{period} 的调用记录仍得出结算时记录的各方分配。",
                f"Re-check passed: {period}'s usage events still give the recorded allocation.",
            )
        )
    else:
        st.error(
            t(
                f"重新核对不一致：{period} 的调用记录与结算记录不符，结算后调用记录可能被改动。",
                f"Re-check FAILED: {period}'s usage events no longer give the recorded "
                "allocation; they may have been altered after settlement.",
            )
        )
if not month.settled and any(m.ended and not m.settled and m.period < period for m in available):
    st.caption(
        t(
            "此前仍有已结束但未结算的月份：在其结算之前，本期试算也包含这些月份的调用。",
            "Earlier months ended without a settlement: until they are settled, this "
            "provisional figure includes their calls too.",
        )
    )

m1, m2, m3, m4, m5 = st.columns(5)
m1.metric(t("本期计费（元）", "Billed this month (CNY)"), yuan(figures.billed_fen))
m2.metric(t("本期退款（元）", "Refunds this month (CNY)"), yuan(figures.refunded_fen))
m3.metric(t("本期净收入（元）", "Net this month (CNY)"), yuan(figures.net_fen))
m4.metric(t("本期已分配（元）", "Allocated this month (CNY)"), yuan(view.allocated_fen))
m5.metric(
    t("本期核对", "Month reconciled"), t("一致", "yes") if view.reconciles else t("不一致", "NO")
)

if figures.events == 0:
    st.info(
        t(
            "本期暂无计费调用：银行通过 API 查询、接收预警或批量文件后在此显示。",
            "No billed usage this month yet: bank queries, alerts and batch files show up here.",
        )
    )
else:
    if view.reconciles:
        st.success(
            t(
                f"本期 {figures.events:,} 次调用/交付，净收入 {yuan(figures.net_fen)} 元，"
                f"各方分配合计 {yuan(view.allocated_fen)} 元，一致（精确到分）。",
                f"{figures.events:,} calls/deliveries, net {yuan(figures.net_fen)} CNY, "
                f"allocated {yuan(view.allocated_fen)} CNY: equal to the fen.",
            )
        )
    else:
        st.error(
            t(
                f"本期净收入 {yuan(figures.net_fen)} 元与分配合计 {yuan(view.allocated_fen)} 元"
                "（或与结算记录）不一致，请核查。",
                f"Net {yuan(figures.net_fen)} CNY and allocations {yuan(view.allocated_fen)} CNY "
                "(or the recorded settlement) differ: investigate.",
            )
        )
    name_col, yuan_col = t("分配方", "Party"), t("金额（元）", "Amount (CNY)")
    fen_col, share_col = t("金额（分）", "Amount (fen)"), t("占比", "Share")
    chart_data = parties.with_columns((pl.col(fen_col) / 100).alias("amount"))
    bars = (
        alt.Chart(chart_data.to_pandas())
        .mark_bar()
        .encode(
            x=alt.X("amount:Q", title=t("金额（元）", "Amount (CNY)")),
            y=alt.Y(f"{name_col}:N", sort="-x", title=None),
            tooltip=[
                alt.Tooltip(f"{name_col}:N"),
                alt.Tooltip(f"{yuan_col}:N"),
                alt.Tooltip(f"{share_col}:N"),
            ],
        )
        .properties(title=t(f"{period} 各方分配", f"{period} allocation by party"))
    )
    left, right = st.columns([3, 2])
    left.altair_chart(bars, width="stretch")
    right.dataframe(parties.drop(fen_col), hide_index=True, width="stretch")
    st.markdown(t("**按产品版本**", "**By product version**"))
    st.dataframe(versions, hide_index=True, width="stretch")
    st.markdown(t("**分配明细（版本 × 分配方）**", "**Allocation lines (version × party)**"))
    st.dataframe(allocations, hide_index=True, width="stretch")
    st.markdown(t("**银行对账单**", "**Bank statements**"))
    if statements.is_empty():
        st.info(t("本期暂无对账单。", "No statement lines this month."))
    else:
        st.dataframe(statements, hide_index=True, width="stretch")
    d1, d2, d3 = st.columns(3)
    for column, f in zip((d1, d2, d3), files, strict=True):
        column.download_button(
            t(f"下载{f.label_zh}", f"Download {f.label_en}"),
            # made on click, not on every render
            data=revenue.file_maker(engine, period, f.key, account.name),
            file_name=f.file_name,
            mime=f.mime,
            key=f"revenue-download-{f.file_name}",
            icon=":material/download:",
        )

# --- the trend over settled months -------------------------------------------------------

st.subheader(t("月度净收入趋势（已结算月份）", "Net revenue per settled month"))
if history.is_empty():
    st.info(
        t(
            "暂无已结算月份：每月结束后由运营方运行 `pdo settle --period YYYY-MM` 结算，"
            "结算后的月份在此按分配方显示。",
            "No settled month yet: after a month ends the operator runs "
            "`pdo settle --period YYYY-MM`; settled months then show here by party.",
        )
    )
else:
    stacked = (
        alt.Chart(history.to_pandas())
        .mark_bar()
        .encode(
            x=alt.X("period:N", title=t("结算月份", "Month")),
            y=alt.Y("yuan:Q", stack="zero", title=t("净收入（元）", "Net revenue (CNY)")),
            color=alt.Color("party:N", title=t("分配方", "Party")),
            tooltip=[
                alt.Tooltip("period:N", title=t("月份", "Month")),
                alt.Tooltip("party:N", title=t("分配方", "Party")),
                alt.Tooltip("yuan_text:N", title=t("金额（元）", "Amount (CNY)")),
            ],
        )
    )
    st.altair_chart(stacked, width="stretch")
