"""USCCs of individual businesses (个体工商户, type 92): they identify a natural person."""

from __future__ import annotations

from presidio_analyzer import Pattern, PatternRecognizer

from pdo.privacy.checksums import (
    INDIVIDUAL_PREFIX,
    is_individual_business,
    is_valid_resident_id,
    is_valid_uscc,
)
from pdo.privacy.recognizers.uscc import CONTEXT, USCC_PATTERN

__all__ = ["INDIVIDUAL_PREFIX", "IndividualUsccRecognizer", "is_individual_business"]


class IndividualUsccRecognizer(PatternRecognizer):
    """CN_USCC_INDIVIDUAL: a 个体工商户's code, which is personal data unlike a company's."""

    ENTITY = "CN_USCC_INDIVIDUAL"

    def __init__(self, supported_language: str = "zh") -> None:
        super().__init__(
            supported_entity=self.ENTITY,
            name="IndividualUsccRecognizer",
            supported_language=supported_language,
            patterns=[Pattern("cn_uscc_individual", USCC_PATTERN.regex, USCC_PATTERN.score)],
            context=list(CONTEXT),
        )

    def validate_result(self, pattern_text: str) -> bool:
        """A valid GB 32100 code of registration type 92."""
        code = pattern_text.upper()
        return is_individual_business(code) and is_valid_uscc(code)

    def invalidate_result(self, pattern_text: str) -> bool:
        """An all-digit code that is also a valid resident ID is reported as the ID instead."""
        return is_valid_resident_id(pattern_text)
