"""pdo.privacy.vectorized gives the Python masks' output, value for value, on whole columns.

Masks with a Python path (name, mobile, resident ID, bank card) are compared on both paths of
``mask_series``: "default" (a few odd values go to the Python function itself, PYTHON_ROWS)
and "columnar" (PYTHON_ROWS = 0: every value that is not already plain goes through the polars
pipeline, as in a large column)."""

from __future__ import annotations

import datetime as dt
import functools
import resource
import subprocess
import sys
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from unittest import mock

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pdo.privacy import masks, vectorized
from pdo.privacy.vectorized import (
    date_to_month_series,
    generalize_address_series,
    mask_series,
)

KINDS = sorted(masks.MASKS)
PATHS = ("default", "columnar")
# (kind, path): "columnar" differs from "default" only for kinds with a Python path
KIND_PATHS = [
    (kind, path)
    for kind in KINDS
    for path in PATHS
    if kind in vectorized._PLAIN or path == "default"
]
HYPOTHESIS = settings(max_examples=200, deadline=None)

# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


@contextmanager
def on_path(path: str) -> Iterator[None]:
    """Run as shipped ("default"), or with no odd value left to Python ("columnar")."""
    context = mock.patch.object(vectorized, "PYTHON_ROWS", 0) if path == "columnar" else None
    with context or nullcontext():
        yield


def python_month(value: str) -> str | None:
    """generalize_date_to_month, with "not a date" as None (the non-strict column result)."""
    try:
        return masks.generalize_date_to_month(value)
    except ValueError:
        return None


def expected(fn: Callable[[str], str | None], values: Sequence[str | None]) -> list[str | None]:
    return [None if v is None else fn(v) for v in values]


# Masks that show both ends (mobile, resident ID, bank card) have been seen to allocate about
# 20 GiB for a single value shorter than four characters (or to panic), enough to take a shared
# machine down. A memory-capped subprocess checks that once; while it fails, tests given such values
# fail with its report instead of running them in this process. Once it passes, they run.
SHORT_VALUE_KINDS = ("mobile", "resident_id", "bank_card")
_SHORT_VALUE_PROBE = """
import polars as pl
from pdo.privacy.vectorized import mask_series
for kind in ("mobile", "resident_id", "bank_card"):
    for value in ("", "7", "77", "777", "7\\u3000"):
        mask_series(kind, pl.Series([value]))
"""


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))


@functools.cache
def short_value_failure() -> str | None:
    """None when masking values shorter than 4 characters is safe, else what went wrong."""
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _SHORT_VALUE_PROBE],
            cwd=Path(__file__).resolve().parents[1],
            preexec_fn=_cap_memory,
            capture_output=True,
            text=True,
            timeout=120,
        )
    except subprocess.TimeoutExpired:
        return "mask_series on values shorter than 4 characters did not finish in 120 s"
    if proc.returncode == 0:
        return None
    tail = "\n".join(line for line in proc.stderr.splitlines() if not line.startswith(" "))[-600:]
    return (
        "mask_series on mobile/resident_id/bank_card values shorter than 4 characters ('', "
        f"'7', '77', '777') crashed under a 3 GiB memory cap (exit {proc.returncode}); not run "
        f"in-process:\n{tail}"
    )


def check_safe(kinds: Sequence[str], values: Sequence[str | None]) -> None:
    if any(k in SHORT_VALUE_KINDS for k in kinds) and any(
        v is not None and len(v) < 4 for v in values
    ):
        failure = short_value_failure()
        if failure:
            raise AssertionError(failure)


def vec_mask(kind: str, values: Sequence[str | None], path: str) -> list[str | None]:
    check_safe([kind], values)
    with on_path(path):
        return mask_series(kind, pl.Series("v", values, dtype=pl.Utf8)).to_list()


# ---------------------------------------------------------------------------------------------
# (a) Tricky values, one by one and as one column
# ---------------------------------------------------------------------------------------------

EDGE_SPACE = ["\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\u3000", "\u00a0", "\u2028", "\u2029"]

NAMES = [
    "张伟",
    "欧阳娜娜",
    "欧阳",
    "司马懿",
    "王",
    "",
    " ",
    "\u3000",
    "  张伟  ",
    "\t李娜\n",
    "\x1c张伟\x1c",
    "\x1f王\x1e",
    "\u3000李娜\u3000",
    "\u00a0李娜\u00a0",
    "\u2028赵六\u2029",
    "\x85钱七",
    "司马\u3000懿",
    "\u200b张三",  # zero-width space: not whitespace to Python
    "张三\ufeff",
    "Ａｌｉｃｅ",
    "ＡＢ",
    "Ａ",
    "John Smith",
    "e\u0301",
    "\u0301",
    "\u0301张",
    "A\u0301B",
    "\u1100\u1161",  # Hangul jamo: NFKC composes 가
    "\u1100\u1161\u11a8",
    "가\u11a8",
    "\u1100",
    "ﬁ",
    "Ⅻ",
    "㈱会社",
    "ǅ",
    "ß",
    "ƛƛ",
    "x",
    "😀😀",
    "\U00020000\U00020001",
    "\u0378名",  # unassigned in Python's Unicode database
    "张\x1c",
    "\x00",
]

