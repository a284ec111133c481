"""The exact set of characters a pattern can ever test, enumerated by the regex module."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

import regex

ALPHABET_LIMIT = 4096  # wider patterns (\w, ., [^...]) gain nothing from compression
SEPARATORS = ("\x00", "\uffff", "\U0010ffff", "\x01", "\ufffe")


def atom_class(atoms: Sequence[str]) -> str | None:
    """One character class (regex syntax) matching what any of the atoms matches, or None.

    Class contents are concatenated; an unescaped '-' at either end of a content is escaped so
    that neighbours cannot form a range. Negated classes and '.' do not merge (they are wide
    anyway, so such patterns are not compressed).
    """
    if not atoms:
        return None
    parts: list[str] = []
    for atom in dict.fromkeys(atoms):
        if atom == "." or atom.startswith("[^"):
            return None
        if not atom.startswith("["):
            parts.append(atom)  # an escape or an escaped literal: valid inside a class
            continue
        content = atom[1:-1]
        if content.startswith(("]", "-")):
            content = "\\" + content
        if content.endswith("-") and not content.endswith("\\-"):
            content = content[:-1] + "\\-"
        parts.append(content)
    return "[" + "".join(parts) + "]"


@functools.lru_cache(maxsize=1)
def _planes() -> tuple[str, str]:
    """Every code point as a string: the BMP, and the supplementary planes."""
    import array

    def chars(lo: int, hi: int) -> str:
        return array.array("I", range(lo, hi)).tobytes().decode("utf-32-le", "surrogatepass")

    return chars(0, 0x10000), chars(0x10000, 0x110000)


@functools.lru_cache(maxsize=64)
def _supplementary(classes: tuple[str, ...], flags: int) -> frozenset[str]:
    """Supplementary-plane characters any of the classes matches (one pass for all of them)."""
    union = regex.compile("[" + "".join(c[1:-1] for c in classes) + "]", flags=flags)
    return frozenset(union.findall(_planes()[1]))


def alphabets(classes: Sequence[str | None], flags: int) -> list[frozenset[str] | None]:
    """For each class (atom_class of one pattern, all under flags): every character it matches,
    or None when it matches more than ALPHABET_LIMIT characters or cannot be enumerated.

    Enumerated by the regex module itself over all code points, so exact for whatever the
    atoms are: classes, escapes, IGNORECASE case variants (k also matches the Kelvin sign).
    """
    out: list[frozenset[str] | None] = [None] * len(classes)
    if flags is None or flags & regex.FULLCASE:  # full case folding: 'ss' matches 'ß'
        return out
    bmp, _ = _planes()
    compiled: dict[int, regex.Pattern[str]] = {}
    for k, cls in enumerate(classes):
        if cls is None:
            continue
        try:
            compiled[k] = regex.compile(cls, flags=flags)
        except (regex.error, ValueError, TypeError):
            continue
    narrow: dict[int, list[str]] = {}
    for k, pattern in compiled.items():
        found = pattern.findall(bmp)
        if len(found) <= ALPHABET_LIMIT:
            narrow[k] = found
    if not narrow:
        return out
    extra = _supplementary(tuple(sorted({classes[k] or "" for k in narrow})), flags)
    for k, found in narrow.items():
        chars = frozenset(found) | {c for c in extra if compiled[k].fullmatch(c)}
        out[k] = chars if len(chars) <= ALPHABET_LIMIT else None
    return out


def class_source(chars: Iterable[str]) -> str:
    """A stdlib re character class matching exactly chars (as code point ranges)."""
    points = sorted(ord(c) for c in chars)
    ranges: list[tuple[int, int]] = []
    for p in points:
        if ranges and p == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], p)
        else:
            ranges.append((p, p))
    return "[" + "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges) + "]"
