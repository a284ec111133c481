"""签核队列: runs at the gate with their review packages, and the reviewer's decision."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from dashboard import auth, model_card, queries
from dashboard.i18n import t
from dashboard.state import workspace
from pdo.continuation import continue_in_background
from pdo.ledger.db import session_scope
from pdo.ledger.models import PipelineRun
from pdo.signoff import SignOffError, decide, progress

_FLASH = "signoff_flash"
_NEW_TABS = ["授权", "字段策略", "隐私与风险", "质量维度", "数据产品"]


def _static_table(frame: pl.DataFrame, empty: str) -> None:
    """Small review facts as a static table: every cell readable without scrolling a grid."""
    if frame.height:
        st.table(frame, hide_index=True)
    else:
        st.caption(empty)


def _products(run: queries.PendingRun) -> None:
    """Each product the run built before the gate: spec, build, drift and the model card."""
    if not run.products:
        st.caption("审核包未列出数据产品。")
    for p in run.products:
        st.markdown(f"#### {p.title_zh}（`{p.name}`）")
        model_card.static_table(p.spec)
        if p.card is None:
            st.caption("本次运行未构建该产品。")
            continue
        st.markdown("**本次构建**（签核覆盖该产品数据集与模型，批准后原样发布）")
        model_card.static_table(p.build)
        if p.drift_flagged:
            st.warning(f"评分分布相对现行版本显著漂移：{p.drift}。请审核员判断是否批准。")
        model_card.show(p.card)


def _package_tabs(run: queries.PendingRun, tabs: Sequence[DeltaGenerator]) -> None:
    """授权 / 字段策略 / 隐私与风险 / 质量维度 / 数据产品: the rest of the package, read-only."""
    t_auth, t_policies, t_privacy, t_quality, t_products = tabs
    with t_auth:
        _static_table(run.authorization_facts, "审核包中没有授权信息。")
    with t_policies:
        st.caption("删除的字段不发布；假名化以带密钥的哈希替换，不可还原；泛化降低精度。")
        _static_table(run.policies, "审核包未列出字段策略。")
    with t_privacy:
        st.caption(
            "残留个人信息为脱敏后对全部发布值的复扫结果（0 为通过）；"
            "k-匿名为按准标识符分组后最小组的记录数。"
        )
        _static_table(run.privacy, "审核包中没有隐私扫描结果。")
    with t_quality:
        st.caption("各维度为通过相应规则的比例；“—”表示该维度没有适用的规则。")
        _static_table(run.quality, "审核包中没有质量维度。")
    with t_products:
        _products(run)


def _decide(run_id: str, approve: bool) -> None:
    """Form callback: record the decision through the gate, keep the outcome for the next run."""
    account = auth.current_user()
    if account is None:
        return
    comment = str(st.session_state.get(f"comment-{run_id}", ""))
    ws = workspace()
    try:
        with session_scope(ws.engine) as s:
            decide(s, ws.lake, run_id, account.name, approve, comment)
            run = s.get(PipelineRun, run_id)
            given, needed = progress(s, run) if run is not None else (0, 0)
            decided = run is not None and run.status in ("approved", "rejected")
    except SignOffError as exc:
        reason = queries.signoff_error_zh(str(exc))
        st.session_state[_FLASH] = ("error", f"签核失败：{reason}。（{exc}）")
        return
    verb = "批准" if approve else "驳回"
    more = ""
    if approve and given < needed:
        more = f"（{given}/{needed}，重要数据还需另一名审核员批准）"
    follow = ""
    if decided and ws.settings.console_continues_runs:
        log = continue_in_background(ws.settings, run_id)
        nxt = "发布数据产品" if approve else "关闭 Prefect 中等待的运行"
        follow = f"运行已在后台继续（{nxt}），日志：{log}。"
    st.session_state[_FLASH] = (
        "success",
        f"已{verb}运行 {run_id[:12]}{more}，签核已记入台账与审计链。{follow}",
    )


account, entry = auth.require_page("signoff")
st.title(t(entry.title_zh, entry.title_en))
st.caption(
    "审核员核对审核包（各表行数、校验结果、数据集哈希、授权、字段策略、隐私与风险、质量维度、"
    "数据产品与模型卡）后批准或驳回；签核绑定审核包哈希。"
    "可导出审核包为单个 HTML 文件离线阅读或存档。"
)

flash = st.session_state.pop(_FLASH, None)
if flash is not None:
    kind, message = flash
    (st.success if kind == "success" else st.error)(message)
if not account.is_reviewer:
    st.info(f"您的角色是{account.role_zh}：签核队列为只读，仅审核员可以批准或驳回。")

with session_scope(workspace().engine) as session:
    runs = queries.pending_runs(session)
    decisions = queries.recent_decisions(session)

if not runs:
    st.info("暂无待签核的运行。")

for run in runs:
    with st.container(border=True):
        st.subheader(f"运行 {run.id[:12]}")
        c1, c2, c3, c4, c5 = st.columns(5)
        c1.metric("发起人", run.started_by)
        c2.metric("数据表", run.tables.height)
        c3.metric("隔离行数", run.rows_quarantined)
        c4.metric("校验", "全部通过" if run.validation_ok else "有未通过")
        c5.metric(
            "批准进度",
            f"{len(run.approved_by)}/{run.approvals_needed}",
            help="重要数据需两名不同审核员批准；发起人不能签核。",
        )
        if run.approved_by:
            st.caption(f"已批准：{'、'.join(run.approved_by)}")
        st.markdown(
            f"开始时间（北京时间）：{run.started_at}　·　授权：`{run.authorization or '—'}`"
            f"　·　用途：{'、'.join(run.purposes) or '—'}"
        )
        st.markdown(
            f"审核包哈希：`{queries.short_hash(run.package_hash, 16)}`",
            help=f"完整哈希：{run.package_hash}",
        )
        st.page_link(
            "app_pages/quality.py",
            label="查看质量报告与 Data Docs",
            icon=":material/rule:",
            query_params={"run": run.id},
        )
        t_rows, t_validation, t_datasets, *new_tabs = st.tabs(
            ["各表行数", "校验结果", "数据集哈希", *_NEW_TABS]
        )
        with t_rows:
            if run.tables.height:
                st.dataframe(run.tables, hide_index=True, width="stretch")
            else:
                st.caption("审核包中没有表级行数。")
        with t_validation:
            if run.validation.height:
                st.dataframe(run.validation, hide_index=True, width="stretch")
            else:
                st.caption("审核包中没有校验结果。")
        with t_datasets:
            if run.datasets.height:
                st.dataframe(run.datasets, hide_index=True, width="stretch")
            else:
                st.caption("审核包未列出数据集。")
        _package_tabs(run, new_tabs)
        st.download_button(
            "导出审核包（HTML）",
            data=run.review_html,
            file_name=f"review-{run.id[:12]}.html",
            mime="text/html",
            key=f"export-{run.id}",
            on_click="ignore",
            icon=":material/download:",
            help="单个 HTML 文件，无需联网即可打开、打印或存档；只含计数、字段名与哈希。",
        )
        if account.is_reviewer:
            if account.name == run.started_by:
                st.caption("提示：您是该运行的发起人，不能签核自己发起的运行。")
            elif account.name in run.approved_by:
                st.caption("提示：您已批准该运行，还需另一名审核员批准。")
            with st.form(f"decide-{run.id}"):
                st.text_area("意见（驳回时必填）", key=f"comment-{run.id}")
                with st.container(horizontal=True):
                    st.form_submit_button(
                        "批准",
                        type="primary",
                        icon=":material/check:",
                        key=f"approve-{run.id}",
                        on_click=_decide,
                        args=(run.id, True),
                    )
                    st.form_submit_button(
                        "驳回",
                        icon=":material/close:",
                        key=f"reject-{run.id}",
                        on_click=_decide,
                        args=(run.id, False),
                    )

st.header("最近的签核决定")
if decisions.is_empty():
    st.info("暂无签核记录。")
else:
    st.dataframe(decisions, hide_index=True, width="stretch")
