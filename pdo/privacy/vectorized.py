"""The masks and generalizations of :mod:`pdo.privacy.masks`, vectorized with polars.

Same output as the Python functions, value for value, at column speed. What it takes:

- ``_clean`` is NFKC then ``str.strip()``. NFKC runs (in polars) only on values holding a
  character NFKC could change — one with a decomposition, a combining class, or able to end a
  composition — a class enumerated from Python's own Unicode database; every other value is
  already NFKC. Stripping uses the exact characters Python counts as whitespace
  (``str.isspace``, also what ``re``'s ``\\s`` matches) — not polars' own notion of whitespace,
  which differs (U+001C..U+001F are whitespace to Python only);
- Python regex classes that depend on Unicode tables (``\\w``, ``\\d``, ``\\s``) become explicit
  code point ranges enumerated with Python's ``re``, so the Rust regex engine matches exactly
  the same characters; a lookahead (unsupported in Rust) becomes consumed text where only the
  groups are used;
- sequential ``re.match`` steps (province, then prefecture, then county) become one anchored
  pattern of optional groups: with leftmost-first semantics an optional group takes exactly
  what the standalone match takes, since everything after it may match empty;
- each intermediate (cleaned value, its length) is materialized once per column.

Unicode versions: Python 3.11 knows Unicode 14, polars a newer one. For characters assigned in
both, normalization agrees (Unicode's stability policy). Values holding a character Python's
database leaves unassigned are recomputed with the Python function, so the result is always
the Python function's.

Entry points: ``mask_series(kind, s)``, ``generalize_address_series(s)``,
``date_to_month_series(s)`` on whole columns, and ``MASK_EXPRS[kind](expr)`` /
``generalize_address_expr`` / ``date_to_month_expr`` for use inside ``select`` and
``with_columns`` (the same code, run per batch of rows).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable

import polars as pl

from pdo.privacy import masks

STAR = masks.STAR

# ---------------------------------------------------------------------------------------------
# Character classes enumerated from Python, written for the Rust regex engine
# ---------------------------------------------------------------------------------------------


def _rust_class(points: list[int]) -> str:
    """A Rust regex character class matching exactly these code points."""
    ranges: list[list[int]] = []
    for p in sorted(set(points)):
        if ranges and p == ranges[-1][1] + 1:
            ranges[-1][1] = p
        else:
            ranges.append([p, p])
    body = "".join(f"\\x{{{a:x}}}" if a == b else f"\\x{{{a:x}}}-\\x{{{b:x}}}" for a, b in ranges)
    return f"[{body}]"


def _negated(*classes: str) -> str:
    """A class matching what none of the given classes (from _rust_class) matches."""
    return "[^" + "".join(c[1:-1] for c in classes) + "]"


@functools.cache
def _all_text() -> str:
    """Every code point polars strings can hold (no surrogates)."""
    return "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)


@functools.cache
def python_whitespace() -> str:
    """Every character str.strip() removes and re's \\s matches (str.isspace)."""
    return "".join(c for c in _all_text() if c.isspace())


@functools.cache
def _whitespace_class() -> str:
    return _rust_class([ord(c) for c in python_whitespace()])


@functools.cache
def _python_class(pattern: str) -> str:
    """The Rust equivalent of a one-character Python regex (e.g. "[^\\W\\d_]"), enumerated."""
    return _rust_class([ord(c) for c in re.findall(pattern, _all_text())])


@functools.cache
def _unassigned_class() -> str:
    """Code points Python's Unicode database leaves unassigned (where the tables may differ)."""
    return _rust_class([ord(c) for c in _all_text() if unicodedata.category(c) == "Cn"])


@functools.cache
def _case_unstable_class() -> str:
    """Characters polars upper-cases differently from Python (its Unicode tables are newer),
    and those whose NFKC form holds one (U+10791 becomes U+0264)."""
    chars = [c for c in _all_text() if unicodedata.category(c) != "Cn"]
    theirs = pl.Series(chars, dtype=pl.Utf8).str.to_uppercase().to_list()
    differ = {c for c, up in zip(chars, theirs, strict=True) if c.upper() != up}
    risky = [c for c in chars if c in differ or differ & set(unicodedata.normalize("NFKC", c))]
    return _rust_class([ord(c) for c in risky])


