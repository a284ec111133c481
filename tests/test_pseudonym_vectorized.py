"""normalize_series and pseudonymize_series give normalize() and pseudonym(), value for value."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pdo.privacy.pseudonym import (
    REPEATS_WORTH_DEDUPLICATING,
    Pseudonymizer,
    normalize,
    normalize_series,
)

KEY = b"0123456789abcdef0123456789abcdef"
PZ = Pseudonymizer("k-test", KEY)
PSEUDONYM = re.compile(r"p_[0-9a-f]{24}")
HYPOTHESIS = settings(max_examples=200, deadline=None)


def normalized(values: Sequence[str | None]) -> list[str | None]:
    return [None if v is None else normalize(v) for v in values]


def pseudonyms(values: Sequence[str | None]) -> list[str | None]:
    return [None if v is None else PZ.pseudonym(v) for v in values]


TRICKY = [
    "11010519491231002x",
    "11010519491231002X",
    " 11010519491231002x ",
    "\t11010519491231002x\n",
    "\x1c11010519491231002x\x1f",  # ASCII, whitespace to Python only
    "\x1d\x1eabc\x0b\x0c",
    "１１０１０５１９４９１２３１００２ｘ",
    "\u300011010519491231002x\u3000",
    "\u00a0abc\u00a0",
    "\u2028abc\u2029",
    "\x85abc\x85",
    "\u200babc",  # zero-width space: not whitespace to Python
    "abc\ufeff",
    "",
    " ",
    "\u3000",
    "x",
    "张伟",
    " 欧阳娜娜 ",
    "Ａｌｉｃｅ",
    "ß",
    "straße",
    "ﬁ",
    "ﬀ",
    "ŉ",
    "ΐ",
    "ς",
    "\u0345",
    "ǅ",
    "ǆ",
    "ı",
    "i\u0307",
    "e\u0301",
    "\u0301",
    "\u1100\u1161",
    "\u1100\u1161\u11a8",
    "가\u11a8",
    "Ⅻ",
    "㈱",
    "㍻",
    "ƛ",
    "ɤ",
    "ꟓ",
    "ꟕ",
    "😀",
    "\U00020000",
    "\u0378abc",  # unassigned in Python's Unicode database
    "abc\U000e0080",
    "+86 138-1234-5678",
    "６２２２ ０２１２",
    "\x00",
]


@pytest.mark.parametrize("value", TRICKY)
def test_normalize_series_tricky_value(value: str) -> None:
    assert normalize_series(pl.Series([value])).to_list() == [normalize(value)]


def test_normalize_series_tricky_values_as_one_column() -> None:
    values: list[str | None] = [None, *TRICKY, None, "plain ascii", *reversed(TRICKY)]
    out = normalize_series(pl.Series("v", values))
    assert out.to_list() == normalized(values)
    assert out.name == "v"
    ascii_only: list[str | None] = ["abc", None, "\x1cdef\x1f", " g "]
    assert normalize_series(pl.Series(ascii_only)).to_list() == normalized(ascii_only)


# Every character Python's Unicode database assigns; of the large uniform blocks (CJK unified
# ideographs, Hangul syllables, private use) one in 61.
UNIFORM = ("CJK UNIFIED IDEOGRAPH", "HANGUL SYLLABLE")


def _sweep(c: int) -> bool:
    category = unicodedata.category(chr(c))
    if category in ("Cs", "Cn"):
        return False
    if category == "Co" or unicodedata.name(chr(c), "").startswith(UNIFORM):
        return c % 61 == 0
    return True


EVERY_CHARACTER = [chr(c) for c in range(0x110000) if _sweep(c)]


def test_normalize_series_every_character() -> None:
    values = [*EVERY_CHARACTER, *(f" a{c}b{c}" for c in EVERY_CHARACTER)]
    out = normalize_series(pl.Series(values)).to_list()
    wrong = [
        (value, want, got)
        for value, got in zip(values, out, strict=True)
        if (want := normalize(value)) != got
    ]
    assert not wrong, f"{len(wrong)} values differ (value, Python, vectorized): {wrong[:10]}"


PYTHON_SPACE = [chr(c) for c in range(0x3001) if chr(c).isspace()]
CASED = [chr(c) for c in range(0x20000) if unicodedata.category(chr(c)) in ("Lu", "Ll", "Lt")]
CHARS = st.one_of(
    st.sampled_from(CASED),
    st.sampled_from([*PYTHON_SPACE, *"".join(TRICKY), "ƛ", "ɤ", "ꟓ", "ꟕ"]),
    st.characters(max_codepoint=0x7F),
    st.characters(exclude_categories=("Cs", "Cn")),  # assigned in Python: no fallback
    st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),
    st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF),
    st.characters(codec="utf-8"),  # anything polars can hold, unassigned included
)
TEXT = st.text(CHARS, max_size=20)
CASED_TEXT = st.text(st.sampled_from(CASED), min_size=1, max_size=20)
COLUMN = st.lists(st.one_of(st.none(), TEXT, CASED_TEXT), min_size=1, max_size=12)


@HYPOTHESIS
@given(values=COLUMN)
def test_normalize_series_property(values: list[str | None]) -> None:
    assert normalize_series(pl.Series(values, dtype=pl.Utf8)).to_list() == normalized(values)


# ---------------------------------------------------------------------------------------------
# pseudonymize_series
# ---------------------------------------------------------------------------------------------


def check(values: Sequence[str | None], name: str = "col") -> pl.Series:
    series = pl.Series(name, values, dtype=pl.Utf8)
    out = PZ.pseudonymize_series(series)
    assert out.name == name
    assert out.dtype == pl.Utf8
    assert out.to_list() == pseudonyms(values)
    return out


def distinct_column() -> list[str | None]:
    ids = [f"3301061985{i:07d}X" for i in range(150)]
    mobiles = [f"１３８{i:08d}" for i in range(150)]
    names = [f"张{chr(0x4E00 + i)}{chr(0x4E00 + 2 * i)}" for i in range(150)]
    return [*ids, *mobiles, *names, None]


def test_pseudonymize_all_distinct_values() -> None:
    values = distinct_column()
    assert len(set(values)) > REPEATS_WORTH_DEDUPLICATING * len(values)  # hashed row by row
    check(values)


def test_pseudonymize_many_repeats() -> None:
    pool = ["11010519491231002x", "11010519491231002X", "１１０１０５１９４９１２３１００２ｘ"]
    pool += ["张伟", " 张伟 ", "欧阳娜娜", "13812345678", "", "ß", "STRASSE", "straße"]
    values: list[str | None] = [*pool, None] * 40
    assert len(set(values)) <= REPEATS_WORTH_DEDUPLICATING * len(values)  # each value hashed once
    out = check(values)
    # normalize() makes these the same person
    assert out[0] == out[1] == out[2]
    assert out[3] == out[4]


@pytest.mark.parametrize("repeat", [1, 5])
def test_pseudonymize_mixed_ascii_and_wide_with_nulls(repeat: int) -> None:
    values = [None, "abc", "ａｂｃ", None, "\u3000abc", "ｘ", "x", "\u0378", "😀", " 王 ", None]
    values = values * repeat
    check(values)
    check(list(reversed(values)))
    check([None] * 4)


def test_pseudonymize_tricky_values() -> None:
    check(TRICKY)
    check([*TRICKY, None] * 3)


@pytest.mark.parametrize("dtype", [pl.Int64, pl.Int32, pl.UInt8])
def test_pseudonymize_integers_as_text(dtype: pl.DataType) -> None:
    numbers = [1, 22, None, 1, 0, 22, 7]
    series = pl.Series("n", numbers, dtype=dtype)
    out = PZ.pseudonymize_series(series)
    assert out.name == "n"
    assert out.to_list() == [None if n is None else PZ.pseudonym(str(n)) for n in numbers]
    text = pl.Series("n", [None if n is None else str(n) for n in numbers])
    assert out.to_list() == PZ.pseudonymize_series(text).to_list()


def test_pseudonymize_every_character() -> None:
    values = [f"{c}1101{c}" for c in EVERY_CHARACTER]
    out = PZ.pseudonymize_series(pl.Series(values)).to_list()
    wrong = [
        (value, want, got)
        for value, got in zip(values, out, strict=True)
        if (want := PZ.pseudonym(value)) != got
    ]
    assert not wrong, f"{len(wrong)} values differ (value, Python, vectorized): {wrong[:10]}"


def test_pseudonyms_never_contain_the_value() -> None:
    values = [v for v in distinct_column() if v is not None]
    values += ["11010519491231002x", "13812345678", "欧阳娜娜", "浙江省杭州市西湖区文三路1号"]
    for repeated in (values, values * 3):
        out = PZ.pseudonymize_series(pl.Series(repeated)).to_list()
        for value, code in zip(repeated, out, strict=True):
            assert code is not None and PSEUDONYM.fullmatch(code)
            assert value not in code
            assert normalize(value) not in code
            assert unicodedata.normalize("NFKC", value).strip() not in code


@HYPOTHESIS
@given(values=COLUMN, repeat=st.integers(min_value=1, max_value=4))
def test_pseudonymize_property(values: list[str | None], repeat: int) -> None:
    """repeat 1 (mostly distinct: row by row) and more (repeats: each distinct value once)."""
    out = check(values * repeat, name="person")
    for code in out.drop_nulls():
        assert PSEUDONYM.fullmatch(code)