MOBILES = [
    "13812345678",
    "+86 138-1234-5678",
    "+86-138-1234-5678",
    "0086 138 1234 5678",
    "008613812345678",
    "8613812345678",
    "86-13812345678",
    "(+86) 13812345678",
    "+86\u3000138\u00a01234\u20285678",
    "\x1c13812345678\x1f",
    "１３８１２３４５６７８",
    "＋８６　１３８－１２３４－５６７８",
    "８６13812345678",
    "٠١٣٨١٢٣٤٥٦٧٨",  # Arabic-Indic digits: not [0-9]
    "(0571)8765-4321",
    "0571-87654321",
    "138 1234 5678 ext 9",
    "861381234567",  # 12 digits starting 86: no country code to drop
    "86138123456789",  # 14 digits
    "0086138123456789",  # 16 digits
    "0087138123456789",
    "13812345",
    "1381234",
    "1234",
    "138",
    "12",
    "1",
    "",
    " ",
    "无",
    "不详",
    "暂无号码",
    "1３8",
    "\u0378 13812345678",
]

RESIDENT_IDS = [
    "110105194912310021",
    "11010519491231002X",
    "11010519491231002x",
    "110105491231002",  # 15 digits
    " 110105 19491231 002x ",
    "１１０１０５１９４９１２３１００２ｘ",
    "１１０１０５４９１２３１００２",
    "\x1c11010519491231002x\u3000",
    "\u2028110105194912310021\u2029",
    "110105\u200b194912310021",
    "110105-19491231-002X",
    "1101051949",  # 10 = 6 + 4: all stars
    "12345678901",  # 11: both ends shown
    "11010",
    "abc",
    "ab",
    "x",
    "",
    "\u3000",
    "ß" * 11,  # upper-cases to 22 characters
    "ﬀ" * 6,
    "ǆ" * 11,
    "ı" * 12,
    "ƛ" * 12,
    "ɤ" + "0" * 17,
    "ꟓ" * 12,
    "ꟕ" * 12,
    "i\u0307" * 6,
    "ΐ" * 11,
    "\u0378" * 12,
]

BANK_CARDS = [
    "6222021234567890123",
    "6222 0212 3456 7890 123",
    "6222-0212-3456-7890",
    "６２２２０２１２３４５６７８９０",
    "\u00a06222021234567890\u2028",
    "卡号:6222021234567890",
    "62220212345",  # 11
    "6222021234",  # 10
    "1234567",
    "123",
    "1",
    "",
    "无",
    "6222 0212 ٣٤٥٦ 7890",
]

ADDRESSES = [
    "浙江省杭州市西湖区文三路1号",
    "北京市朝阳区建国路88号",
    "北京市市辖区朝阳区建国路88号",
    "北京市市辖区",
    "上海市",
    "重庆市石柱土家族自治县南宾镇",
    "浙江省杭州市",
    "浙江省",
    "杭州市临平区市心路137号",
    "杭州市拱墅区丰潭大道21号1105室",
    "吉林省延边朝鲜族自治州延吉市人民路1号",
    "延边朝鲜族自治州延吉市",
    "湖北省恩施土家族苗族自治州恩施市",
    "新疆维吾尔自治区伊犁哈萨克自治州伊宁市解放路",
    "内蒙古自治区锡林郭勒盟锡林浩特市",
    "内蒙古自治区呼伦贝尔市鄂温克族自治旗",
    "西藏自治区阿里地区噶尔县",
    "广西壮族自治区南宁市青秀区",
    "香港特别行政区",
    "浙江省义乌市稠城街道",  # county-level 市 directly under the province
    "浙江省杭州市淳安县千岛湖镇",
    "山东省济南市市中区经十路1号",
    "浙江省杭州市阳光小区3幢",
    "杭州市阳光小区",
    "杭州市西湖景区",
    "浙江省杭州市翠苑社区",
    "浙江省杭州市下沙园区",
    "杭州市滨江区阳光小区",
    "中华人民共和国浙江省杭州市西湖区",
    "中国 北京市 朝阳区 建国路",
    "中国",
    "文三路1号",
    "阳光小区3幢",
    "海淀区中关村",
    "市",
    "区",
    "",
    "   ",
    "ABC Street 1",
    "１２３号",
    "浙江省\u3000杭州市\u00a0西湖区\u2028文三路",
    "\x1c浙江省杭州市西湖区\x1c",
    "浙江省杭州市㐀区",
    "浙江省杭州市\U00020000区",
    "浙江省杭州市e\u0301区",
    "浙江省杭州市Ａ区",
    "浙江省杭州市_区",
    "浙江省杭州市1区",
    "浙江省杭州市\u1100\u1161区",
    "浙江省杭州市西湖区",
    "浙江省\u0378杭州市",
]

DATES = [
    "2024-03-15",
    "2024/3/15",
    "2024/03/15",
    "2024.03.15",
    "2024年3月15日",
    "2024年12月",
    "20240315",
    "202403",
    "2024-3",
    "2024-03",
    " 2024 - 3 - 15 ",
    "\x1c2024-03-15\u3000",
    "2024-03-15\u2028",
    "2024\u00a0-\u00a003",
    "２０２４－０３－１５",
    "２０２４年３月１５日",
    "2024-３-15",
    "٢٠٢٤-٠٣-١٥",  # Arabic-Indic digits
    "2024-03-15T10:00:00",
    "2024年3月15日 10:00",
    "2024/1/1",
    "2024-1",
    "20240315 ",
    "12345678",
    # not dates
    "2024-13-01",
    "2024-00-01",
    "20241315",
    "20240015",
    "2024031",
    "2024031512",
    "2024-003",
    "2024-",
    "2024",
    "24-03-15",
    "15/03/2024",
    "",
    " ",
    "abc",
    "二〇二四年三月",
    "2024\u0378-03",
]