@functools.cache
def _nfkc_unstable_class() -> str:
    """Characters NFKC might change in some context; a value without any is already NFKC.

    NFKC decomposes (characters with a decomposition mapping), reorders (non-zero combining
    class) and composes pairs (whose second character is listed here, Hangul vowels and
    trailing consonants included). Unassigned code points are listed too.
    """
    seconds = {0x1161 + i for i in range(21)} | {0x11A8 + i for i in range(27)}
    for c in _all_text():
        mapping = unicodedata.decomposition(c)
        if mapping and not mapping.startswith("<"):
            parts = mapping.split()
            if len(parts) == 2:
                seconds.add(int(parts[1], 16))
    unstable = [
        ord(c)
        for c in _all_text()
        if unicodedata.decomposition(c)
        or unicodedata.combining(c)
        or ord(c) in seconds
        or unicodedata.category(c) == "Cn"
    ]
    return _rust_class(unstable)


@functools.cache
def _non_ascii_digit_class() -> str:
    """Decimal digits other than 0-9 (int() reads them; polars' casts do not)."""
    return _rust_class([ord(c) for c in _all_text() if c.isdecimal() and not c.isascii()])


# ---------------------------------------------------------------------------------------------
# Building blocks (Series in, Series out; each intermediate computed once)
# ---------------------------------------------------------------------------------------------


def _select(series: pl.Series, *steps: pl.Expr | dict[str, pl.Expr]) -> pl.Series:
    """Run expression steps over column "v" (dict steps add helper columns); return "v"."""
    frame = pl.DataFrame({"v": series})
    for step in steps:
        frame = frame.with_columns(**step) if isinstance(step, dict) else frame.with_columns(v=step)
    return frame["v"]


def nfkc(series: pl.Series) -> pl.Series:
    """unicodedata.normalize("NFKC", ·), normalizing only the values that can change."""
    unstable = series.str.contains(_nfkc_unstable_class()).fill_null(False)
    if not unstable.any():
        return series
    index = unstable.arg_true()
    return series.clone().scatter(index, series.gather(index).str.normalize("NFKC"))


def _keep_ends(v: pl.Expr, n: pl.Expr, head: int, tail: int) -> pl.Expr:
    """masks._keep_ends: head + stars + tail, all stars when too short to show both ends.

    One string pipeline for both cases: the kept lengths are 0 when the value is too short.
    """
    shown = n > head + tail
    keep_head = pl.when(shown).then(pl.lit(head)).otherwise(pl.lit(0))
    keep_tail = pl.when(shown).then(pl.lit(tail)).otherwise(pl.lit(0))
    return v.str.head(keep_head).str.pad_end(n - keep_tail, STAR) + v.str.tail(keep_tail)


_V = pl.col("v")
_N = pl.col("n")


def with_python_fallback(
    series: pl.Series, vectorized: Callable[[pl.Series], pl.Series], python: Callable[..., object]
) -> pl.Series:
    """vectorized(series), except values with code points unknown to Python: python(value)."""
    text = series.cast(pl.Utf8)
    out = vectorized(text)
    unknown = (
        text.str.contains(_unassigned_class()) | text.str.contains(_case_unstable_class())
    ).fill_null(False)
    if unknown.any():
        index = unknown.arg_true()
        redo = [python(v) for v in text.gather(index).to_list()]
        out = out.clone().scatter(index, pl.Series(redo, dtype=pl.Utf8))
    return out.alias(series.name)


# ---------------------------------------------------------------------------------------------
# Masks
# ---------------------------------------------------------------------------------------------


def _mask_name(s: pl.Series) -> pl.Series:
    return _select(nfkc(s).str.strip_chars(python_whitespace()), *_NAME_STEPS)


_NAME_STEPS = (
    {"n": _V.str.len_chars()},
    _V.str.head(pl.when(_N > 1).then(pl.lit(1)).otherwise(pl.lit(0))).str.pad_end(_N, STAR),
)


def _mask_mobile(s: pl.Series) -> pl.Series:
    return _select(nfkc(s).str.replace_all("[^0-9]", ""), *_MOBILE_STEPS)


