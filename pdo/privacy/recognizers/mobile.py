"""PRC mobile numbers (手机号码), with or without +86 and 3-4-4 separators."""

from __future__ import annotations

from presidio_analyzer import Pattern, PatternRecognizer

# Not glued to letters/digits, and not one link of a dashed digit chain (0755-…, …-8).
_NOT_AFTER = r"(?<![0-9A-Za-z+]|[0-9]-)"
_NOT_BEFORE = r"(?![0-9A-Za-z]|-[0-9])"
_SEP = r"[ -]?"

MOBILE_PATTERN = Pattern(
    name="cn_mobile",
    regex=(
        _NOT_AFTER
        + r"(?:(?:\+|00)?86[ -]?)?"
        + r"1[3-9][0-9]"
        + _SEP
        + r"[0-9]{4}"
        + _SEP
        + r"[0-9]{4}"
        + _NOT_BEFORE
    ),
    score=0.5,
)

CONTEXT = ["手机", "手机号", "电话", "联系电话", "联系方式", "移动电话"]


class MobileRecognizer(PatternRecognizer):
    """CN_MOBILE: 11-digit numbers in the 13x-19x ranges; no checksum exists, so score stays 0.5."""

    ENTITY = "CN_MOBILE"

    def __init__(self, supported_language: str = "zh") -> None:
        super().__init__(
            supported_entity=self.ENTITY,
            name="MobileRecognizer",
            supported_language=supported_language,
            patterns=[Pattern(MOBILE_PATTERN.name, MOBILE_PATTERN.regex, MOBILE_PATTERN.score)],
            context=list(CONTEXT),
        )
