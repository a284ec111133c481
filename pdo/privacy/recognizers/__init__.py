"""The one registration list of PRC recognizers, so analyzer and tests agree on what is found."""

from __future__ import annotations

from typing import Protocol

from presidio_analyzer import EntityRecognizer, RecognizerRegistry

from pdo.privacy.recognizers.mobile import MobileRecognizer
from pdo.privacy.recognizers.resident_id import ResidentIdRecognizer
from pdo.privacy.recognizers.uscc import UsccRecognizer

LANGUAGE = "zh"


class RecognizerClass(Protocol):
    """A registered recognizer class: its entity name and a language-only constructor."""

    ENTITY: str

    def __call__(self, supported_language: str = ...) -> EntityRecognizer: ...


RECOGNIZERS: tuple[RecognizerClass, ...] = (
    ResidentIdRecognizer,
    UsccRecognizer,
    MobileRecognizer,
)


def build_registry() -> RecognizerRegistry:
    """A zh-only registry holding exactly RECOGNIZERS (never Presidio's English defaults)."""
    registry = RecognizerRegistry(supported_languages=[LANGUAGE])
    for recognizer_cls in RECOGNIZERS:
        registry.add_recognizer(recognizer_cls(supported_language=LANGUAGE))
    return registry


__all__ = [
    "RECOGNIZERS",
    "MobileRecognizer",
    "RecognizerClass",
    "ResidentIdRecognizer",
    "UsccRecognizer",
    "build_registry",
]
