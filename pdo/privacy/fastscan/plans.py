"""What decides a recognizer's outcome: validators, thresholds, and whether context can matter."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import InitVar, dataclass, field
from typing import TYPE_CHECKING, Any

from presidio_analyzer import EntityRecognizer, PatternRecognizer
from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer

from pdo.privacy.fastscan.results import MAX_SCORE, MIN_SCORE, Result
from pdo.privacy.recognizers import LANGUAGE

if TYPE_CHECKING:
    from presidio_analyzer import AnalyzerEngine


@dataclass
class Memo:
    """What one scan_many / count_personal / fast_redact call has already worked out.

    Per alphabet run (offsets relative to the run): seen, every run scanned; final, what the
    engine reports for the run alone, flat (entity, start, end, score, entity, ...); found,
    the findings that kept a score, with their recognizer's plan, when texts need more than
    final. Runs reporting nothing are only in seen. scores: per program, by matched text, the
    user index and score of each of its recognizers that keeps the match, flat. Flat tuples
    of numbers and strings, unlike Result's, stop being tracked by the garbage collector.
    """

    programs: InitVar[int] = 0
    seen: set[str] = field(default_factory=set)
    found: dict[str, tuple[tuple[PatternPlan, Result], ...]] = field(default_factory=dict)
    final: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    scores: list[dict[str, tuple[float, ...]]] = field(default_factory=list)

    def __post_init__(self, programs: int) -> None:
        self.scores = [{} for _ in range(programs)]


def threshold_of(recognizer: EntityRecognizer, entity: str, default: float) -> float:
    """AnalyzerEngine's threshold for a result: per entity, recognizer default, engine default."""
    thresholds = getattr(recognizer, "score_thresholds", None) or {}
    value = thresholds.get(entity)
    if value is None:
        value = thresholds.get("default")
    return default if value is None else value


class PatternPlan:
    """One plain PatternRecognizer: its entity, (overridden) validators and threshold."""

    __slots__ = ("entity", "invalidate", "name", "threshold", "validate")

    def __init__(self, recognizer: PatternRecognizer, default_threshold: float) -> None:
        self.name = str(recognizer.name)  # type: ignore[has-type]
        self.entity: str = recognizer.supported_entities[0]
        cls = type(recognizer)
        self.validate: Callable[[str], bool | None] | None = (
            None
            if cls.validate_result is PatternRecognizer.validate_result
            else recognizer.validate_result
        )
        self.invalidate: Callable[[str], bool | None] | None = (
            None
            if cls.invalidate_result is PatternRecognizer.invalidate_result
            else recognizer.invalidate_result
        )
        self.threshold = threshold_of(recognizer, self.entity, default_threshold)

    def score(self, value: str, score: float) -> float:
        """PatternRecognizer's score for a match: validation sets 1.0 or 0, invalidation 0.

        Presidio calls both; once validation gave 0, invalidation cannot change the outcome,
        so it is skipped (the validators are pure functions of the matched text).
        """
        if self.validate is not None:
            valid = self.validate(value)
            if valid is not None:
                if not valid:
                    return MIN_SCORE
                score = MAX_SCORE
        if self.invalidate is not None and self.invalidate(value):
            return MIN_SCORE
        return score


class NerPlan:
    """One NerRecognizer: the backend's spans of SPAN_ENTITY reported as ENTITY."""

    __slots__ = ("entity", "span_entity", "threshold")

    def __init__(self, recognizer: EntityRecognizer, default_threshold: float) -> None:
        self.entity: str = recognizer.ENTITY  # type: ignore[attr-defined]
        self.span_entity: str = recognizer.SPAN_ENTITY  # type: ignore[attr-defined]
        self.threshold = threshold_of(recognizer, self.entity, default_threshold)


def is_plain(recognizer: EntityRecognizer, base: type) -> bool:
    """An instance of base that changes neither analyze nor its own context enhancement."""
    cls = type(recognizer)
    return (
        isinstance(recognizer, base)
        and getattr(cls, "analyze", None) is getattr(base, "analyze", None)
        and cls.enhance_using_context is EntityRecognizer.enhance_using_context
    )


def context_is_inert(analyzer: AnalyzerEngine, recognizers: Sequence[EntityRecognizer]) -> bool:
    """True when Presidio's context enhancement cannot change any score for these recognizers.

    The lemma enhancer compares each recognizer context word with the lemmas of the words before
    a match (substring test). A spaCy pipeline without components sets no lemmas (all ""), so a
    non-empty context word never matches; no recognizer may override its own enhancement.
    """
    if type(analyzer.context_aware_enhancer) is not LemmaContextAwareEnhancer:
        return False
    nlp = getattr(analyzer.nlp_engine, "nlp", None)
    pipeline = nlp.get(LANGUAGE) if isinstance(nlp, dict) else None
    if pipeline is None or list(pipeline.pipe_names):
        return False
    for r in recognizers:
        if type(r).enhance_using_context is not EntityRecognizer.enhance_using_context:
            return False
        if any(not word for word in (r.context or [])):
            return False
    return True
