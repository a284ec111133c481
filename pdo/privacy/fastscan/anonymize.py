"""AnonymizerEngine.anonymize with replace operators, replayed on tuples."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pdo.privacy import redact as _redact
from pdo.privacy.fastscan.results import Result


def placeholder_for(entity: str) -> str:
    """The replacement redact_text's operators give this entity (DEFAULT for unlisted ones)."""
    value = _redact.PLACEHOLDERS.get(entity)
    if value is None:
        value = _redact.DEFAULT_PLACEHOLDER
    return value if value else f"<{entity}>"  # Presidio's replace with an empty new_value


_SPACES_ONLY = re.compile(r"^( )+$")


@dataclass
class _Span:
    entity_type: str
    start: int
    end: int
    score: float


def _intersects(a: _Span, b: _Span) -> int:
    if a.end < b.start or b.end < a.start:
        return 0
    return min(a.end, b.end) - max(a.start, b.start)


def anonymize(
    text: str,
    results: Sequence[Result],
    replacement: Callable[[str], str] = placeholder_for,
) -> str:
    """``AnonymizerEngine().anonymize(text, results, replace operators).text``.

    results in the analyzer's order. Replays the engine's steps: sort by (start, end); merge
    intersecting results of one type (union span, highest score, position of the last merged);
    drop results contained in another (of equal spans the highest score, the last on a tie,
    survives); merge same-type neighbours separated only by spaces; replace from the end, each
    replacement stopping where the one after it began.
    """
    if not results:
        return text
    items = sorted(
        (_Span(r.entity_type, r.start, r.end, r.score) for r in results),
        key=lambda s: (s.start, s.end),
    )
    # _merge_same_entity_type_intersections
    by_type: dict[str, list[tuple[int, _Span]]] = {}
    for position, item in enumerate(items):
        by_type.setdefault(item.entity_type, []).append((position, item))
    merged: list[tuple[int, _Span]] = []
    for positioned in by_type.values():
        positioned.sort(key=lambda pi: (pi[1].start, pi[1].end))
        position, current = positioned[0]
        for next_position, item in positioned[1:]:
            if _intersects(current, item) == 0:
                merged.append((position, current))
                position, current = next_position, item
                continue
            current.start = min(current.start, item.start)
            current.end = max(current.end, item.end)
            current.score = max(current.score, item.score)
            position = max(position, next_position)
        merged.append((position, current))
    merged.sort(key=lambda pi: pi[0])
    spans = [item for _, item in merged]
    # _remove_contained_results
    order = sorted(range(len(spans)), key=lambda k: (spans[k].start, -spans[k].end))
    dropped: set[int] = set()
    largest_end: int | None = None
    g = 0
    while g < len(order):
        first = spans[order[g]]
        h = g
        while h < len(order) and (spans[order[h]].start, spans[order[h]].end) == (
            first.start,
            first.end,
        ):
            h += 1
        group = order[g:h]
        if largest_end is not None and largest_end >= first.end:
            dropped.update(group)
        else:
            survivor = max(group, key=lambda k: (spans[k].score, k))
            dropped.update(k for k in group if k != survivor)
        if largest_end is None or first.end > largest_end:
            largest_end = first.end
        g = h
    spans = [s for k, s in enumerate(spans) if k not in dropped]
    # _merge_entities_with_spaces_between
    final: list[_Span] = []
    prev: _Span | None = None
    for item in spans:
        if (
            prev is not None
            and prev.entity_type == item.entity_type
            and _SPACES_ONLY.search(text[prev.end : item.start])
        ):
            final.remove(prev)
            item.start = prev.start
        final.append(item)
        prev = item
    # _operate: from the last start to the first
    output = text
    last = len(text)
    for item in sorted(final, key=lambda s: s.start, reverse=True):
        end = min(item.end, last)
        last = item.start
        output = output[: item.start] + replacement(item.entity_type) + output[end:]
    return output