MASK_CASES = {
    "name": NAMES,
    "mobile": MOBILES,
    "resident_id": RESIDENT_IDS,
    "bank_card": BANK_CARDS,
    "address": ADDRESSES,
}
assert sorted(MASK_CASES) == KINDS


@pytest.mark.parametrize(
    ("kind", "path", "value"),
    [(kind, path, value) for kind, path in KIND_PATHS for value in MASK_CASES[kind]],
)
def test_mask_tricky_value(kind: str, value: str, path: str) -> None:
    assert vec_mask(kind, [value], path) == [masks.MASKS[kind](value)]


@pytest.mark.parametrize("kind", KINDS)
def test_mask_tricky_values_as_a_large_column(kind: str) -> None:
    """All of a kind's values in one column with nulls, big enough to skip the Python path."""
    values: list[str | None] = [*MASK_CASES[kind], None] * (vectorized.PYTHON_ROWS // 10 + 1)
    assert len(values) > vectorized.PYTHON_ROWS
    assert vec_mask(kind, values, "default") == expected(masks.MASKS[kind], values)


@pytest.mark.parametrize("value", ADDRESSES)
def test_generalize_address_tricky_value(value: str) -> None:
    out = generalize_address_series(pl.Series([value], dtype=pl.Utf8)).to_list()
    assert out == [masks.generalize_address(value)]


@pytest.mark.parametrize("value", DATES)
def test_date_to_month_tricky_value(value: str) -> None:
    series = pl.Series([value], dtype=pl.Utf8)
    month = python_month(value)
    assert date_to_month_series(series, strict=False).to_list() == [month]
    if month is None:
        with pytest.raises(ValueError, match="not a date"):
            date_to_month_series(series, strict=True)
    else:
        assert date_to_month_series(series, strict=True).to_list() == [month]


def test_address_and_date_tricky_values_as_columns() -> None:
    addresses = [*ADDRESSES, None] * 3
    dates = [*DATES, None] * 3
    assert generalize_address_series(pl.Series(addresses)).to_list() == expected(
        masks.generalize_address, addresses
    )
    assert date_to_month_series(pl.Series(dates), strict=False).to_list() == expected(
        python_month, dates
    )


# Every character Python's Unicode database assigns, placed at the edges and inside a value of
# each kind; of the large uniform blocks (CJK unified ideographs, Hangul syllables, private
# use) one in 61. Unassigned characters are left out: those values go to Python anyway.
UNIFORM = ("CJK UNIFIED IDEOGRAPH", "HANGUL SYLLABLE")


def _sweep(c: int) -> bool:
    category = unicodedata.category(chr(c))
    if category in ("Cs", "Cn"):
        return False
    if category == "Co" or unicodedata.name(chr(c), "").startswith(UNIFORM):
        return c % 61 == 0
    return True


EVERY_CHARACTER = [chr(c) for c in range(0x110000) if _sweep(c)]
EVERY_CHARACTER_FORMS = {
    "name": ["{c}张伟{c}", "{c}{c}"],
    "mobile": ["{c}+86{c}138{c}1234{c}5678{c}", "{c}{c}{c}{c}"],
    "resident_id": ["{c}110105{c}19491231002x{c}", "{c}{c}{c}{c}"],
    "bank_card": ["{c}6222{c}0212345678{c}", "{c}{c}{c}{c}"],
    "address": ["{c}中国{c}浙江省{c}杭州市{c}西湖区{c}文三路{c}"],
    "generalize_address": ["{c}北京市{c}市辖区{c}朝阳区{c}", "浙江省杭州市{c}区"],
    "date_to_month": ["{c}2024{c}03{c}15{c}", "2024{c}3"],
}
ALL_FUNCTIONS: dict[str, tuple[Callable[[pl.Series], pl.Series], Callable[[str], str | None]]] = {
    **{kind: (functools.partial(mask_series, kind), masks.MASKS[kind]) for kind in KINDS},
    "generalize_address": (generalize_address_series, masks.generalize_address),
    "date_to_month": (functools.partial(date_to_month_series, strict=False), python_month),
}


@pytest.mark.parametrize("function", sorted(EVERY_CHARACTER_FORMS))
def test_every_character(function: str) -> None:
    """A column this large takes the columnar path (more than PYTHON_ROWS odd values)."""
    vectorized_fn, python_fn = ALL_FUNCTIONS[function]
    values = [form.format(c=c) for form in EVERY_CHARACTER_FORMS[function] for c in EVERY_CHARACTER]
    check_safe([function], values)
    out = vectorized_fn(pl.Series(values)).to_list()
    wrong = [
        (value, want, got)
        for value, got in zip(values, out, strict=True)
        if (want := python_fn(value)) != got
    ]
    assert not wrong, f"{len(wrong)} values differ (value, Python, vectorized): {wrong[:10]}"


@pytest.mark.parametrize(
    ("address", "kept"),
    [
        ("北京市市辖区朝阳区建国路88号", "北京市朝阳区"),
        ("浙江省杭州市阳光小区3幢", "浙江省杭州市"),
        ("吉林省延边朝鲜族自治州延吉市人民路1号", "吉林省延边朝鲜族自治州延吉市"),
        ("浙江省义乌市稠城街道", "浙江省义乌市"),
        ("文三路1号", ""),
    ],
)
def test_tricky_addresses_mean_what_the_docs_say(address: str, kept: str) -> None:
    """The table above exercises the documented cases (not only agreement on them)."""
    assert masks.generalize_address(address) == kept
    assert generalize_address_series(pl.Series([address])).to_list() == [kept]


# ---------------------------------------------------------------------------------------------
# (b) Every value of a generated delivery
# ---------------------------------------------------------------------------------------------

# (file, column) → mask kinds applied to it (each column its own kind, plus other digit masks)
DELIVERY_MASKS = {
    ("market_enterprise_registry.csv", "legal_rep_name"): ["name"],
    ("market_enterprise_registry.csv", "name"): ["name"],
    ("market_enterprise_registry.csv", "legal_rep_id"): ["resident_id", "bank_card"],
    ("market_enterprise_registry.csv", "uscc"): ["resident_id"],
    ("market_enterprise_registry.csv", "legal_rep_mobile"): ["mobile", "bank_card"],
    ("market_enterprise_registry.csv", "address"): ["address"],
}
DELIVERY_ADDRESSES = [
    ("market_enterprise_registry.csv", "address"),
    ("market_enterprise_registry.csv", "name"),
    ("credit_penalties.csv", "authority"),
    ("credit_penalties.csv", "summary"),
]
DELIVERY_DATES = [
    ("market_enterprise_registry.csv", "established_on"),
    ("market_abnormal_operations.csv", "listed_on"),
    ("market_abnormal_operations.csv", "removed_on"),
    ("credit_penalties.csv", "decided_on"),
    ("credit_penalties.csv", "published_on"),
    ("court_enforcement.csv", "filed_on"),
    ("court_enforcement.csv", "published_on"),
    ("partner_bank_loan_outcomes.csv", "issued_on"),
    ("tax_credit_grades.csv", "year"),
]


@pytest.fixture(scope="module")
def delivery(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pdo.gen import generate

    out = tmp_path_factory.mktemp("delivery") / "city"
    generate(out, enterprises=300, seed=5, progress=False)
    return out


def read_column(delivery: Path, file_name: str, column: str) -> pl.Series:
    if file_name.endswith(".parquet"):
        return pl.read_parquet(delivery / file_name)[column].cast(pl.Utf8)
    frame = pl.read_csv(delivery / file_name, infer_schema_length=0, encoding="utf8-lossy")
    return frame[column]


@pytest.mark.parametrize(
    ("file_name", "column", "kind", "path"),
    [
        (f, c, kind, path)
        for (f, c), kinds in DELIVERY_MASKS.items()
        for kind in kinds
        for path in PATHS
        if (kind, path) in KIND_PATHS
    ],
)
def test_delivery_column_masks(
    delivery: Path, file_name: str, column: str, kind: str, path: str
) -> None:
    values = read_column(delivery, file_name, column).to_list()
    assert len(values) > 250
    assert vec_mask(kind, values, path) == expected(masks.MASKS[kind], values)


@pytest.mark.parametrize(("file_name", "column"), DELIVERY_ADDRESSES)
def test_delivery_column_generalize_address(delivery: Path, file_name: str, column: str) -> None:
    series = read_column(delivery, file_name, column)
    values = series.to_list()
    assert generalize_address_series(series).to_list() == expected(masks.generalize_address, values)


@pytest.mark.parametrize(
    ("file_name", "column"), [*DELIVERY_DATES, ("utilities_payments.parquet", "month")]
)
def test_delivery_column_dates(delivery: Path, file_name: str, column: str) -> None:
    series = read_column(delivery, file_name, column)
    values = series.to_list()
    want = expected(python_month, values)
    assert date_to_month_series(series, strict=False).to_list() == want
    if any(v is not None and m is None for v, m in zip(values, want, strict=True)):
        with pytest.raises(ValueError, match="not a date"):
            date_to_month_series(series, strict=True)
    else:
        assert date_to_month_series(series, strict=True).to_list() == want


def test_delivery_has_the_dirt_the_tables_are_about(delivery: Path) -> None:
    """The generated columns do hold full-width and mixed-format values (not only clean ones)."""
    mobiles = read_column(delivery, "market_enterprise_registry.csv", "legal_rep_mobile")
    dates = read_column(delivery, "market_enterprise_registry.csv", "established_on")
    assert (mobiles.str.len_bytes() != mobiles.str.len_chars()).any()
    assert (~dates.str.contains(r"^\d{4}-\d{2}-\d{2}$")).any()


# ---------------------------------------------------------------------------------------------
# (c) Properties
# ---------------------------------------------------------------------------------------------

PYTHON_SPACE = [chr(c) for c in range(0x3001) if chr(c).isspace()]
CASED = [chr(c) for c in range(0x20000) if unicodedata.category(chr(c)) in ("Lu", "Ll", "Lt")]
TRICKY_CHARS = [
    *PYTHON_SPACE,
    *"0123456789０１２３４５６７８９٣+-/.:()＋－／ｘＸxXAaＡ_",
    *"年月日省市区县旗盟州地自治特别行政辖小社校景片街园镇村路号中国华人民共和北京上海浙江杭州西湖欧阳张",
    "\u0301",
    "\u0308",
    "\u0345",
    "\u1100",
    "\u1161",
    "\u11a8",
    "가",
    "ﬁ",
    "ﬀ",
    "Ⅻ",
    "㈱",
    "ß",
    "ǅ",
    "ı",
    "ΐ",
    "ς",
    "ƛ",
    "ɤ",
    "\u200b",
    "\ufeff",
    "\u3007",
    "㐀",
    "\U00020000",
    "😀",
    "\u0378",
]
CHARS = st.one_of(
    st.sampled_from(CASED),
    st.sampled_from(TRICKY_CHARS),
    st.characters(exclude_categories=("Cs", "Cn")),  # assigned in Python: no fallback
    st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),
    st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF),
    st.characters(codec="utf-8"),  # anything polars can hold, unassigned included
)
TEXT = st.text(CHARS, max_size=16)
ADDRESS_TOKENS = [
    "北京市",
    "浙江省",
    "杭州市",
    "西湖区",
    "市辖区",
    "延边朝鲜族自治州",
    "锡林郭勒盟",
    "阿里地区",
    "义乌市",
    "淳安县",
    "鄂温克族自治旗",
    "石柱土家族自治县",
    "阳光小区",
    "社区",
    "景区",
    "市",
    "区",
    "县",
    "省",
    "中国",
    "中华人民共和国",
    "文三路",
    "1号",
    "镇",
    "街道",
    "村",
]
ADDRESS = st.lists(st.one_of(st.sampled_from(ADDRESS_TOKENS), TEXT), max_size=5).map("".join)
DATE_TOKENS = [
    *"0123456789０１２３-/.年月日 ",
    "2024",
    "２０２４",
    "03",
    "13",
    "00",
    "0315",
    "\u3000",
    "\x1c",
    "\u2028",
    "٣",
]
DATE = st.lists(st.one_of(st.sampled_from(DATE_TOKENS), TEXT), max_size=6).map("".join)
DIGITS = st.lists(
    st.one_of(st.sampled_from(TRICKY_CHARS), st.sampled_from("0123456789")), max_size=22
).map("".join)
VALUE = st.one_of(TEXT, DIGITS, ADDRESS, DATE)


