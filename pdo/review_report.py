"""The review package as one self-contained HTML page that a non-programmer can read and sign.

Plain f-strings, no template engine: every value taken from the package or the run passes
through `_e` (``html.escape``) and the page has no scripts and no external assets, so the file
opens offline, prints, and can be archived next to the sign-off. It renders only the package
(counts, column names, hashes), never a data value.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from pdo.ledger.models import PipelineRun
from pdo.signoff import approvals, package_hash, required_approvals
from pdo.sources.tables import table as source_table

LOCAL_TZ = ZoneInfo("Asia/Shanghai")

RUN_STATUS_ZH = {
    "running": "运行中",
    "failed": "失败",
    "awaiting_signoff": "待签核",
    "approved": "已批准",
    "rejected": "已驳回",
    "published": "已发布",
    "superseded": "已被取代",
}
ZONE_ZH = {
    "raw": "原始区",
    "quarantine": "隔离区",
    "desensitized": "脱敏区",
    "release": "记录级发布区",
    "product": "产品区",
}
DIMENSION_ZH = {
    "completeness": "完整性",
    "validity": "有效性",
    "uniqueness": "唯一性",
    "consistency": "一致性",
    "timeliness": "及时性",
}
POLICY_ZH = {
    "drop": "删除",
    "pseudonymize": "假名化",
    "mask": "掩码",
    "generalize": "泛化",
    "redact": "文本脱敏",
    "keep": "保留",
    "entity_key": "主体标识",
}
POLICY_HELP_ZH = {
    "drop": "整列删除，不随数据发布",
    "pseudonymize": "以带密钥的哈希替换：同一原值得到同一假名，无法还原",
    "mask": "部分字符以 * 遮盖",
    "generalize": "降低精度：地址到区县、日期到月份、金额到区间",
    "redact": "自由文本中的个人信息替换为类型标签",
    "keep": "原样发布（该字段不含个人信息）",
    "entity_key": "企业的统一社会信用代码原样保留；个体工商户的代码属个人信息，假名化",
}
ENTITY_ZH = {
    "PERSON": "姓名",
    "CN_RESIDENT_ID": "身份证号",
    "CN_MOBILE": "手机号",
    "CN_LANDLINE": "固定电话",
    "CN_ADDRESS": "地址",
    "LOCATION": "地点",
    "EMAIL_ADDRESS": "电子邮箱",
    "CN_BANK_CARD": "银行卡号",
    "CN_PASSPORT": "护照号",
    "CN_TRAVEL_PERMIT": "通行证号",
    "CN_VEHICLE_PLATE": "车牌号",
    "CN_USCC_INDIVIDUAL": "个体工商户信用代码",
}
EXPECTATION_ZH = {
    "expect_column_values_to_be_valid_uscc": "统一社会信用代码校验位不正确",
    "expect_column_values_to_be_valid_resident_id": "身份证号校验位不正确",
    "expect_column_values_to_not_be_null": "必填字段为空",
    "expect_column_values_to_be_unique": "应唯一的值重复",
    "expect_column_values_to_be_in_set": "取值不在允许范围（或关联表中不存在）",
    "expect_column_values_to_be_between": "数值超出合理范围",
    "expect_column_values_to_match_regex": "格式不符",
    "expect_column_values_to_not_match_regex": "含不应出现的内容（如个人信息）",
    "expect_column_median_to_be_between": "中位数超出合理范围（常见于单位错误）",
    "expect_column_max_to_be_between": "最大值超出合理范围",
    "expect_table_row_count_to_be_between": "行数不在预期范围",
    "expect_table_columns_to_match_set": "列与约定不符",
    "expect_table_columns_to_match_ordered_list": "列或列顺序与约定不符",
}
SEVERITY_ZH = {"blocking": "阻断", "warning": "告警", "row": "隔离行"}
_CN_NUMBERS = "一二三四五六七八九十"
_REASON = re.compile(r"^(?P<name>[a-z_]+)\((?P<column>[^)]*)\)$")


# --- small formatters shared with the console ----------------------------------------------


def local_time(ts: dt.datetime | None) -> str:
    """A ledger timestamp (UTC) as wall-clock time in Asia/Shanghai."""
    if ts is None:
        return ""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=dt.UTC)
    return ts.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M:%S")


def local_time_text(value: Any) -> str:
    """An ISO timestamp from the package in Beijing time; anything unparsable shown as given."""
    try:
        return local_time(dt.datetime.fromisoformat(str(value)))
    except ValueError:
        return str(value or "")


def share_percent(value: Any) -> str:
    """A share in [0, 1] as a percentage with two decimals; — where nothing measured it."""
    return "—" if value is None else f"{float(value) * 100:.2f}%"


def policy_zh(policy: str) -> str:
    """A policy's Chinese name; an unknown policy is shown as recorded, never hidden."""
    return POLICY_ZH.get(policy, policy)


