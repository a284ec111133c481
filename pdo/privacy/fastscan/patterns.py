"""Reading a regex source: its lookaround-free relaxation, its atoms and its shortest match."""

from __future__ import annotations

import re
from dataclasses import dataclass

import regex


class UnsupportedPattern(Exception):
    """Syntax the analysis does not model; the pattern is then run with plain finditer."""


@dataclass(frozen=True)
class PatternShape:
    """What analyze_pattern learns from a regex source.

    relaxed: the source with every zero-width assertion removed (lookarounds, \\b, \\B).
    Removing an assertion only relaxes a pattern: wherever it matches, relaxed matches too.
    atoms: every single-character matcher in the source, lookarounds included (character
    classes, escapes, literals). None when inline flag groups make their meaning uncertain.
    word_boundaries: whether \\b or \\B occur (they test characters without consuming them).
    min_length: a lower bound on the length of any match.
    required: literal atoms every match tests successfully, in the match itself or in a
    positive lookaround (so next to it); empty when inline flag groups make it uncertain.
    """

    relaxed: str
    atoms: tuple[str, ...] | None
    word_boundaries: bool
    min_length: int
    required: frozenset[str] = frozenset()


class _Frame:
    """An open group: finished alternatives and the current one, as (minimum length, literal
    atoms required) per alternative and per item of the current one."""

    __slots__ = ("alternatives", "look", "required", "sequence", "wanted")

    def __init__(self, look: str) -> None:
        self.look = look  # "" for a group, "=" / "!" for a positive / negative lookaround
        self.alternatives: list[int] = []
        self.required: list[frozenset[str]] = []
        self.sequence: list[int] = []
        self.wanted: list[frozenset[str]] = []

    def add(self, length: int, required: frozenset[str]) -> None:
        self.sequence.append(length)
        self.wanted.append(required)

    def repeat(self, times: int) -> None:
        """The last item repeated at least times (none at all: nothing is required of it)."""
        self.sequence[-1] *= times
        if not times:
            self.wanted[-1] = frozenset()

    def branch(self) -> None:
        self.alternatives.append(sum(self.sequence))
        self.required.append(frozenset().union(*self.wanted))
        self.sequence, self.wanted = [], []

    def close(self) -> tuple[int, frozenset[str]]:
        self.branch()
        return min(self.alternatives), frozenset.intersection(*self.required)


_QUANTIFIER = re.compile(r"\{\d+(?:,\d*)?\}")
_NAMED_GROUP = re.compile(r"\(\?P?<[A-Za-z_]\w*>")
_FLAG_GROUP = re.compile(r"\(\?([aiLmsuw]*(?:-[imsw]+)?)([:)])")
_HEX_ARGS = {"x": re.compile(r"[0-9A-Fa-f]{2}"), "u": re.compile(r"[0-9A-Fa-f]{4}"),
             "U": re.compile(r"[0-9A-Fa-f]{8}")}  # fmt: skip
_OCTAL = re.compile(r"[0-7]{0,2}")
_BACKREF = re.compile(r"[1-9][0-9]?(?![0-9])|g<\w+>")


def _class_end(source: str, i: int) -> int:
    """Index just past the character class that opens at source[i] == '[' (version 0 syntax)."""
    j = i + 1
    if j < len(source) and source[j] == "^":
        j += 1
    if j < len(source) and source[j] == "]":
        j += 1
    while j < len(source):
        if source[j] == "\\":
            j += 2
        elif source.startswith("[:", j) and ":]" in source[j + 2 :]:
            j = source.index(":]", j + 2) + 2
        elif source[j] == "]":
            return j + 1
        else:
            j += 1
    raise UnsupportedPattern("unterminated character class")


def _escape(source: str, i: int) -> tuple[str, int]:
    """(kind, end) of the escape at source[i] == '\\'; kind: atom, boundary or backref."""
    if i + 1 >= len(source):
        raise UnsupportedPattern("trailing backslash")
    c = source[i + 1]
    if c in "bB":
        return "boundary", i + 2
    if c in "dDsSwWtnrfva" or not c.isalnum():
        return "atom", i + 2
    if c in _HEX_ARGS:
        m = _HEX_ARGS[c].match(source, i + 2)
        if m is None:
            raise UnsupportedPattern(f"escape \\{c}")
        return "atom", m.end()
    if c in "NpP":
        if source.startswith("{", i + 2) and "}" in source[i + 2 :]:
            return "atom", source.index("}", i + 2) + 1
        if c != "N" and i + 2 < len(source):
            return "atom", i + 3
        raise UnsupportedPattern(f"escape \\{c}")
    if c == "0":
        return "atom", _OCTAL.match(source, i + 2).end()  # type: ignore[union-attr]
    m = _BACKREF.match(source, i + 1)
    if m is not None:
        return "backref", m.end()
    raise UnsupportedPattern(f"escape \\{c}")  # \A \Z \z \G \K, octal \123, unknown letters