def column(values: st.SearchStrategy[str]) -> st.SearchStrategy[list[str | None]]:
    return st.lists(st.one_of(st.none(), values), min_size=1, max_size=8)


# the columnar path covers the default one: plain values get the same formula on both
@HYPOTHESIS
@pytest.mark.parametrize(
    ("kind", "path"),
    [
        (kind, path)
        for kind, path in KIND_PATHS
        if kind not in vectorized._PLAIN or path == "columnar"
    ],
)
@given(values=column(VALUE))
def test_mask_property(kind: str, path: str, values: list[str | None]) -> None:
    assert vec_mask(kind, values, path) == expected(masks.MASKS[kind], values)


@HYPOTHESIS
@given(values=column(st.one_of(ADDRESS, TEXT)))
def test_generalize_address_property(values: list[str | None]) -> None:
    out = generalize_address_series(pl.Series("addr", values, dtype=pl.Utf8))
    assert out.to_list() == expected(masks.generalize_address, values)


@HYPOTHESIS
@given(values=column(st.one_of(DATE, TEXT)))
def test_date_to_month_property(values: list[str | None]) -> None:
    series = pl.Series("d", values, dtype=pl.Utf8)
    want = expected(python_month, values)
    assert date_to_month_series(series, strict=False).to_list() == want
    if any(v is not None and m is None for v, m in zip(values, want, strict=True)):
        with pytest.raises(ValueError, match="not a date"):
            date_to_month_series(series, strict=True)
    else:
        assert date_to_month_series(series, strict=True).to_list() == want