def expectation_zh(reason: str) -> str:
    """A quarantine reason `expectation(column)` in Chinese, the original kept in brackets."""
    m = _REASON.match(reason)
    name = m["name"] if m else reason
    zh = EXPECTATION_ZH.get(name)
    return f"{zh}（{reason}）" if zh else reason


def residual_findings(residual: Mapping[str, Any]) -> list[tuple[str, str, int]]:
    """(column, entity, count) from the scan: {column: {entity: n}}, or {entity: n} per table."""
    found = []
    for key, value in sorted(residual.items()):
        if isinstance(value, Mapping):
            found += [(key, str(ent), int(n)) for ent, n in sorted(value.items())]
        else:
            found.append(("", key, int(value)))
    return found


def residual_text(residual: Mapping[str, Any]) -> str:
    """The scan's verdict as a reader wants it: “0（通过）” or the count and what was found."""
    found = residual_findings(residual)
    if not found:
        return "0（通过）"
    parts = "；".join(
        f"{col + '：' if col else ''}{ENTITY_ZH.get(ent, ent)} × {n}" for col, ent, n in found
    )
    return f"{sum(n for _, _, n in found)}（未通过：{parts}）"


def column_label(table_name: str, column: str) -> str:
    """A field's Chinese name from its table's contract, or empty for unknown fields."""
    try:
        return source_table(table_name).column(column).label_zh
    except KeyError:
        return ""


def l_diversity_text(table_name: str, risk: Mapping[str, Any]) -> str:
    """l per sensitive column, e.g. ``status（登记状态）= 2``; — without sensitive columns."""
    items = [
        f"{col}{_paren(column_label(table_name, col))} = {n}"
        for col, n in sorted((risk.get("l") or {}).items())
    ]
    return "；".join(items) or "—"


def below_k_target(risk: Mapping[str, Any]) -> bool:
    """A risk report whose smallest class is below the k the package reports against."""
    return bool(risk) and int(risk.get("k", 0)) < int(risk.get("k_target", 0))


def _paren(text: str) -> str:
    return f"（{text}）" if text else ""


# --- HTML building blocks -------------------------------------------------------------------


def _e(value: Any) -> str:
    """Every value from the package or the run goes through here: markup in it stays text."""
    return "—" if value is None or value == "" else escape(str(value))


def _n(value: Any) -> str:
    """A count with thousands separators (escaped like any other value)."""
    try:
        return escape(f"{int(value):,}")
    except (TypeError, ValueError):
        return _e(value)


def _en(text: str) -> str:
    return f' <span class="en" lang="en">{escape(text)}</span>' if text else ""


def _badge(ok: bool, yes: str = "通过", no: str = "未通过", *, warn: bool = False) -> str:
    """A verdict that reads without colour too: a sign and a word."""
    if ok:
        return f'<span class="ok">✓ {escape(yes)}</span>'
    kind, sign = ("warn", "⚠") if warn else ("bad", "✗")
    return f'<span class="{kind}">{sign} {escape(no)}</span>'


def _mono(value: Any) -> str:
    return f'<code class="hash">{_e(value)}</code>'


def _table(
    head: Sequence[tuple[str, str]],
    rows: Iterable[Sequence[str]],
    *,
    empty: str,
    numeric: Iterable[int] = (),
    cls: str = "",
) -> str:
    """A table from escaped cell fragments; `numeric` columns are right-aligned."""
    body = list(rows)
    if not body:
        return f'<p class="empty">{escape(empty)}</p>'
    right = set(numeric)
    ths = "".join(f"<th>{escape(zh)}{_en(en)}</th>" for zh, en in head)
    trs = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{c}</td>' if i in right else f"<td>{c}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in body
    )
    opening = f'<table class="{cls}">' if cls else "<table>"
    return f"{opening}<thead><tr>{ths}</tr></thead><tbody>{trs}</tbody></table>"