_MOBILE_STEPS = (
    # 13 digits starting 86, or 15 starting 0086: the country code goes (11 digits remain)
    {"n": _V.str.len_chars()},
    {
        "v": pl.when(_N.is_in([13, 15]))
        .then(_V.str.replace(r"^(?:86|0086)([0-9]{11})$", "${1}"))
        .otherwise(_V)
    },
    {"n": _V.str.len_chars()},
    _keep_ends(_V, _N, 3, 4),
)


def _mask_resident_id(s: pl.Series) -> pl.Series:
    rid = nfkc(s).str.replace_all(_whitespace_class(), "").str.to_uppercase()
    return _select(rid, *_ID_STEPS)


_ID_STEPS = ({"n": _V.str.len_chars()}, _keep_ends(_V, _N, 6, 4))


def _mask_bank_card(s: pl.Series) -> pl.Series:
    return _select(nfkc(s).str.replace_all("[^0-9]", ""), *_ID_STEPS)


# All digits, at least 8 (both ends shown), and not 13 digits starting 86 nor 15 starting
# 0086 (a country code to drop).
_PLAIN_MOBILE = (
    r"^(?:[0-9]{8,12}|[0-9]{14}|[0-9]{16,}"
    r"|(?:[0-79][0-9]|8[0-57-9])[0-9]{11}"
    r"|(?:[1-9][0-9]{3}|0[1-9][0-9]{2}|00[0-79][0-9]|008[0-57-9])[0-9]{11})$"
)


def _shown_ends(head: int, tail: int) -> Callable[[pl.Expr], pl.Expr]:
    """_keep_ends for values longer than head + tail."""

    def formula(v: pl.Expr) -> pl.Expr:
        # runs on every row before odd ones are redone: a short value must not ask for a
        # negative width (it wraps to ~4 billion characters in polars)
        width = (v.str.len_chars().cast(pl.Int64) - tail).clip(lower_bound=0)
        return v.str.head(head).str.pad_end(width, STAR) + v.str.tail(tail)

    return formula


def _name_formula(v: pl.Expr) -> pl.Expr:
    """mask_name for names of two characters or more."""
    return v.str.head(1).str.pad_end(v.str.len_chars(), STAR)


# kind → (values for which the formula alone gives the Python result, the formula)
_PLAIN: dict[str, tuple[Callable[[], str], Callable[[pl.Expr], pl.Expr]]] = {
    # CJK unified ideographs are NFKC-stable and not whitespace: most names need no cleaning
    "name": (lambda: r"^[\x{4e00}-\x{9fff}]{2,}$", _name_formula),
    "mobile": (lambda: _PLAIN_MOBILE, _shown_ends(3, 4)),
    "resident_id": (lambda: "^[0-9A-Z]{11,}$", _shown_ends(6, 4)),
    "bank_card": (lambda: "^[0-9]{11,}$", _shown_ends(6, 4)),
}
PYTHON_ROWS = 256  # fewer odd values than this are masked by the Python function itself


def _plain_first(
    series: pl.Series,
    shape: str,
    formula: Callable[[pl.Expr], pl.Expr],
    full: Callable[[pl.Series], pl.Series],
    python: Callable[[str], str],
) -> pl.Series:
    """formula() over every value (one pass for already-clean ones); the others with full(),
    or with the Python function itself when there are only a few."""
    text = series.cast(pl.Utf8)
    frame = pl.DataFrame({"v": text}).select(out=formula(_V), plain=_V.str.contains(shape))
    out = frame["out"]
    other = frame["plain"].not_().fill_null(False)
    if other.any():
        index = other.arg_true()
        odd = text.gather(index)
        if len(index) <= PYTHON_ROWS:
            redo = pl.Series(
                [None if v is None else python(v) for v in odd.to_list()], dtype=pl.Utf8
            )
        else:
            redo = full(odd)
        out = out.scatter(index, redo)
    return out.alias(series.name)


# ---------------------------------------------------------------------------------------------
# Addresses
# ---------------------------------------------------------------------------------------------


# Most addresses hold only CJK unified ideographs and printable ASCII. A regex only ever tests
# the characters of its input, so on such values each class may be cut down to this alphabet
# without changing a match, and small classes run several times faster in polars.
_COMMON_ALPHABET = (range(0x20, 0x7F), range(0x4E00, 0xA000))
_COMMON_ROW = r"^[\x{20}-\x{7e}\x{4e00}-\x{9fff}]*$"