# ---------------------------------------------------------------------------------------------
# Contract: errors, nulls, names, dtypes
# ---------------------------------------------------------------------------------------------


def test_unknown_kind_raises_key_error() -> None:
    with pytest.raises(KeyError, match="no mask for kind 'phone'"):
        mask_series("phone", pl.Series(["13812345678"]))


@pytest.mark.parametrize("bad", ["2024-13-01", "abc", "", "2024"])
def test_strict_date_to_month_raises_on_a_non_date(bad: str) -> None:
    series = pl.Series("d", ["2024-03-15", None, bad, "2024/3/15"])
    with pytest.raises(ValueError, match="not a date"):
        date_to_month_series(series)  # strict is the default
    assert date_to_month_series(series, strict=False).to_list() == [
        "2024-03",
        None,
        None,
        "2024-03",
    ]


def test_date_columns() -> None:
    days = [dt.date(2024, 3, 15), None, dt.date(1999, 12, 31), dt.date(2, 1, 1)]
    out = date_to_month_series(pl.Series("when", days, dtype=pl.Date))
    assert out.name == "when"
    assert out.to_list() == [masks.generalize_date_to_month(d) for d in days]
    moments = [dt.datetime(2024, 3, 15, 23, 59), None]
    out = date_to_month_series(pl.Series("at", moments, dtype=pl.Datetime))
    assert out.to_list() == [masks.generalize_date_to_month(m) for m in moments]


