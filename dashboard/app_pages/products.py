"""数据产品: each product version's model card, as reviewers signed it off and banks are served."""

from __future__ import annotations

import streamlit as st

from dashboard import auth, model_card, queries
from dashboard.i18n import t
from dashboard.state import workspace
from pdo.ledger.db import session_scope

_, entry = auth.require_page("products")
st.title(t(entry.title_zh, entry.title_en))
st.caption(
    "已发布的产品版本及其模型卡（验证报告）：样本与区分能力、校准、稳定性、分群表现、"
    "分箱表、特征字典与否决规则。模型卡随版本记入台账，与签核时审核包中的内容一致。"
)

with session_scope(workspace().engine) as session:
    catalog = queries.product_catalog(session)
    versions = {v.id: v for v in queries.product_versions(session)}

if catalog.height:
    st.table(catalog, hide_index=True)
else:
    st.info("暂无数据产品。")

if not versions:
    st.info("暂无已发布的产品版本：运行经签核批准并发布后，模型卡会在此显示。")
    st.stop()

chosen_id = st.selectbox(
    "产品版本", list(versions), format_func=lambda i: versions[i].label, key="product_version"
)
version = versions[chosen_id or next(iter(versions))]
st.subheader(f"{version.title_zh} · {version.id}")
model_card.static_table(version.facts)
if version.drift_flagged:
    st.warning("该版本构建时，评分分布相对前一版本的漂移超过阈值（见上表）。")
model_card.show(version.card)
