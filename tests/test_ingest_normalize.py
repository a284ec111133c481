"""normalize() takes shortcuts (NFKC on a subset, plain decimals by cast, ISO dates and months
as they are, hashed duplicate candidates); it must give what the straightforward
implementation kept below as ``_normalize_reference`` gives, for any delivered text."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tempfile
import unicodedata
from pathlib import Path

import polars as pl
import pytest
import regex
from hypothesis import example, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from flows.ingest import NFKC_STABLE, ROW, IngestResult, ingest_file, normalize
from pdo.sources.contract import Column, ColumnType, SourceTable
from pdo.sources.tables import SOURCE_TABLES

HYPOTHESIS = settings(max_examples=200, deadline=None)

# ---------------------------------------------------------------------------------------------
# The reference: normalize() as it was before the shortcuts, expression for expression.


def _ref_normalized(name: str) -> pl.Expr:
    expr = pl.col(name).str.normalize("NFKC").str.strip_chars()
    return pl.when(expr == "").then(None).otherwise(expr).alias(name)


_REF_DATES = (  # eight digits, or one separator on both sides
    r"^(\d{4})(\d{2})(\d{2})$",
    r"^(\d{4})\s*-\s*(\d{1,2})\s*-\s*(\d{1,2})$",
    r"^(\d{4})\s*/\s*(\d{1,2})\s*/\s*(\d{1,2})$",
    r"^(\d{4})\s*\.\s*(\d{1,2})\s*\.\s*(\d{1,2})$",
    r"^(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日?$",
)
_REF_GROUPED = r"^-?\d{1,3}(,\d{3})+(\.\d+)?$"  # commas only as thousands grouping
_REF_MONTH = r"^(\d{4})\s*[-/.年]?\s*(\d{1,2})\s*月?$"


def _ref_parse(name: str, kind: ColumnType) -> pl.Expr:
    src = pl.col(name)
    plain = (
        pl.when(src.str.contains(_REF_GROUPED)).then(src.str.replace_all(",", "")).otherwise(src)
    )
    if kind is ColumnType.INTEGER:
        return plain.cast(pl.Int64, strict=False)
    if kind is ColumnType.DECIMAL:
        ok = plain.str.contains(r"^-?\d+(\.\d{1,2})?$")
        parts = plain.str.split_exact(".", 1)
        yuan = parts.struct.field("field_0").cast(pl.Int64, strict=False)
        frac = (
            parts.struct.field("field_1")
            .fill_null("")
            .str.pad_end(2, "0")
            .cast(pl.Int64, strict=False)
        )
        sign = pl.when(src.str.starts_with("-")).then(-1).otherwise(1)
        fen = yuan.abs() * 100 + frac
        fits = yuan.abs() <= 92_233_720_368_547_757  # no Int64 wrap in yuan * 100 + frac
        return pl.when(ok & fits).then(sign * fen).otherwise(None)
    if kind is ColumnType.DATE:
        readings = [
            pl.concat_str(
                groups.struct.field("1"),
                groups.struct.field("2").str.zfill(2),
                groups.struct.field("3").str.zfill(2),
                separator="-",
            )
            for groups in (src.str.extract_groups(shape) for shape in _REF_DATES)
        ]
        return pl.coalesce(readings).str.to_date("%Y-%m-%d", strict=False)
    if kind is ColumnType.MONTH:
        groups = src.str.extract_groups(_REF_MONTH)
        month = groups.struct.field("2").str.zfill(2)
        valid = month.cast(pl.Int64, strict=False).is_between(1, 12)
        return pl.when(valid).then(pl.concat_str(groups.struct.field("1"), month, separator="-"))
    return src


def _ref_first_occurrences(text: pl.DataFrame, names: list[str], seen: set[bytes]) -> pl.Series:
    encoded = text.select(pl.struct(names).struct.json_encode()).to_series().to_list()
    first: list[bool] = []
    for row in encoded:
        digest = hashlib.blake2b(row.encode(), digest_size=16).digest()
        first.append(digest not in seen)
        seen.add(digest)
    return pl.Series(first, dtype=pl.Boolean)


def _normalize_reference(
    raw: pl.DataFrame, table: SourceTable, *, seen: set[bytes] | None = None
) -> IngestResult:
    text = raw.with_columns([_ref_normalized(c) for c in table.column_names])
    parsed = text.with_columns([_ref_parse(c.name, c.type).alias(c.name) for c in table.columns])
    reasons: list[pl.Expr] = []
    for c in table.columns:
        was = text[c.name].is_not_null()
        now = parsed[c.name].is_not_null()
        reasons.append(
            pl.when(pl.lit(was & ~now)).then(pl.lit(f"{c.name}: cannot parse as {c.type.value}"))
        )
        if c.required:
            reasons.append(pl.when(pl.lit(~was)).then(pl.lit(f"{c.name}: required value missing")))
        if c.code_format is not None:
            shape = regex.compile(c.code_format)
            misses = pl.Series(
                [v is not None and not shape.fullmatch(v) for v in parsed[c.name]], dtype=pl.Boolean
            )
            why = f"{c.name}: not in the format of its contract"
            reasons.append(pl.when(pl.lit(misses)).then(pl.lit(why)))
    if seen is None:
        first = text.select(pl.struct(table.column_names).is_first_distinct()).to_series()
    else:
        first = _ref_first_occurrences(text, table.column_names, seen)
    reasons.append(
        pl.when(pl.lit(~first)).then(pl.lit("duplicate_row: identical to an earlier row"))
    )
    reason = pl.concat_str(reasons, separator="; ", ignore_nulls=True)
    with_reason = parsed.with_columns(reason.alias("_reason"))
    bad = with_reason["_reason"].is_not_null() & (with_reason["_reason"] != "")
    clean = with_reason.filter(~bad).drop("_reason")
    quarantine = raw.filter(bad).select(
        pl.col(ROW),
        with_reason.filter(bad)["_reason"].alias("reason"),
        pl.struct(table.column_names)
        .map_elements(lambda r: json.dumps(r, ensure_ascii=False), return_dtype=pl.String)
        .alias("raw_values"),
    )
    return IngestResult(clean=clean, quarantine=quarantine, rows_in=raw.height, file_sha256="")


# ---------------------------------------------------------------------------------------------
# The NFKC shortcut's premise, character by character.


def _composes_as_second() -> set[int]:
    """Code points that can be the second half of a canonical composition (NFC/NFKC would
    join them to the character before), Hangul vowels and trailing consonants included."""
    second = set(range(0x1161, 0x1176)) | set(range(0x11A8, 0x11C3))
    for cp in range(0x110000):
        decomposition = unicodedata.decomposition(chr(cp))
        if decomposition and not decomposition.startswith("<"):
            parts = decomposition.split()
            if len(parts) == 2:
                second.add(int(parts[1], 16))
    return second


def test_nfkc_stable_characters_never_change_nor_combine() -> None:
    """Each is its own NFKC form, has combining class 0 (never reordered) and never joins the
    character before it: so any string of them alone is its own NFKC form."""
    second = _composes_as_second()
    for lo, hi in NFKC_STABLE:
        for cp in range(lo, hi + 1):
            ch = chr(cp)
            assert unicodedata.normalize("NFKC", ch) == ch, hex(cp)
            assert unicodedata.combining(ch) == 0, hex(cp)
            assert cp not in second, hex(cp)
    # And polars' NFKC (another Unicode implementation) agrees, alone and side by side.
    chars = [chr(cp) for lo, hi in NFKC_STABLE for cp in range(lo, hi + 1)]
    values = [*chars, "".join(chars), "".join(reversed(chars))]
    assert pl.Series(values).str.normalize("NFKC").to_list() == values


def test_the_ranges_the_shortcut_is_meant_for_are_stable() -> None:
    covered = {cp for lo, hi in NFKC_STABLE for cp in range(lo, hi + 1)}
    assert set(range(0x80)) <= covered and set(range(0x4E00, 0xA000)) <= covered
    for unstable in ("\u3000", "\uf900", "\uff10", "\uff0c", "\u2026", "\u00a0"):
        assert ord(unstable) not in covered  # these do change under NFKC


_STABLE_CHARS = st.sampled_from(
    [chr(cp) for lo, hi in NFKC_STABLE for cp in range(lo, hi + 1) if cp % 7 == 0 or hi < 0x80]
)


@HYPOTHESIS
@given(st.lists(st.text(_STABLE_CHARS, max_size=12), max_size=20))
def test_strings_of_stable_characters_are_their_own_nfkc(values: list[str]) -> None:
    series = pl.Series(values, dtype=pl.String)
    assert series.str.normalize("NFKC").to_list() == values
    assert [unicodedata.normalize("NFKC", v) for v in values] == values


# ---------------------------------------------------------------------------------------------
# Messy delivered text.

_FULL_WIDTH = str.maketrans("0123456789-.,/", "０１２３４５６７８９－．，／")
_ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def _widths(text: str, how: int) -> str:
    if how == 1:
        return text.translate(_FULL_WIDTH)
    if how == 2:
        return text.translate(_ARABIC_INDIC)
    return text


PADDING = st.sampled_from(["", "", "", " ", "  ", "\t", "\u3000", "\u00a0", "\n", "\u2028"])
DIGITS = st.text(st.sampled_from("0123456789"), min_size=1, max_size=4)


@st.composite
def numbers(draw: st.DrawFn) -> str:
    """Signed, with or without (well or badly placed) thousands separators and decimals."""
    groups = draw(st.lists(DIGITS, min_size=1, max_size=6))
    whole = draw(st.sampled_from([",", ""])).join(groups)
    point = draw(st.sampled_from(["", "", ".", "．"]))
    frac = draw(st.text(st.sampled_from("0123456789"), max_size=3)) if point else ""
    sign = draw(st.sampled_from(["", "", "-", "+", "－", ",-", "--"]))
    how = draw(st.sampled_from([0, 0, 0, 1, 2]))
    return draw(PADDING) + _widths(sign + whole + point + frac, how) + draw(PADDING)


@st.composite
def dates(draw: st.DrawFn) -> str:
    """Dates and months in the shapes _DATE and _MONTH read, and some they do not."""
    year = draw(st.one_of(st.integers(1990, 2030), st.integers(0, 9999)))
    y = draw(st.sampled_from([f"{year:04d}", f"{year:04d}", str(year), f"{year % 100:02d}"]))
    month, day = draw(st.integers(0, 13)), draw(st.integers(0, 32))
    pad = draw(st.booleans())
    m, d = (f"{month:02d}", f"{day:02d}") if pad else (str(month), str(day))
    first = draw(st.sampled_from(["-", "/", ".", "年", "", " - ", " ", "--"]))
    second = draw(st.sampled_from(["-", "/", ".", "月", "", " ", "日"]))
    text = y + first + m
    if draw(st.integers(0, 2)):  # a date, else a month
        text += second + d + draw(st.sampled_from(["", "", "日", " 日"]))
    else:
        text += draw(st.sampled_from(["", "", "月", " 月"]))
    how = draw(st.sampled_from([0, 0, 0, 1, 2]))
    return draw(PADDING) + _widths(text, how) + draw(PADDING)


MESSY_ALPHABET = st.one_of(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E),  # ASCII
    st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),  # CJK Unified Ideographs
    st.characters(min_codepoint=0xF900, max_codepoint=0xFAFF),  # CJK compatibility ideographs
    st.characters(min_codepoint=0xFF01, max_codepoint=0xFF5E),  # full-width forms
    st.characters(min_codepoint=0x3000, max_codepoint=0x303F),  # CJK punctuation, U+3000
    st.characters(min_codepoint=0x2000, max_codepoint=0x206F),  # general punctuation
    st.characters(min_codepoint=0x0300, max_codepoint=0x036F),  # combining marks
    st.characters(min_codepoint=0x1100, max_codepoint=0x11FF),  # Hangul jamo
    st.sampled_from(
        ["가", "\u0085", "\u00a0", "ﬁ", "㈱", "Ⅻ", "٣", "\t", "\n", "\u200b", "\ufeff"]
    ),
    st.characters(codec="utf-8"),
)
TEXT = st.text(MESSY_ALPHABET, max_size=10)
# Mostly characters NFKC leaves alone, with now and then one it changes.
NEARLY_STABLE = st.text(
    st.sampled_from(
        [*"a1-.中文。《》、〔〕“”—", "\u3000", "\uf900", "１", "，", "（", " ", "\u00a0"]
    ),
    max_size=8,
)
VALUE = st.one_of(
    st.none(),
    st.sampled_from(["", " ", "\u3000", "\t \u3000", "0", "-0", "1,000.05", "2025-03", "2025-3"]),
    numbers(),
    dates(),
    TEXT,
    NEARLY_STABLE,
)

TABLE = SourceTable(
    name="messy",
    department="test",
    label_zh="测试",
    label_en="test",
    file_name="messy.csv",
    file_format="csv",
    columns=(
        Column("code", ColumnType.STRING, "代码", "code", required=True),
        Column("note", ColumnType.STRING, "备注", "note"),
        Column("count", ColumnType.INTEGER, "数量", "count"),
        Column("amount", ColumnType.DECIMAL, "金额", "amount", required=True),
        Column("other_amount", ColumnType.DECIMAL, "金额2", "amount 2"),
        Column("day", ColumnType.DATE, "日期", "day"),
        Column("month", ColumnType.MONTH, "月份", "month", required=True),
    ),
)


_TYPED = {
    ColumnType.STRING: st.one_of(TEXT, NEARLY_STABLE),
    ColumnType.INTEGER: numbers(),
    ColumnType.DECIMAL: numbers(),
    ColumnType.DATE: dates(),
    ColumnType.MONTH: dates(),
}
_WIDE = str.maketrans({" ": "\u3000", "(": "（", ")": "）", ",": "，", "1": "１", "-": "－"})


# Values in the shape of each code format (some drawn full-width: NFKC gives them back).
_SHAPED = (
    "(2019)浙0182执15号",
    "(2020)京01执恢3号",
    "(2021)沪执异12号",
    "HZB2023010000001",
    "HZB2024120009999",
)


def _value(draw: st.DrawFn, column: Column) -> st.SearchStrategy[str | None]:
    if column.code_format is not None and draw(st.booleans()):
        shaped = st.sampled_from(_SHAPED)
        return shaped.map(lambda v: v.translate(_WIDE)) if draw(st.booleans()) else shaped
    return VALUE if draw(st.integers(0, 3)) == 0 else _TYPED[column.type]


@st.composite
def frames(draw: st.DrawFn, table: SourceTable = TABLE, max_rows: int = 25) -> pl.DataFrame:
    """Rows of messy values, mostly of the column's type; some rows repeated, as delivered
    or with characters NFKC maps back (full-width, ideographic space)."""
    rows: list[dict[str, str | None]] = []
    for _ in range(draw(st.integers(0, max_rows))):
        if rows and draw(st.integers(0, 3)) == 0:
            row = dict(draw(st.sampled_from(rows)))
            if draw(st.booleans()):
                col = draw(st.sampled_from(table.column_names))
                row[col] = None if row[col] is None else row[col].translate(_WIDE)
        else:
            row = {c.name: draw(_value(draw, c)) for c in table.columns}
        rows.append(row)
    frame = pl.DataFrame(rows, schema=dict.fromkeys(table.column_names, pl.String))
    return frame.with_row_index(ROW, offset=1)


def assert_same(got: IngestResult, want: IngestResult) -> None:
    assert_frame_equal(got.clean, want.clean)
    assert_frame_equal(got.quarantine, want.quarantine)
    assert got.rows_in == want.rows_in and got.reconciles


EDGE_ROWS = [
    # Decimals: long (no Int64 room after * 100, or none at all), signs, other digits.
    ["a", None, "1", "92233720368547758", "-9223372036854775808", "2024-01-01", "2024-01"],
    ["b", None, "1", "9999999999999999", "-99999999999999999", "2024-02-30", "2024-13"],
    ["c", None, "1", ",-5.25", "-0.5", "0000-01-01", "2024-00"],
    ["d", None, "1", "1,000.05", "٣.5", "2024/1/5", "2024年3月"],
    ["e", None, "1", "1.", ".5", "２０２５－０３－０７", "2024-3"],
    ["f", None, "1", "+5", "00000000000000001.5", "2025年3月7日", "\u30002024-03\u3000"],
    ["f", None, "1", "+5", "00000000000000001.5", "2025年3月7日", "\u30002024-03\u3000"],
    ["g", "a\u3000b", "1", "1", "1", "24-01-05", "24-01"],
    ["h", "a b", "1", "1", "1", "0024-01-05", "0024-01"],
    ["h", "a b", "1", "1", "1", "0024-01-05", "0024-01"],
]


def _edge_frame() -> pl.DataFrame:
    schema = dict.fromkeys(TABLE.column_names, pl.String)
    frame = pl.DataFrame(EDGE_ROWS, schema=schema, orient="row")
    return frame.with_row_index(ROW, offset=1)


@HYPOTHESIS
@given(frames())
@example(_edge_frame())
@example(pl.DataFrame(schema=dict.fromkeys(TABLE.column_names, pl.String)).with_row_index(ROW))
def test_normalize_matches_the_reference(raw: pl.DataFrame) -> None:
    before = raw.clone()
    assert_same(normalize(raw, TABLE), _normalize_reference(raw, TABLE))
    assert_frame_equal(raw, before)  # the delivered text is left as it was


@settings(max_examples=60, deadline=None)
@given(frames(max_rows=30), st.integers(1, 12))
def test_normalize_in_chunks_matches_the_reference(raw: pl.DataFrame, chunk_rows: int) -> None:
    """Big tables are normalized a chunk at a time: any chunk size gives the same rows,
    duplicates found across chunks included."""
    assert_same(normalize(raw, TABLE, chunk_rows=chunk_rows), _normalize_reference(raw, TABLE))


@settings(max_examples=60, deadline=None)
@given(frames(max_rows=30), st.integers(3, 15))
def test_normalize_with_seen_matches_the_reference_across_chunks(
    raw: pl.DataFrame, chunk_rows: int
) -> None:
    seen: set[bytes] = set()
    ref_seen: set[bytes] = set()
    for offset in range(0, max(raw.height, 1), chunk_rows):
        chunk = raw.slice(offset, chunk_rows)
        got = normalize(chunk, TABLE, seen=seen)
        assert_same(got, _normalize_reference(chunk, TABLE, seen=ref_seen))
    assert seen == ref_seen


@settings(max_examples=40, deadline=None)
@given(frames(max_rows=30), st.integers(1, 12))
def test_a_parquet_delivery_read_in_slices_matches_the_reference(
    raw: pl.DataFrame, chunk_rows: int
) -> None:
    """A Parquet file is read a slice at a time (the duplicate check and the quarantine read
    their rows back from it): the same rows as the whole frame gives, for any slice size."""
    table = dataclasses.replace(TABLE, file_name="messy.parquet", file_format="parquet")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / table.file_name
        raw.drop(ROW).write_parquet(path, row_group_size=5)
        got = ingest_file(path, table, chunk_rows=chunk_rows)
    assert_same(got, _normalize_reference(raw, TABLE))


@pytest.mark.parametrize("table", SOURCE_TABLES, ids=lambda t: t.name)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_every_contract_matches_the_reference(table: SourceTable, data: st.DataObject) -> None:
    raw = data.draw(frames(table, max_rows=15))
    assert_same(normalize(raw, table), _normalize_reference(raw, table))


def _many_rows(n: int = 20_000) -> pl.DataFrame:
    """Rows that repeat every 9,973 (as delivered, or in full-width digits), and rows that
    differ from each other in a single column."""
    j = [i % 9_973 for i in range(n)]
    code = [
        f"C{k % 997}" if i % 4 else f"C{k % 997}".translate(_FULL_WIDTH) for i, k in enumerate(j)
    ]
    return pl.DataFrame(
        {
            "code": code,
            "note": pl.Series([None if k % 5 else "备注\u3000" for k in j], dtype=pl.String),
            "count": [str(k % 13) for k in j],
            "amount": [f"{k % 101}.{k % 3}" for k in j],
            "other_amount": pl.Series([None] * n, dtype=pl.String),
            "day": ["2024-01-0" + str(1 + k % 9) for k in j],
            "month": ["2024-0" + str(1 + k % 9) for k in j],
        }
    ).with_row_index(ROW, offset=1)


def test_many_rows_match_the_reference() -> None:
    raw = _many_rows()
    got, want = normalize(raw, TABLE), _normalize_reference(raw, TABLE)
    assert_same(got, want)
    assert want.quarantine.height > 10_000 - 9_973


def test_rows_sharing_a_hash_are_compared_by_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """With every row hashed into one of three buckets, duplicates are still exactly the
    rows equal to an earlier one."""
    raw = _many_rows(3_000)
    want = _normalize_reference(raw, TABLE)
    monkeypatch.setattr(
        pl.Expr, "hash", lambda self, *a, **k: pl.int_range(pl.len()).mod(3).cast(pl.UInt64)
    )
    assert_same(normalize(raw, TABLE), want)