def _facts(items: Sequence[tuple[str, str, str]]) -> str:
    """Label/value pairs (Chinese label, English in small text); values are escaped fragments."""
    rows = "".join(f"<dt>{escape(zh)}{_en(en)}</dt><dd>{value}</dd>" for zh, en, value in items)
    return f'<dl class="facts">{rows}</dl>'


def _section(index: int, anchor: str, zh: str, en: str, body: str, intro: str = "") -> str:
    """A numbered section (一、二、…) with a plain-language line on what it shows."""
    number = _CN_NUMBERS[index] if index < len(_CN_NUMBERS) else str(index + 1)
    lead = f'<p class="intro">{escape(intro)}</p>' if intro else ""
    return f'<section id="{anchor}"><h2>{number}、{escape(zh)}{_en(en)}</h2>{lead}{body}</section>'


def _zone(zone: Any) -> str:
    return f'<span class="nw">{_e(ZONE_ZH.get(str(zone), zone))}</span>'


def _table_cell(name: Any, label: Any) -> str:
    """`tax_credit` with its Chinese label under it."""
    sub = f'<br><span class="sub">{_e(label)}</span>' if label else ""
    return f"<code>{_e(name)}</code>{sub}"


def _labels(package: Mapping[str, Any]) -> dict[str, str]:
    """Table name → Chinese label, from the package's own table entries."""
    return {str(t.get("table")): str(t.get("label_zh") or "") for t in package.get("tables", [])}


def _balanced(t: Mapping[str, Any]) -> bool:
    """Rows in = rows out + rows quarantined: nothing was lost or invented on the way."""
    rows_in, rows_out = int(t.get("rows_in", 0)), int(t.get("rows_out", 0))
    return rows_in == rows_out + int(t.get("rows_quarantined", 0))


