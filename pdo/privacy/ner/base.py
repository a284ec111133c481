"""What every Chinese NER backend returns: typed character spans, end exclusive."""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

T = TypeVar("T")

PERSON = "PERSON"
LOCATION = "LOCATION"  # any place name: country, province, city, district, landmark
CN_ADDRESS = "CN_ADDRESS"  # a PRC address finer than a district: road, number, building, room
ORGANIZATION = "ORGANIZATION"
ENTITIES = (PERSON, LOCATION, CN_ADDRESS, ORGANIZATION)


@dataclass(frozen=True, slots=True)
class Span:
    """One detected entity: text[start:end] (end exclusive) with a confidence in [0, 1]."""

    entity: str
    start: int
    end: int
    score: float

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end:
            raise ValueError(f"empty or negative span {self.start}..{self.end}")

    def overlaps(self, other: Span) -> bool:
        return self.start < other.end and other.start < self.end

    def text(self, text: str) -> str:
        return text[self.start : self.end]


class NerBackend(Protocol):
    """A Chinese NER model behind one batch call; models load lazily, once per process."""

    name: str

    def detect(self, texts: list[str]) -> list[list[Span]]:
        """For each text, its PERSON / LOCATION / CN_ADDRESS / ORGANIZATION spans by position."""
        ...


def load_once(factory: Callable[[], T]) -> Callable[[], T]:
    """factory() on first call only, even when threads race for it; later calls reuse it."""
    lock = threading.Lock()
    box: list[T] = []

    @functools.wraps(factory)
    def get() -> T:
        if not box:
            with lock:
                if not box:
                    box.append(factory())
        return box[0]

    return get


# Sentence ends and line breaks: the models were trained on sentences, not on whole documents.
_SENTENCE_END = re.compile(r"[。！？；!?;\n]+")
_CLAUSE_END = re.compile(r"[，,、：:]+")


def sentence_pieces(text: str, max_len: int = 160) -> Iterator[tuple[int, str]]:
    """(offset, piece) for the sentences of text, long ones cut again at commas, then hard."""
    start = 0
    for m in _SENTENCE_END.finditer(text):
        yield from _cut_long(start, text[start : m.end()], max_len)
        start = m.end()
    if start < len(text):
        yield from _cut_long(start, text[start:], max_len)


def _cut_long(offset: int, piece: str, max_len: int) -> Iterator[tuple[int, str]]:
    if len(piece) <= max_len:
        yield offset, piece
        return
    start = 0
    for m in _CLAUSE_END.finditer(piece):
        if m.end() - start >= max_len // 2:
            yield from _hard_cut(offset + start, piece[start : m.end()], max_len)
            start = m.end()
    if start < len(piece):
        yield from _hard_cut(offset + start, piece[start:], max_len)


def _hard_cut(offset: int, piece: str, max_len: int) -> Iterator[tuple[int, str]]:
    for i in range(0, len(piece), max_len):
        yield offset + i, piece[i : i + max_len]


def resolve_overlaps(spans: Iterable[Span], priority: Sequence[str] = ENTITIES) -> list[Span]:
    """Non-overlapping spans: longer first, then by entity priority and score; sorted by start."""
    rank = {entity: i for i, entity in enumerate(priority)}
    ordered = sorted(
        spans,
        key=lambda s: (-(s.end - s.start), rank.get(s.entity, len(rank)), -s.score, s.start),
    )
    kept: list[Span] = []
    for span in ordered:
        if not any(span.overlaps(k) for k in kept):
            kept.append(span)
    return sorted(kept, key=lambda s: (s.start, s.end))