@pytest.mark.parametrize(("kind", "path"), KIND_PATHS)
def test_mask_nulls_and_name(kind: str, path: str) -> None:
    with on_path(path):
        for series in (
            pl.Series("col", [None, None]),  # Null dtype
            pl.Series("col", [None, None], dtype=pl.Utf8),
            pl.Series("col", [], dtype=pl.Utf8),
        ):
            out = mask_series(kind, series)
            assert out.name == "col"
            assert out.dtype == pl.Utf8
            assert out.to_list() == series.to_list()
        values = [None, "张伟 13812345678 浙江省杭州市西湖区文三路1号", None, "١٣٨١٢٣٤٥٦٧٨٩٠"]
        out = mask_series(kind, pl.Series("col", values))
        assert out.name == "col"
        assert out.to_list() == expected(masks.MASKS[kind], values)


def test_other_functions_keep_nulls_and_name() -> None:
    for series in (pl.Series("col", [None, None]), pl.Series("col", [None], dtype=pl.Utf8)):
        for out in (
            generalize_address_series(series),
            date_to_month_series(series),
            date_to_month_series(series, strict=False),
        ):
            assert out.name == "col"
            assert out.to_list() == [None] * len(series)
    addresses = pl.Series("addr", [None, "浙江省杭州市西湖区文三路1号", None])
    assert generalize_address_series(addresses).to_list() == [None, "浙江省杭州市西湖区", None]
    assert generalize_address_series(addresses).name == "addr"
    dates = pl.Series("d", [None, "2024年3月15日", None])
    assert date_to_month_series(dates).to_list() == [None, "2024-03", None]
    assert date_to_month_series(dates).name == "d"


def test_warm_up_and_nfkc() -> None:
    vectorized.warm_up()
    values = [None, "ＡＢＣ", "abc", "\u1100\u1161\u11a8", "e\u0301", "ﬁ", "㈱", ""]
    out = vectorized.nfkc(pl.Series("x", values)).to_list()
    assert out == [None if v is None else unicodedata.normalize("NFKC", v) for v in values]


# ---------------------------------------------------------------------------------------------
# Fast paths: dates read from the Arrow string views, addresses in one regex search
# ---------------------------------------------------------------------------------------------

FULLWIDTH = str.maketrans("0123456789-/.", "０１２３４５６７８９－／．")


def _date_shapes() -> list[str]:
    """Values of the shapes the date fast path reads, and near misses of each."""
    months = ["00", "01", "09", "10", "12", "13", "19", "1", "9", "0"]
    out = []
    for year in ("2024", "0000", "1999"):
        for month in months:
            for sep in "-/.":
                out += [f"{year}{sep}{month}{sep}15", f"{year}{sep}{month}", f"{year}{sep}{month}x"]
            out += [f"{year}{month}15", f"{year}{month}", f"{year}{month}1"]
            out += [f"{year}年{month}月", f"{year}年{month}月15日", f"{year}年{month}月1日 "]
            out += [f"{year}年{month}", f"{year}年{month}日", f"{year}年 {month}月"]
    wide = [v.translate(FULLWIDTH) for v in out]
    mixed = [v[:4] + v[4:].translate(FULLWIDTH) for v in out]
    mixed += [v[:4].translate(FULLWIDTH) + v[4:] for v in out]
    odd = [
        "2024-1５-01",
        "2024-01５",
        "2024-0１-01",
        "2024-٠٣-15",
        "２０２４－０３－１５",
        "２０２４-０３-１５",
        "２０２４／３／１５",
        "２０２４-１３-０１",
        "２０２４-０３",
        "２０２４-０",
        "２０２４年３月",
        "2024年\u0663月",
        "2024-03-15\u0301",
        "2024-03\u0301-15",
        "2024\u0301-03-15",
        " 2024-03-15",
        "2024-03-15 ",
        "\u30002024-03-15",
        "2024 -03-15",
        "2024- 03-15",
        "12024-03-15",
        "2024-03-155",
        "2024-03-15-",
        "20240315 ",
        "2024031",
        "202403155",
        "2024年1月15日xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "2024-03-15T10:00:00",
        "2024-03-15 10:00:00.000000+08:00",
        "",
        " ",
        "年月日",
        "abcdefghij",
        "abcdefgh",
    ]
    return out + wide + mixed + odd


DATE_SHAPES = _date_shapes()


@pytest.mark.parametrize("rows", [0, vectorized.PYTHON_ROWS, 10_000])
def test_date_fast_path_shapes(rows: int) -> None:
    """Every shape and near miss, as one column (with nulls): the values the fast path does
    not cover go to Python (few) or the general path (many, PYTHON_ROWS = 0)."""
    values: list[str | None] = [*DATE_SHAPES, None]
    with mock.patch.object(vectorized, "PYTHON_ROWS", rows):
        out = date_to_month_series(pl.Series("d", values), strict=False)
    assert out.name == "d"
    assert out.to_list() == expected(python_month, values)


def test_date_fast_path_sliced_and_chunked() -> None:
    values: list[str | None] = [*DATE_SHAPES, None] * 3
    series = pl.Series("d", values)
    chunked = pl.concat([series.slice(0, 100), series.slice(100)], rechunk=False)
    assert chunked.n_chunks() == 2
    assert date_to_month_series(chunked, strict=False).to_list() == expected(python_month, values)
    part = series.slice(37, 400)
    assert date_to_month_series(part, strict=False).to_list() == expected(
        python_month, values[37:437]
    )
    assert date_to_month_series(series.head(0), strict=False).to_list() == []
    assert date_to_month_series(pl.Series([None, None], dtype=pl.Utf8)).to_list() == [None, None]


