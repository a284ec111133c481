"""One compiled pattern per distinct (regex, flags), with the exact shortcuts that make it fast."""

from __future__ import annotations

import time
from collections.abc import Iterator

import regex

from pdo.privacy.fastscan.alphabets import atom_class
from pdo.privacy.fastscan.patterns import UnsupportedPattern, analyze_pattern

CALIBRATE_CHARS = 16_384  # a batch text long enough to time the two ways of matching


class Program:
    """A pattern as Presidio compiles it, plus what makes it fast without changing its matches.

    finditer semantics are kept in three ways:

    - located: the relaxation finds the next position where the pattern could match and the
      pattern itself is tried there (``match`` at a position sees the text before it, so
      lookbehinds work as in ``finditer``); the scan resumes after each real match, as
      ``finditer`` does;
    - compressed: when the pattern cannot match empty, has no \\b/\\B and only tests characters
      of a small alphabet, it is run on a batch text made of the alphabet runs of many texts
      joined by a separator outside the alphabet. Every step of a match, assertion or
      backtrack that reaches a character outside the alphabet fails there, and fails on the
      separator in the same way, so matches (mapped back through the runs) are those of
      ``finditer`` on each text. A match and what its positive lookarounds test lie inside
      one run, so a run without a character every match requires (``required``, such as 台
      in a lookbehind for 台胞证) can be skipped;
    - plain finditer when neither can be shown to hold.
    """

    def __init__(self, source: str, flags: int) -> None:
        self.source = source
        self.flags = flags
        self.compiled: regex.Pattern[str] = regex.compile(source, flags=flags)
        self.locator: regex.Pattern[str] | None = None
        self.min_length = 0  # no match is shorter (a lower bound)
        self.atom_class: str | None = None  # every character the pattern tests, as one class
        self.alphabet: frozenset[str] | None = None  # set by the scanner: set_alphabet
        self.required: tuple[str, ...] = ()  # characters each match or its lookarounds test
        self._required_atoms: frozenset[str] = frozenset()
        self.use_locator = False  # on compressed text; set by calibration
        self.calibrated = False
        if flags is None or flags & (regex.VERBOSE | regex.VERSION1 | regex.REVERSE):
            return
        try:
            shape = analyze_pattern(source)
            relaxed = regex.compile(shape.relaxed, flags=flags)
        except (UnsupportedPattern, regex.error, ValueError, TypeError):
            return
        if relaxed.fullmatch("") is not None:
            return  # could match empty (no assertion left to stop it): finditer's own stepping
        self.min_length = shape.min_length
        if shape.relaxed != source:
            self.locator = relaxed
        if shape.atoms is not None and not shape.word_boundaries:
            self.atom_class = atom_class(shape.atoms)
            self._required_atoms = shape.required

    def set_alphabet(self, chars: frozenset[str] | None) -> None:
        """Compress over chars (None: never); a required atom that only one of them matches
        (no case variant) becomes a required character."""
        self.alphabet = chars
        self.required = ()
        if chars is None:
            return
        found = []
        for atom in sorted(self._required_atoms):
            matcher = regex.compile(atom, flags=self.flags)
            matched = [c for c in chars if matcher.fullmatch(c)]
            if len(matched) == 1:
                found.append(matched[0])
        self.required = tuple(found)

    def find(self, text: str) -> list[tuple[int, int]]:
        """finditer(text) spans on an original text."""
        return [m.span() for m in self._matches(text, self.locator is not None)]

    def matches(self, comp: str) -> Iterator[regex.Match[str]]:
        """finditer matches on a compressed batch text (only when self.alphabet is set).

        Streamed: the regex module's match objects are not tracked by the garbage collector.
        """
        return self._matches(comp, self.use_locator)

    def calibrate(self, comp: str) -> list[regex.Match[str]]:
        """Keep whichever of located / plain runs faster on this batch (both are exact)."""
        self.calibrated = True
        if self.locator is None:
            return list(self.matches(comp))
        t0 = time.perf_counter()
        plain = list(self.compiled.finditer(comp))
        t1 = time.perf_counter()
        located = list(self._located(comp))
        t2 = time.perf_counter()
        if [m.span() for m in located] != [m.span() for m in plain]:
            self.locator = None  # cannot happen if the analysis is right: trust finditer
            return plain
        self.use_locator = (t2 - t1) < (t1 - t0)
        return plain

    def _matches(self, text: str, located: bool) -> Iterator[regex.Match[str]]:
        return self._located(text) if located else self.compiled.finditer(text)

    def _located(self, text: str) -> Iterator[regex.Match[str]]:
        assert self.locator is not None
        search, match = self.locator.search, self.compiled.match
        pos, n = 0, len(text)
        while pos <= n:
            candidate = search(text, pos)
            if candidate is None:
                break
            p = candidate.start()
            m = match(text, p)
            if m is None:
                pos = p + 1
                continue
            yield m
            pos = m.end()  # never empty: the relaxation cannot match empty
