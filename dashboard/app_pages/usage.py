"""使用审计: who called what, for which purpose, under which consent — by bank, product, purpose,
department and day, down to single calls, with CSV/XLSX export of the filtered calls."""

from __future__ import annotations

import datetime as dt
import time

import polars as pl
import streamlit as st

from dashboard import auth
from dashboard.data import usage as data
from dashboard.i18n import english, t
from dashboard.queries import yuan
from dashboard.state import workspace
from pdo import audit
from pdo.exports import csv_bytes, xlsx_bytes
from pdo.ledger.db import read_scope, session_scope

DEFAULT_DAYS = 30
REUSE_SECONDS = 60
_PAGE_KEY = "usage_page"
_FILTER_KEY = "usage_filter_seen"
_REPORT_KEY = "usage_report"

account, entry = auth.require_page("usage")
st.title(t(entry.title_zh, entry.title_en))
st.caption(
    t(
        "每次调用、预警推送或批量文件交付记为一条用量事件，带有银行、产品版本、用途和同意书；"
        "金额以分记账、按元显示，时间均为北京时间。",
        "Every query, alert and batch file is one usage event with its bank, product version, "
        "purpose and consent; money is kept in fen and shown in yuan, times in Beijing time.",
    )
)

ws = workspace()
with read_scope(ws.engine) as session:
    opts = data.options(session)

today = data.beijing_today()
all_label = t("全部", "All")
# Kinds and statuses read in the session's language (labels fixed when the widget is made): one
# widget per language, the choice kept apart so it survives the toggle.
lang = "_en" if english() else ""
with st.sidebar:
    st.header(t("筛选条件", "Filters"))
    chosen = st.date_input(
        t("日期范围（北京时间）", "Dates (Beijing time)"),
        value=(today - dt.timedelta(days=DEFAULT_DAYS - 1), today),
        key="usage_dates",
        help=t(f"默认为最近 {DEFAULT_DAYS} 天。", f"The last {DEFAULT_DAYS} days by default."),
    )
    banks = st.multiselect(
        t("银行", "Bank"),
        list(opts.banks),
        format_func=opts.bank_name,
        key="usage_banks",
        placeholder=all_label,
    )
    products = st.multiselect(
        t("产品", "Product"),
        list(opts.products),
        format_func=lambda p: f"{opts.products[p]}（{p}）",
        key="usage_products",
        placeholder=all_label,
    )
    purposes = st.multiselect(
        t("用途", "Purpose"), opts.purposes, key="usage_purposes", placeholder=all_label
    )
    departments = st.multiselect(
        t("数据提供部门", "Data-providing department"),
        list(opts.departments),
        format_func=opts.department_name,
        key="usage_departments",
        placeholder=all_label,
        help=t(
            "调用计入其产品版本所用数据的提供部门（即分享该版本收益的部门）。",
            "A call counts for each department whose data its product version is built from "
            "(the departments sharing that version's revenue).",
        ),
    )
    kinds = st.multiselect(
        t("调用类型", "Kind"),
        list(data.KIND_ZH),
        format_func={k: t(*v) for k, v in data.KIND_ZH.items()}.__getitem__,
        key=f"usage_kinds{lang}",
        default=st.session_state.get("usage_kinds_choice", []),
        placeholder=all_label,
    )
    st.session_state["usage_kinds_choice"] = kinds
    statuses = st.multiselect(
        t("状态", "Status"),
        list(data.STATUS_ZH),
        format_func={k: t(*v) for k, v in data.STATUS_ZH.items()}.__getitem__,
        key=f"usage_statuses{lang}",
        default=st.session_state.get("usage_statuses_choice", []),
        placeholder=all_label,
    )
    st.session_state["usage_statuses_choice"] = statuses

dates = tuple(chosen) if isinstance(chosen, list | tuple) else (chosen,)
first, last = (dates[0], dates[-1]) if dates else (today, today)
window = data.Window(min(first, last), max(first, last))
chosen_filter = data.UsageFilter(
    window=window,
    banks=tuple(banks),
    products=tuple(products),
    purposes=tuple(purposes),
    departments=tuple(departments),
    kinds=tuple(kinds),
    statuses=tuple(statuses),
)
if st.session_state.get(_FILTER_KEY) != chosen_filter:  # new filter: back to the first page
    st.session_state[_FILTER_KEY] = chosen_filter
    st.session_state[_PAGE_KEY] = 1

# Paging through the calls reruns the page: the aggregate of an unchanged filter (and language)
# is reused for a minute instead of scanning the window's events again.
cache_key = (chosen_filter, english())
cached = st.session_state.get(_REPORT_KEY)
if cached is not None and cached[0] == cache_key and time.monotonic() - cached[1] < REUSE_SECONDS:
    report, ever_called = cached[2], cached[3]
else:
    report = data.audit(ws.engine, chosen_filter, opts, t)
    if report.calls:
        ever_called = True
    else:
        with read_scope(ws.engine) as session:
            ever_called = data.any_usage(session)
    st.session_state[_REPORT_KEY] = (cache_key, time.monotonic(), report, ever_called)

