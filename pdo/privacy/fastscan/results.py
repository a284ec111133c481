"""Presidio's post-processing (per-recognizer and engine de-duplication, output order) on tuples."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import groupby
from typing import Any, NamedTuple

from presidio_analyzer import EntityRecognizer

MIN_SCORE = EntityRecognizer.MIN_SCORE
MAX_SCORE = EntityRecognizer.MAX_SCORE


class Result(NamedTuple):
    """One finding, as Presidio's RecognizerResult reports it (end exclusive)."""

    entity_type: str
    start: int
    end: int
    score: float


def output_key(r: Result) -> tuple[float, int, int]:
    return (-r.score, r.start, -(r.end - r.start))


def remove_duplicates(results: Iterable[Result]) -> list[Result]:
    """``EntityRecognizer.remove_duplicates`` on tuples, with its output order.

    Equal results collapse; zero scores go; per entity type, a result contained in an earlier
    kept one (sorted by start, longer first, higher score first) with an equal or higher score
    goes. Presidio sorts the survivors by (-score, start, -length) starting from a list sorted
    by entity type, so ties come out by entity type: that is the order returned here.
    """
    ordered = sorted(
        set(results), key=lambda r: (r.entity_type, r.start, -(r.end - r.start), -r.score)
    )
    kept: list[Result] = []
    for _, group in groupby(ordered, key=lambda r: r.entity_type):
        active: list[Result] = []
        for r in group:
            if r.score == 0:
                continue
            active = [f for f in active if f.end >= r.start]
            if any(f.start <= r.start and r.end <= f.end and r.score <= f.score for f in active):
                continue
            kept.append(r)
            active.append(r)
    kept.sort(key=output_key)  # stable: ties keep the entity-type order
    return kept


def full_key(r: Result) -> tuple[float, int, int, str]:
    return (-r.score, r.start, -(r.end - r.start), r.entity_type)


def per_recognizer(found: Sequence[tuple[Any, Result]]) -> list[Result]:
    """Each PatternRecognizer's own remove_duplicates, then the engine's threshold per result.

    found pairs each result with its recognizer's plan (which knows the threshold).
    """
    if len(found) > 1 and has_conflicts([r for _, r in found]):
        by_plan: dict[Any, list[Result]] = {}
        for plan, r in found:
            by_plan.setdefault(plan, []).append(r)
        return [
            r
            for plan, rs in by_plan.items()
            for r in remove_duplicates(rs)
            if r.score >= plan.threshold
        ]
    return [r for plan, r in found if r.score >= plan.threshold]


def has_conflicts(results: Sequence[Result]) -> bool:
    """True when remove_duplicates could drop something (two results of one type overlap);
    without conflicts it only sorts by (-score, start, -length, entity type)."""
    if len(results) > 24:
        return True
    for i, a in enumerate(results):
        for b in results[i + 1 :]:
            if a.entity_type == b.entity_type and a.start <= b.end and b.start <= a.end:
                return True
    return False


def engine_order(raw: list[Result]) -> list[Result]:
    """The engine's de-duplication across recognizers and its output order."""
    if len(raw) < 2:
        return raw
    return remove_duplicates(raw) if has_conflicts(raw) else sorted(raw, key=full_key)


def engine_view(found: Sequence[tuple[Any, Result]]) -> list[Result]:
    """What AnalyzerEngine reports for the pattern findings of one text (or one run of it)."""
    return engine_order(per_recognizer(found)) if found else []
