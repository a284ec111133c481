"""The review package as one self-contained HTML page that a non-programmer can read and sign.

Plain f-strings, no template engine: every value taken from the package or the run passes
through `_e` (``html.escape``) and the page has no scripts and no external assets, so the file
opens offline, prints, and can be archived next to the sign-off. It renders only the package
(counts, column names, hashes), never a data value.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from pdo.ledger.models import PipelineRun
from pdo.revenue import OPERATOR
from pdo.scorecard.frozen import MISSING
from pdo.scorecard.scaling import WORST_GRADE
from pdo.signoff import approvals, package_hash, required_approvals
from pdo.sources.departments import DEPARTMENTS
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
    "expect_column_values_to_be_month_not_after": "月份晚于本次运行月份或授权截止（多为录入错误）",
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


def redacted_again_text(redacted_again: Mapping[str, Any]) -> str:
    """How many distinct values per column the residual scan redacted again (“—” for none)."""
    found = [(col, int(n)) for col, n in sorted(redacted_again.items()) if n]
    if not found:
        return "—"
    return "；".join(f"{col}：{n} 个值" for col, n in found)


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


# --- the model card: one set of rows, rendered as HTML here and as tables in the console ------

PSI_DRIFT_DEFAULT = 0.25  # pdo.scorecard.metrics.PSI_DRIFT; a card records its own threshold
PSI_STABLE = 0.1  # below this a population is conventionally called stable
SEGMENT_ZH = {
    "district": ("所属区县", "District"),
    "industry_section": ("行业门类", "Industry section"),
    "size": ("企业规模（参保人数）", "Firm size by insured headcount"),
}
LEFT_OUT_ZH = (
    ("constant", "样本中取值恒定"),
    ("identifier-like", "疑似标识符（每行取值不同）"),
    ("type ", "数据类型既非数值也非类别"),
)
CARD_KEY_ZH = {
    "as_of": ("基准日", "As of"),
    "n_scored": ("评分企业数", "Enterprises scored"),
    "n_verified": ("核验企业数", "Enterprises verified"),
    "status_counts": ("各状态企业数", "Enterprises by status"),
    "grade_counts": ("各等级企业数", "Enterprises by grade"),
}


@dataclass(frozen=True)
class Verdict:
    """A judgement cell: a sign and a word, so it reads without colour in both renderings."""

    ok: bool
    yes: str
    no: str
    warn: bool = False

    @property
    def text(self) -> str:
        """The verdict as plain text, for renderings without badges."""
        if self.ok:
            return f"✓ {self.yes}"
        return f"{'⚠' if self.warn else '✗'} {self.no}"


@dataclass(frozen=True)
class Code:
    """An identifier or hash: monospace in the page, plain text in the console."""

    value: str
    digest: bool = False  # a hash: may break anywhere in the page, shortened in the console


Cell = str | Verdict | Code
Fact = tuple[str, str, Cell]


@dataclass(frozen=True)
class CardTable:
    """One table of a model card with Chinese-first headers; `key` groups it in the console."""

    key: str
    zh: str
    en: str
    head: tuple[tuple[str, str], ...]
    rows: list[list[Cell]]
    numeric: tuple[int, ...] = ()
    note: str = ""
    empty: str = "模型卡未提供该项。"


def cell_text(cell: Cell) -> str:
    """A cell as plain text (the console's rendering)."""
    if isinstance(cell, Verdict):
        return cell.text
    if isinstance(cell, Code):
        return cell.value or "—"
    return cell or "—"


def decimal4(value: Any) -> str:
    """AUC, Gini, KS, PSI and WoE with four decimals; — where the card has none."""
    try:
        return f"{float(value):.4f}"
    except (TypeError, ValueError):
        return "—"


def count_text(value: Any) -> str:
    """A count with thousands separators, plain (the HTML escapes it on the way out)."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return "—" if value is None or value == "" else str(value)


def fen_text(fen: Any) -> str:
    """Integer fen as 元 with two decimals, by integer arithmetic."""
    try:
        whole, cents = divmod(int(fen), 100)
    except (TypeError, ValueError):
        return "—"
    return f"{whole:,}.{cents:02d} 元"


def basis_points_text(bp: int) -> str:
    """Basis points as a percentage, exactly (shares are agreed in basis points)."""
    return f"{bp // 100}.{bp % 100:02d}%"


def department_zh(code: str) -> str:
    """A department (or the operator) by its Chinese name, the code kept in brackets."""
    if code == OPERATOR:
        return "授权运营单位"
    names = {d.code: d.name_zh for d in DEPARTMENTS}
    return f"{names[code]}（{code}）" if code in names else code


def is_scorecard(card: Mapping[str, Any]) -> bool:
    """A scorecard's validation pack (bins and points), as opposed to a rule product's counts."""
    return bool(card.get("bin_tables")) or "scorecard_sha256" in card


def drift_verdict(drift: Mapping[str, Any] | None) -> Cell:
    """The build's PSI against the live version: ⚠ above the threshold, — when not compared."""
    if not drift:
        return "—"
    against = drift.get("against")
    if against is None:
        return "—（尚无现行版本，不比较）"
    if drift.get("psi") is None:
        return f"未计算（该产品没有可比较的数值输出；现行版本 {against}）"
    psi_text, limit = decimal4(drift["psi"]), drift.get("threshold", PSI_DRIFT_DEFAULT)
    return Verdict(
        not drift.get("flagged"),
        f"PSI {psi_text} ≤ {limit}（对比 {against}）",
        f"PSI {psi_text} > {limit}（对比 {against}）：分布显著变化",
        warn=True,
    )


def live_figures(metrics: Mapping[str, Any]) -> str:
    """The live version's headline figures: out-of-time AUC/KS for a scorecard, else its counts."""
    oot = metrics.get("out_of_time")
    if isinstance(oot, Mapping):
        return (
            f"跨时验证 AUC {decimal4(oot.get('auc'))}，KS {decimal4(oot.get('ks'))}，"
            f"样本 {count_text(oot.get('n'))} 笔"
        )
    plain = [(k, v) for k, v in metrics.items() if isinstance(v, str | int | float)]
    return "；".join(f"{CARD_KEY_ZH.get(k, (k,))[0]} {v}" for k, v in plain[:6]) or "—"


def product_facts(p: Mapping[str, Any]) -> list[Fact]:
    """What the product is: inputs, purposes, outputs, price, revenue shares and live version."""
    inputs = [f"{t}{_paren(_source_label(t))}" for t in p.get("inputs") or []]
    weights = {party: int(w) for party, w in (p.get("revenue_weights") or {}).items()}
    total = sum(weights.values())
    split = [
        f"{department_zh(party)} {basis_points_text(round(10_000 * w / total))}"
        for party, w in sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    live = p.get("live_version") or {}
    current = f"{live['id']}（基准日 {live.get('as_of') or '—'}）" if live.get("id") else ""
    return [
        ("输入表", "Inputs", "、".join(inputs)),
        ("用途", "Purposes", "、".join(p.get("purposes") or [])),
        ("输出字段", "Outputs", "、".join(p.get("outputs") or [])),
        ("单价（每次调用）", "Price per call", fen_text(p.get("price_fen"))),
        ("收益分成", "Revenue shares", "；".join(split)),
        ("现行版本", "Live version", current or "尚无已发布版本"),
        ("现行版本指标", "Live figures", live_figures(live.get("metrics") or {}) if live else "—"),
    ]


def build_facts(candidate: Mapping[str, Any]) -> list[Fact]:
    """This run's build: the exact dataset and model the sign-off covers, its checks and drift."""
    v = candidate.get("validation") or {}
    checked = f"{count_text(v.get('successful'))}/{count_text(v.get('evaluated'))}"
    failures = len(v.get("failures") or [])
    suite: Cell = (
        Verdict(bool(v.get("success")), f"通过（{checked}）", f"未通过（阻断项 {failures}）")
        if v
        else "—"
    )
    sha = candidate.get("model_sha256")
    return [
        (
            "产品数据集哈希（SHA-256）",
            "Product dataset",
            Code(str(candidate.get("dataset") or ""), digest=True),
        ),
        ("行数（企业数）", "Rows", count_text(candidate.get("rows"))),
        ("基准日", "As of", str(candidate.get("as_of") or "—")),
        (
            "模型哈希（SHA-256）",
            "Model hash",
            Code(str(sha), digest=True) if sha else "无模型（规则产品）",
        ),
        ("产品规则集校验", "Product suite", suite),
        ("与现行版本的漂移", "Drift against live", drift_verdict(candidate.get("drift"))),
    ]


def _left_out_zh(why: str) -> str:
    """Why the trainer left a variable out, in Chinese with the recorded reason kept."""
    zh = next((z for needle, z in LEFT_OUT_ZH if why.startswith(needle)), "")
    return f"{zh}（{why}）" if zh else why


def _variable_labels(card: Mapping[str, Any]) -> dict[str, str]:
    """Variable → Chinese label, from the card's own feature dictionary and bin tables."""
    labels = {
        str(t.get("variable")): str(t.get("label_zh") or "") for t in card.get("bin_tables") or []
    }
    labels |= {
        str(f.get("name")): str(f.get("label_zh") or "")
        for f in card.get("feature_dictionary") or []
    }
    return labels


def _grade_bands(card: Mapping[str, Any]) -> dict[str, str]:
    """Grade → score band (A ≥ 600, …, worst grade below the last floor)."""
    floors = [(str(g.get("grade")), g.get("min_score")) for g in card.get("grades") or []]
    bands: dict[str, str] = {}
    upper = None
    for grade, floor in floors:
        bands[grade] = f"≥ {floor}" if upper is None else f"{floor} – {upper - 1}"
        upper = floor
    if upper is not None:
        bands.setdefault(WORST_GRADE, f"< {upper}")
    return bands


def card_overview(card: Mapping[str, Any]) -> list[Fact]:
    """How the scorecard was built and scaled: method, label, samples, scaling and grades."""
    scaling = card.get("scaling") or {}
    label = card.get("label") or {}
    sample = card.get("sample") or {}
    low, high = [*(card.get("score_range") or []), None, None][:2]
    bands = _grade_bands(card)
    labels = _variable_labels(card)
    left_out = [
        f"{name}{_paren(labels.get(name, ''))}：{_left_out_zh(str(why))}"
        for name, why in (card.get("variables_left_out") or {}).items()
    ]
    return [
        ("建模方法", "Method", str(card.get("method") or "—")),
        (
            "评分卡哈希（SHA-256）",
            "Scorecard hash",
            Code(str(card.get("scorecard_sha256") or ""), digest=True),
        ),
        ("目标变量", "Label", f"{label.get('column', '—')}：{label.get('definition_zh', '—')}"),
        ("样本单位", "Sample unit", str(sample.get("unit") or "—")),
        ("跨时验证样本占比", "Out-of-time share", share_percent(sample.get("out_of_time_share"))),
        ("随机种子", "Seed", str(card.get("seed", "—"))),
        ("分数范围", "Score range", f"{low} – {high}" if low is not None else "—"),
        (
            "基准分与基准好坏比",
            "Base score at base odds",
            f"{scaling.get('base_score', '—')} 分时好坏比为 {scaling.get('base_odds', '—')}:1",
        ),
        ("PDO（好坏比翻倍所需分数）", "Points to double the odds", str(scaling.get("pdo", "—"))),
        ("好坏比约定", "Odds convention", str(scaling.get("odds_convention") or "—")),
        ("等级划分（分数）", "Grades by score", "；".join(f"{g} {b}" for g, b in bands.items())),
        ("计入通过率的等级", "Approved grades", "、".join(card.get("approved_grades") or [])),
        ("未入模变量", "Variables left out", "；".join(left_out) or "无"),
    ]


def scoring_facts(card: Mapping[str, Any]) -> list[Fact]:
    """What the build scored: the date, how many, how many knocked out, the score quantiles."""
    scoring = card.get("scoring") or {}
    quantiles = "；".join(
        f"{k.upper()} {float(v):g}" for k, v in (scoring.get("score_quantiles") or {}).items()
    )
    return [
        ("评分日", "As of", str(scoring.get("as_of") or "—")),
        (
            "评分企业数",
            "Enterprises scored",
            count_text(scoring.get("n_scored", card.get("n_scored"))),
        ),
        ("触发否决规则的企业", "Knocked out", count_text(scoring.get("knocked_out"))),
        ("分数分位数", "Score quantiles", quantiles or "—"),
    ]


def _sample_row(name: str, period: Mapping[str, Any], figures: Mapping[str, Any]) -> list[Cell]:
    """One sample's period and counts beside its discrimination figures."""
    return [
        name,
        f"{period.get('from', '—')} 至 {period.get('to', '—')}" if period else "—",
        count_text(figures.get("n", period.get("n"))),
        count_text(period.get("bads")),
        share_percent(figures.get("bad_rate", period.get("bad_rate"))),
        decimal4(figures.get("auc")),
        decimal4(figures.get("gini")),
        decimal4(figures.get("ks")),
    ]


def _discrimination(
    card: Mapping[str, Any], live: Mapping[str, Any] | None, live_id: str | None
) -> CardTable:
    """Development against out-of-time (and the live version's out-of-time, to compare)."""
    sample = card.get("sample") or {}
    rows = [
        _sample_row("开发样本", sample.get("development") or {}, card.get("development") or {}),
        _sample_row("跨时验证样本", sample.get("out_of_time") or {}, card.get("out_of_time") or {}),
    ]
    if live and isinstance(live.get("out_of_time"), Mapping):
        live_sample = (live.get("sample") or {}).get("out_of_time") or {}
        rows.append(
            _sample_row(f"现行版本 {live_id or ''} 跨时验证", live_sample, live["out_of_time"])
        )
    head = (
        ("样本", "Sample"),
        ("期间（放款日）", "Period"),
        ("笔数", "n"),
        ("违约笔数", "Bads"),
        ("违约率", "Bad rate"),
        ("AUC", "Area under ROC"),
        ("Gini", "2·AUC − 1"),
        ("KS", "Kolmogorov–Smirnov"),
    )
    note = (
        "跨时验证样本为按放款日最晚的一部分贷款，不参与拟合。AUC 为随机抽取的一笔违约贷款得分低于"
        "一笔正常贷款的概率（0.5 相当于随机）；KS 为违约与正常贷款累计分数分布的最大差距。"
    )
    return CardTable(
        "discrimination",
        "样本与区分能力",
        "Samples and discrimination",
        head,
        rows,
        numeric=(2, 3, 4, 5, 6, 7),
        note=note,
    )


def _calibration(card: Mapping[str, Any]) -> CardTable:
    """Observed bad rate against the scaling's predicted PD, grade by grade, out of time."""
    bands = _grade_bands(card)
    rows: list[list[Cell]] = [
        [
            str(c.get("grade")),
            bands.get(str(c.get("grade")), "—"),
            count_text(c.get("n")),
            share_percent(c.get("observed_bad_rate")),
            share_percent(c.get("predicted_pd")),
        ]
        for c in card.get("calibration_out_of_time") or []
    ]
    head = (
        ("等级", "Grade"),
        ("分数区间", "Score band"),
        ("笔数", "n"),
        ("实际违约率", "Observed bad rate"),
        ("预测违约概率", "Predicted PD"),
    )
    note = "预测违约概率由评分标度从分数换算；各等级笔数较少时，实际违约率波动较大。"
    return CardTable(
        "calibration",
        "分等级校准（跨时验证样本）",
        "Calibration by grade, out of time",
        head,
        rows,
        numeric=(2, 3, 4),
        note=note,
    )


def _stability_verdict(value: Any, limit: float) -> Cell:
    """Stable below 0.1, a minor shift up to the drift threshold, ⚠ beyond it."""
    if value is None:
        return "—"
    v = float(value)
    if v <= PSI_STABLE:
        return Verdict(True, "稳定", "")
    return Verdict(v <= limit, f"轻微变化（≤ {limit}）", f"显著变化（> {limit}）", warn=True)


def _stability(card: Mapping[str, Any]) -> CardTable:
    """PSI of the score and CSI of each variable, development against out of time."""
    limit = float(card.get("psi_drift_threshold") or PSI_DRIFT_DEFAULT)
    labels = _variable_labels(card)
    psi_value = card.get("psi_out_of_time")
    rows: list[list[Cell]] = []
    if psi_value is not None:
        rows.append(
            [
                Code("score"),
                "总分（PSI）",
                decimal4(psi_value),
                _stability_verdict(psi_value, limit),
            ]
        )
    rows += [
        [Code(name), labels.get(name, ""), decimal4(value), _stability_verdict(value, limit)]
        for name, value in (card.get("csi_out_of_time") or {}).items()
    ]
    head = (("对象", "Item"), ("中文名", "Label"), ("稳定性指数", "PSI / CSI"), ("判断", "Verdict"))
    note = (
        f"开发样本与跨时验证样本的分布比较：总分为 PSI，各变量为 CSI（按分箱）。"
        f"< {PSI_STABLE} 稳定，{PSI_STABLE}–{limit} 轻微变化，> {limit}（漂移阈值）显著变化。"
    )
    return CardTable(
        "stability", "稳定性（PSI 与 CSI）", "Stability", head, rows, numeric=(2,), note=note
    )


def _segments(card: Mapping[str, Any]) -> list[CardTable]:
    """Approval rate, bad rate and AUC per district, industry and size, out of time."""
    approved = "、".join(card.get("approved_grades") or []) or "A–C"
    head = (
        ("分群", "Segment"),
        ("笔数", "n"),
        (f"通过率（{approved} 级）", "Approval rate"),
        ("违约率", "Bad rate"),
        ("AUC", "AUC"),
    )
    out = []
    for dim, segments in (card.get("segments_out_of_time") or {}).items():
        zh, en = SEGMENT_ZH.get(dim, (dim, dim))
        rows: list[list[Cell]] = [
            [
                str(s.get("segment")),
                count_text(s.get("n")),
                share_percent(s.get("approval_rate")),
                share_percent(s.get("bad_rate")),
                decimal4(s.get("auc")),
            ]
            for s in segments
        ]
        note = "跨时验证样本；只有一类结果（全部正常或全部违约）的分群无法计算 AUC，记为“—”。"
        out.append(
            CardTable(
                "segments",
                f"分群表现：{zh}",
                f"Segments: {en}",
                head,
                rows,
                numeric=(1, 2, 3, 4),
                note=note,
            )
        )
    return out


def _grades(card: Mapping[str, Any]) -> CardTable:
    """How many enterprises the build put in each grade."""
    counts = (card.get("scoring") or {}).get("grade_counts") or card.get("grade_counts") or {}
    total = sum(int(n) for n in counts.values())
    bands = _grade_bands(card)
    rows: list[list[Cell]] = [
        [
            str(g),
            bands.get(str(g), "—"),
            count_text(n),
            share_percent(int(n) / total if total else None),
        ]
        for g, n in counts.items()
    ]
    head = (
        ("等级", "Grade"),
        ("分数区间", "Score band"),
        ("企业数", "Enterprises"),
        ("占比", "Share"),
    )
    note = "触发否决规则的企业不论得分，均评为最低等级。"
    return CardTable(
        "grades",
        "评分结果：各等级企业数",
        "Scored enterprises by grade",
        head,
        rows,
        numeric=(2, 3),
        note=note,
    )


def _features(card: Mapping[str, Any]) -> CardTable:
    """Every candidate variable: what it means, where from, which way risk goes, used or not."""
    left_out = card.get("variables_left_out") or {}
    rows: list[list[Cell]] = []
    for f in card.get("feature_dictionary") or []:
        name = str(f.get("name"))
        why = left_out.get(name)
        used = "是" if f.get("used") else (f"否：{_left_out_zh(str(why))}" if why else "否")
        rows.append(
            [
                Code(str(f.get("code") or "")),
                Code(name),
                str(f.get("label_zh") or "—"),
                str(f.get("definition_zh") or "—"),
                department_zh(str(f.get("source") or "")),
                str(f.get("direction") or "—"),
                used,
            ]
        )
    head = (
        ("理由代码", "Reason code"),
        ("变量", "Variable"),
        ("中文名", "Label"),
        ("定义", "Definition"),
        ("来源部门", "Source"),
        ("风险方向", "Risk direction"),
        ("是否入模", "Used"),
    )
    note = "理由代码随每个评分返回给银行，说明扣分最多的因素；每项特征只使用评分日前已公开的记录。"
    return CardTable("features", "特征字典", "Feature dictionary", head, rows, note=note)


def _knockouts(card: Mapping[str, Any]) -> CardTable:
    """The rules that decide the grade whatever the points."""
    rows: list[list[Cell]] = [
        [
            Code(str(k.get("code") or "")),
            str(k.get("label_zh") or "—"),
            str(k.get("label_en") or "—"),
            department_zh(str(k.get("source") or "")),
        ]
        for k in card.get("knockouts") or []
    ]
    head = (("代码", "Code"), ("规则", "Rule"), ("英文", "English"), ("来源部门", "Source"))
    note = "命中任一否决规则的企业不论得分，直接评为最低等级，并随评分返回规则代码。"
    return CardTable(
        "knockouts",
        "否决规则",
        "Knock-out rules",
        head,
        rows,
        empty="该产品没有否决规则。",
        note=note,
    )


def card_tables(
    card: Mapping[str, Any], live: Mapping[str, Any] | None = None, live_id: str | None = None
) -> list[CardTable]:
    """A scorecard's validation pack in reading order (bin tables separately: `bin_tables`)."""
    return [
        _discrimination(card, live, live_id),
        _calibration(card),
        _stability(card),
        *_segments(card),
        _grades(card),
        _features(card),
        _knockouts(card),
    ]


# The scorecard's own name for the bin of missing values and unseen categories (kept as stored:
# the frozen model looks bins up by it), as reviewers read it.
MISSING_BIN_SHOWN = "缺失/未见类别 (Missing)"


def _bin_label(stored: Any) -> str:
    return MISSING_BIN_SHOWN if stored == MISSING else str(stored)


def bin_tables(card: Mapping[str, Any]) -> list[CardTable]:
    """Per variable: each bin's count, event rate, WoE and the points it adds to the score."""
    head = (
        ("分箱", "Bin"),
        ("样本数", "Count"),
        ("违约率", "Event rate"),
        ("WoE", "Weight of evidence"),
        ("分值", "Points"),
    )
    return [
        CardTable(
            "bins",
            str(t.get("label_zh") or t.get("variable")),
            str(t.get("variable")),
            head,
            [
                [
                    _bin_label(b.get("bin")),
                    count_text(b.get("count")),
                    share_percent(b.get("event_rate")),
                    decimal4(b.get("woe")),
                    count_text(b.get("points")),
                ]
                for b in t.get("bins") or []
            ],
            numeric=(1, 2, 3, 4),
            note=f"信息值 IV = {decimal4(t.get('iv'))}",
        )
        for t in card.get("bin_tables") or []
    ]


def generic_card(card: Mapping[str, Any]) -> tuple[list[Fact], list[CardTable]]:
    """A card without a scorecard (e.g. a rule product's counts): its figures as they come."""
    labels = {k[: -len("_labels_zh")]: v for k, v in card.items() if k.endswith("_labels_zh")}
    facts: list[Fact] = []
    tables: list[CardTable] = []
    for key, value in card.items():
        if key.endswith("_labels_zh"):
            continue
        zh, en = CARD_KEY_ZH.get(key, (key, ""))
        if isinstance(value, Mapping) and all(
            not isinstance(v, Mapping | list) for v in value.values()
        ):
            names = labels.get(key.removesuffix("_counts"), {})
            rows: list[list[Cell]] = [
                [
                    Code(str(k)),
                    str(names.get(k, "")),
                    count_text(v) if isinstance(v, int) else str(v),
                ]
                for k, v in value.items()
            ]
            head = (("项", "Item"), ("中文名", "Label"), ("值", "Value"))
            tables.append(CardTable("generic", zh, en, head, rows, numeric=(2,)))
        elif isinstance(value, Mapping | list):
            facts.append((zh, en, json.dumps(value, ensure_ascii=False, sort_keys=True)))
        else:
            facts.append((zh, en, count_text(value) if isinstance(value, int) else str(value)))
    return facts, tables


def _source_label(name: str) -> str:
    """A source table's Chinese name, or empty for a table the contracts do not know."""
    try:
        return source_table(name).label_zh
    except KeyError:
        return ""


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
    rows += _product_checks(package)
    uncovered = _uncovered(package)
    if uncovered is not None:
        verdict = _badge(not uncovered, "是", "未授权：" + "、".join(uncovered))
        rows.insert(0, ("授权覆盖全部数据表", "All tables authorized", verdict))
    return rows


def _candidates(package: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """(product, build) for every product this run built before the gate."""
    return [
        (str(p.get("product")), p["candidate"])
        for p in package.get("products") or []
        if p.get("candidate")
    ]


def _drift_check(builds: list[tuple[str, Mapping[str, Any]]]) -> str:
    """⚠ when any build's score distribution moved past the threshold against its live version."""
    compared = [(n, b["drift"]) for n, b in builds if (b.get("drift") or {}).get("psi") is not None]
    if not compared:
        return "—（尚无可比较的现行版本）"
    texts = [f"{n} PSI {decimal4(d['psi'])}" for n, d in compared]
    flagged = [t for t, (_, d) in zip(texts, compared, strict=True) if d.get("flagged")]
    limit = compared[0][1].get("threshold", PSI_DRIFT_DEFAULT)
    return _badge(
        not flagged,
        f"{'；'.join(texts)}（≤ {limit}）",
        f"{'；'.join(flagged)} > {limit}",
        warn=True,
    )


def _oot_auc_check(builds: list[tuple[str, Mapping[str, Any]]]) -> str:
    """Every scorecard judged on loans it was not fitted on: ⚠ where the AUC is missing."""
    cards = [(n, b.get("model_card") or {}) for n, b in builds]
    scored = [(n, (c.get("out_of_time") or {}).get("auc")) for n, c in cards if is_scorecard(c)]
    if not scored:
        return "—（没有评分卡产品）"
    missing = [n for n, auc in scored if auc is None]
    shown = "；".join(f"{n} {decimal4(auc)}" for n, auc in scored if auc is not None)
    return _badge(not missing, shown, f"{'、'.join(missing)} 缺少跨时验证 AUC", warn=True)


def _product_checks(package: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """The products' verdicts at a glance: drift against the live version and out-of-time AUC."""
    builds = _candidates(package)
    if not builds:
        return [("数据产品", "Products", "—（本次未构建数据产品）")]
    return [
        ("产品漂移（相对现行版本）", "Product drift", _drift_check(builds)),
        ("跨时验证 AUC", "Out-of-time AUC", _oot_auc_check(builds)),
    ]


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


def _cell_html(cell: Cell) -> str:
    """A model-card cell as page markup: verdicts as badges, identifiers in monospace."""
    if isinstance(cell, Verdict):
        return _badge(cell.ok, cell.yes, cell.no, warn=cell.warn)
    if isinstance(cell, Code):
        return _mono(cell.value) if cell.digest else f"<code>{_e(cell.value)}</code>"
    return _e(cell)


def _facts_html(items: Sequence[Fact]) -> str:
    """Model-card facts in the page's label/value list."""
    return _facts([(zh, en, _cell_html(value)) for zh, en, value in items])


def _card_table_html(t: CardTable, level: int = 4) -> str:
    """One model-card table with its heading and the line that says how to read it."""
    note = f'<p class="note">{escape(t.note)}</p>' if t.note else ""
    rows = ([_cell_html(c) for c in row] for row in t.rows)
    table_html = _table(t.head, rows, empty=t.empty, numeric=t.numeric)
    return f"{_heading(level, t.zh, t.en)}{note}{table_html}"


def _heading(level: int, zh: str, en: str) -> str:
    """A sub-heading, Chinese first with the English in small text, like the sections'."""
    return f"<h{level}>{escape(zh)}{_en(en)}</h{level}>"


_BINS_NOTE = (
    "每个变量的分箱、各箱样本数与违约率（开发样本）、WoE 和该箱计入总分的分值；"
    "总分为企业在各变量所在分箱的分值之和。"
)


def _scorecard_html(card: Mapping[str, Any], live: Mapping[str, Any]) -> str:
    """The validation pack: overview, performance, stability, segments, scoring, bins, features."""
    tables = card_tables(card, live.get("metrics") or {}, live.get("id"))
    bins = "".join(_card_table_html(t, 5) for t in bin_tables(card))
    return (
        _heading(4, "模型概况", "Model")
        + _facts_html(card_overview(card))
        + "".join(_card_table_html(t) for t in tables if t.key != "grades")
        + _heading(4, "评分结果", "Scoring")
        + _facts_html(scoring_facts(card))
        + "".join(_card_table_html(t, 5) for t in tables if t.key == "grades")
        + _heading(4, "分箱表", "Bin tables")
        + f'<p class="note">{escape(_BINS_NOTE)}</p>'
        + (bins or '<p class="empty">模型卡未提供分箱表。</p>')
    )


def _generic_card_html(card: Mapping[str, Any]) -> str:
    """A card without a scorecard: its facts and count tables as recorded."""
    facts, tables = generic_card(card)
    body = (_facts_html(facts) if facts else "") + "".join(_card_table_html(t, 5) for t in tables)
    return _heading(4, "产品说明卡", "Product card") + (body or '<p class="empty">模型卡为空。</p>')


def _product(p: Mapping[str, Any]) -> str:
    """One product: what it is, then this run's build and its model card."""
    head = f"<h3>{_e(p.get('title_zh'))} <code>{_e(p.get('product'))}</code></h3>"
    spec = _facts_html(product_facts(p))
    candidate = p.get("candidate")
    if not candidate:
        return head + spec + '<p class="empty">本次运行未构建该产品。</p>'
    card = candidate.get("model_card") or {}
    rendered = (
        _scorecard_html(card, p.get("live_version") or {})
        if is_scorecard(card)
        else _generic_card_html(card)
    )
    build = _heading(4, "本次构建", "This run's build") + _facts_html(build_facts(candidate))
    return f'<div class="product">{head}{spec}{build}{rendered}</div>'


def _products(package: Mapping[str, Any]) -> str:
    """The products built from this run before the gate, each with its model card."""
    body = "".join(_product(p) for p in package.get("products") or []) or (
        '<p class="empty">审核包未列出数据产品。</p>'
    )
    intro = (
        "产品在签核前已用本次运行的脱敏数据构建：签核覆盖下列产品数据集与模型，批准后原样发布。"
        "评分卡附验证报告（区分能力、校准、稳定性、分群表现、分箱与特征字典），"
        "供审核员与主管部门判断模型是否可用。"
    )
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
    """Why rows were set aside, counted: each ingest reason (unparsable, missing, duplicate), or
    a named rule at validation."""
    items = []
    ingest = int(t.get("rows_quarantined_ingest", 0))
    by_reason = t.get("quarantine_reasons_ingest")
    if by_reason:
        items += [f"采集：{_e(reason)} × {_n(n)}" for reason, n in sorted(by_reason.items())]
    elif ingest:  # a package made before ingest reasons were listed
        items.append(f"采集时隔离 × {_n(ingest)}")
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
            escape(redacted_again_text(p.get("redacted_again") or {})),
            _mono(p.get("pseudonym_key_id")),
        ]
        for name, p in sorted((package.get("privacy") or {}).items())
    ]
    head = [
        ("数据表", "Table"),
        ("残留个人信息", "Residual PII findings"),
        ("复扫后再次脱敏", "Redacted again after the scan"),
        ("假名密钥编号", "Key id"),
    ]
    body = _table(head, rows, empty="审核包中没有残留个人信息扫描结果。")
    intro = (
        "脱敏后对每个发布值（文本与整数列的每个不同值）再扫描一遍姓名、身份证号、手机号、地址等。"
        "自由文本（编辑脱敏列）中复扫仍发现的内容会按复扫结果再次替换并单独重扫，最多三轮；"
        "此后仍有任何发现都会阻止发布。假名密钥只记录编号，从不记录密钥本身。"
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
    labels = _labels(package) | {
        str(p.get("product")): str(p.get("title_zh") or "") for p in package.get("products") or []
    }
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
h4 { font-size: 15px; margin: 18px 0 4px; }
h5 { font-size: 14px; margin: 14px 0 4px; }
.product { margin-top: 10px; }
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