DATE_PIECES = st.sampled_from(
    [
        *("2024", "1999", "-", "/", ".", "年", "月", "日", " ", "\u3000", "0", "1", "3"),
        *("12", "13", "00", "０", "１", "３", "－", "\u0301", "٣", "x"),
    ]
)


@HYPOTHESIS
@given(values=st.lists(st.one_of(st.none(), st.lists(DATE_PIECES, max_size=8).map("".join))))
def test_date_fast_path_property(values: list[str | None]) -> None:
    for rows in (0, vectorized.PYTHON_ROWS):
        with mock.patch.object(vectorized, "PYTHON_ROWS", rows):
            out = date_to_month_series(pl.Series("d", values, dtype=pl.Utf8), strict=False)
        assert out.to_list() == expected(python_month, values)


def _address_variants() -> list[str]:
    base = [*ADDRESSES, "杭州市滨江区荆门街101号一楼商铺", "杭州市滨江区", "杭州市阳光小区3幢"]
    base += ["浙江省杭州市社区", "浙江省杭州市街区1号", "北京市市辖区", "北京市市市辖区朝阳区"]
    base += ["北京市辖区朝阳区", "市辖区朝阳区", "中山市东区", "中国浙江省杭州市西湖区"]
    base += ["中华人民共和国北京市朝阳区", "中国", "ABC", "abc杭州市西湖区", "杭州市西湖区!"]
    # counties that are not one (X区), or end elsewhere, or are too long
    base += ["杭州市西湖景区", "杭州市景区1号", "某省某市园区", "杭州市小区区", "杭州市园自治旗"]
    base += ["杭州市" + "一" * 12 + "区", "杭州市" + "一" * 13 + "区", "杭州市校区县", "区小区"]
    out = list(base)
    extras = (" ", "\u3000", "㐀", "Ａ", "\u0301", "\U00020000", "\u2f00", "\ufa10", "é")
    for extra in (*extras, "\u4dff", "\ua000", "\x7f", "\u3fff", "\u4000", "䷀", "䶵", ""):
        out += [extra + a for a in base[:6]]
        out += [a[:3] + extra + a[3:] for a in base[:6]]
        out += [a + extra for a in base[:6]]
    return out


ADDRESS_VARIANTS = _address_variants()


@pytest.mark.parametrize("rows", [0, vectorized.PYTHON_ROWS])
def test_address_fast_path_variants(rows: int) -> None:
    values: list[str | None] = [*ADDRESS_VARIANTS, None]
    series = pl.Series("a", values)
    # chunks sharing their buffers (as after a concat), one of them a slice
    chunked = pl.concat([series, series.slice(3), series], rechunk=False)
    with mock.patch.object(vectorized, "PYTHON_ROWS", rows):
        generalized = generalize_address_series(series)
        masked = mask_series("address", series)
        both = (generalize_address_series(chunked), mask_series("address", chunked))
    assert generalized.name == masked.name == "a"
    assert generalized.to_list() == expected(masks.generalize_address, values)
    assert masked.to_list() == expected(masks.mask_address, values)
    assert both[0].to_list() == expected(masks.generalize_address, chunked.to_list())
    assert both[1].to_list() == expected(masks.mask_address, chunked.to_list())


ADDRESS_PIECES = st.sampled_from(
    [
        *("浙江省", "杭州市", "市", "辖", "区", "县", "西湖区", "小区", "社区", "阳光", "市辖区"),
        *("中国", "中", "路", "1号", " ", "㐀", "Ａ", "a", "自治州", "自治县", "旗"),
        *("中华", "é", "\u4dff", "\ua000", "\U00020000", "\x7f", "䶵", "䷀", "\u3fff"),
        *("景区", "园", "校", "自治旗", "一二三四五六七"),
    ]
)


@HYPOTHESIS
@given(values=st.lists(st.one_of(st.none(), st.lists(ADDRESS_PIECES, max_size=8).map("".join))))
def test_address_fast_path_property(values: list[str | None]) -> None:
    for rows in (0, vectorized.PYTHON_ROWS):
        with mock.patch.object(vectorized, "PYTHON_ROWS", rows):
            series = pl.Series("a", values, dtype=pl.Utf8)
            assert generalize_address_series(series).to_list() == expected(
                masks.generalize_address, values
            )
            assert mask_series("address", series).to_list() == expected(masks.mask_address, values)


def plain_address(value: str) -> bool:
    """What _plain_addresses should say, from the definition: ASCII from 0x21 (DEL too) and
    U+4000-U+9FFF only, never 市辖区, not starting with 中国 or 中华."""
    plain = all("\x21" <= c <= "\x7f" or "\u4000" <= c <= "\u9fff" for c in value)
    return plain and "市辖区" not in value and not value.startswith(("中国", "中华"))


def plain_addresses(series: pl.Series, compact: bool = False) -> list[bool]:
    """_plain_addresses of the non-null values, their bytes read in place or copied."""
    utf8 = (vectorized._Utf8.compact if compact else vectorized._Utf8.of)(series)
    plain = vectorized._plain_addresses(series, utf8).tolist()
    return [p for p, v in zip(plain, series.to_list(), strict=True) if v is not None]


