"""PRC recognizers through the real zh AnalyzerEngine: what must be found and what must not."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest
from presidio_analyzer import AnalyzerEngine

from pdo.privacy.analyzer import MODEL_DIR_NAME, build_analyzer, find_pii
from pdo.privacy.checksums import (
    is_valid_resident_id,
    is_valid_uscc,
    resident_id_check_char,
    uscc_check_char,
)
from pdo.privacy.recognizers import RECOGNIZERS, ResidentIdRecognizer


def rid(first17: str) -> str:
    """A resident ID with its correct check character."""
    return first17 + resident_id_check_char(first17)


def bad_check(value: str, check: Callable[[str], str]) -> str:
    """The same ID with a different (hence wrong) last character."""
    wrong = next(c for c in "0123456789X" if c != check(value[:17]))
    return value[:17] + wrong


def uscc(first17: str) -> str:
    """A USCC with its correct GB 32100 check character."""
    return first17 + uscc_check_char(first17)


RID = rid("11010519900307123")
RID_X = rid("11010519900307005")  # check character is X
RID_OLD = rid("44030619491231002")
RID_BAD_CHECK = bad_check(RID, resident_id_check_char)
RID_FEB30 = rid("32010219990230123")  # right check character, impossible birth date
LEGACY = "110105491231002"
LEGACY_BAD_DATE = "110105491331002"
RID_AND_USCC = "110105199003070439"  # all digits, valid under both checks

USCC = uscc("91350100M000100Y4")
USCC_2 = uscc("91110108MA01ABCD1")
USCC_GOV = uscc("11100000000013127")
USCC_BAD_CHECK = bad_check(USCC, uscc_check_char)

MOBILE = "13812345678"


def in_groups(value: str, sep: str, second: str | None = None) -> str:
    """An 18-char ID written 6-8-4, as people group it in free text."""
    return value[:6] + sep + value[6:14] + (sep if second is None else second) + value[14:]


def blocks(value: str, sizes: tuple[int, ...], sep: str) -> str:
    """value cut into groups of sizes, sep between them."""
    cuts = [sum(sizes[:i]) for i in range(len(sizes) + 1)]
    return sep.join(value[a:b] for a, b in itertools.pairwise(cuts))


@pytest.fixture(scope="session")
def analyzer(tmp_path_factory: pytest.TempPathFactory) -> AnalyzerEngine:
    return build_analyzer(tmp_path_factory.mktemp("models"))


def found(analyzer: AnalyzerEngine, text: str, entity: str) -> list[str]:
    return [text[r.start : r.end] for r in find_pii(analyzer, text) if r.entity_type == entity]


def test_fixture_values_are_what_they_claim() -> None:
    assert RID_X.endswith("X")
    assert is_valid_resident_id(RID) and is_valid_resident_id(RID_OLD)
    assert not is_valid_resident_id(RID_BAD_CHECK)
    assert not is_valid_resident_id(RID_FEB30)
    assert is_valid_resident_id(RID_AND_USCC) and is_valid_uscc(RID_AND_USCC)
    assert all(is_valid_uscc(c) for c in (USCC, USCC_2, USCC_GOV))
    assert not is_valid_uscc(USCC_BAD_CHECK)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (RID, [RID]),
        (RID_X, [RID_X]),
        (RID_X[:-1] + "x", [RID_X[:-1] + "x"]),
        (RID_OLD, [RID_OLD]),
        (f"身份证号{RID}，", [RID]),
        (f"公民身份号码：{RID}。", [RID]),
        (f"（{RID}）", [RID]),
        (f"甲{RID}乙{RID_X}丙", [RID, RID_X]),
        (f"ID {RID} and {RID_OLD}", [RID, RID_OLD]),
        (LEGACY, [LEGACY]),
        (f"原身份证号{LEGACY}已换发", [LEGACY]),
        (RID_AND_USCC, [RID_AND_USCC]),
        # grouped 6-8-4 with one separator, or wrapped by one line break anywhere
        (f"身份证号{RID[:6]} {RID[6:14]} {RID[14:]}，", [f"{RID[:6]} {RID[6:14]} {RID[14:]}"]),
        (f"{RID_X[:6]}-{RID_X[6:14]}-{RID_X[14:]}", [f"{RID_X[:6]}-{RID_X[6:14]}-{RID_X[14:]}"]),
        (f"{RID[:6]}.{RID[6:14]}.{RID[14:]}", [f"{RID[:6]}.{RID[6:14]}.{RID[14:]}"]),
        (f"{RID[:6]}\n{RID[6:14]}\n{RID[14:]}", [f"{RID[:6]}\n{RID[6:14]}\n{RID[14:]}"]),
        (f"号码{RID[:10]}\n{RID[10:]}。", [f"{RID[:10]}\n{RID[10:]}"]),
        (f"{RID_X[:17]}\r\n{RID_X[17:]}", [f"{RID_X[:17]}\r\n{RID_X[17:]}"]),
        # any whitespace run (one line break at most), any dash, at both places
        *[
            (in_groups(value, sep), [in_groups(value, sep)])
            for value, sep in [
                (RID, "\t"),
                (RID, "  "),
                (RID, " \n"),
                (RID, "\u3000"),
                (RID_X, "\u2013"),
                (RID, "\u2212"),
            ]
        ],
        (in_groups(RID, "\u3000", "\u00a0"), [in_groups(RID, "\u3000", "\u00a0")]),
        (in_groups(RID, "\u2010", "-"), [in_groups(RID, "\u2010", "-")]),
        # other groupings people write: the date split, or even blocks as a card is written
        *[
            (f"身份证号{blocks(value, sizes, sep)}。", [blocks(value, sizes, sep)])
            for value, sizes, sep in [
                (RID, (6, 4, 4, 4), " "),
                (RID_X, (6, 4, 4, 4), "-"),
                (RID, (3, 3, 4, 4, 4), " "),
                (RID, (4, 4, 4, 4, 2), " "),
                (RID_X, (4, 4, 4, 4, 2), "."),
            ]
        ],
        (f"号码{RID[:10]} \n{RID[10:]}。", [f"{RID[:10]} \n{RID[10:]}"]),
        # must not match
        (RID_BAD_CHECK, []),
        (RID_FEB30, []),
        (LEGACY_BAD_DATE, []),
        (RID[:17], []),
        ("9" + RID, []),
        (RID + "1", []),
        (f"订单号20{RID}88", []),
        ("A" + RID, []),
        (RID + "b", []),
        ("9" + LEGACY, []),
        ("110105180002301234", []),
        ("000000000000000000", []),
        ("罚款人民币伍万元整", []),
        (f"{RID[:6]}-{RID[6:14]} {RID[14:]}", []),  # mixed separators
        (f"{RID[:6]} {RID[6:]}", []),  # not 6-8-4
        (f"{RID[:6]} {RID[6:14]} {RID[14:]} 1234", []),  # one link of a longer chain
        (f"{RID_BAD_CHECK[:6]} {RID_BAD_CHECK[6:14]} {RID_BAD_CHECK[14:]}", []),
        (f"{RID_BAD_CHECK[:10]}\n{RID_BAD_CHECK[10:]}", []),
        (f"{LEGACY[:6]} {LEGACY[6:12]} {LEGACY[12:]}", []),  # grouped shapes are 18-char only
        (f"{LEGACY[:8]}\n{LEGACY[8:]}", []),
        (f"{RID[:10]}\n\n{RID[10:]}", []),  # a paragraph break separates two numbers
        (in_groups(RID, " \n\n"), []),
        (in_groups(RID, "\u2013", "\t"), []),  # mixed separators
        (in_groups(RID, "\u2013\u2013"), []),  # one dash, not two
        (in_groups(RID, "    "), []),  # a column gap, not a group separator
        (blocks(RID_BAD_CHECK, (4, 4, 4, 4, 2), " "), []),
        (blocks(RID, (4, 4, 4, 4, 2), " ") + " 12", []),  # one link of a longer chain
        (blocks(RID, (5, 5, 4, 4), " "), []),  # not a grouping people write
        ("1234\t" + in_groups(RID, "\t"), []),  # one link of a longer chain
        (in_groups(RID, "\u2013") + "\u20131", []),
        ("第1\n2条，共3301\n0619页", []),
        ("金额 150000000.00 元，2024.01.05 至 2024.12.31", []),
    ],
)
def test_resident_id(analyzer: AnalyzerEngine, text: str, expected: list[str]) -> None:
    assert found(analyzer, text, "CN_RESIDENT_ID") == expected


def test_resident_id_scores(analyzer: AnalyzerEngine) -> None:
    (full,) = [r for r in find_pii(analyzer, RID) if r.entity_type == "CN_RESIDENT_ID"]
    (legacy,) = [r for r in find_pii(analyzer, LEGACY) if r.entity_type == "CN_RESIDENT_ID"]
    assert full.score == 1.0
    assert legacy.score == pytest.approx(ResidentIdRecognizer.LEGACY_SCORE)


def test_context_passed_to_analyze_boosts_legacy_ids(analyzer: AnalyzerEngine) -> None:
    """Blank zh lemmas are empty, so context only counts when the caller passes it."""
    plain = analyzer.analyze(f"身份证号{LEGACY}", language="zh")
    boosted = analyzer.analyze(f"身份证号{LEGACY}", language="zh", context=["身份证号"])
    assert plain[0].score == pytest.approx(ResidentIdRecognizer.LEGACY_SCORE)
    assert boosted[0].score > plain[0].score


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (USCC, [USCC]),
        (USCC_2, [USCC_2]),
        (USCC_GOV, [USCC_GOV]),
        (USCC.lower(), [USCC.lower()]),
        (f"统一社会信用代码：{USCC}，", [USCC]),
        (f"当事人某某科技有限公司（统一社会信用代码{USCC_2}）", [USCC_2]),
        # must not match
        (USCC_BAD_CHECK, []),
        (USCC[:17], []),
        ("9" + USCC, []),
        (USCC + "0", []),
        (USCC[:8] + "I" + USCC[9:], []),  # I is not in the GB 32100 alphabet
        (RID_AND_USCC, []),  # ambiguous digits are treated as the personal reading
        (RID, []),
    ],
)
def test_uscc(analyzer: AnalyzerEngine, text: str, expected: list[str]) -> None:
    assert found(analyzer, text, "CN_USCC") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (MOBILE, [MOBILE]),
        ("19912345678", ["19912345678"]),
        ("16612345678", ["16612345678"]),
        ("+8613812345678", ["+8613812345678"]),
        ("8613812345678", ["8613812345678"]),
        ("008613812345678", ["008613812345678"]),
        ("+86 138 1234 5678", ["+86 138 1234 5678"]),
        ("+86-138-1234-5678", ["+86-138-1234-5678"]),
        ("138-1234-5678", ["138-1234-5678"]),
        ("138 1234 5678", ["138 1234 5678"]),
        (f"联系电话{MOBILE}。", [MOBILE]),
        (f"联系电话：{MOBILE}，", [MOBILE]),
        (f"电话{MOBILE}或13912345678", [MOBILE, "13912345678"]),
        (f"{MOBILE} 13912345678", [MOBILE, "13912345678"]),
        (f"tel:{MOBILE}", [MOBILE]),
        ("联系电话139.1234.5678。", ["139.1234.5678"]),
        ("+86 139.1234.5678", ["+86 139.1234.5678"]),
        ("联系电话139\n1234\n5678", ["139\n1234\n5678"]),
        ("联系电话139\r\n12345678", ["139\r\n12345678"]),
        ("电话139 1234\n5678", ["139 1234\n5678"]),  # wrapped after a grouped prefix
        ("电话139-1234 \n5678", ["139-1234 \n5678"]),
        ("电话139\n1234 5678", ["139\n1234 5678"]),
        ("电话139\t1234\t5678", ["139\t1234\t5678"]),
        ("电话139  1234  5678", ["139  1234  5678"]),
        ("电话139\u20131234\u20135678", ["139\u20131234\u20135678"]),
        ("电话139\u22121234\u20155678", ["139\u22121234\u20155678"]),
        ("电话139 \n1234 \n5678", ["139 \n1234 \n5678"]),
        ("电话139\u30001234\u00a05678", ["139\u30001234\u00a05678"]),
        # must not match
        ("12812345678", []),
        ("10012345678", []),
        ("1381234567", []),
        ("138123456789", []),
        ("2013812345678901", []),
        ("a" + MOBILE, []),
        (MOBILE + "x", []),
        ("010-12345678", []),
        ("0571-88123456", []),
        ("021 6123 4567", []),
        ("(0755)86001234", []),
        ("400-123-4567", []),
        ("0755-13812345678", []),
        ("138-1234-5678-9", []),
        ("95588", []),
        (RID, []),
        (f"统一社会信用代码{USCC}", []),
        ("138.12345678", []),  # an amount, not two dots
        ("1381234.5678", []),
        ("139.1234-5678", []),  # mixed separators
        ("1.139.1234.5678", []),  # links of a dotted chain
        ("139.1234.5678.9", []),
        ("0571.8888.6666", []),
        ("139.123.45.67", []),
        ("13\n912345678", []),  # a line break inside a group
        ("139\n\n12345678", []),
        ("处以罚款1500000\n2024年3月1日前缴清", []),  # an amount, then a year: not wrapped
        ("没收违法所得1380000\n2023年度", []),
        ("罚款1500000\n2024", []),
        ("合同金额1591234\n5678元", []),
        ("1391234\n5678", []),  # a line break after the 7th digit needs a grouped prefix
        ("139 \n\n1234 \n\n5678", []),
        ("0755\u201313912345678", []),  # links of a dashed chain, whichever dash
        ("13912345678\u20131", []),
        ("139\u2013\u20131234\u2013\u20135678", []),
        ("139    1234    5678", []),
        ("2024.01.05", []),
        ("罚款150000000.00元", []),
    ],
)
def test_mobile(analyzer: AnalyzerEngine, text: str, expected: list[str]) -> None:
    assert found(analyzer, text, "CN_MOBILE") == expected


def test_penalty_text_finds_each_entity_once(analyzer: AnalyzerEngine) -> None:
    text = (
        f"当事人某某科技有限公司（统一社会信用代码{USCC}，法定代表人张伟，"
        f"身份证号{RID}，联系电话{MOBILE}）违反《广告法》第九条，罚款人民币20000元。"
    )
    results = find_pii(analyzer, text)
    assert [(r.entity_type, text[r.start : r.end]) for r in results] == [
        ("CN_USCC", USCC),
        ("PERSON", "张伟"),
        ("CN_RESIDENT_ID", RID),
        ("CN_MOBILE", MOBILE),
    ]


def test_engine_is_zh_only_with_our_recognizers(analyzer: AnalyzerEngine) -> None:
    assert analyzer.supported_languages == ["zh"]
    names = {r.__class__ for r in analyzer.registry.recognizers}
    assert names == set(RECOGNIZERS)  # no English predefined recognizers crept in
    assert set(analyzer.get_supported_entities("zh")) == {cls.ENTITY for cls in RECOGNIZERS}


def test_build_analyzer_saves_model_once_and_caches(tmp_path: Path) -> None:
    first = build_analyzer(tmp_path)
    assert (tmp_path / MODEL_DIR_NAME / "config.cfg").exists()
    assert build_analyzer(tmp_path) is first
    assert find_pii(first, "没有个人信息的文本") == []


@pytest.mark.parametrize("value", ["²" * 18, "1" * 6 + "¹⁹⁴⁹" + "1" * 8, "³" * 15])
def test_digits_int_cannot_read_are_invalid_not_errors(value: str) -> None:
    """str.isdigit() accepts superscripts that int() rejects; the checks must just say no."""
    from pdo.privacy.checksums import is_valid_legacy_resident_id, luhn_ok

    assert not is_valid_resident_id(value)
    assert not is_valid_legacy_resident_id(value)
    assert not luhn_ok(value)