c1, c2 = st.columns(2)
c1.metric(t("调用总次数", "Calls"), f"{report.calls:,}")
c2.metric(t("计费总额（元）", "Billed (CNY)"), yuan(report.billed_fen))
st.caption(t(f"统计期间：{window.label()}（北京时间）。", f"Period: {window.label()} (Beijing)."))

if report.calls == 0:
    if ever_called:
        st.info(
            t(
                "所选条件下没有调用：请扩大日期范围或减少筛选条件。",
                "No calls match: widen the dates or clear some filters.",
            )
        )
    else:
        st.info(
            t(
                "暂无调用记录：银行通过 API 调用数据产品后在此显示。",
                "No calls yet: they appear here once banks call the API.",
            )
        )
    st.stop()

st.subheader(t("每日调用与计费", "Calls and billing per day"))
st.altair_chart(data.daily_chart(report.by_day, t), width="stretch")

tab_bank, tab_version, tab_purpose, tab_department, tab_day = st.tabs(
    [
        t("按银行", "By bank"),
        t("按产品版本", "By product version"),
        t("按用途", "By purpose"),
        t("按数据提供部门", "By department"),
        t("按日", "By day"),
    ]
)
with tab_bank:
    st.dataframe(report.by_bank, hide_index=True, width="stretch")
with tab_version:
    st.dataframe(report.by_version, hide_index=True, width="stretch")
with tab_purpose:
    st.dataframe(report.by_purpose, hide_index=True, width="stretch")
with tab_department:
    st.caption(
        t(
            "一次调用计入其产品版本所用数据的每个提供部门，因此各行之和可能大于调用总次数；"
            "各部门实际分得的金额见「收益分配」。",
            "A call counts for every department whose data its version uses, so the rows can "
            "add up to more than the total; each department's actual share is on Revenue.",
        )
    )
    if report.by_department.is_empty():
        st.caption(t("所选调用的产品版本未登记数据提供部门。", "No department recorded."))
    else:
        st.dataframe(report.by_department, hide_index=True, width="stretch")
with tab_day:
    days = report.by_day.filter(report.by_day["calls"] > 0).sort("day", descending=True)
    st.dataframe(
        data.named(
            days,
            [
                ("day", "日期", "Date"),
                ("calls", "调用次数", "Calls"),
                ("yuan_text", "计费金额（元）", "Billed (CNY)"),
            ],
            t,
        ),
        hide_index=True,
        width="stretch",
    )

st.subheader(t("单笔调用明细", "Single calls"))
pages = data.pages(report.calls)
if st.session_state.get(_PAGE_KEY, 1) > pages:
    st.session_state[_PAGE_KEY] = pages
page = int(
    st.number_input(
        t("页码", "Page"), min_value=1, max_value=pages, step=1, key=_PAGE_KEY, width=220
    )
)
st.caption(
    t(
        f"共 {report.calls:,} 条，按时间由新到旧，每页 {data.PAGE_SIZE} 条，"
        f"当前第 {page}/{pages} 页。企业以统一社会信用代码显示，个体工商户以假名显示。",
        f"{report.calls:,} calls, newest first, {data.PAGE_SIZE} a page; page {page} of "
        f"{pages}. Companies by credit code, sole proprietors by pseudonym.",
    )
)
with read_scope(ws.engine) as session:
    calls = data.calls_page(session, chosen_filter, opts, page, t)
st.dataframe(calls, hide_index=True, width="stretch")

st.subheader(t("导出", "Export"))
if report.calls > data.EXPORT_CAP:
    st.warning(
        t(
            f"所选调用共 {report.calls:,} 条，导出文件只含最新的 {data.EXPORT_CAP:,} 条；"
            "请缩小日期范围分批导出。",
            f"{report.calls:,} calls match; a file holds the newest {data.EXPORT_CAP:,} only. "
            "Narrow the dates to export the rest in parts.",
        )
    )
else:
    st.caption(
        t(
            f"导出所选的全部 {report.calls:,} 条调用（与上表相同的列）；文件在点击时生成。",
            f"Exports all {report.calls:,} matching calls (the columns above), built on click.",
        )
    )
engine, lang_en = ws.engine, english()


def _text(zh: str, en: str) -> str:
    return en if lang_en else zh  # the click runs outside the script: no session state there


stem = f"usage-{window.first.isoformat()}_{window.last.isoformat()}"


def _exported(fmt: str) -> pl.DataFrame:
    """The calls, read with the record of who took them (on the audit chain, one transaction)."""
    with session_scope(engine) as s:
        frame = data.calls_export(s, chosen_filter, opts, _text)
        audit.record(s, account.name, "export.usage", stem, format=fmt, rows=frame.height)
    return frame


def _csv() -> bytes:
    return csv_bytes(_exported("csv"))


def _xlsx() -> bytes:
    return xlsx_bytes({_text("调用明细", "Calls"): _exported("xlsx")})


with st.container(horizontal=True):
    st.download_button(
        t("下载 CSV", "Download CSV"),
        data=_csv,
        file_name=f"{stem}.csv",
        mime="text/csv",
        key="usage_csv",
        on_click="ignore",
        icon=":material/download:",
    )
    st.download_button(
        t("下载 XLSX", "Download XLSX"),
        data=_xlsx,
        file_name=f"{stem}.xlsx",
        mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        key="usage_xlsx",
        on_click="ignore",
        icon=":material/download:",
    )
