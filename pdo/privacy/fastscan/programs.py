"""One compiled pattern per distinct (regex, flags), with the exact shortcuts that make it fast."""

from __future__ import annotations

import time

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
      ``finditer`` on each text;
    - plain finditer when neither can be shown to hold.
    """

    def __init__(self, source: str, flags: int) -> None:
        self.source = source
        self.flags = flags
        self.compiled: regex.Pattern[str] = regex.compile(source, flags=flags)
        self.locator: regex.Pattern[str] | None = None
        self.min_length = 0  # no match is shorter (a lower bound)
        self.atom_class: str | None = None  # every character the pattern tests, as one class
        self.alphabet: frozenset[str] | None = None  # set by the scanner from atom_class
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

    def find(self, text: str) -> list[tuple[int, int]]:
        """finditer(text) spans on an original text."""
        if self.locator is None:
            return [m.span() for m in self.compiled.finditer(text)]
        return self._located(text)

    def find_compressed(self, comp: str) -> list[tuple[int, int]]:
        """finditer spans on a compressed batch text (only when self.alphabet is set)."""
        if self.use_locator:
            return self._located(comp)
        return [m.span() for m in self.compiled.finditer(comp)]

    def calibrate(self, comp: str) -> list[tuple[int, int]]:
        """Keep whichever of located / plain runs faster on this batch (both are exact)."""
        self.calibrated = True
        if self.locator is None:
            return self.find_compressed(comp)
        t0 = time.perf_counter()
        plain = [m.span() for m in self.compiled.finditer(comp)]
        t1 = time.perf_counter()
        located = self._located(comp)
        t2 = time.perf_counter()
        if located != plain:  # cannot happen if the analysis is right: trust finditer
            self.locator = None
            return plain
        self.use_locator = (t2 - t1) < (t1 - t0)
        return plain

    def _located(self, text: str) -> list[tuple[int, int]]:
        assert self.locator is not None
        search, match = self.locator.search, self.compiled.match
        out: list[tuple[int, int]] = []
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
            out.append(m.span())
            pos = m.end()  # never empty: the relaxation cannot match empty
        return out