def check_plain_addresses(values: list[str | None]) -> None:
    """The definition, on a column, its compact copy, two chunks sharing their buffers (as
    after a concat) and a slice."""
    want = [plain_address(v) for v in values if v is not None]
    series = pl.Series(values, dtype=pl.Utf8)
    assert plain_addresses(series) == want
    assert plain_addresses(series, compact=True) == want
    assert plain_addresses(pl.concat([series, series], rechunk=False)) == want * 2
    sliced = pl.Series(["杭州 市西湖区文三路", *values, "北京市辖区"], dtype=pl.Utf8)
    assert plain_addresses(sliced.slice(1, len(values))) == want


PLAIN_ADDRESS_CHARS = (
    "市辖区县中华国a!~ \x7f\x00\x1f\x80\u3000Ａ\u0301é©㐀\u3fff\u4000䷿\u4dff\u4e00\u9fff\ua000"
    "\U00020000\u0800\uffff\U0010ffff"
)


@HYPOTHESIS
@given(
    values=st.lists(
        st.one_of(st.none(), st.text(alphabet=st.sampled_from(PLAIN_ADDRESS_CHARS), max_size=12))
    )
)
def test_plain_addresses(values: list[str | None]) -> None:
    """A whole column at once: 市辖区 split over neighbouring rows must not count."""
    check_plain_addresses(values)


@pytest.mark.parametrize(
    "values",
    [
        [
            "杭州市西湖区",
            "杭州市 西湖区",
            "杭州市\u3000西湖区",
            "杭州市Ａ区",
            "ＡＢＣ",
            "A~!",
            "\x7f",
        ],
        ["北京市市辖", "区朝阳区", "北京市市辖区", "市辖区", "市市辖区", "市辖", "辖区", "市辖区x"],
        ["é", "©1", "杭州市é", "\U00020000", "杭州\U0001f600市", "\u4dff", "\u4e00", "\u9fff"],
        ["\ua000", "a\ua000", "\u4e00\u4dff", "䷀", "㐀", "", "", None, "", "中国", "中华", "中"],
        ["\u3fff", "\u4000", "杭州市\u3fff", "杭州市\u4000区", "\x20\x21", "\x7f\x80", "\x1f"],
        ["中国杭州市", "中华人民共和国北京市", "中山市", "中国"[:1], "杭州市中国", None, None],
        [None, "", "a"],
        ["", "", ""],
        [None],
    ],
)
def test_plain_addresses_edges(values: list[str | None]) -> None:
    check_plain_addresses(values)
    check_plain_addresses([v if v is None else v * 5 for v in values])  # not inline


def test_plain_addresses_of_a_small_slice_are_copied() -> None:
    """A few rows of a large column are not scanned in place (the whole buffers would be)."""
    values = ["杭州市西湖区文三路1号", "北京市市辖区朝阳区", " 中国浙江省", None] * 100_000
    part = pl.Series(values).slice(3, 6)
    utf8 = vectorized._Utf8.of(part)
    assert len(utf8.segments) == 1
    assert utf8.prefix is None
    assert plain_addresses(part) == [plain_address(v) for v in values[3:9] if v is not None]


def test_plain_address_characters_are_plain_for_python() -> None:
    """_plain_addresses takes ASCII from 0x21 and U+4000-U+9FFF as assigned, NFKC-stable and
    not whitespace, and the common alphabet holds them all."""
    block = [chr(c) for c in [*range(0x21, 0x80), *range(0x4000, 0xA000)]]
    assert all(unicodedata.category(c) != "Cn" for c in block)
    assert all(unicodedata.normalize("NFKC", c) == c and not c.isspace() for c in block)
    assert not set(vectorized._nfkc_unstable_points()) & {ord(c) for c in block}
    common = {c for chars in vectorized._COMMON_ALPHABET for c in chars}
    assert {ord(c) for c in block} <= common


def _around(value: str, others: str) -> list[str]:
    """value, and value with each character in turn replaced by each of others."""
    return [value] + [value[:i] + c + value[i + 1 :] for i in range(len(value)) for c in others]


FAST_MASK_CASES = {
    "mobile": [
        *_around("13812345678", "/:a０ \x00"),
        *("1381234567", "138123456789", "8613812345678", "008613812345678", "+8613812345678"),
        *(" 13812345678", "13812345678 ", "1381234567\u0663", "٣3812345678", ""),
    ],
    "name": [
        *_around("欧阳娜娜", "a 　㐀丁鿿\u0301＊"),
        *_around("王海燕", "a ䷀一\u4dff"),
        *("张伟", "张", "张伟 ", " 张伟", "张\u3000伟", "欧阳娜娜娜", "ＡＢ", "丁丁丁丁", "一一"),
        *("\u9fff\u4e00", "\u4dff\u4e00", "\ua000\u4e00", "\U00020000\u4e00", "張偉", "⺀⺀"),
    ],
}


@pytest.mark.parametrize("kind", sorted(FAST_MASK_CASES))
@pytest.mark.parametrize("rows", [0, vectorized.PYTHON_ROWS])
def test_mask_fast_path_variants(kind: str, rows: int) -> None:
    values: list[str | None] = [*FAST_MASK_CASES[kind], None]
    check_safe([kind], values)
    series = pl.Series("m", values)
    with mock.patch.object(vectorized, "PYTHON_ROWS", rows):
        out = mask_series(kind, series)
        part = mask_series(kind, series.slice(3, 20))
    assert out.name == "m"
    assert out.to_list() == expected(masks.MASKS[kind], values)
    assert part.to_list() == expected(masks.MASKS[kind], values[3:23])
