"""总览: the period's calls, billing, refusals and open work beside the period before, the daily
trend, and what is waiting on someone."""

from __future__ import annotations

import datetime as dt
from typing import Literal

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from dashboard import auth
from dashboard.data import overview as data
from dashboard.data.usage import beijing_today, daily_chart
from dashboard.i18n import english, t
from dashboard.queries import yuan
from dashboard.registry import page as console_page
from dashboard.state import workspace
from pdo.ledger.db import read_scope

_CHOICE_KEY = "overview_period_choice"

account, entry = auth.require_page("overview")
st.title(t(entry.title_zh, entry.title_en))

today = beijing_today()
with st.sidebar:
    st.header(t("统计期间", "Period"))
    # The options read in the session's language, so each language has its own widget; the
    # choice itself is kept apart and survives the toggle.
    labels = {k: t(*v) for k, v in data.PERIODS.items()}
    kinds = list(labels)
    kind = st.selectbox(
        t("期间", "Period"),
        kinds,
        index=kinds.index(st.session_state.get(_CHOICE_KEY, "month")),
        format_func=labels.__getitem__,
        key="overview_period_en" if english() else "overview_period",
    )
    st.session_state[_CHOICE_KEY] = kind
    custom = None
    if kind == "custom":
        chosen = st.date_input(
            t("起止日期（北京时间）", "From–to (Beijing time)"),
            value=(today - dt.timedelta(days=6), today),
            key="overview_dates",
        )
        dates = tuple(chosen) if isinstance(chosen, list | tuple) else (chosen,)
        dates = dates or (today,)  # the picker is empty until a first day is chosen
        custom = (min(dates[0], dates[-1]), max(dates[0], dates[-1]))

period = data.period(kind, today, custom)
st.caption(
    t(
        f"统计期间：{period.current.label()}；对比期间：{period.previous.label()}"
        "（均为北京时间，本月与上月同期相比）。调用与拒绝按期间累计；待签核、未结异议与"
        "审计链事件数为期末（或当前）状态。",
        f"Period: {period.current.label()}; compared with {period.previous.label()} (Beijing "
        "time; this month against the same days of last month). Calls and refusals are "
        "totals over the period; runs awaiting sign-off, open objections and audit events are "
        "as they stood at its end (or now).",
    )
)

now = dt.datetime.now(dt.UTC)
engine = workspace().engine
shown = data.summary(engine, period, now)
current, previous = shown.current, shown.previous
with read_scope(engine) as session:
    todo = data.todos(session, now)


Color = Literal["normal", "inverse", "off"]


def _metric(
    where: DeltaGenerator,
    label: str,
    value: int,
    before: int,
    help_text: str,
    money: bool = False,
    color: Color = "normal",
) -> None:
    """A figure with its change against the previous period."""
    diff = value - before
    if money:
        shown, delta = yuan(value), (f"+{yuan(diff)}" if diff >= 0 else yuan(diff))
    else:
        shown, delta = f"{value:,}", f"{diff:+,}"
    where.metric(label, shown, delta=delta, delta_color=color, help=help_text)


