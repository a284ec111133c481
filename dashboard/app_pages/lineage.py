"""运行与血缘: a run's lineage from its authorization and source tables to deliveries; details."""

from __future__ import annotations

import streamlit as st

from dashboard import auth
from dashboard.data import lineage as data
from dashboard.i18n import english, t
from dashboard.state import workspace
from pdo.ledger.db import read_scope

_, entry = auth.require_page("lineage")
st.title(t(entry.title_zh, entry.title_en))
st.caption(
    t(
        "从授权与源表出发，经各数据集版本（原始区、脱敏区、发布区）到产品版本及其交付"
        "（各银行调用、批量文件、预警）。节点上的短哈希为数据集内容哈希的前 12 位。",
        "From the authorization and source tables through dataset versions to product versions "
        "and their deliveries. Short hashes are the first 12 characters of content hashes.",
    )
)

ws = workspace()
with read_scope(ws.engine) as session:
    choices = data.runs(session)
    if not choices:
        st.info(
            t(
                "暂无运行记录：操作员用 `pdo run` 处理一批部门数据后在此显示。",
                "No runs yet: they appear here once the operator processes a delivery (`pdo run`).",
            )
        )
        st.stop()
    ids = [c.id for c in choices]
    labels = {c.id: c.label for c in choices}
    wanted = st.query_params.get("run")
    with st.sidebar:
        chosen = st.selectbox(
            t("运行", "Run"),
            ids,
            index=ids.index(wanted) if wanted in ids else 0,
            format_func=labels.__getitem__,
            # labels follow the language: one widget per language, the choice kept in the URL
            key=f"lineage-run-{'en' if english() else 'zh'}",
            help=t("默认显示最新的运行。", "The newest run by default."),
        )
    st.query_params["run"] = chosen
    run = data.lineage(session, chosen)

if run is None:  # deleted between the two reads: nothing to show
    st.warning(t("该运行已不存在。", "This run no longer exists."))
    st.stop()

c_status, c_stages, c_quarantine, c_calls = st.columns(4)
c_status.metric(t("运行状态", "Status"), data.run_status(run.status))
c_stages.metric(t("阶段记录", "Stage runs"), run.stages.height)
c_quarantine.metric(t("隔离行数", "Rows quarantined"), run.rows_quarantined)
c_calls.metric(t("产品调用次数", "Product calls"), run.calls)

st.subheader(t("血缘图", "Lineage graph"))
st.graphviz_chart(run.dot, width="stretch")
if run.bank_split == "run":
    st.caption(
        t(
            "调用量较大：银行节点为该运行各产品版本的调用合计，各版本的调用总数见版本节点。"
            "逐版本、逐银行的明细请在「使用审计」中查看。",
            "Many calls: bank nodes total all of the run's versions; each version's total is on "
            "its node. The usage audit breaks them down per version and bank.",
        )
    )
elif run.bank_split == "none":
    st.caption(
        t(
            "调用量较大：图中只显示各产品版本的调用总数，按银行的明细请在「使用审计」中查看。",
            "Many calls: only each version's total is shown; the usage audit breaks it down "
            "per bank.",
        )
    )

st.subheader(t("运行详情", "Run details"))
st.table(run.facts, hide_index=True)
docs = ws.settings.docs_dir / run.id / "index.html"
if docs.is_file():
    st.page_link(
        "app_pages/quality.py",
        label=t("查看该运行的质量报告与 Data Docs", "Open this run's quality report and Data Docs"),
        icon=":material/rule:",
        query_params={"run": run.id},
    )
else:
    st.caption(
        t(
            "该运行尚未生成 Data Docs：校验阶段完成后可在「质量报告」中查看。",
            "No Data Docs for this run yet: they appear under Quality reports after validation.",
        )
    )

st.subheader(t("各阶段", "Stages"))
if run.stages.height:
    st.dataframe(run.stages, hide_index=True, width="stretch")
else:
    st.caption(
        t(
            "该运行没有阶段记录（例如迁入的历史运行）；血缘取自审核包与产品版本。",
            "No stage runs recorded for this run; the lineage comes from its review package "
            "and product versions.",
        )
    )

st.subheader(t("隔离数据（按表与原因）", "Quarantine by table and reason"))
st.caption(
    t(
        "一行可能同时有多个原因，故各原因行数之和可能大于隔离行数。只显示计数，不显示数据值。",
        "A row may carry several reasons. Counts only, never values.",
    )
)
if run.quarantine.height:
    st.dataframe(run.quarantine, hide_index=True, width="stretch")
else:
    st.caption(t("该运行没有隔离任何数据行。", "This run quarantined no rows."))

st.subheader(t("签核记录", "Sign-offs"))
if run.signoffs.height:
    st.dataframe(run.signoffs, hide_index=True, width="stretch")
else:
    st.caption(
        t(
            "尚无签核：审核员在「合规审查」中批准或驳回后在此显示。",
            "No sign-off yet: decisions made in the sign-off queue appear here.",
        )
    )

st.subheader(t("产品版本与交付", "Product versions and deliveries"))
if run.versions.height:
    st.dataframe(run.versions, hide_index=True, width="stretch")
else:
    st.caption(
        t(
            "该运行尚未发布产品版本：签核批准并发布后在此显示。",
            "This run has published no product version yet.",
        )
    )