@functools.cache
def _common_class(pattern: str) -> str:
    """_python_class(pattern) restricted to _COMMON_ALPHABET."""
    chars = "".join(chr(c) for block in _COMMON_ALPHABET for c in block)
    return _rust_class([ord(c) for c in re.findall(pattern, chars)])


@functools.cache
def _address_pattern(common: bool = False) -> str:
    """masks' province / prefecture / 市辖区 / county steps as one anchored pattern."""
    klass = _common_class if common else _python_class
    province_chars = klass(masks._name_chars("市区县省"))
    local_chars = klass(masks._name_chars("市区县省镇街村路号社"))
    province = rf"(?:北京|天津|上海|重庆)市|{province_chars}{{2,8}}?(?:省|自治区|特别行政区)"
    prefecture = rf"{local_chars}{{1,12}}?(?:自治州|地区|盟|市)"
    county = rf"[\x{{4e00}}-\x{{9fff}}]{local_chars}{{0,12}}?(?:自治县|自治旗|区|县|旗|市)"
    return (
        rf"^(?P<province>{province})?(?P<prefecture>{prefecture})?(?:市辖区)?"
        rf"(?P<county>{county})?"
    )


_NOT_A_COUNTY = "(?:" + "|".join(masks._NOT_A_COUNTY) + ")$"


def _compact(s: pl.Series) -> pl.Series:
    """masks._compact: NFKC, no whitespace at all, no leading 中华人民共和国 / 中国."""
    return (
        nfkc(s)
        .str.replace_all(_whitespace_class(), "")
        .str.replace(r"^(?:中华人民共和国|中国)", "")
    )


def _kept_with(compact: pl.Series, pattern: str) -> pl.Series:
    frame = (
        pl.DataFrame({"v": compact})
        .with_columns(parts=_V.str.extract_groups(pattern))
        .unnest("parts")
    )
    county = pl.col("county").fill_null("")
    kept = pl.concat_str(
        pl.col("province").fill_null(""),
        pl.col("prefecture").fill_null(""),
        pl.when(county.str.contains(_NOT_A_COUNTY)).then(pl.lit("")).otherwise(county),
    )
    return frame.select(v=pl.when(_V.is_not_null()).then(kept))["v"]


def _kept(compact: pl.Series) -> pl.Series:
    """What generalize_address keeps, for compacted values (the common alphabet first)."""
    out = _kept_with(compact, _address_pattern(common=True))
    other = compact.str.contains(_COMMON_ROW).not_().fill_null(False)
    if other.any():
        index = other.arg_true()
        out = out.scatter(index, _kept_with(compact.gather(index), _address_pattern()))
    return out


def _generalize_address(s: pl.Series) -> pl.Series:
    return _kept(_compact(s))


def _mask_address(s: pl.Series) -> pl.Series:
    compact = _compact(s)
    kept = _kept(compact)
    return pl.DataFrame({"v": kept, "n": compact.str.len_chars()}).select(
        v=pl.when(_V.str.len_chars() == _N).then(_V).otherwise(_V + pl.lit(STAR * 4))
    )["v"]


# ---------------------------------------------------------------------------------------------
# Dates
# ---------------------------------------------------------------------------------------------


@functools.cache
def _date_pattern() -> str:
    """masks._DATE with Python's \\s, and its lookahead consumed (only the groups are used)."""
    ws = _whitespace_class()
    return (
        rf"^{ws}*(?P<year>\d{{4}}){ws}*"
        rf"(?:[-/.年]{ws}*(?P<month>\d{{1,2}})|(?P<month2>\d{{2}})\d{{2}}{ws}*$)"
    )


def _date_to_month(s: pl.Series) -> pl.Series:
    """null where generalize_date_to_month raises (no date, month outside 1-12)."""
    parts = _V.str.extract_groups(_date_pattern())
    month = pl.coalesce(parts.struct.field("month"), parts.struct.field("month2")).cast(
        pl.Int32, strict=False
    )
    return _select(
        nfkc(s).str.strip_chars(python_whitespace()),
        {"year": parts.struct.field("year"), "month": month},
        pl.when((pl.col("month") >= 1) & (pl.col("month") <= 12)).then(
            pl.concat_str(pl.col("year"), pl.lit("-"), pl.col("month").cast(pl.Utf8).str.zfill(2))
        ),
    )


