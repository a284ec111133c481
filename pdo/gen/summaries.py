"""Free-text 处罚决定书摘要 in several real-world shapes, naming the person behind the firm."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Facts:
    """Everything a summary may mention about one decision."""

    firm: str
    uscc: str
    role: str  # 法定代表人 | 经营者
    person: str
    resident_id: str
    mobile: str
    address: str
    authority: str
    happened: dt.date
    facts: str
    law: str
    article: str
    basis: str
    punishment: str


def cn_date(d: dt.date) -> str:
    """2025年3月7日."""
    return f"{d.year}年{d.month}月{d.day}日"


def _t_full(f: Facts, keep: np.ndarray) -> str:
    parts = [
        f"统一社会信用代码{f.uscc}" if keep[0] else "",
        f"{f.role}{f.person}",
        f"身份证号{f.resident_id}" if keep[1] else "",
        f"联系电话{f.mobile}" if keep[2] else "",
        f"住所{f.address}" if keep[3] else "",
    ]
    who = "，".join(p for p in parts if p)
    return (
        f"当事人{f.firm}（{who}）于{cn_date(f.happened)}{f.facts}，违反了{f.law}{f.article}"
        f"的规定。依据{f.law}{f.basis}，{f.authority}决定{f.punishment}。"
    )


def _t_investigation(f: Facts, keep: np.ndarray) -> str:
    tail = f"联系电话：{f.mobile}。" if keep[2] else ""
    return (
        f"经查，{f.firm}（{f.role}：{f.person}，公民身份号码：{f.resident_id}）在{f.address}"
        f"从事经营活动期间{f.facts}。上述行为违反了{f.law}{f.article}规定，本机关决定"
        f"{f.punishment}。{tail}"
    )


def _t_responsible(f: Facts, keep: np.ndarray) -> str:
    return (
        f"{f.firm}{f.facts}，其{f.role}{f.person}（身份证{f.resident_id}）对此负有直接责任。"
        f"依据{f.law}{f.basis}，{f.punishment}。"
    )


def _t_form(f: Facts, keep: np.ndarray) -> str:
    phone = f"联系电话：{f.mobile}；" if keep[2] else ""
    return (
        f"当事人：{f.firm}；住所：{f.address}；{f.role}：{f.person}；{phone}"
        f"违法事实：{f.happened.year}年{f.happened.month}月{f.facts}。处罚依据：{f.law}{f.basis}。"
        f"处罚结果：{f.punishment}。"
    )


def _t_inspection(f: Facts, keep: np.ndarray) -> str:
    return (
        f"{cn_date(f.happened)}，执法人员对位于{f.address}的{f.firm}进行检查，发现{f.facts}。"
        f"当事人{f.role}{f.person}（电话{f.mobile}）到场配合调查。依据{f.law}{f.basis}，"
        f"决定{f.punishment}。"
    )


def _t_person_first(f: Facts, keep: np.ndarray) -> str:
    contact = f"，手机{f.mobile}" if keep[2] else ""
    return (
        f"{f.person}（身份证号码{f.resident_id}{contact}）作为{f.firm}的{f.role}，"
        f"{cn_date(f.happened)}{f.facts}，依据{f.law}{f.basis}，决定{f.punishment}。"
    )


def _t_brief(f: Facts, keep: np.ndarray) -> str:
    return f"{f.firm}因{f.facts}，违反{f.law}{f.article}，被{f.authority}{f.punishment}。"


TEMPLATES = (
    _t_full,
    _t_investigation,
    _t_responsible,
    _t_form,
    _t_inspection,
    _t_person_first,
    _t_brief,
)
TEMPLATE_WEIGHTS = (0.30, 0.16, 0.12, 0.14, 0.12, 0.08, 0.08)


def render(template: int, facts: Facts, keep: np.ndarray) -> str:
    """One summary; `keep` says which optional pieces (uscc, ID, phone, address) appear."""
    return TEMPLATES[template](facts, keep)


def yuan(fen: int) -> str:
    """Amounts as decisions write them: 5000元, 12345.67元."""
    return f"{fen // 100}元" if fen % 100 == 0 else f"{fen // 100}.{fen % 100:02d}元"
