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
- each intermediate (cleaned value, its length) is materialized once per column;
- the common shapes take a fast path and only the other values the full pipeline above (or
  the Python function, when there are few): 11-digit mobiles, names of 2-4 CJK ideographs
  and dates (YYYY-MM-DD, YYYYMMDD, YYYY年M月…, fullwidth digits too) are read and written
  in numpy through the Arrow string views (values of up to 12 bytes sit inline there);
  addresses of printable ASCII and CJK ideographs only (checked in numpy over their UTF-8
  bytes), which cleaning leaves as they are, are generalized by one regex search (the
  province/prefecture/county pattern without groups: what it keeps is its whole match).

Unicode versions: Python 3.11 knows Unicode 14, polars a newer one. For characters assigned in
both, normalization agrees (Unicode's stability policy). Values holding a character Python's
database leaves unassigned are recomputed with the Python function, so the result is always
the Python function's.

Entry points: ``mask_series(kind, s)``, ``generalize_address_series(s)``,
``date_to_month_series(s)`` on whole columns. There are no expression forms: a Python
function inside an expression runs on polars' worker threads, which must take the GIL, and a
thread holding it in a polars call that waits for those workers (`to_pandas`) hangs both.
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
from collections.abc import Callable

import numpy as np
import polars as pl
import pyarrow as pa

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
    return _rust_class(_nfkc_unstable_points())


@functools.cache
def _nfkc_unstable_points() -> list[int]:
    """The code points of _nfkc_unstable_class."""
    seconds = {0x1161 + i for i in range(21)} | {0x11A8 + i for i in range(27)}
    for c in _all_text():
        mapping = unicodedata.decomposition(c)
        if mapping and not mapping.startswith("<"):
            parts = mapping.split()
            if len(parts) == 2:
                seconds.add(int(parts[1], 16))
    return [
        ord(c)
        for c in _all_text()
        if unicodedata.decomposition(c)
        or unicodedata.combining(c)
        or ord(c) in seconds
        or unicodedata.category(c) == "Cn"
    ]


@functools.cache
def _non_ascii_digit_class() -> str:
    """Decimal digits other than 0-9 (int() reads them; polars' casts do not)."""
    return _rust_class([ord(c) for c in _all_text() if c.isdecimal() and not c.isascii()])


# ---------------------------------------------------------------------------------------------
# Byte-level fast paths (numpy over the Arrow string views, for the common shapes)
# ---------------------------------------------------------------------------------------------

_INLINE = 12  # an Arrow string view holds a value of up to 12 bytes inline, after its length


class _Views:
    """A String column as its Arrow string views: per value four little-endian 32-bit words,
    the length in bytes then (up to 12 bytes) the value itself, zero-padded; or, for longer
    values, its first 4 bytes, a buffer index and an offset into that data buffer."""

    def __init__(self, arr: pa.Array, words: np.ndarray, null: np.ndarray) -> None:
        self.arr, self.words, self.null = arr, words, null
        self.lengths = words[:, 0].copy()
        self.lengths[null] = 0  # whatever a null's view holds, it matches no shape

    def word(self, k: int) -> np.ndarray:
        """Word k of every view, contiguous (1: bytes 0-3; 2, 3: bytes 4-11 when inline)."""
        return np.ascontiguousarray(self.words[:, k])

    @classmethod
    def of(cls, text: pl.Series) -> _Views | None:
        """None when polars does not hand the column over as one string-view array (or the
        machine is big-endian, or the column empty)."""
        if sys.byteorder != "little":
            return None
        arr = text.rechunk().to_arrow(compat_level=pl.CompatLevel.newest())
        if isinstance(arr, pa.ChunkedArray):
            if arr.num_chunks != 1:
                return None
            arr = arr.chunk(0)
        buffers = arr.buffers()
        if arr.type != pa.string_view() or not len(arr) or buffers[1] is None:
            return None
        n, first = len(arr), arr.offset
        words = np.frombuffer(buffers[1], dtype="<u4")[4 * first : 4 * (first + n)]
        null = (
            arr.is_null().to_numpy(zero_copy_only=False)
            if arr.null_count
            else np.zeros(n, dtype=bool)
        )
        return cls(arr, words.reshape(n, 4), null)

    def bytes_at(self, rows: np.ndarray, start: int, width: int) -> np.ndarray:
        """Bytes start..start+width of the given rows (zero past a value's end)."""
        out = np.zeros((len(rows), width), dtype=np.uint8)
        if not len(rows):
            return out
        lengths = self.lengths[rows].astype(np.int64)
        inline = lengths <= _INLINE
        view = self.words[rows].view(np.uint8)  # 16 bytes a row
        span = np.arange(start, start + width)
        short = np.flatnonzero(inline)
        if len(short):
            out[short] = view[short][:, 4 + np.minimum(span, _INLINE - 1)]
        long = np.flatnonzero(~inline)
        if len(long):
            data = [np.frombuffer(b, dtype=np.uint8) for b in self.arr.buffers()[2:]]
            base = np.cumsum([0] + [len(d) for d in data])
            joined = np.concatenate([*data, np.zeros(start + width, dtype=np.uint8)])
            words = self.words[rows[long]]
            begin = base[words[:, 2]] + words[:, 3]
            out[long] = joined[begin[:, None] + span]
        out[span >= lengths[:, None]] = 0
        return out

    def put(self, words: np.ndarray, valid: np.ndarray, rows: np.ndarray, values: list) -> bool:
        """Write values (str or None) as inline views into rows of words / valid; False (and
        nothing written) when one is longer than 12 bytes."""
        raw = [b"" if v is None else v.encode() for v in values]
        if any(len(r) > _INLINE for r in raw):
            return False
        block = np.frombuffer(b"".join(r.ljust(_INLINE, b"\0") for r in raw), dtype="<u4")
        words[rows, 1:] = block.reshape(len(rows), 3)
        words[rows, 0] = [len(r) for r in raw]
        valid[rows] = [v is not None for v in values]
        return True


def _inline_strings(name: str, words: np.ndarray, valid: np.ndarray) -> pl.Series:
    """A String column from string views of values of at most 12 bytes (words as in _Views),
    null where not valid."""
    words[np.flatnonzero(~valid)] = 0
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
    arr = pa.Array.from_buffers(pa.string_view(), len(words), [bitmap, pa.py_buffer(words)])
    return pl.Series(name, arr, dtype=pl.Utf8)


def _is_digits(word: np.ndarray) -> np.ndarray:
    """Each of the 4 bytes of each 32-bit word is an ASCII digit."""
    return ((word & 0xF0F0F0F0) == 0x30303030) & (((word + 0x06060606) & 0xF0F0F0F0) == 0x30303030)


def _is_digit(byte: np.ndarray) -> np.ndarray:
    return (byte >= 0x30) & (byte <= 0x39)


def _is_month(word: np.ndarray) -> np.ndarray:
    """The two low bytes of each word are ASCII digits, a month 01-12."""
    digits = ((word & 0xF0F0) == 0x3030) & (((word & 0xFFFF) + 0x0606) & 0xF0F0 == 0x3030)
    month = (word & 0xF) * 10 + ((word >> 8) & 0xF)
    return digits & (month - 1 < 12)


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


def _mobile_fast(text: pl.Series) -> tuple[pl.Series, np.ndarray] | None:
    """mask_mobile of 11 ASCII digits (138****5678), from the string views; the rows it does
    not cover, to be masked elsewhere. None when the column is not held as views."""
    views = _Views.of(text)
    if views is None:
        return None
    w1, w2, w3 = views.word(1), views.word(2), views.word(3)
    # bytes 0-3, 4-7, 8-10 digits (byte 11 of an 11-byte value is 0)
    done = (views.lengths == 11) & _is_digits(w1) & _is_digits(w2) & _is_digits(w3 | 0x30000000)
    words = np.empty((len(text), 4), dtype="<u4")
    words[:, 0] = 11
    words[:, 1] = (w1 & 0x00FFFFFF) | 0x2A000000  # 3 digits, then *
    words[:, 2] = (w2 & 0xFF000000) | 0x002A2A2A  # ***, then the 4 last digits
    words[:, 3] = w3 & 0x00FFFFFF
    return _inline_strings(text.name, words, done), ~done & ~views.null


def _is_cjk(char: np.ndarray) -> np.ndarray:
    """The 3 low bytes of each word are one CJK unified ideograph (U+4E00-U+9FFF) in utf-8:
    E4 B8-BF xx or E5-E9 80-BF xx, xx a continuation byte."""
    lead, second = char & 0xFF, (char >> 8) & 0xFF
    return (
        ((lead - 0xE5 < 5) | ((lead == 0xE4) & (second >= 0xB8)))
        & ((second & 0xC0) == 0x80)
        & ((char & 0xC00000) == 0x800000)
    )


def _name_fast(text: pl.Series) -> tuple[pl.Series, np.ndarray] | None:
    """mask_name of 2 to 4 CJK unified ideographs (张*, 欧阳**), from the string views (such
    a value is already clean: NFKC-stable, no whitespace); the rows it does not cover, to be
    masked elsewhere. None when the column is not held as views."""
    views = _Views.of(text)
    if views is None:
        return None
    w1, w2, w3, lengths = views.word(1), views.word(2), views.word(3), views.lengths
    # the characters at bytes 0-2, 3-5, 6-8 and 9-11
    two = (lengths == 6) | (lengths == 9) | (lengths == 12)
    two &= _is_cjk(w1) & _is_cjk((w1 >> 24) | (w2 << 8))
    three = two & (lengths >= 9) & _is_cjk((w2 >> 16) | (w3 << 16))
    four = three & (lengths == 12) & _is_cjk(w3 >> 8)
    done = two & ((lengths == 6) | three) & ((lengths != 12) | four)
    chars = lengths // 3
    words = np.zeros((len(text), 4), dtype="<u4")
    words[:, 0] = chars + 2  # one 3-byte character, then a star for each other
    words[:, 1] = (w1 & 0x00FFFFFF) | 0x2A000000
    words[:, 2] = np.where(chars == 4, 0x2A2A, np.where(chars == 3, 0x2A, 0))
    return _inline_strings(text.name, words, done), ~done & ~views.null


_FAST: dict[str, Callable[[pl.Series], tuple[pl.Series, np.ndarray] | None]] = {
    "mobile": _mobile_fast,
    "name": _name_fast,
}


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


# Most addresses hold only CJK ideographs and printable ASCII. A regex only ever tests the
# characters of its input, so on such values each class may be cut down to this alphabet
# without changing a match, and small classes run several times faster in polars. U+4000 to
# U+9FFF are exactly the characters with UTF-8 lead bytes E4-E9 (cheap to check in bytes).
_COMMON_ALPHABET = (range(0x20, 0x80), range(0x4000, 0xA000))
_COMMON_ROW = r"^[\x{20}-\x{7f}\x{4000}-\x{9fff}]*$"


@functools.cache
def _common_points(pattern: str) -> tuple[int, ...]:
    """The code points of _COMMON_ALPHABET a one-character Python regex matches."""
    chars = "".join(chr(c) for block in _COMMON_ALPHABET for c in block)
    return tuple(ord(c) for c in re.findall(pattern, chars))


@functools.cache
def _common_class(pattern: str) -> str:
    """_python_class(pattern) restricted to _COMMON_ALPHABET."""
    return _rust_class(list(_common_points(pattern)))


def _address_levels(common: bool) -> tuple[str, str, str]:
    """masks' province, prefecture and county patterns for the Rust engine."""
    klass = _common_class if common else _python_class
    province_chars = klass(masks._name_chars("市区县省"))
    local_chars = klass(masks._name_chars("市区县省镇街村路号社"))
    province = rf"(?:北京|天津|上海|重庆)市|{province_chars}{{2,8}}?(?:省|自治区|特别行政区)"
    prefecture = rf"{local_chars}{{1,12}}?(?:自治州|地区|盟|市)"
    county = rf"[\x{{4e00}}-\x{{9fff}}]{local_chars}{{0,12}}?(?:自治县|自治旗|区|县|旗|市)"
    return province, prefecture, county


@functools.cache
def _address_pattern(common: bool = False) -> str:
    """masks' province / prefecture / 市辖区 / county steps as one anchored pattern."""
    province, prefecture, county = _address_levels(common)
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


@functools.cache
def _address_search() -> str:
    """What generalize_address keeps of a plain value (_plain_addresses), as the whole match:
    _address_pattern(common=True) without groups, its county never ending with one of
    masks._NOT_A_COUNTY (X区: 小区…), a county Python drops. Python's county ends at the
    first of its suffixes after its first character and cannot reach past a 区 (not a name
    character): where it is X区, this one, which cannot reach past that 区 either, is none."""
    words = masks._NOT_A_COUNTY
    if not all(len(w) == 2 and w.endswith("区") for w in words):
        raise NotImplementedError("a county that is not one: only X区 is written here")
    local = _common_points(masks._name_chars("市区县省镇街村路号社"))
    first, county_chars = r"[\x{4e00}-\x{9fff}]", _rust_class(list(local))
    not_x = {ord(w[0]) for w in words}
    first_not_x = _rust_class([c for c in range(0x4E00, 0xA000) if c not in not_x])
    local_not_x = _rust_class([c for c in local if c not in not_x])
    county = (
        rf"{first}{county_chars}{{0,12}}?(?:自治县|自治旗|县|旗|市)"
        rf"|{first_not_x}区|{first}{county_chars}{{0,11}}?{local_not_x}区"
    )
    province, prefecture, _ = _address_levels(common=True)
    return rf"^(?:{province})?(?:{prefecture})?(?:市辖区)?(?:{county})?"


class _Utf8:
    """A String column's UTF-8 bytes where they lie, to be scanned in place: segments (the
    distinct data buffers of its Arrow string views, each once however many chunks share it,
    then the short values, which sit in their views, gathered); per row its length in bytes
    (0 when null), when known its first 4 bytes (little-endian), and where its value starts
    in the segments' concatenation (never built; worked out only when asked for)."""

    def __init__(
        self,
        segments: list[np.ndarray],
        length: np.ndarray,
        prefix: np.ndarray | None,
        start: Callable[[], np.ndarray],
    ) -> None:
        self.segments, self.length, self.prefix, self._start = segments, length, prefix, start
        self.bases = np.cumsum([0, *(len(s) for s in segments)])

    @functools.cached_property
    def start(self) -> np.ndarray:
        return self._start()

    @classmethod
    def of(cls, text: pl.Series) -> _Utf8:
        """Read in place, unless the buffers hold far more than the values (a small slice of
        a large column): then copied, compact."""
        column = text.to_frame("v").to_arrow(compat_level=pl.CompatLevel.newest()).column(0)
        if sys.byteorder != "little" or column.type != pa.string_view():
            return cls.compact(text)
        chunks = column.chunks
        views = np.concatenate([_view_words(c) for c in chunks]).reshape(-1, 4)
        length = views[:, 0].astype(np.int64)
        if text.null_count():
            length[text.is_null().to_numpy()] = 0  # whatever a null's view holds
        buffers, names = _distinct_buffers(chunks)
        held = sum(len(b) for b in buffers)
        if held > 2 * int(np.sum(length, where=length > _INLINE)) + (1 << 20):
            return cls.compact(text)
        short = np.flatnonzero(length <= _INLINE)  # gathered into the last segment
        inline = views[short].view(np.uint8)[:, 4:].copy()
        inline[np.arange(_INLINE) >= length[short, None]] = ord("A")  # padding: not foreign

        def start() -> np.ndarray:
            first = np.cumsum([0, *(len(n) for n in names)])  # a chunk's first in table
            table = np.array([i for n in names for i in n] + [0], dtype=np.int64)
            name = np.where(length > _INLINE, views[:, 2], 0).astype(np.int64)  # of its chunk
            name += np.repeat(first[:-1], [len(c) for c in chunks])
            at = np.cumsum([0, *(len(b) for b in buffers)])[table[name]] + views[:, 3]
            at[short] = held + _INLINE * np.arange(len(short))
            return at

        return cls([*buffers, inline.reshape(-1)], length, views[:, 1].copy(), start)

    @classmethod
    def compact(cls, text: pl.Series) -> _Utf8:
        """The values copied back to back (Arrow large_string), one segment."""
        arr = text.to_arrow(compat_level=pl.CompatLevel.oldest())
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        arr = arr.cast(pa.large_string())
        _, offsets, data = arr.buffers()
        at = np.frombuffer(offsets, dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
        utf8 = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
        return cls([utf8], np.diff(at), None, lambda: at[:-1].copy())


def _view_words(chunk: pa.Array) -> np.ndarray:
    """A string-view chunk's views, four 32-bit words a row (see _Views)."""
    first = chunk.offset
    return np.frombuffer(chunk.buffers()[1], dtype="<u4")[4 * first : 4 * (first + len(chunk))]


def _distinct_buffers(chunks: list[pa.Array]) -> tuple[list[np.ndarray], list[list[int]]]:
    """The distinct data buffers of string-view chunks, and per chunk the index among them
    of each of its buffers."""
    index: dict[tuple[int, int], int] = {}
    buffers: list[np.ndarray] = []
    names: list[list[int]] = []
    for chunk in chunks:
        names.append([])
        for buffer in chunk.buffers()[2:]:
            key = (buffer.address, buffer.size)
            if key not in index:
                index[key] = len(buffers)
                buffers.append(np.frombuffer(buffer, dtype=np.uint8))
            names[-1].append(index[key])
    return buffers, names


_SCAN = 1 << 18  # bytes a step: the temporaries stay in cache, and are not paged in anew


def _scan(utf8: _Utf8) -> tuple[np.ndarray, np.ndarray]:
    """The positions of _foreign and of _xia in the segments, found in steps of _SCAN bytes
    (sorted: positions in the segments' concatenation)."""
    foreign, xia = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
    for data, base in zip(utf8.segments, utf8.bases, strict=False):
        for at in range(0, len(data), _SCAN):
            part, n = data[at : at + _SCAN + 2], min(_SCAN, len(data) - at)
            foreign.append(_foreign(part, n) + (base + at))
            xia.append(_xia(part, n) + (base + at))
    return np.concatenate(foreign), np.concatenate(xia)


def _foreign(part: np.ndarray, n: int) -> np.ndarray:
    """Where a character starts that is neither ASCII from 0x21 (printable but space, and
    DEL) nor in U+4000-U+9FFF (UTF-8 lead bytes E4-E9): a byte below 0x21, a lead byte but
    E4-E9. Continuation bytes never count: their lead byte does."""
    shifted = part[:n] + np.uint8(0x40)  # C0-FF and 00-20 go to 00-60, E4-E9 to 24-29
    bad = shifted < 0x61
    shifted -= np.uint8(0x24)
    bad &= shifted >= 6
    return np.flatnonzero(bad)


_CITY_DISTRICTS = np.frombuffer("市辖区".encode(), dtype=np.uint8)  # 辖: E8 BE 96 at 3


def _xia(part: np.ndarray, n: int) -> np.ndarray:
    """Where 辖 may start (its last two bytes follow)."""
    m = min(n, len(part) - 2)
    hit = part[2 : m + 2] == _CITY_DISTRICTS[5]
    hit &= part[1 : m + 1] == _CITY_DISTRICTS[4]
    return np.flatnonzero(hit)


def _city_districts(utf8: _Utf8, xia: np.ndarray) -> np.ndarray:
    """Where 市辖区 starts (sorted), confirmed around where 辖 may start (rare)."""
    begin = xia[xia >= 3] - 3
    segment = np.searchsorted(utf8.bases, begin, side="right") - 1
    found = [np.zeros(0, dtype=np.int64)]
    for s in np.unique(segment):
        data, base = utf8.segments[s], utf8.bases[s]
        at = begin[segment == s] - base
        at = at[at + len(_CITY_DISTRICTS) <= len(data)]  # a value never crosses segments
        window = data[at[:, None] + np.arange(len(_CITY_DISTRICTS))]
        found.append(at[(window == _CITY_DISTRICTS).all(axis=1)] + base)
    return np.concatenate(found)


def _holding(positions: np.ndarray, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """Rows whose range start..stop holds one of the (sorted) positions."""
    if not len(positions):
        return np.zeros(len(start), dtype=bool)
    return np.searchsorted(positions, stop) > np.searchsorted(positions, start)


def _plain_addresses(text: pl.Series, utf8: _Utf8) -> np.ndarray:
    """Rows that masks._compact leaves as they are, on which the common classes match as
    Python's, and in which the search for what is kept cannot meet 市辖区 (to be skipped):
    ASCII from 0x21 and U+4000-U+9FFF (which NFKC keeps, none whitespace, all assigned in
    Python's database: tested), never 市辖区, not starting with 中国 or 中华 (the country)."""
    foreign, xia = _scan(utf8)
    city = _city_districts(utf8, xia)
    plain = np.ones(len(utf8.length), dtype=bool)
    if len(foreign) or len(city):  # else where the rows start is not needed
        start, stop = utf8.start, utf8.start + utf8.length
        plain &= ~_holding(foreign, start, stop)
        plain &= ~_holding(city, start, stop - len(_CITY_DISTRICTS) + 1)
    plain[_rows_with_country(text, utf8)] = False
    return plain


_ZHONG = int.from_bytes("中".encode(), "little")


def _rows_with_country(text: pl.Series, utf8: _Utf8) -> np.ndarray:
    """The rows starting with 中国 or 中华 (those starting with 中, when the first bytes are
    known, else all, are looked at)."""
    rows = np.flatnonzero(utf8.length >= 6)
    if utf8.prefix is not None:
        rows = rows[(utf8.prefix[rows] & 0xFFFFFF) == _ZHONG]
    if not len(rows):
        return rows
    head = text.gather(rows)
    return rows[(head.str.starts_with("中国") | head.str.starts_with("中华")).to_numpy()]


def _kept_of_plain(text: pl.Series, masked: bool) -> pl.Series:
    """What the search keeps (masked: and four stars, unless it keeps all of the value),
    right for plain values; lazily, so that polars searches once, over chunks in parallel."""
    kept = _V.str.extract(_address_search(), 0)
    frame = text.to_frame("v").lazy()
    if not masked:
        return frame.select(kept).collect().to_series()
    whole = kept.str.len_bytes() == _V.str.len_bytes()
    found = frame.select(out=kept + STAR * 4, whole=whole).collect()
    rows = found["whole"].arg_true()
    return found["out"].scatter(rows, text.gather(rows)) if len(rows) else found["out"]


def _address_series(series: pl.Series, *, masked: bool) -> pl.Series:
    """generalize_address (or mask_address) over a column. A plain value (_plain_addresses)
    is its own compacted form: what is kept is the match of _address_search (one regex
    search). The other values take the general path, or the Python function when few."""
    text = series.cast(pl.Utf8)
    out = _kept_of_plain(text, masked)
    plain = _plain_addresses(text, _Utf8.of(text))
    index = np.flatnonzero(~plain)
    index = index[text.gather(index).is_not_null().to_numpy()]
    if len(index):
        odd = text.gather(index)
        python = masks.mask_address if masked else masks.generalize_address
        if len(index) <= PYTHON_ROWS:
            redo = pl.Series([None if v is None else python(v) for v in odd.to_list()])
        else:
            vectorized = _mask_address if masked else _generalize_address
            redo = with_python_fallback(odd, vectorized, python)
        out = out.scatter(index, redo.cast(pl.Utf8))
    return out.alias(series.name)


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
    if kind == "address":
        return _address_series(series, masked=True)
    if kind in _PLAIN:
        shape, formula = _PLAIN[kind]

        def full(values: pl.Series) -> pl.Series:
            return with_python_fallback(values, vectorized, python)

        fast = _FAST[kind](series.cast(pl.Utf8)) if kind in _FAST else None
        if fast is None:
            return _plain_first(series, shape(), formula, full, python)
        out, rest = fast
        index = np.flatnonzero(rest)
        if len(index):
            odd = pl.Series(index, dtype=pl.UInt32)
            redo = _plain_first(series.gather(odd), shape(), formula, full, python)
            out = out.scatter(odd, redo)
        return out.alias(series.name)
    return with_python_fallback(series, vectorized, python)


def generalize_address_series(series: pl.Series) -> pl.Series:
    """masks.generalize_address over a column; nulls stay null."""
    return _address_series(series, masked=False)


_YEAR_SIGN = np.frombuffer("年".encode(), dtype=np.uint8)
_MONTH_SIGN = np.frombuffer("月".encode(), dtype=np.uint8)


def _date_to_month_fast(text: pl.Series) -> pl.Series | None:
    """date_to_month over a text column, the common shapes in numpy: YYYY-MM-DD (or / or .),
    YYYYMMDD and YYYY年M(M)月…, in ASCII digits and a month 01-12; the other values with
    the Python function when they are few, else the general path. None when the column is
    not held as string views (then the general path takes it all).

    On these shapes the Python function reads only the leading bytes, which neither NFKC
    (no canonical composition starts with a digit, nor with 月) nor strip() can change: the
    year is the first 4 digits and the month the 2 (or 1 before 月) after the separator.
    """
    views = _Views.of(text)
    if views is None:
        return None
    n, lengths = len(text), views.lengths
    w1, w2 = views.word(1), views.word(2)  # bytes 0-3 and (inline) 4-7
    year = _is_digits(w1)
    # YYYY?MM??, the separator one of - . / (0x2D-0x2F); output bytes 4-6: "-" and the month
    valid = (lengths == 10) & year & ((w2 & 0xFF) - 0x2D < 3) & _is_month(w2 >> 8)
    tail = 0x2D | (w2 & 0x00FFFF00)
    rows = np.flatnonzero((lengths == 8) & year)  # YYYYMMDD
    if len(rows):
        w = w2[rows]
        compact = _is_month(w) & _is_digits(w | 0x3030)
        tail[rows] = 0x2D | ((w & 0xFFFF) << 8)
        valid[rows] = compact
    rows = np.flatnonzero(year & (lengths >= 11))  # YYYY年M月…, YYYY年MM月…
    if len(rows):
        m = views.bytes_at(rows, 4, 8)  # bytes 4-11
        nian = (m[:, 0:3] == _YEAR_SIGN).all(axis=1) & _is_digit(m[:, 3])
        one = nian & (m[:, 4:7] == _MONTH_SIGN).all(axis=1) & (m[:, 3] != 0x30)
        pair = m[:, 3].astype(np.uint32) | (m[:, 4].astype(np.uint32) << 8)
        two = nian & (m[:, 5:8] == _MONTH_SIGN).all(axis=1) & _is_month(pair)
        tens = np.where(two, m[:, 3], 0x30).astype(np.uint32)
        ones = np.where(two, m[:, 4], m[:, 3]).astype(np.uint32)
        tail[rows] = 0x2D | (tens << 8) | (ones << 16)
        valid[rows] = one | two
    words = np.zeros((n, 4), dtype="<u4")
    words[:, 0] = 7
    words[:, 1] = w1
    words[:, 2] = tail
    # the same in fullwidth digits (and separator), which NFKC makes ASCII: bytes EF BC 9x
    rows = np.flatnonzero((lengths >= 19) & ((w1 & 0xFFFF) == 0xBCEF))
    if len(rows):
        m = views.bytes_at(rows, 0, 21)

        def wide(at: int, low: int, count: int) -> np.ndarray:
            return (m[:, at] == 0xEF) & (m[:, at + 1] == 0xBC) & (m[:, at + 2] - low < count)

        digits = [wide(at, 0x90, 10) for at in (0, 3, 6, 9)]
        ascii_sep = (m[:, 12] - 0x2D < 3) & wide(13, 0x90, 10) & wide(16, 0x90, 10)
        wide_sep = wide(12, 0x8D, 3) & wide(15, 0x90, 10) & wide(18, 0x90, 10)
        at = np.where(wide_sep, 15, 13)[:, None] + [2, 5]
        month = np.take_along_axis(m, at, axis=1).astype(np.uint32) - 0x60  # ASCII digits
        ok = digits[0] & digits[1] & digits[2] & digits[3] & (ascii_sep | wide_sep)
        ok &= _is_month(month[:, 0] | (month[:, 1] << 8))
        shifts = np.array([0, 8, 16, 24], dtype=np.uint32)
        year = (m[:, [2, 5, 8, 11]].astype(np.uint32) - 0x60) << shifts
        words[rows, 1] = np.where(ok, np.bitwise_or.reduce(year, axis=1), w1[rows])
        words[rows, 2] = np.where(ok, 0x2D | (month[:, 0] << 8) | (month[:, 1] << 16), tail[rows])
        valid[rows] |= ok
    index = np.flatnonzero(~valid & ~views.null)
    if 0 < len(index) <= PYTHON_ROWS:
        redo = [_python_month(v) for v in text.gather(index).to_list()]
        if not views.put(words, valid, index, redo):
            out = _inline_strings(text.name, words, valid)
            return out.scatter(index, pl.Series(redo, dtype=pl.Utf8))
        index = index[:0]
    out = _inline_strings(text.name, words, valid)
    if len(index):
        odd = pl.Series(index, dtype=pl.UInt32)
        out = out.scatter(odd, _date_to_month_general(text.gather(odd)))
    return out


def _date_to_month_general(text: pl.Series) -> pl.Series:
    out = with_python_fallback(text, _date_to_month, _python_month)
    # int() reads any decimal digits, polars' casts only 0-9: those values go to Python too
    foreign = text.str.contains(_non_ascii_digit_class()).fill_null(False)
    if foreign.any():
        index = foreign.arg_true()
        redo = [_python_month(v) for v in text.gather(index).to_list()]
        out = out.clone().scatter(index, pl.Series(redo, dtype=pl.Utf8))
    return out


def date_to_month_series(series: pl.Series, *, strict: bool = True) -> pl.Series:
    """masks.generalize_date_to_month over a column of dates or text; nulls stay null.

    strict: a text value that is not a date raises ValueError, as the Python function does;
    otherwise it becomes null.
    """
    if series.dtype == pl.Date or isinstance(series.dtype, pl.Datetime):
        return series.dt.strftime("%Y-%m").alias(series.name)
    text = series.cast(pl.Utf8)
    out = _date_to_month_fast(text)
    if out is None:
        out = _date_to_month_general(text)
    if strict:
        bad = out.is_null() & text.is_not_null()
        if bad.any():
            raise ValueError(f"not a date: {text.filter(bad)[0]!r}")
    return out.alias(series.name)


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
        _address_search,
    ):
        build()


__all__ = [
    "date_to_month_series",
    "generalize_address_series",
    "mask_series",
    "nfkc",
    "python_whitespace",
    "warm_up",
]
