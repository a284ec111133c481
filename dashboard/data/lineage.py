"""运行与血缘: one run's lineage graph (a DOT string) and its details, read from the ledger.

The graph follows what the pipeline recorded: the run's authorization covers the source tables;
each dataset version names its parents (`file:<sha256>` for a delivered file); stage runs list
their input and output hashes; a product version names its run, input datasets and output
dataset; deliveries are counted per bank in SQL (never loaded event by event).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from sqlalchemy import func
from sqlmodel import Session, col, select

from dashboard.i18n import t
from pdo.ledger.models import (
    Alert,
    Authorization,
    BatchFile,
    DatasetVersion,
    PipelineRun,
    Product,
    ProductVersion,
    SignOff,
    StageRun,
    Subscriber,
    UsageEvent,
)
from pdo.quarantine import counts as quarantine_counts
from pdo.registration import authorization_state
from pdo.review_report import RUN_STATUS_ZH, ZONE_ZH, local_time
from pdo.sources.departments import DEPARTMENTS
from pdo.sources.tables import SOURCE_TABLES

HASH = 12  # characters of a hash shown on a node
RUN_STATUS_EN = {
    "running": "Running",
    "failed": "Failed",
    "awaiting_signoff": "Awaiting sign-off",
    "approved": "Approved",
    "rejected": "Rejected",
    "published": "Published",
    "superseded": "Superseded",
}
STAGE_ZH = {
    "ingest": ("采集", "Ingest"),
    "validate_raw": ("原始区校验", "Raw validation"),
    "desensitize": ("脱敏", "Desensitize"),
    "validate": ("脱敏区校验", "Validation"),
    "package": ("产品构建", "Package"),
}
STAGE_STATUS = {"succeeded": ("成功", "Succeeded"), "failed": ("失败", "Failed")}
ZONE_EN = {
    "raw": "Raw",
    "quarantine": "Quarantine",
    "desensitized": "Desensitized",
    "release": "Record release",
    "product": "Product",
}
VERSION_STATUS = {"published": ("现行", "Live"), "superseded": ("已被取代", "Superseded")}
AUTH_STATE = {
    "active": ("有效", "active"),
    "expired": ("已到期", "expired"),
    "revoked": ("已撤销", "revoked"),
    "not_yet_valid": ("尚未生效", "not yet valid"),
}
DECISION = {"approved": ("批准", "Approved"), "rejected": ("驳回", "Rejected")}
# Dataset stages, to tell the two raw versions apart (as delivered / after the raw suite).
DATASET_STAGE = {
    "ingest": ("采集", "ingested"),
    "validate": ("校验后", "validated"),
    "desensitize": ("脱敏", "desensitized"),
    "package": ("产品", "built"),
}
ZONE_COLOR = {
    "raw": "#fde2e2",
    "quarantine": "#eeeeee",
    "desensitized": "#dcedc8",
    "release": "#e1f5fe",
    "product": "#fff3cd",
}


def _pair(table: dict[str, tuple[str, str]], key: str | None) -> str:
    zh, en = table.get(key or "", (key or "", key or ""))
    return t(zh, en)


def run_status(status: str) -> str:
    return t(RUN_STATUS_ZH.get(status, status), RUN_STATUS_EN.get(status, status))


def short(value: str | None) -> str:
    return (value or "")[:HASH]


# --- the runs to choose from ----------------------------------------------------------------


@dataclass(frozen=True)
class RunChoice:
    id: str
    status: str
    started_by: str
    started_at: str

    @property
    def label(self) -> str:
        return (
            f"{self.id[:HASH]} · {run_status(self.status)} · {self.started_by} · {self.started_at}"
        )


def runs(session: Session, limit: int = 500) -> list[RunChoice]:
    """Runs, newest first (the page's default is the first)."""
    rows = session.exec(
        select(PipelineRun.id, PipelineRun.status, PipelineRun.started_by, PipelineRun.started_at)
        .order_by(col(PipelineRun.started_at).desc())
        .limit(limit)
    ).all()
    return [RunChoice(r[0], r[1], r[2], local_time(r[3])) for r in rows]


# --- the graph ----------------------------------------------------------------------------


def _esc(text: Any) -> str:
    """A DOT double-quoted string's content."""
    return str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@dataclass
class Graph:
    """Nodes and edges, rendered as one DOT digraph (left to right)."""

    nodes: dict[str, dict[str, str]] = field(default_factory=dict)
    edges: list[tuple[str, str, str]] = field(default_factory=list)

    def node(self, key: str, label: str, **attrs: str) -> str:
        self.nodes.setdefault(key, {"label": label, **attrs})
        return key

    def edge(self, a: str, b: str, label: str = "") -> None:
        if a in self.nodes and b in self.nodes and (a, b, label) not in self.edges:
            self.edges.append((a, b, label))

    def dot(self) -> str:
        font = "Noto Sans CJK SC, Source Han Sans SC, Microsoft YaHei, PingFang SC, sans-serif"
        lines = [
            "digraph lineage {",
            '  rankdir="LR";',
            '  graph [nodesep="0.3", ranksep="0.6"];',
            f'  node [shape="box", style="rounded,filled", fillcolor="white", fontsize="11", '
            f'fontname="{font}"];',
            f'  edge [fontsize="9", color="#607d8b", fontname="{font}"];',
        ]
        for key, attrs in self.nodes.items():
            body = ", ".join(f'{k}="{_esc(v)}"' for k, v in attrs.items())
            lines.append(f'  "{_esc(key)}" [{body}];')
        for a, b, label in self.edges:
            extra = f' [label="{_esc(label)}"]' if label else ""
            lines.append(f'  "{_esc(a)}" -> "{_esc(b)}"{extra};')
        lines.append("}")
        return "\n".join(lines)


@dataclass(frozen=True)
class _Dataset:
    id: str
    table: str
    zone: str
    stage: str
    rows: int
    parents: tuple[str, ...]


def _table_label(name: str) -> tuple[str, str]:
    """A source table's Chinese label and its department's name in the session's language."""
    for source in SOURCE_TABLES:
        if source.name == name:
            dept = next((d for d in DEPARTMENTS if d.code == source.department), None)
            return source.label_zh, (t(dept.name_zh, dept.name_en) if dept else source.department)
    return "", ""


def _source_node(g: Graph, name: str, file_hash: str | None = None) -> str:
    label_zh, dept = _table_label(name)
    lines = [t("源表", "Source table"), f"{label_zh}（{name}）" if label_zh else name]
    if dept:
        lines.append(dept)
    if file_hash:
        lines.append(t(f"交付文件 {short(file_hash)}", f"file {short(file_hash)}"))
    return g.node(f"t:{name}", "\n".join(lines), shape="folder", fillcolor="#e8eaf6")


def _dataset_node(g: Graph, d: _Dataset) -> str:
    zone = t(ZONE_ZH.get(d.zone, d.zone), ZONE_EN.get(d.zone, d.zone))
    stage = _pair(DATASET_STAGE, d.stage) if d.zone == "raw" else ""
    head = f"{zone}（{stage}）" if stage else zone
    if d.zone == "quarantine":
        return g.node(
            f"d:{d.id}",
            f"{head}\n{d.table}\n{t(f'{d.rows:,} 行', f'{d.rows:,} rows')}",
            fillcolor=ZONE_COLOR["quarantine"],
            style="rounded,filled,dashed",
        )
    return g.node(
        f"d:{d.id}",
        f"{head}\n{d.table}\n{short(d.id)} · {t(f'{d.rows:,} 行', f'{d.rows:,} rows')}",
        fillcolor=ZONE_COLOR.get(d.zone, "white"),
        tooltip=d.id,
    )


def _run_datasets(
    session: Session, run: PipelineRun, stages: list[StageRun], versions: list[ProductVersion]
) -> tuple[dict[str, _Dataset], dict[str, str]]:
    """Every dataset the run touched: from the ledger where recorded, else from its package.

    Returns the datasets by id and, for ingest, each raw dataset's delivered file hash.
    """
    wanted: set[str] = set()
    files: dict[str, str] = {}
    for s in stages:
        wanted.update(h for h in (*s.input_hashes, *s.output_hashes) if not h.startswith("file:"))
        release = (s.details or {}).get("release")
        if isinstance(release, dict) and release.get("id"):
            wanted.add(str(release["id"]))
        if s.stage == "ingest" and s.input_hashes and s.output_hashes:
            for out in s.output_hashes:
                files[out] = s.input_hashes[0]
    for v in versions:
        wanted.update(v.input_hashes or [])
        wanted.add(v.output_hash)
    package = run.review_package or {}
    packaged = {str(d.get("id")): d for d in package.get("datasets") or [] if d.get("id")}
    wanted.update(packaged)
    found: dict[str, _Dataset] = {}
    if wanted:
        for r in session.exec(select(DatasetVersion).where(col(DatasetVersion.id).in_(wanted))):
            found[r.id] = _Dataset(
                r.id, r.table_name, r.zone, r.stage, r.row_count, tuple(r.parents)
            )
    # Datasets the package names but the ledger does not hold: parents as the pipeline builds them
    desensitized = {
        str(d.get("table")): i for i, d in packaged.items() if d.get("zone") == "desensitized"
    }
    inputs = {
        str(p.get("product")): [str(x) for x in p.get("inputs") or []]
        for p in package.get("products") or []
    }
    for i, d in packaged.items():
        if i in found:
            continue
        table, zone = str(d.get("table", "")), str(d.get("zone", ""))
        parents: tuple[str, ...] = ()
        if zone == "release" and table in desensitized:
            parents = (desensitized[table],)
        elif zone == "product":
            parents = tuple(desensitized[x] for x in inputs.get(table, []) if x in desensitized)
        stage = {"desensitized": "desensitize", "release": "desensitize", "product": "package"}
        found[i] = _Dataset(i, table, zone, stage.get(zone, ""), int(d.get("rows") or 0), parents)
    return found, files


# Events a per-(version, bank) GROUP BY may read row by row. SQLite has no index holding both
# columns, so the count reads each event (3-10 µs apiece: seconds per million); above this the
# figures come from indexes alone (see `_usage`).
ROW_BUDGET = 50_000


@dataclass(frozen=True)
class Delivery:
    """What one product version delivered: metered events (and per bank when known)."""

    version: str
    calls: int
    per_bank: list[tuple[str, int]] | None  # (bank, events) by bank; None: not split per version
    batch_files: int
    alerts: int


@dataclass(frozen=True)
class Deliveries:
    """Each version's deliveries; per bank over all the versions when only that was cheap."""

    versions: dict[str, Delivery]
    banks: list[tuple[str, int]] | None = None  # the run's versions together, per bank

    @property
    def calls(self) -> int:
        return sum(d.calls for d in self.versions.values())

    @property
    def split(self) -> str:
        """How banks are shown: "version" (each version's), "run" (all versions) or "none"."""
        if self.banks is not None:
            return "run"
        if all(d.per_bank is not None for d in self.versions.values()):
            return "version"
        return "none"


def _count(session: Session, version: str) -> int:
    """A version's events, from the (version, served_at) index alone."""
    query = select(func.count()).select_from(UsageEvent)
    return int(session.exec(query.where(col(UsageEvent.product_version_id) == version)).one())


def _per_subscriber(session: Session) -> dict[str, int]:
    """Every event per bank, from the bank index alone."""
    query = select(UsageEvent.subscriber_id, func.count()).group_by(col(UsageEvent.subscriber_id))
    return {str(s): int(n) for s, n in session.exec(query).all()}


def _usage(
    session: Session, ids: list[str], row_budget: int
) -> tuple[dict[str, int], dict[str, dict[str, int]] | None, dict[str, int] | None]:
    """Events per version (exact, always), and per bank: per version, for the run, or neither.

    Per version and bank by GROUP BY while the versions hold at most `row_budget` events.
    Beyond it, when the run's versions hold every event in the ledger, the bank index gives
    the banks' counts exactly: per version if only one version has events, else for the run.
    Otherwise only the versions' totals are shown (the usage audit breaks them down).
    """
    totals = {v: _count(session, v) for v in ids}
    used = [v for v in ids if totals[v]]
    if not used:
        return totals, {v: {} for v in ids}, None
    if sum(totals.values()) <= row_budget:
        per: dict[str, dict[str, int]] = {v: {} for v in ids}
        for version, subscriber, n in session.exec(
            select(UsageEvent.product_version_id, UsageEvent.subscriber_id, func.count())
            .where(col(UsageEvent.product_version_id).in_(used))
            .group_by(col(UsageEvent.product_version_id), col(UsageEvent.subscriber_id))
        ).all():
            per[str(version)][str(subscriber)] = int(n)
        return totals, per, None
    everything = int(session.exec(select(func.count()).select_from(UsageEvent)).one())
    if sum(totals.values()) != everything:
        return totals, None, None
    banks = _per_subscriber(session)
    if len(used) == 1:
        return totals, {v: (banks if v == used[0] else {}) for v in ids}, None
    return totals, None, banks


def deliveries(
    session: Session, version_ids: Iterable[str], row_budget: int = ROW_BUDGET
) -> Deliveries:
    """Events (per bank where cheap), batch files and alerts of each version, counted in SQL."""
    ids = sorted(set(version_ids))
    if not ids:
        return Deliveries({})
    totals, per_version, run_banks = _usage(session, ids, row_budget)
    banks = {b for counts in (per_version or {}).values() for b in counts} | set(run_banks or {})
    names = {
        s.id: s.name
        for s in session.exec(select(Subscriber).where(col(Subscriber.id).in_(sorted(banks))))
    }

    def named(counts: dict[str, int]) -> list[tuple[str, int]]:
        return sorted((names.get(b, b), n) for b, n in counts.items())

    batches = dict(
        session.exec(
            select(BatchFile.product_version_id, func.count())
            .where(col(BatchFile.product_version_id).in_(ids))
            .group_by(col(BatchFile.product_version_id))
        ).all()
    )
    alerts = dict(
        session.exec(
            select(Alert.product_version_id, func.count())
            .where(col(Alert.product_version_id).in_(ids))
            .group_by(col(Alert.product_version_id))
        ).all()
    )
    return Deliveries(
        {
            v: Delivery(
                v,
                totals[v],
                None if per_version is None else named(per_version[v]),
                int(batches.get(v, 0)),
                int(alerts.get(v, 0)),
            )
            for v in ids
        },
        None if run_banks is None else named(run_banks),
    )


def _bank_node(g: Graph, key: str, bank: str, n: int) -> str:
    label = f"{t('银行', 'Bank')} {bank}\n" + t(f"调用 {n:,} 次", f"{n:,} calls")
    return g.node(key, label, shape="ellipse", fillcolor="#e0f2f1")


def _graph(
    auth: Authorization | None,
    run: PipelineRun,
    datasets: dict[str, _Dataset],
    files: dict[str, str],
    versions: list[ProductVersion],
    delivered: Deliveries,
    titles: dict[str, str],
) -> str:
    g = Graph()
    if auth is not None:
        state = authorization_state(auth)
        auth_node = g.node(
            "auth",
            f"{t('授权', 'Authorization')}\n{auth.reference}\n{_pair(AUTH_STATE, state)}",
            shape="note",
            fillcolor="#ede7f6",
        )
    else:
        auth_node = g.node(
            "auth", t("授权（未记录）", "Authorization (not recorded)"), shape="note"
        )
    run_node = g.node(
        "run",
        f"{t('运行', 'Run')} {short(run.id)}\n{run_status(run.status)}",
        shape="hexagon",
        fillcolor="#f5f5f5",
    )
    g.edge(auth_node, run_node, t("授权运行", "authorizes"))
    sources = sorted(
        {d.table for d in datasets.values() if d.zone != "product"}
        | {str(t_["table"]) for t_ in (run.review_package or {}).get("tables") or []}
    )
    for name in sources:
        file_hash = next(
            (f for i, f in files.items() if i in datasets and datasets[i].table == name), None
        )
        node = _source_node(g, name, file_hash)
        g.edge(auth_node, node, t("授权范围", "in scope"))
    shown = {i: d for i, d in datasets.items() if d.zone != "quarantine" or d.rows > 0}
    for d in sorted(shown.values(), key=lambda d: (d.zone != "raw", d.table, d.id)):
        _dataset_node(g, d)
    for d in shown.values():
        linked = False
        for parent in d.parents:
            if parent.startswith("file:") or parent in files.values():
                g.edge(f"t:{d.table}", f"d:{d.id}", t("采集", "ingest"))
                linked = True
            elif parent in shown:
                g.edge(f"d:{parent}", f"d:{d.id}")
                linked = True
        if not linked and d.zone != "product" and f"t:{d.table}" in g.nodes:
            g.edge(f"t:{d.table}", f"d:{d.id}")
    for v in versions:
        title = titles.get(v.product_name, v.product_name)
        dl = delivered.versions.get(v.id)
        calls = t(f"调用 {dl.calls:,} 次", f"{dl.calls:,} calls") if dl else ""
        vnode = g.node(
            f"v:{v.id}",
            f"{t('产品版本', 'Product version')} {v.id}\n{title}\n"
            f"{_pair(VERSION_STATUS, v.status)} · {t('基准日', 'as of')} {v.as_of.isoformat()}"
            + (f"\n{calls}" if dl and dl.calls else ""),
            shape="box3d",
            fillcolor="#ffe0b2",
        )
        if v.output_hash in shown:
            g.edge(f"d:{v.output_hash}", vnode, t("签核后发布", "published"))
        else:
            for h in v.input_hashes or []:
                g.edge(f"d:{h}", vnode, t("签核后发布", "published"))
            if not any(f"d:{h}" in g.nodes for h in v.input_hashes or []):
                g.edge(run_node, vnode, t("签核后发布", "published"))
        if dl is None:
            continue
        for bank, n in dl.per_bank or []:
            g.edge(vnode, _bank_node(g, f"b:{v.id}:{bank}", bank, n), t("交付", "delivered"))
        if delivered.banks is not None and dl.calls:
            hub = g.node(
                "deliveries",
                t(
                    f"各版本交付合计\n调用 {delivered.calls:,} 次",
                    f"All versions\n{delivered.calls:,} calls",
                ),
                shape="cds",
                fillcolor="#e0f2f1",
            )
            g.edge(vnode, hub, t(f"{dl.calls:,} 次", f"{dl.calls:,}"))
        if dl.batch_files:
            fnode = g.node(
                f"f:{v.id}",
                t(f"批量文件 {dl.batch_files:,} 个", f"{dl.batch_files:,} batch files"),
                shape="tab",
                fillcolor="#e0f2f1",
            )
            g.edge(vnode, fnode)
        if dl.alerts:
            anode = g.node(
                f"a:{v.id}",
                t(f"预警 {dl.alerts:,} 条", f"{dl.alerts:,} alerts"),
                shape="cds",
                fillcolor="#ffebee",
            )
            g.edge(vnode, anode)
    for bank, n in delivered.banks or []:
        g.edge("deliveries", _bank_node(g, f"b:{bank}", bank, n), t("交付", "delivered"))
    return g.dot()


# --- details below the graph -------------------------------------------------------------


def _seconds(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 2)


def _facts(run: PipelineRun, auth: Authorization | None) -> pl.DataFrame:
    took = _seconds(run.started_at, run.finished_at)
    rows = [
        (t("运行编号", "Run"), run.id),
        (t("状态", "Status"), run_status(run.status)),
        (t("发起人", "Started by"), run.started_by),
        (t("开始时间（北京时间）", "Started (Beijing)"), local_time(run.started_at)),
        (t("结束时间（北京时间）", "Finished (Beijing)"), local_time(run.finished_at) or "—"),
        (t("耗时（秒）", "Took (s)"), "—" if took is None else f"{took:,.2f}"),
        (t("授权文号", "Authorization"), auth.reference if auth else run.authorization_id),
        (t("交付目录", "Source directory"), run.source_dir),
        (t("审核包哈希", "Review package hash"), run.review_package_hash or "—"),
    ]
    if run.error:
        rows.append((t("错误", "Error"), run.error))
    item, value = t("项目", "Item"), t("内容", "Value")
    return pl.DataFrame(
        [{item: k, value: v} for k, v in rows], schema={item: pl.String, value: pl.String}
    )


def _stages(stages: list[StageRun]) -> pl.DataFrame:
    cols = [
        t("阶段", "Stage"),
        t("数据表/产品", "Table/product"),
        t("状态", "Status"),
        t("输入行数", "Rows in"),
        t("输出行数", "Rows out"),
        t("隔离行数", "Quarantined"),
        t("开始（北京时间）", "Started (Beijing)"),
        t("耗时（秒）", "Seconds"),
    ]
    schema: dict[str, Any] = dict.fromkeys(cols, pl.String)
    for c in cols[3:6]:
        schema[c] = pl.Int64
    schema[cols[7]] = pl.Float64
    rows = [
        dict(
            zip(
                cols,
                [
                    _pair(STAGE_ZH, s.stage),
                    s.table_name or "",
                    _pair(STAGE_STATUS, s.status),
                    s.rows_in,
                    s.rows_out,
                    s.rows_quarantined,
                    local_time(s.started_at),
                    _seconds(s.started_at, s.finished_at),
                ],
                strict=True,
            )
        )
        for s in stages
    ]
    return pl.DataFrame(rows, schema=schema)


def _quarantine(session: Session, run: PipelineRun, stages: list[StageRun]) -> pl.DataFrame:
    """Quarantined rows per table, stage and reason (a row may carry several reasons)."""
    cols = [t("数据表", "Table"), t("阶段", "Stage"), t("原因", "Reason"), t("行数", "Rows")]
    rows: list[list[Any]] = []
    if any(s.stage in ("ingest", "validate_raw") for s in stages):
        for c in quarantine_counts(session, run.id):
            for reason, n in sorted(c.reasons.items()):
                rows.append([c.table, _pair(STAGE_ZH, c.stage), reason, int(n)])
            if c.rows_quarantined and not c.reasons:
                unstated = t("未记录原因", "no reason recorded")
                rows.append([c.table, _pair(STAGE_ZH, c.stage), unstated, c.rows_quarantined])
    else:  # a run recorded only through its review package
        for entry in (run.review_package or {}).get("tables") or []:
            reasons = dict(entry.get("quarantine_reasons") or {})
            for reason, n in sorted(reasons.items()):
                rows.append([entry.get("table", ""), "—", reason, int(n)])
            rest = int(entry.get("rows_quarantined") or 0) - sum(int(n) for n in reasons.values())
            if rest > 0:
                rows.append(
                    [entry.get("table", ""), "—", t("未记录原因", "no reason recorded"), rest]
                )
    schema: dict[str, Any] = dict.fromkeys(cols[:3], pl.String) | {cols[3]: pl.Int64}
    return pl.DataFrame([dict(zip(cols, r, strict=True)) for r in rows], schema=schema)


def _quarantined(run: PipelineRun, stages: list[StageRun]) -> int:
    """Rows the run quarantined (each row once, however many reasons it carries)."""
    if any(s.stage in ("ingest", "validate_raw") for s in stages):
        return sum(s.rows_quarantined for s in stages if s.stage in ("ingest", "validate_raw"))
    tables = (run.review_package or {}).get("tables") or []
    return sum(int(e.get("rows_quarantined") or 0) for e in tables)


def _signoffs(session: Session, run_id: str) -> pl.DataFrame:
    cols = [
        t("时间（北京时间）", "Time (Beijing)"),
        t("审核人", "Reviewer"),
        t("决定", "Decision"),
        t("意见", "Comment"),
        t("覆盖哈希", "Covers hash"),
    ]
    rows = [
        dict(
            zip(
                cols,
                [
                    local_time(s.decided_at),
                    s.reviewer,
                    _pair(DECISION, s.decision),
                    s.comment,
                    s.covers_hash[:16],
                ],
                strict=True,
            )
        )
        for s in session.exec(
            select(SignOff).where(SignOff.run_id == run_id).order_by(col(SignOff.decided_at))
        )
    ]
    return pl.DataFrame(rows, schema=dict.fromkeys(cols, pl.String))


def _versions(
    versions: list[ProductVersion], delivered: Deliveries, titles: dict[str, str]
) -> pl.DataFrame:
    cols = [
        t("产品版本", "Version"),
        t("产品", "Product"),
        t("状态", "Status"),
        t("基准日", "As of"),
        t("发布时间（北京时间）", "Published (Beijing)"),
        t("调用次数", "Calls"),
        t("银行数", "Banks"),
        t("批量文件", "Batch files"),
        t("预警", "Alerts"),
    ]
    schema: dict[str, Any] = dict.fromkeys(cols, pl.String)
    for c in cols[5:]:
        schema[c] = pl.Int64
    rows = []
    for v in versions:
        d = delivered.versions.get(v.id) or Delivery(v.id, 0, [], 0, 0)
        values = [
            v.id,
            titles.get(v.product_name, v.product_name),
            _pair(VERSION_STATUS, v.status),
            v.as_of.isoformat(),
            local_time(v.published_at),
            d.calls,
            None if d.per_bank is None else len(d.per_bank),
            d.batch_files,
            d.alerts,
        ]
        rows.append(dict(zip(cols, values, strict=True)))
    return pl.DataFrame(rows, schema=schema)


@dataclass(frozen=True)
class RunLineage:
    """Everything the page shows for one run."""

    id: str
    status: str
    dot: str
    facts: pl.DataFrame
    stages: pl.DataFrame
    quarantine: pl.DataFrame
    signoffs: pl.DataFrame
    versions: pl.DataFrame
    rows_quarantined: int
    calls: int
    bank_split: str  # Deliveries.split: "version", "run" or "none"


def lineage(session: Session, run_id: str) -> RunLineage | None:
    """The run's graph and details, or None when no such run exists."""
    run = session.get(PipelineRun, run_id)
    if run is None:
        return None
    auth = session.get(Authorization, run.authorization_id)
    stages = list(
        session.exec(
            select(StageRun).where(StageRun.run_id == run.id).order_by(col(StageRun.id))
        ).all()
    )
    versions = list(
        session.exec(
            select(ProductVersion)
            .where(ProductVersion.run_id == run.id)
            .order_by(col(ProductVersion.id))
        ).all()
    )
    titles = {p.name: p.title_zh for p in session.exec(select(Product))}
    datasets, files = _run_datasets(session, run, stages, versions)
    delivered = deliveries(session, [v.id for v in versions])
    quarantine = _quarantine(session, run, stages)
    return RunLineage(
        id=run.id,
        status=run.status,
        dot=_graph(auth, run, datasets, files, versions, delivered, titles),
        facts=_facts(run, auth),
        stages=_stages(stages),
        quarantine=quarantine,
        signoffs=_signoffs(session, run.id),
        versions=_versions(versions, delivered, titles),
        rows_quarantined=_quarantined(run, stages),
        calls=delivered.calls,
        bank_split=delivered.split,
    )