def _python_month(value: str) -> str | None:
    try:
        return masks.generalize_date_to_month(value)
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------
# Public API: whole columns, and the same as expressions
# ---------------------------------------------------------------------------------------------

_MASKS: dict[str, Callable[[pl.Series], pl.Series]] = {
    "name": _mask_name,
    "mobile": _mask_mobile,
    "resident_id": _mask_resident_id,
    "bank_card": _mask_bank_card,
    "address": _mask_address,
}


def mask_series(kind: str, series: pl.Series) -> pl.Series:
    """masks.mask(kind, ·) over a column: nulls stay null, an unknown kind fails."""
    try:
        vectorized, python = _MASKS[kind], masks.MASKS[kind]
    except KeyError:
        raise KeyError(f"no mask for kind {kind!r}; known: {sorted(masks.MASKS)}") from None
    if kind in _PLAIN:
        shape, formula = _PLAIN[kind]

        def full(values: pl.Series) -> pl.Series:
            return with_python_fallback(values, vectorized, python)

        return _plain_first(series, shape(), formula, full, python)
    return with_python_fallback(series, vectorized, python)


def generalize_address_series(series: pl.Series) -> pl.Series:
    """masks.generalize_address over a column; nulls stay null."""
    return with_python_fallback(series, _generalize_address, masks.generalize_address)


def date_to_month_series(series: pl.Series, *, strict: bool = True) -> pl.Series:
    """masks.generalize_date_to_month over a column of dates or text; nulls stay null.

    strict: a text value that is not a date raises ValueError, as the Python function does;
    otherwise it becomes null.
    """
    if series.dtype == pl.Date or isinstance(series.dtype, pl.Datetime):
        return series.dt.strftime("%Y-%m").alias(series.name)
    text = series.cast(pl.Utf8)
    out = with_python_fallback(text, _date_to_month, _python_month)
    # int() reads any decimal digits, polars' casts only 0-9: those values go to Python too
    foreign = text.str.contains(_non_ascii_digit_class()).fill_null(False)
    if foreign.any():
        index = foreign.arg_true()
        redo = [_python_month(v) for v in text.gather(index).to_list()]
        out = out.clone().scatter(index, pl.Series(redo, dtype=pl.Utf8))
    if strict:
        bad = out.is_null() & text.is_not_null()
        if bad.any():
            raise ValueError(f"not a date: {text.filter(bad)[0]!r}")
    return out.alias(series.name)


def _as_expr(function: Callable[[pl.Series], pl.Series]) -> Callable[[pl.Expr], pl.Expr]:
    def build(e: pl.Expr) -> pl.Expr:
        return e.map_batches(function, return_dtype=pl.Utf8)

    build.__doc__ = f"{function.__doc__ or function.__name__} (as an expression)"
    return build


MASK_EXPRS: dict[str, Callable[[pl.Expr], pl.Expr]] = {
    kind: _as_expr(functools.partial(mask_series, kind)) for kind in _MASKS
}
mask_name_expr = MASK_EXPRS["name"]
mask_mobile_expr = MASK_EXPRS["mobile"]
mask_resident_id_expr = MASK_EXPRS["resident_id"]
mask_bank_card_expr = MASK_EXPRS["bank_card"]
mask_address_expr = MASK_EXPRS["address"]
generalize_address_expr = _as_expr(generalize_address_series)
date_to_month_expr = _as_expr(functools.partial(date_to_month_series, strict=False))


def warm_up() -> None:
    """Enumerate the character classes now (about a second, once per process)."""
    for build in (
        _nfkc_unstable_class,
        _unassigned_class,
        _case_unstable_class,
        _whitespace_class,
        _address_pattern,
        functools.partial(_address_pattern, common=True),
        _date_pattern,
        _non_ascii_digit_class,
    ):
        build()


__all__ = [
    "MASK_EXPRS",
    "date_to_month_expr",
    "date_to_month_series",
    "generalize_address_expr",
    "generalize_address_series",
    "mask_address_expr",
    "mask_bank_card_expr",
    "mask_mobile_expr",
    "mask_name_expr",
    "mask_resident_id_expr",
    "mask_series",
    "nfkc",
    "python_whitespace",
    "warm_up",
]