c = st.columns(3)
_metric(
    c[0],
    t("调用次数", "Calls"),
    current.calls,
    previous.calls,
    t("计量的查询、预警推送与批量文件交付。", "Metered queries, alerts and batch files."),
)
_metric(
    c[1],
    t("计费金额（元）", "Billed (CNY)"),
    current.billed_fen,
    previous.billed_fen,
    t("按调用计费的总额（未扣除退款）。", "Charged for the calls, before refunds."),
    money=True,
)
_metric(
    c[2],
    t("调用银行数", "Banks calling"),
    current.banks,
    previous.banks,
    t("期间内至少调用一次的银行。", "Banks with at least one call."),
)
c = st.columns(3)
_metric(
    c[0],
    t("涉及企业数", "Enterprises looked up"),
    current.enterprises,
    previous.enterprises,
    t(
        "被查询或推送预警的不同企业（批量文件不计）。",
        "Distinct enterprises queried or alerted on (batch files not counted).",
    ),
)
_metric(
    c[1],
    t("拒绝调用", "Refused calls"),
    current.refused,
    previous.refused,
    t("被 API 拒绝、未返回结果的请求。", "Requests the API refused (nothing returned)."),
    color="inverse",
)
_metric(
    c[2],
    t("其中被标记", "of which flagged"),
    current.flagged,
    previous.flagged,
    t(
        "超出同意书或贷后名单范围、超出披露额度等需关注的尝试，详见「异常告警」。",
        "Out of consent or loan book, over the disclosure budget and the like: see Anomalies.",
    ),
    color="inverse",
)
c = st.columns(3)
_metric(
    c[0],
    t("待签核运行", "Runs awaiting sign-off"),
    current.pending_signoffs,
    previous.pending_signoffs,
    t("期末等待审核员签核的运行。", "Runs waiting at the gate at the period's end."),
    color="inverse",
)
_metric(
    c[1],
    t("未结异议", "Open objections"),
    current.open_objections,
    previous.open_objections,
    t(
        "期末尚未处理完毕的企业异议；处理完毕前相关结果暂缓提供。",
        "Objections unresolved at the period's end; their results are withheld meanwhile.",
    ),
    color="inverse",
)
_metric(
    c[2],
    t("审计链事件", "Audit chain events"),
    current.audit_events,
    previous.audit_events,
    t(
        "期末审计链上的事件数（此处只计数，完整性校验见「审计链」）。",
        "Events on the chain at the period's end (counted only; verify on Audit chain).",
    ),
    color="off",
)

st.subheader(t("每日趋势", "Daily trend"))
if current.calls == 0:
    st.info(
        t(
            "该期间暂无调用：银行通过 API 调用数据产品后，每日调用与计费在此显示。",
            "No calls in this period: daily calls and billing appear once banks call the API.",
        )
    )
else:
    st.altair_chart(daily_chart(shown.days, t), width="stretch")

st.subheader(t("待办", "To do"))
if todo.empty:
    st.success(
        t(
            "暂无待办：没有待签核的运行、未结异议或待结算的月份。",
            "Nothing waiting: no runs at the gate, open objections or months to settle.",
        )
    )
reviewer = account.is_reviewer
for run in todo.runs:
    st.markdown(
        t(
            f"- **待签核**：运行 `{run.id[:12]}`（{run.started_by} 于 {run.started_at} 发起，"
            f"已批准 {run.approvals}/{run.needed}）",
            f"- **Awaiting sign-off**: run `{run.id[:12]}` (started by {run.started_by} at "
            f"{run.started_at}, {run.approvals}/{run.needed} approvals)",
        )
    )
if todo.runs:
    st.page_link(
        console_page("signoff").path,
        label=t("前往「合规审查」审核并签核", "Review and sign off in the Sign-off queue")
        if reviewer
        else t(
            "在「合规审查」查看审核包（由审核员签核）",
            "See the review packages (reviewers sign off)",
        ),
        icon=":material/fact_check:",
    )
if todo.open_objections:
    st.markdown(
        t(
            f"- **未结异议**：{todo.open_objections} 件，最早一件提出于 {todo.oldest_objection}；"
            "处理完毕前相关结果暂缓向银行提供。",
            f"- **Open objections**: {todo.open_objections}, the oldest raised at "
            f"{todo.oldest_objection}; their results are withheld from banks until resolved.",
        )
    )
    st.page_link(
        console_page("objections").path,
        label=t("前往「异议」查看并处理", "Review them on Objections"),
        icon=":material/feedback:",
    )
if todo.unsettled_months:
    months = "、".join(todo.unsettled_months)
    first_month = todo.unsettled_months[0]
    st.markdown(
        t(
            f"- **待结算月份**：{months} 已结束但尚未结算。由授权运营单位按月依次结算，"
            f"例如 `pdo settle --period {first_month}`。",
            f"- **Months to settle**: {', '.join(todo.unsettled_months)} ended without a "
            f"settlement. The operator settles them in order, e.g. "
            f"`pdo settle --period {first_month}`.",
        )
    )
    if account.role in console_page("revenue").roles:
        st.page_link(
            console_page("revenue").path,
            label=t("在「收益分配」查看试算", "See the provisional split on Revenue"),
            icon=":material/pie_chart:",
        )
