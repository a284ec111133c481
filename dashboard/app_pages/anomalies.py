"""异常告警: usage spikes, off-hours bulk queries, out-of-consent / out-of-portfolio attempts,
disclosure-budget breaches and drifting product versions — each with its rule spelled out."""

from __future__ import annotations

import datetime as dt

import polars as pl
import streamlit as st

from dashboard import auth
from dashboard.data import anomalies as data
from dashboard.data.usage import Window, beijing_today
from dashboard.i18n import t
from dashboard.state import workspace

DEFAULT_DAYS = 7

_, entry = auth.require_page("anomalies")
st.title(t(entry.title_zh, entry.title_en))
st.caption(
    t(
        "按固定规则从调用与拒绝记录中筛出需要关注的情况，供监管与合规审查核实；"
        "规则与阈值写在每一节中。时间均为北京时间。",
        "Fixed rules pick out calls and refusals worth a closer look; each section states its "
        "rule and thresholds. Times are Beijing time.",
    )
)

today = beijing_today()
with st.sidebar:
    st.header(t("筛选条件", "Filters"))
    chosen = st.date_input(
        t("日期范围（北京时间）", "Dates (Beijing time)"),
        value=(today - dt.timedelta(days=DEFAULT_DAYS - 1), today),
        key="anomalies_dates",
        help=t(
            f"默认为最近 {DEFAULT_DAYS} 天；突增的中位数按所选期间计算。",
            f"The last {DEFAULT_DAYS} days by default; spike medians are over this period.",
        ),
    )
dates = tuple(chosen) if isinstance(chosen, list | tuple) else (chosen,)
dates = dates or (today,)
window = Window(min(dates[0], dates[-1]), max(dates[0], dates[-1]))

found = data.find(workspace().engine, window, t)

counts = (
    (t("调用量突增（小时）", "Spike hours"), found.spikes.height),
    (t("夜间批量（夜）", "Off-hours bulk nights"), found.nights.height),
    (t("越权尝试（次）", "Out-of-scope attempts"), found.out_of_scope_calls),
    (t("披露额度超限（次）", "Budget breaches"), found.budget_calls),
    (t("评分漂移版本", "Drifting versions"), found.drift.height),
)
for column, (label, n) in zip(st.columns(len(counts)), counts, strict=True):
    column.metric(label, f"{n:,}")
st.caption(t(f"统计期间：{window.label()}（北京时间）。", f"Period: {window.label()} (Beijing)."))


def _section(title: str, n: int, rule: str, frame: pl.DataFrame, none: str) -> None:
    """One rule: its findings' count in the heading, the rule in words, the table."""
    st.subheader(f"{title}（{n:,}）")
    st.caption(rule)
    if frame.is_empty():
        st.success(none, icon=":material/check_circle:")
    else:
        st.dataframe(frame, hide_index=True, width="stretch")


_section(
    t("调用量突增", "Usage spikes"),
    found.spikes.height,
    t(
        f"规则：某银行在一个小时内的调用次数超过其在所选期间内有调用的各小时调用次数中位数的 "
        f"{data.SPIKE_FACTOR} 倍，且不少于 {data.SPIKE_MIN_CALLS} 次。突增可能意味着批量爬取、"
        "密钥泄露或系统故障，请向该行核实当时的业务。",
        f"Rule: a bank's calls in one hour exceed {data.SPIKE_FACTOR}× the median of its hours "
        f"with calls in the period, and number at least {data.SPIKE_MIN_CALLS}. A spike may mean "
        "scraping, a leaked key or a faulty system: ask the bank what happened.",
    ),
    found.spikes,
    t("所选期间内未发现调用量突增。", "No spikes in this period."),
)
_section(
    t("夜间批量查询", "Off-hours bulk queries"),
    found.nights.height,
    t(
        f"规则：某银行在一个夜间（北京时间 {data.NIGHT_START_HOUR:02d}:00 至次日 "
        f"{data.NIGHT_END_HOUR:02d}:00）调用不少于 {data.NIGHT_MIN_CALLS} 次，夜间按开始的日期记"
        "（所选期间最后一天的夜间计至次日早上）。"
        "贷前审查与贷后管理通常在营业时间进行，夜间批量查询需核实用途。",
        f"Rule: a bank makes at least {data.NIGHT_MIN_CALLS} calls in one night "
        f"({data.NIGHT_START_HOUR:02d}:00 to {data.NIGHT_END_HOUR:02d}:00 Beijing time, named by "
        "the evening it starts; the period's last night runs into the next morning). Lending "
        "checks happen in business hours: ask what these were for.",
    ),
    found.nights,
    t("所选期间内未发现夜间批量查询。", "No off-hours bulk queries in this period."),
)
_section(
    t("越出同意书或贷后名单的尝试", "Out-of-consent / out-of-portfolio attempts"),
    found.out_of_scope_calls,
    t(
        "规则：被拒绝并标记的请求中，原因为同意书问题（未提供、未登记、属于其他企业、已撤回、"
        "未覆盖所声明的用途或不在有效期内），或贷后管理查询的企业不在该行的贷后名单内。"
        "这些请求没有返回任何结果，但说明银行曾试图超出授权范围查询。",
        "Rule: refused and flagged requests whose reason is the consent (none named, not "
        "registered, another enterprise's, withdrawn, not covering the purpose, or not valid "
        "then) or a post-loan query for an enterprise outside the bank's loan book. Nothing was "
        "returned, but the bank tried to look beyond its authorization.",
    ),
    found.out_of_scope,
    t("所选期间内没有越出同意书或贷后名单范围的尝试。", "No out-of-scope attempts."),
)
if not found.out_of_scope_latest.is_empty():
    with st.expander(
        t(
            f"最近 {found.out_of_scope_latest.height} 次尝试（逐条）",
            f"Latest {found.out_of_scope_latest.height} attempts",
        )
    ):
        st.dataframe(found.out_of_scope_latest, hide_index=True, width="stretch")
_section(
    t("超出每日披露额度", "Disclosure budget breaches"),
    found.budget_calls,
    t(
        f"规则：银行当天查询的不同企业数已达其每日披露额度后，再查询新的企业被拒绝"
        f"（{data.BUDGET_CODE}）。按银行和日期汇总；频繁超限可能意味着批量探查。",
        f"Rule: a bank had looked up as many distinct enterprises as its daily disclosure budget "
        f"allows and asked for another ({data.BUDGET_CODE}). Per bank and day; frequent "
        "breaches can mean probing in bulk.",
    ),
    found.budget,
    t("所选期间内没有超出披露额度的请求。", "No budget breaches in this period."),
)
_section(
    t("评分漂移", "Score drift"),
    found.drift.height,
    t(
        f"规则：产品版本构建时评分分布相对前一版本的 PSI ≥ {data.DRIFT_PSI}，或构建时已标记漂移。"
        "审核员签核前已看到该提示；此处列出全部此类版本（不限日期），供持续监督。",
        f"Rule: a product version whose scores moved from its predecessor's by PSI ≥ "
        f"{data.DRIFT_PSI}, or was flagged as drifting when built. Reviewers saw this before "
        "signing off; every such version is listed (whatever the dates).",
    ),
    found.drift,
    t("没有评分漂移超过阈值的产品版本。", "No product version drifted past the threshold."),
)
