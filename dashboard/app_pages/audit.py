"""审计链: is the chain intact, what the last signed checkpoint covers, and the latest events."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import auth, queries
from dashboard.data.audit import RENDER_CHECK_LIMIT, beijing, chain_state
from dashboard.i18n import english, t
from dashboard.state import workspace
from pdo import audit
from pdo.checkpoints import dumps
from pdo.ledger.db import read_scope, session_scope, snapshot_scope
from pdo.usage_chain import UsageChainReport, check_usage

_RESULT = "audit_full_check"

account, entry = auth.require_page("audit")
st.title(t(entry.title_zh, entry.title_en))
st.caption(
    t(
        "每条审计事件都含前一条的哈希；运营方定期以 Merkle 根签发检查点，监管方离线保存。"
        "任何插入、修改、删除或调换都会使核验失败，并指出第一条出错的记录。",
        "Each audit event carries the previous one's hash; the operator signs Merkle-root "
        "checkpoints the authority keeps offline. Any insert, change, deletion or reordering "
        "fails verification and names the first broken record.",
    )
)


def _broken(seq: int | None, reason: str) -> str:
    where = t(f"第 {seq} 条事件", f"event {seq}") if seq is not None else t("检查点", "checkpoint")
    return t(
        f"审计链已损坏：{where}{queries.chain_reason_zh(reason)}（{reason}）。",
        f"Audit chain broken at {where}: {reason}.",
    )


def _usage_summary(usage: UsageChainReport) -> dict[str, Any]:
    """The usage check as `pdo audit verify --json` reports it (usage ids, never personal data)."""
    return {
        "ok": usage.ok,
        "events": usage.events,
        "matched": usage.matched,
        "problems": usage.problem_count,
        "first_problems": usage.problems,
    }


def _full_check() -> None:
    """Verify every event and checkpoint, and every usage event against its chain record, as
    `pdo audit verify` does; then put the verification itself on the chain."""
    ws = workspace()
    with snapshot_scope(ws.engine) as s:  # the chain and usage_event as of one moment
        report = audit.verify(s)
        usage = _usage_summary(check_usage(s))
    with session_scope(ws.engine) as s:
        audit.record(
            s,
            account.name,
            "audit.verify",
            "chain",
            ok=report.ok,
            events=report.events,
            broken_at=report.broken_at,
            reason=report.reason,
            problems=report.problems,
            usage=usage,
        )
    st.session_state[_RESULT] = report.as_dict() | {"usage": usage}


def _usage_result(usage: dict[str, Any]) -> None:
    """The billing-evidence half of the full check: usage events that do not match the chain."""
    if usage["ok"]:
        st.success(
            t(
                f"计费用量核验通过：{usage['events']} 条用量事件与审计链记录逐项一致。",
                f"Usage check passed: all {usage['events']} usage events match their audit "
                "records.",
            )
        )
        return
    st.error(
        t(
            f"计费用量核验未通过：{usage['events']} 条用量事件中有 {usage['problems']} 条"
            "与审计链记录不符，结算与账单不得依据这些记录。",
            f"Usage check failed: {usage['problems']} of {usage['events']} usage events do not "
            "match the audit chain; billing must not rely on them.",
        )
    )
    for usage_id, what in usage["first_problems"][:10]:
        st.markdown(f"- `{usage_id}`：{queries.usage_reason_zh(what)}（{what}）")


with read_scope(workspace().engine) as session:
    state = chain_state(session)
    events = queries.latest_audit_events(session, english=english())

tail = state.tail
c1, c2, c3, c4 = st.columns(4)
if tail.checked:
    c1.metric(t("审计链", "Audit chain"), t("完整", "intact") if tail.ok else t("已损坏", "broken"))
else:
    c1.metric(t("审计链", "Audit chain"), t("待全面核验", "needs a full check"))
c2.metric(t("事件数", "Events"), f"{state.events:,}")
c3.metric(t("检查点", "Checkpoints"), state.checkpoints)
c4.metric(t("检查点之后的事件", "Events since checkpoint"), f"{tail.events:,}")

cp = state.checkpoint
if cp is None:
    st.info(
        t(
            "尚无签名检查点：运营方每次月度结算（pdo settle）或执行 pdo audit checkpoint 时签发，"
            "导出后交监管方离线保存。",
            "No signed checkpoint yet: the operator makes one at every monthly settlement "
            "(pdo settle) or with pdo audit checkpoint, and exports it for the authority.",
        )
    )
else:
    st.markdown(
        t(
            f"最新检查点 **#{cp.id}**：事件 {cp.first_seq}–{cp.last_seq}，Merkle 根 "
            f"`{cp.merkle_root[:16]}…`，{beijing(cp.created_at)}（北京时间）"
            f"由 {cp.created_by} 签发。",
            f"Latest checkpoint **#{cp.id}**: events {cp.first_seq}–{cp.last_seq}, Merkle root "
            f"`{cp.merkle_root[:16]}…`, signed {beijing(cp.created_at)} (Beijing) by "
            f"{cp.created_by}.",
        )
    )
    st.download_button(
        t("下载检查点文件（交监管方保存）", "Download the checkpoint file (for the authority)"),
        dumps(cp.document).encode(),
        file_name=f"pdo-audit-checkpoint-{cp.id}.json",
        mime="application/json",
        key="download_checkpoint",
    )

if tail.checked and tail.ok:
    scope = t("检查点之后的", "after the checkpoint, ") if cp is not None else ""
    st.success(
        t(
            f"审计链完整：{scope}{tail.events} 条事件逐条重算哈希，全部一致。",
            f"Audit chain intact: {scope}{tail.events} events rehashed one by one, all match.",
        )
    )
elif tail.checked:
    st.error(_broken(tail.broken_at, tail.reason))
else:
    st.warning(
        t(
            f"检查点之后有 {tail.events:,} 条事件，超过页面即时核验的 {RENDER_CHECK_LIMIT:,} 条；"
            "请点击下方「全面核验」或运行 pdo audit verify。",
            f"{tail.events:,} events since the checkpoint, more than the "
            f"{RENDER_CHECK_LIMIT:,} checked while drawing the page: run the full check below "
            "or pdo audit verify.",
        )
    )

st.subheader(t("全面核验", "Full verification"))
last = state.last_full_check
if last is not None:
    intact = last.details.get("ok") and last.details.get("usage", {}).get("ok", True)
    verdict = t("完整", "intact") if intact else t("已损坏", "broken")
    st.caption(
        t(
            f"上次全面核验：{beijing(last.at)}（北京时间），{last.actor}，"
            f"{last.details.get('events')} 条事件，结果：{verdict}。",
            f"Last full check: {beijing(last.at)} (Beijing) by {last.actor}, "
            f"{last.details.get('events')} events: {verdict}.",
        )
    )
st.button(
    t("全面核验（重算全部哈希与检查点）", "Full check (rehash every event and checkpoint)"),
    key="audit_full_check_button",
    on_click=_full_check,
)
result = st.session_state.get(_RESULT)
if result is not None:
    passed = result["ok"] and result["usage"]["ok"]
    if passed:
        st.success(
            t(
                f"全面核验通过：{result['events']} 条事件、"
                f"{len(result['checkpoints'])} 个检查点全部一致。",
                f"Full check passed: {result['events']} events and "
                f"{len(result['checkpoints'])} checkpoints all match.",
            )
        )
    elif result["ok"]:
        st.info(
            t(
                f"审计链本身一致：{result['events']} 条事件、"
                f"{len(result['checkpoints'])} 个检查点全部一致；但计费用量核验未通过（见下）。",
                f"The chain itself matches: {result['events']} events and "
                f"{len(result['checkpoints'])} checkpoints; but the usage check failed (below).",
            )
        )
    else:
        st.error(_broken(result["broken_at"], result["reason"]))
    _usage_result(result["usage"])

st.subheader(t("最近的审计事件", "Latest audit events"))
if events.is_empty():
    st.info(t("暂无审计事件。", "No audit events yet."))
else:
    st.dataframe(events, hide_index=True, width="stretch")
