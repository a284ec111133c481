"""Pattern findings per alphabet run: each distinct run of a batch is scanned and scored once.

A batch of texts is reduced to its runs of the union alphabet of the compressed programs (see
:class:`.programs.Program`); the distinct new runs are joined by a separator, longest first,
and each program scans only the prefix of runs as long as its shortest match, or, when a
character every match requires is rare in that prefix, only the runs holding it. Matches are
validated once per distinct value and reduced to what the engine reports for the run alone;
results of different runs never overlap, so a text's results are those of its runs.

Per-item records are flat tuples and lists of numbers and strings: fewer containers for the
garbage collector to count, so its full passes over the heap come less often.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from itertools import accumulate
from typing import Any

from pdo.privacy.fastscan.alphabets import class_source
from pdo.privacy.fastscan.plans import Memo, PatternPlan
from pdo.privacy.fastscan.programs import CALIBRATE_CHARS, Program
from pdo.privacy.fastscan.results import MIN_SCORE, Result, engine_view

RARE = 4  # a required character in fewer than 1 in RARE of the runs selects runs by itself

Hit = tuple[int, int, int]  # (program index, start, end) of one match
Accepted = tuple[float, ...]  # user index, score, user index, score, ...
Findings = list[float]  # program, user index, start, end, score, ... (one run's findings)
Users = list[tuple[PatternPlan, str, float]]  # a program's (plan, pattern name, score)


class Joined:
    """Strings joined by a separator (outside every alphabet), with where each one starts."""

    __slots__ = ("parts", "starts", "text")

    def __init__(self, parts: Sequence[str], separator: str) -> None:
        self.parts = parts
        self.text = separator.join(parts)
        self.starts = list(accumulate((len(p) + 1 for p in parts[:-1]), initial=0))

    def end(self, count: int) -> int:
        """Where the first count parts end in text."""
        return self.starts[count - 1] + len(self.parts[count - 1]) if count else 0

    def locate(self, position: int) -> tuple[int, int]:
        """(part index, offset in the part) of a position of text."""
        part = bisect_right(self.starts, position) - 1
        return part, position - self.starts[part]


class Runs(Joined):
    """Distinct runs, longest first: a pattern scans the prefix of runs long enough for it."""

    __slots__ = ("_negative_lengths",)

    def __init__(self, runs: Sequence[str], separator: str) -> None:
        super().__init__(sorted(runs, key=len, reverse=True), separator)
        self._negative_lengths = [-len(r) for r in self.parts]  # ascending, for bisect

    def at_least(self, length: int) -> int:
        """How many runs are at least length long (they come first)."""
        return bisect_right(self._negative_lengths, -length)

    def containing(self, count: int, required: Sequence[str]) -> list[int] | None:
        """Indices of the first count runs that contain the rarest required character, or
        None when no required character is rare enough to be worth selecting by."""
        if not required:
            return None
        end = self.end(count)
        char = min(required, key=lambda c: self.text.count(c, 0, end))
        if self.text.count(char, 0, end) * RARE >= count:
            return None
        chosen: list[int] = []
        at = self.text.find(char, 0, end)
        while at >= 0:
            run, offset = self.locate(at)
            chosen.append(run)
            at = self.text.find(char, at - offset + len(self.parts[run]), end)  # next run
        return chosen


class RunFinder:
    """A scanner's programs over alphabet runs, and the scoring of their matches."""

    def __init__(
        self,
        programs: Sequence[Program],
        users: Sequence[Users],
        compressed: Sequence[int],
        separator: str,
        keep_found: bool,
    ) -> None:
        self.programs, self.users, self.compressed = programs, users, compressed
        self.separator = separator
        self.keep_found = keep_found  # texts need each recognizer's findings, not only final
        self.sigma = frozenset().union(*(programs[k].alphabet or () for k in compressed))
        self.runs: re.Pattern[str] | None = (
            # C C* rather than C+: a leading class lets re skip to the next run in C
            re.compile(class_source(self.sigma) * 2 + "*") if compressed else None
        )

    def memo(self) -> Memo:
        """A memo for one call; the separator, a token between texts, is seen and final ()."""
        memo = Memo(len(self.programs))
        memo.seen.add(self.separator)
        memo.final[self.separator] = ()
        return memo

    def tokens(self, texts: Sequence[str]) -> list[str]:
        """Every text's runs in order, each text's followed by the separator (which no run
        equals): one list for the batch rather than one per text."""
        assert self.runs is not None
        findall, sep = self.runs.findall, self.separator
        tokens: list[str] = []
        for text in texts:
            tokens += findall(text)
            tokens.append(sep)
        return tokens

    def position(self, text: str, run: str, cursor: int) -> int:
        """Where run lies in text, at or after cursor (the end of the previous run looked up).

        The first occurrence that is a whole run (no alphabet character on either side) is
        the one: an earlier whole run equal to it would have findings too and come first.
        """
        sigma, size = self.sigma, len(run)
        at = text.find(run, cursor)
        while at >= 0 and (text[at - 1 : at] in sigma or text[at + size : at + size + 1] in sigma):
            at = text.find(run, at + 1)
        assert at >= 0, "the run is one of the text's"
        return at

    def fill(self, runs: Iterable[str], memo: Memo) -> None:
        """Record in memo what every run not seen yet in this call reports."""
        seen = memo.seen
        new = [r for r in set(runs) if r not in seen]
        if not new:
            return
        seen.update(new)
        batch = Runs(new, self.separator)
        found: dict[int, Findings] = {}  # by run index
        for k in self.compressed:
            self._program_findings(k, batch, memo, found)
        for index, run_found in found.items():
            self._remember(batch.parts[index], run_found, memo)

    def score(self, text: str, hits: list[Hit], memo: Memo) -> list[tuple[PatternPlan, Result]]:
        """Each recognizer's result for each (program, start, end) match that keeps a score."""
        found: list[tuple[PatternPlan, Result]] = []
        for k, start, end in hits:
            accepted = self._accepted(k, text[start:end], memo)
            for i in range(0, len(accepted), 2):
                plan = self.users[k][int(accepted[i])][0]
                found.append((plan, Result(plan.entity, start, end, accepted[i + 1])))
        return found

    def _program_findings(
        self, k: int, batch: Runs, memo: Memo, found: dict[int, Findings]
    ) -> None:
        """Add program k's findings in the batch's runs to found (by run index)."""
        program = self.programs[k]
        count = batch.at_least(program.min_length)
        if not count:
            return
        chosen = batch.containing(count, program.required)
        if chosen is None:
            scanned: Joined = batch
            text = batch.text[: batch.end(count)]
        else:
            scanned = Joined([batch.parts[i] for i in chosen], self.separator)
            text = scanned.text
        if len(batch.text) >= CALIBRATE_CHARS and not program.calibrated:
            matches: Iterable[Any] = program.calibrate(text)
        else:
            matches = program.matches(text)
        table = memo.scores[k]
        for m in matches:
            cs, ce = m.span()
            value = text[cs:ce]
            accepted = table.get(value)
            if accepted is None:
                accepted = self._accepted(k, value, memo)
            if not accepted:
                continue
            index, start = scanned.locate(cs)
            if chosen is not None:
                index = chosen[index]
            run_found = found.get(index)
            if run_found is None:
                run_found = found[index] = []
            for i in range(0, len(accepted), 2):
                run_found += (k, accepted[i], start, start + ce - cs, accepted[i + 1])

    def _accepted(self, k: int, value: str, memo: Memo) -> Accepted:
        """User index and score of each recognizer of program k that keeps a match of value,
        once per call (empty matches: none, Presidio skips them)."""
        table = memo.scores[k]
        accepted = table.get(value)
        if accepted is None:
            kept: list[float] = []
            for j, (plan, _, base) in enumerate(self.users[k] if value else ()):
                score = plan.score(value, base)
                if score > MIN_SCORE:
                    kept += (j, score)
            accepted = table[value] = tuple(kept)
        return accepted

    def _remember(self, run: str, found: Findings, memo: Memo) -> None:
        """Store what a run reports: final, and found when texts need it."""
        users = self.users
        if len(found) == 5 and not self.keep_found:
            k, j, start, end, score = found
            plan = users[int(k)][int(j)][0]
            if score >= plan.threshold:
                memo.final[run] = (plan.entity, start, end, score)
                return
        pairs: list[tuple[PatternPlan, Result]] = []
        for i in range(0, len(found), 5):
            plan = users[int(found[i])][int(found[i + 1])][0]
            result = Result(plan.entity, int(found[i + 2]), int(found[i + 3]), found[i + 4])
            pairs.append((plan, result))
        if self.keep_found:
            memo.found[run] = tuple(pairs)
        final = engine_view(pairs)
        if final:
            memo.final[run] = tuple(field for r in final for field in r)
