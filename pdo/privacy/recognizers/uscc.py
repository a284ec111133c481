"""Organizations' unified social credit codes (统一社会信用代码), confirmed by GB 32100."""

from __future__ import annotations

from presidio_analyzer import Pattern, PatternRecognizer

from pdo.privacy.checksums import is_valid_resident_id, is_valid_uscc

# GB 32100 alphabet (no I, O, Z, S, V); matched case-insensitively, validated upper-cased.
_CHAR = r"[0-9ABCDEFGHJKLMNPQRTUWXY]"

USCC_PATTERN = Pattern(
    name="cn_uscc",
    regex=r"(?<![0-9A-Za-z])" + _CHAR + r"{18}(?![0-9A-Za-z])",
    score=0.3,
)

CONTEXT = ["统一社会信用代码", "信用代码", "社会信用代码", "纳税人识别号"]


class UsccRecognizer(PatternRecognizer):
    """CN_USCC: an organization's code, found so that it is not mistaken for personal data."""

    ENTITY = "CN_USCC"

    def __init__(self, supported_language: str = "zh") -> None:
        super().__init__(
            supported_entity=self.ENTITY,
            name="UsccRecognizer",
            supported_language=supported_language,
            patterns=[Pattern(USCC_PATTERN.name, USCC_PATTERN.regex, USCC_PATTERN.score)],
            context=list(CONTEXT),
        )

    def validate_result(self, pattern_text: str) -> bool:
        """The GB 32100 check character must hold; type-92 codes belong to the individual rule."""
        code = pattern_text.upper()
        return is_valid_uscc(code) and not code.startswith("92")

    def invalidate_result(self, pattern_text: str) -> bool:
        """An all-digit code that is also a valid resident ID is treated as personal (safer)."""
        return is_valid_resident_id(pattern_text)