def _suites(package: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """Every suite report of the run with the zone it checked, raw zone first."""
    return [("raw", v) for v in package.get("validation_raw", [])] + [
        ("desensitized", v) for v in package.get("validation", [])
    ]


def _risks(package: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Tables whose release was assessed for re-identification risk, with their reports."""
    privacy = package.get("privacy") or {}
    return {name: p["risk"] for name, p in sorted(privacy.items()) if p.get("risk")}


def _uncovered(package: Mapping[str, Any]) -> list[str] | None:
    """Delivered tables the authorization does not list (None when it lists no tables)."""
    granted = (package.get("authorization") or {}).get("tables")
    if granted is None:
        return None
    return [str(t.get("table")) for t in package.get("tables", []) if t.get("table") not in granted]


# --- the page's parts -----------------------------------------------------------------------


def _header(run: PipelineRun, package: Mapping[str, Any], given: list[str], needed: int) -> str:
    """Who started what and when, where the gate stands, and the hash the sign-off binds to."""
    bound = run.review_package_hash or ""
    intact = bool(bound) and package_hash(dict(package)) == bound
    who = f"（已批准：{_e('、'.join(given))}）" if given else ""
    more = max(needed - len(given), 0)
    todo = f"，还需 {more} 名审核员批准" if more else "，已满足"
    facts = _facts(
        [
            ("运行编号", "Run ID", _mono(run.id)),
            ("发起人", "Started by", _e(run.started_by)),
            ("开始时间（北京时间）", "Started at, Asia/Shanghai", _e(local_time(run.started_at))),
            ("状态", "Status", _e(RUN_STATUS_ZH.get(run.status, run.status))),
            ("批准进度", "Approvals", f"<strong>{len(given)}/{needed}</strong>{who}{todo}"),
            ("审核包哈希（SHA-256）", "Review package hash", _mono(bound)),
            ("哈希核对", "Package matches hash", _badge(intact, "一致", "审核包内容与哈希不一致")),
        ]
    )
    return (
        '<header><h1>数据审核包<span class="en" lang="en"> Review package</span></h1>'
        '<p class="intro">本文件汇总该运行在合规签核关口的全部审核内容。签核绑定下方的审核包哈希：'
        "审核包或所列数据集在签核后有任何改动，签核即失效。本文件只含计数、字段名与哈希，"
        f"不含任何个人信息。重要数据需两名不同审核员批准，发起人不能签核。</p>{facts}</header>"
    )


def _check_rows(package: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """The verdicts a reviewer looks at first, each with its badge."""
    tables = package.get("tables", [])
    even = sum(_balanced(t) for t in tables)
    privacy = (package.get("privacy") or {}).values()
    residual = sum(n for p in privacy for *_, n in residual_findings(p.get("residual_pii") or {}))
    reports = [v for _, v in _suites(package)]
    blocking = sum(len(v.get("failures") or []) for v in reports)
    warnings = sum(len(v.get("warnings") or []) for v in reports)
    risks = _risks(package)
    low = [f"{n}（k = {r.get('k')}）" for n, r in risks.items() if below_k_target(r)]
    k_verdict = _badge(not low, "达到目标", "低于目标：" + "、".join(low), warn=True)
    rows = [
        (
            "各表行数核对",
            "Rows in = out + quarantined",
            _badge(even == len(tables), f"{even}/{len(tables)} 张表平衡", "有表不平衡"),
        ),
        (
            "残留个人信息",
            "Residual PII",
            _badge(residual == 0, "0（通过）", f"{residual}（未通过）"),
        ),
        ("校验阻断项", "Blocking failures", _badge(blocking == 0, "0", str(blocking))),
        (
            "校验告警项",
            "Warnings",
            _badge(warnings == 0, "0", f"{warnings}（见校验结果）", warn=True),
        ),
        ("k-匿名", "k-anonymity", k_verdict if risks else "—（没有需评估的表）"),
    ]
    uncovered = _uncovered(package)
    if uncovered is not None:
        verdict = _badge(not uncovered, "是", "未授权：" + "、".join(uncovered))
        rows.insert(0, ("授权覆盖全部数据表", "All tables authorized", verdict))
    return rows


def _summary(package: Mapping[str, Any]) -> str:
    """审核要点: the checks at a glance, before the details."""
    body = _facts(_check_rows(package))
    intro = "以下为自动核对的结论；✓ 表示通过，⚠ 表示需审核员判断，✗ 表示不应批准。"
    return _section(0, "summary", "审核要点", "At a glance", body, intro)


def _rights(rights: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """三权分置: who holds each right the grant records."""
    english = {
        "数据资源持有权": "Holding right",
        "数据加工使用权": "Processing right",
        "数据产品经营权": "Operation right",
    }
    out = []
    for right, holder in rights.items():
        who = "、".join(map(str, holder)) if isinstance(holder, list) else str(holder)
        out.append((str(right), english.get(str(right), ""), _e(who)))
    return out


def _products(package: Mapping[str, Any]) -> str:
    """The products this run will feed, with the live version's figures (model card to come)."""
    rows = []
    for p in package.get("products") or []:
        live = p.get("live_version") or {}
        metrics = live.get("metrics") or {}
        shown = [k for k in ("n_train", "auc_in_sample", "ks_in_sample") if k in metrics]
        figures = "；".join(f"{k} {metrics[k]}" for k in shown)
        rows.append(
            [
                _table_cell(p.get("product"), p.get("title_zh")),
                _e("、".join(p.get("inputs") or [])),
                _e("、".join(p.get("purposes") or [])),
                _e(live.get("id") or "尚无已发布版本"),
                _e(figures or "—"),
            ]
        )
    body = _table(
        [
            ("产品", "Product"),
            ("输入表", "Inputs"),
            ("用途", "Purposes"),
            ("现行版本", "Live version"),
            ("现行版本指标", "Live figures"),
        ],
        rows,
        empty="审核包未列出数据产品。",
    )
    intro = "批准后，本次运行的数据将用于以下数据产品；新版本发布前会再次按产品规则集校验。"
    return _section(9, "products", "数据产品", "Products", body, intro)


def _authorization(package: Mapping[str, Any]) -> str:
    """The grant the run relies on: reference, tables, purposes and how long it holds."""
    auth = package.get("authorization") or {}
    labels = _labels(package)
    granted = "、".join(f"{t}{_paren(labels.get(t, ''))}" for t in auth.get("tables") or [])
    body = _facts(
        [
            ("授权文号", "Reference", _e(auth.get("reference"))),
            ("授权表", "Tables", _e(granted)),
            ("用途", "Purposes", _e("、".join(auth.get("purposes") or []))),
            ("数据产品", "Products", _e("、".join(auth.get("products") or []) or "—")),
            ("生效（北京时间）", "Valid from", _e(local_time_text(auth.get("valid_from")) or "—")),
            ("有效期至（北京时间）", "Valid until", _e(local_time_text(auth.get("valid_until")))),
            *_rights(auth.get("rights") or {}),
        ]
    )
    intro = "数据主管部门授予运营单位的授权：只有授权表可以进入流水线，只能用于所列用途。"
    return _section(1, "authorization", "授权", "Authorization", body, intro)


def _reasons(t: Mapping[str, Any]) -> str:
    """Why rows were set aside, counted: unparsable at ingest, or a named rule at validation."""
    items = []
    ingest = int(t.get("rows_quarantined_ingest", 0))
    if ingest:
        items.append(f"采集时无法解析 × {_n(ingest)}")
    for reason, n in sorted((t.get("quarantine_reasons") or {}).items()):
        items.append(f"{_e(expectation_zh(reason))} × {_n(n)}")
    return "<br>".join(items) or "—"


def _rows(package: Mapping[str, Any]) -> str:
    """Rows per table, the balance check and the quarantine reasons."""
    rows = [
        [
            _table_cell(t.get("table"), t.get("label_zh")),
            _e(t.get("classification")),
            _n(t.get("rows_in")),
            _n(t.get("rows_out")),
            _n(t.get("rows_quarantined")),
            _badge(_balanced(t), "平衡", "不平衡"),
            _reasons(t),
        ]
        for t in package.get("tables", [])
    ]
    head = [
        ("数据表", "Table"),
        ("分级", "Class"),
        ("输入行数", "In"),
        ("输出行数", "Out"),
        ("隔离行数", "Quarantined"),
        ("输入 = 输出 + 隔离", "Balance"),
        ("隔离原因（计数）", "Reasons"),
    ]
    body = _table(head, rows, empty="审核包中没有表级行数。", numeric=(2, 3, 4))
    intro = (
        "每张表交付的行数、通过校验进入下一步的行数，以及被隔离（暂不使用）的行数和原因。"
        "隔离的行不会发布；输入应等于输出加隔离。"
    )
    return _section(2, "rows", "各表行数与隔离", "Rows and quarantine", body, intro)


def _policy_cell(policy: str) -> str:
    return f"{_e(policy_zh(policy))}{_en(policy)}"


def _policies(package: Mapping[str, Any]) -> str:
    """Each field of each table with what desensitization did to it."""
    parts = []
    for t in package.get("tables", []):
        name = str(t.get("table"))
        rows = [
            [
                f"<code>{_e(col)}</code>",
                _e(column_label(name, col)),
                _policy_cell(str(policy)),
                "否" if policy == "drop" else "是",
            ]
            for col, policy in (t.get("policies") or {}).items()
        ]
        head = [
            ("字段", "Field"),
            ("中文名", "Label"),
            ("脱敏策略", "Policy"),
            ("是否发布", "Released"),
        ]
        table_html = _table(head, rows, empty="审核包未列出该表的字段策略。", cls="fields")
        parts.append(f"<h3>{_table_cell(name, t.get('label_zh'))}</h3>{table_html}")
    legend = _facts([(POLICY_ZH[p], p, escape(h)) for p, h in POLICY_HELP_ZH.items()])
    body = f"<details open><summary>策略说明</summary>{legend}</details>{''.join(parts)}"
    intro = "每个字段离开原始区前按合同规定的策略处理；删除的字段不发布。"
    return _section(3, "policies", "字段与脱敏策略", "Fields and policies", body, intro)


def _residual(package: Mapping[str, Any]) -> str:
    """What the scan of every released value found, per table (0 is the only passing count)."""
    labels = _labels(package)
    rows = [
        [
            _table_cell(name, labels.get(name)),
            _badge(
                not residual_findings(p.get("residual_pii") or {}),
                "0（通过）",
                residual_text(p.get("residual_pii") or {}),
            ),
            _mono(p.get("pseudonym_key_id")),
        ]
        for name, p in sorted((package.get("privacy") or {}).items())
    ]
    head = [
        ("数据表", "Table"),
        ("残留个人信息", "Residual PII findings"),
        ("假名密钥编号", "Key id"),
    ]
    body = _table(head, rows, empty="审核包中没有残留个人信息扫描结果。")
    intro = (
        "脱敏后对每个发布值（文本与整数列的每个不同值）再扫描一遍姓名、身份证号、手机号、地址等；"
        "任何发现都会阻止发布。假名密钥只记录编号，从不记录密钥本身。"
    )
    return _section(4, "residual", "残留个人信息扫描", "Residual PII scan", body, intro)


def _risk_facts(name: str, risk: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """One table's k-anonymity and l-diversity figures, in words."""
    quasi = "、".join(
        f"{q}{_paren(column_label(name, q))}" for q in risk.get("quasi_identifiers", [])
    )
    k_ok = not below_k_target(risk)
    k_text = f"k = {risk.get('k')}（目标 ≥ {risk.get('k_target')}）"
    facts = [
        ("准标识符", "Quasi-identifiers", _e(quasi)),
        (
            "k-匿名",
            "k-anonymity",
            f"<strong>{_e(k_text)}</strong> {_badge(k_ok, '达到目标', '低于目标', warn=True)}",
        ),
        ("l-多样性", "l-diversity", _e(l_diversity_text(name, risk))),
        (
            "记录数 / 等价类数",
            "Rows / classes",
            f"{_n(risk.get('rows'))} / {_n(risk.get('classes'))}",
        ),
        (
            "唯一记录",
            "Unique records",
            f"{_n(risk.get('uniques'))}（{_e(share_percent(risk.get('share_unique')))}）",
        ),
        (
            "低于目标 k 的记录占比",
            "Records below target k",
            _e(share_percent(risk.get("share_below_k"))),
        ),
        (
            "最大重识别概率",
            "Max prosecutor risk",
            _e(share_percent(risk.get("prosecutor_risk_max"))),
        ),
        (
            "平均重识别概率",
            "Average prosecutor risk",
            _e(share_percent(risk.get("prosecutor_risk_average"))),
        ),
    ]
    by_size = risk.get("records_by_class_size") or {}
    if by_size:
        sizes = "；".join(f"每组 {size} 条：{n:,}" for size, n in by_size.items())
        facts.append(("按等价类规模的记录数", "Records by class size", _e(sizes)))
    if "rows_suppressed" in risk:
        suppressed = f"{risk['rows_suppressed']:,}（{share_percent(risk.get('share_suppressed'))}）"
        facts.append(("抑制（删除）的记录", "Rows suppressed", _e(suppressed)))
    if risk.get("enforced"):
        facts += _release_facts(name, risk)
    if risk.get("release_withheld"):
        withheld = f"未发布记录级数据：{risk['release_withheld']}"
        facts.append(("记录级发布", "Record-level release", _e(withheld)))
    return facts


def _release_facts(name: str, risk: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """What the record-level release did: its columns, each generalization, and k before."""
    levels = "；".join(
        f"{column}{_paren(column_label(name, column))}：{level}"
        for column, level in (risk.get("level_names") or {}).items()
    )
    before = risk.get("before") or {}
    return [
        (
            "发布的列",
            "Released columns",
            _e("、".join(risk.get("columns", []))) + "（其余列不进入发布）",
        ),
        ("泛化层级", "Generalization", _e(levels)),
        (
            "发布前（脱敏区）",
            "Before release",
            _e(f"k = {before.get('k')}，唯一记录 {share_percent(before.get('share_unique'))}"),
        ),
    ]


def _risk(package: Mapping[str, Any]) -> str:
    """Re-identification risk of each assessed release; unassessed tables are named."""
    labels = _labels(package)
    risks = _risks(package)
    parts = [
        f"<h3>{_table_cell(n, labels.get(n))}</h3>{_facts(_risk_facts(n, r))}"
        for n, r in risks.items()
    ]
    rest = [n for n in sorted(package.get("privacy") or {}) if n not in risks]
    if rest:
        parts.append(f'<p class="note">未声明准标识符、不做评估的表：{_e("、".join(rest))}</p>')
    body = "".join(parts) or '<p class="empty">审核包中没有重识别风险评估。</p>'
    intro = (
        "k-匿名：按准标识符（如区县、行业、成立日期）分组后最小一组的记录数，"
        "k 越大越难认出个别主体；l-多样性：每组内敏感属性的不同取值数；"
        "重识别概率为攻击者已知准标识符时认出某条记录的概率。"
    )
    return _section(5, "risk", "重识别风险", "Re-identification risk", body, intro)


def _quality(package: Mapping[str, Any]) -> str:
    """Share of checked cells passing, per table and zone, along the five dimensions."""
    labels = _labels(package)
    rows = [
        [
            _table_cell(name, labels.get(name)),
            _zone(zone),
            *(_e(share_percent((scores or {}).get(d))) for d in DIMENSION_ZH),
        ]
        for name, zones in sorted((package.get("quality") or {}).items())
        for zone, scores in zones.items()
    ]
    head = [("数据表", "Table"), ("区域", "Zone")] + [(zh, d) for d, zh in DIMENSION_ZH.items()]
    body = _table(head, rows, empty="审核包中没有质量维度。", numeric=range(2, 7))
    intro = "各维度为通过相应规则的比例（按非空单元格计）；“—”表示该维度没有适用的规则。"
    return _section(6, "quality", "数据质量", "Data quality", body, intro)


def _outcome_rows(package: Mapping[str, Any]) -> list[list[str]]:
    """Each failed blocking or warning expectation: table, zone, rule, column and counts."""
    rows = []
    for zone, v in _suites(package):
        for level, items in (("blocking", v.get("failures")), ("warning", v.get("warnings"))):
            for o in items or []:
                counted = f"{_n(o.get('unexpected_count'))} / {_n(o.get('element_count'))}"
                rows.append(
                    [
                        f"<code>{_e(v.get('table'))}</code>",
                        _zone(zone),
                        _badge(False, no=SEVERITY_ZH[level], warn=level == "warning"),
                        _e(expectation_zh(str(o.get("expectation", "")))),
                        f"<code>{_e(o.get('column'))}</code>",
                        _e(DIMENSION_ZH.get(str(o.get("dimension")), o.get("dimension"))),
                        counted,
                    ]
                )
    return rows


def _validation(package: Mapping[str, Any]) -> str:
    """Every suite's verdict, then the blocking failures and warnings one by one."""
    suites = [
        [
            f"<code>{_e(v.get('table'))}</code>",
            _zone(zone),
            f"<code>{_e(v.get('suite'))}</code>",
            _badge(bool(v.get("success"))),
            _n(v.get("evaluated", 0)),
            _n(v.get("successful", 0)),
            _n(len(v.get("failures") or [])),
            _n(len(v.get("warnings") or [])),
        ]
        for zone, v in _suites(package)
    ]
    head = [
        ("数据表", "Table"),
        ("区域", "Zone"),
        ("规则集", "Suite"),
        ("结果", "Result"),
        ("已评估", "Evaluated"),
        ("通过", "Passed"),
        ("阻断项", "Blocking"),
        ("告警项", "Warnings"),
    ]
    detail_head = [
        ("数据表", "Table"),
        ("区域", "Zone"),
        ("级别", "Severity"),
        ("规则", "Expectation"),
        ("字段", "Column"),
        ("质量维度", "Dimension"),
        ("不符合 / 检查数", "Unexpected / checked"),
    ]
    body = (
        _table(head, suites, empty="审核包中没有校验结果。", numeric=range(4, 8))
        + "<h3>阻断项与告警明细</h3>"
        + _table(detail_head, _outcome_rows(package), empty="没有阻断项或告警。", numeric=(6,))
    )
    intro = (
        "原始区规则集在脱敏前检查交付数据，脱敏区规则集检查将要发布的数据。"
        "阻断项未通过时运行不会到达签核关口；告警不阻断，但需审核员判断。"
    )
    return _section(7, "validation", "校验结果", "Validation", body, intro)


def _datasets(package: Mapping[str, Any]) -> str:
    """The exact data the sign-off covers (content hashes) and the delivered files' hashes."""
    labels = _labels(package)
    datasets = [
        [
            _table_cell(d.get("table"), labels.get(str(d.get("table")))),
            _zone(d.get("zone")),
            _n(d.get("rows")),
            _mono(d.get("id")),
        ]
        for d in package.get("datasets", [])
    ]
    files = [
        [_table_cell(t.get("table"), t.get("label_zh")), _mono(t.get("file_sha256"))]
        for t in package.get("tables", [])
    ]
    body = (
        _table(
            [
                ("数据表", "Table"),
                ("区域", "Zone"),
                ("行数", "Rows"),
                ("数据集哈希（SHA-256）", "Dataset id"),
            ],
            datasets,
            empty="审核包未列出数据集。",
            numeric=(2,),
        )
        + "<h3>交付文件哈希</h3>"
        + _table(
            [("数据表", "Table"), ("源文件哈希（SHA-256）", "Delivered file")],
            files,
            empty="审核包未列出交付文件。",
        )
    )
    intro = "签核覆盖的正是这些数据集：发布前按哈希重新核对，数据有任何变化都会拒绝发布。"
    return _section(8, "datasets", "数据集哈希", "Dataset hashes", body, intro)


def _footer(package: Mapping[str, Any]) -> str:
    docs = package.get("data_docs")
    where = (
        f"质量报告（Great Expectations Data Docs）：PDO_HOME 下 <code>{_e(docs)}</code>；"
        if docs
        else ""
    )
    return (
        f"<footer><p>{where}控制台“质量报告”页可直接查看。"
        "本文件由 <code>pdo signoff export</code> 或控制台签核队列导出，"
        "内容只取自审核包。</p></footer>"
    )


_NAV = [
    ("summary", "审核要点"),
    ("authorization", "授权"),
    ("rows", "行数与隔离"),
    ("policies", "脱敏策略"),
    ("residual", "残留个人信息"),
    ("risk", "重识别风险"),
    ("quality", "数据质量"),
    ("validation", "校验结果"),
    ("datasets", "数据集哈希"),
    ("products", "数据产品"),
]

_CSS = """
:root { --ink: #1f2933; --muted: #616e7c; --line: #d9dee3; --head: #f1f4f7; --accent: #0b5cad; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff; line-height: 1.6; font-size: 15px;
  font-family: "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei",
    "WenQuanYi Micro Hei", sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 28px 32px 48px; }
h1 { font-size: 28px; margin: 0 0 8px; }
h2 { font-size: 21px; margin: 36px 0 8px; padding-bottom: 4px;
  border-bottom: 2px solid var(--accent); }
h3 { font-size: 16px; margin: 22px 0 6px; }
.en { color: var(--muted); font-size: 0.72em; font-weight: normal; }
.sub { color: var(--muted); font-size: 0.85em; }
.intro, .note { color: var(--muted); margin: 4px 0 12px; }
.empty { color: var(--muted); font-style: italic; }
nav { margin: 18px 0 0; padding: 10px 14px; background: var(--head); border-radius: 6px; }
nav a { color: var(--accent); margin-right: 14px; text-decoration: none; white-space: nowrap; }
dl.facts { display: grid; grid-template-columns: minmax(180px, max-content) 1fr; gap: 6px 18px;
  margin: 10px 0; }
dl.facts dt { font-weight: 600; }
dl.facts dt .en { display: block; }
dl.facts dd { margin: 0; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 14px; }
th, td { border: 1px solid var(--line); padding: 6px 9px; text-align: left; vertical-align: top; }
th { background: var(--head); font-weight: 600; white-space: nowrap; }
table.fields { table-layout: fixed; }
th .en { display: block; }
tbody tr:nth-child(even) td { background: #fafbfc; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font-family: "DejaVu Sans Mono", "Consolas", monospace; font-size: 0.92em; }
code.hash { word-break: break-all; }
.ok { color: #1b7f3b; font-weight: 600; }
.warn { color: #a15c00; font-weight: 600; }
.bad { color: #b42318; font-weight: 600; }
.ok, .warn, .bad, .nw { white-space: nowrap; }
details summary { cursor: pointer; color: var(--accent); margin: 6px 0; }
footer { margin-top: 40px; padding-top: 12px; border-top: 1px solid var(--line);
  color: var(--muted); font-size: 13px; }
@media print { nav { display: none; } main { padding: 0; } h2 { break-after: avoid; }
  tr { break-inside: avoid; } }
@page { size: A4; margin: 14mm; }
"""


def render_review_html(
    run: PipelineRun, package: dict[str, Any], approvals_given: list[str], approvals_needed: int
) -> str:
    """The whole review package as one offline HTML page, Chinese first, in the order it is read."""
    nav = "".join(f'<a href="#{anchor}">{escape(zh)}</a>' for anchor, zh in _NAV)
    parts = [
        _header(run, package, approvals_given, approvals_needed),
        f"<nav>{nav}</nav>",
        _summary(package),
        _authorization(package),
        _rows(package),
        _policies(package),
        _residual(package),
        _risk(package),
        _quality(package),
        _validation(package),
        _datasets(package),
        _products(package),
        _footer(package),
    ]
    title = f"审核包 {run.id[:12]}"
    return (
        '<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>"
        f"<body><main>{''.join(parts)}</main></body></html>\n"
    )


class NoReviewPackage(LookupError):
    """The run does not exist or has not reached the gate: there is nothing to export."""


def run_review_html(session: Session, run_id: str) -> str:
    """A run's page with the approvals that cover its current package (CLI export)."""
    run = session.get(PipelineRun, run_id)
    if run is None:
        raise NoReviewPackage(f"no run {run_id}")
    if not run.review_package:
        raise NoReviewPackage(
            f"run {run_id} has no review package (status: {run.status}); "
            "a package is built when a run reaches the sign-off gate"
        )
    given = [a.reviewer for a in approvals(session, run)]
    return render_review_html(
        run, run.review_package, given, required_approvals(run.review_package)
    )
