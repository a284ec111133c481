"""质量报告: each run's quality dimensions and its Great Expectations Data Docs, page by page."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import streamlit as st

from dashboard import auth, queries
from dashboard.i18n import t
from dashboard.state import workspace
from pdo.ledger.db import session_scope
from pdo.validation.docs import pages


@st.cache_data(show_spinner=False, max_entries=4)
def _zipped(site: Path, built_at: float) -> bytes:
    """The whole site as a zip, to open offline with its index.html (cached per build)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(site.rglob("*")):
            if path.is_file():
                z.write(path, path.relative_to(site.parent))
    return buffer.getvalue()


_, entry = auth.require_page("quality")
st.title(t(entry.title_zh, entry.title_en))
st.caption(
    "每次运行在签核前按规则集校验各表（原始区、脱敏区），并生成一次 Great Expectations Data Docs。"
    "报告只含判定与计数，不含任何数据值。"
)

ws = workspace()
with session_scope(ws.engine) as session:
    runs = queries.docs_runs(session, ws.settings.docs_dir)

if not runs:
    st.info("暂无质量报告：运行完成校验后会在此生成。")
    st.stop()

# Options are run ids: Streamlit compares widget values with ==, which a run's quality
# DataFrame refuses (it raised on every rerun once a run with Data Docs was chosen).
by_id = {r.id: r for r in runs}
ids = list(by_id)
wanted = st.query_params.get("run")
chosen = st.selectbox(
    "运行",
    ids,
    index=ids.index(wanted) if wanted in ids else 0,
    format_func=lambda run_id: by_id[run_id].label,
    key="quality-run",
)
run = by_id[chosen]
st.query_params["run"] = run.id

st.subheader("质量维度")
st.caption("各维度为通过检查的比例（按非空单元格计）；“—”表示该维度没有适用的规则。")
if run.quality.height:
    st.dataframe(run.quality, hide_index=True, width="stretch")
else:
    st.caption("该运行没有质量汇总（未生成审核包，例如校验阻断）；详见下方 Data Docs。")

st.subheader("Data Docs")
docs = pages(run.site)
if not docs:
    st.warning("该运行的 Data Docs 中没有校验页面。")
    st.stop()
page = st.selectbox(
    "校验页面",
    docs,
    format_func=lambda p: queries.docs_page_label(p.suite, p.batch),
    key=f"quality-page-{run.id}",
)
st.download_button(
    "下载完整 Data Docs（zip）",
    data=_zipped(run.site, (run.site / "index.html").stat().st_mtime),
    file_name=f"data-docs-{run.id[:12]}.zip",
    mime="application/zip",
    icon=":material/download:",
)
st.iframe(page.path, height=900)  # a page pdo built from GX's templates: trusted HTML