def analyze_pattern(source: str) -> PatternShape:
    """Relaxation, atoms and minimum match length of a regex source (version 0 syntax).

    Refused (UnsupportedPattern): anchors and \\A \\Z \\G \\K (they depend on where a search
    starts), atomic groups, possessive quantifiers and backtracking verbs (a relaxed pattern
    could commit to another branch and fail), fuzzy constraints, conditionals, recursion,
    branch reset, capturing groups inside lookarounds (group numbers would shift).
    """
    out: list[str] = []
    atoms: list[str] = []
    frames = [_Frame(look="")]  # frames[0] is the whole pattern; one per open parenthesis
    removing = 0  # frame depth of the outermost lookaround being removed; 0 = copying
    boundaries = flag_groups = after_quantifier = False
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        piece = ch
        nxt = i + 1
        item: int | None = None  # minimum length of a completed item, appended to the sequence
        wanted: frozenset[str] = frozenset()  # the literal atoms it requires
        quantifier_min: int | None = None
        if ch == "\\":
            kind, nxt = _escape(source, i)
            piece = source[i:nxt]
            if kind == "boundary":
                boundaries, piece = True, ""
            elif kind == "atom":
                atoms.append(piece)
                item = 1
                if len(piece) == 2 and not piece[1].isalnum():
                    wanted = frozenset([piece])  # an escaped literal such as \.
            else:
                item = 0  # a backreference may match nothing
        elif ch == "[":
            nxt = _class_end(source, i)
            piece = source[i:nxt]
            atoms.append(piece)
            item = 1
        elif ch == "(":
            if source.startswith("(*", i):
                raise UnsupportedPattern("backtracking verb")
            if source.startswith(("(?=", "(?!", "(?<=", "(?<!"), i):
                frames.append(_Frame(look=source[i + 2 : i + 4].lstrip("<")[0]))
                removing = removing or len(frames) - 1
                i += 3 if source[i + 2] in "=!" else 4
                after_quantifier = False
                continue
            if source.startswith(("(?P=", "(?#"), i):
                if ")" not in source[i:]:
                    raise UnsupportedPattern("unterminated group")
                nxt = source.index(")", i) + 1
                piece = source[i:nxt] if source[i + 2] == "P" else ""
                item = 0 if source[i + 2] == "P" else None
            elif not source.startswith("(?", i) or _NAMED_GROUP.match(source, i):
                if removing:
                    raise UnsupportedPattern("capturing group inside a lookaround")
                named = _NAMED_GROUP.match(source, i)
                nxt = named.end() if named else i + 1
                piece = source[i:nxt]
                frames.append(_Frame(look=""))
            else:
                flags = _FLAG_GROUP.match(source, i)
                if flags is None:
                    raise UnsupportedPattern(f"group syntax {source[i : i + 4]!r}")
                flag_groups = flag_groups or bool(flags.group(1))
                if flags.group(2) == ":":
                    frames.append(_Frame(look=""))
                nxt = flags.end()
                piece = flags.group()
        elif ch == ")":
            if len(frames) == 1:
                raise UnsupportedPattern("unbalanced parenthesis")
            if removing == len(frames) - 1:
                removing, piece = 0, ""
            frame = frames.pop()
            item, wanted = frame.close()
            if frame.look:
                item = 0  # zero-width; a positive one's atoms are tested next to the match
                wanted = wanted if frame.look == "=" else frozenset()
        elif ch in "^$":
            raise UnsupportedPattern("anchor")
        elif ch in "*+?":
            if source.startswith("+", i + 1):
                raise UnsupportedPattern("possessive quantifier")
            if not (ch == "?" and after_quantifier):  # '?' after a quantifier makes it lazy
                quantifier_min = 1 if ch == "+" else 0
        elif ch == "{" and (m := _QUANTIFIER.match(source, i)) is not None:
            if source.startswith("+", m.end()):
                raise UnsupportedPattern("possessive quantifier")
            nxt = m.end()
            piece = m.group()
            quantifier_min = int(m.group()[1:-1].split(",")[0])
        elif ch == "{" and i + 1 < n and source[i + 1].isalpha():
            raise UnsupportedPattern("fuzzy constraint")
        elif ch == "|":
            frames[-1].branch()
        else:
            atoms.append(regex.escape(ch))  # a literal (also '{' and ']' outside a class)
            item, wanted = 1, frozenset([atoms[-1]])
        if item is not None:
            frames[-1].add(item, wanted)
        if quantifier_min is not None:
            if not frames[-1].sequence:
                raise UnsupportedPattern("nothing to repeat")
            frames[-1].repeat(quantifier_min)
        after_quantifier = quantifier_min is not None
        if not removing and piece:
            out.append(piece)
        i = nxt
    if len(frames) != 1:
        raise UnsupportedPattern("unbalanced parenthesis")
    min_length, required = frames[0].close()
    if flag_groups:
        return PatternShape("".join(out), None, boundaries, min_length)
    return PatternShape("".join(out), tuple(atoms), boundaries, min_length, required)
