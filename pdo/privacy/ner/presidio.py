"""A Presidio recognizer over the NER backend (it reads the text, not spaCy's tokens)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from presidio_analyzer import AnalysisExplanation, EntityRecognizer, RecognizerResult

from pdo.privacy.ner import DEFAULT_BACKEND, ner_spans

if TYPE_CHECKING:
    from presidio_analyzer.nlp_engine import NlpArtifacts


class NerRecognizer(EntityRecognizer):
    """Reports the backend spans of SPAN_ENTITY as ENTITY; subclasses set both."""

    ENTITY: ClassVar[str]
    SPAN_ENTITY: ClassVar[str]
    CONTEXT: ClassVar[tuple[str, ...]] = ()

    def __init__(self, supported_language: str = "zh") -> None:
        super().__init__(
            supported_entities=[self.ENTITY],
            name=type(self).__name__,
            supported_language=supported_language,
            context=list(self.CONTEXT),
        )

    def load(self) -> None:
        """Nothing here: the model loads on the first text (building an analyzer stays fast)."""

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        if entities and self.ENTITY not in entities:
            return []
        name = type(self).__name__
        return [
            RecognizerResult(
                entity_type=self.ENTITY,
                start=span.start,
                end=span.end,
                score=span.score,
                analysis_explanation=AnalysisExplanation(
                    recognizer=name,
                    original_score=span.score,
                    textual_explanation=f"{DEFAULT_BACKEND} NER + rules: {span.entity}",
                ),
                recognition_metadata={
                    RecognizerResult.RECOGNIZER_NAME_KEY: name,
                    RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                },
            )
            for span in ner_spans(text)
            if span.entity == self.SPAN_ENTITY
        ]
