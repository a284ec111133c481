"""PRC mobile numbers (手机号码), with or without +86, grouped 3-4-4 or wrapped at a group."""

from __future__ import annotations

from presidio_analyzer import Pattern, PatternRecognizer

from pdo.privacy.recognizers.separators import DASH, DOT, LINE_BREAK, SPACES

# Not glued to letters/digits, and not one link of a dashed digit chain (0755-…, …-8).
_NOT_AFTER = r"(?<![0-9A-Za-z+]|[0-9]" + DASH + ")"
_NOT_BEFORE = r"(?![0-9A-Za-z]|" + DASH + "[0-9])"


def _grouped(sep: str) -> str:
    """3-4-4 digits with sep between the groups."""
    return r"1[3-9][0-9]" + sep + r"[0-9]{4}" + sep + r"[0-9]{4}"


# A short run of spaces or one dash (each optional), a line break at either group (a wrapped
# line), or two dots; a dotted number is not one link of a longer dotted chain.
_BODY = (
    "(?:"
    + _grouped("(?:" + SPACES + "|" + DASH + ")?")
    + "|"
    + _grouped("(?:" + LINE_BREAK + ")?")
    + "|"
    + r"(?<![0-9]\.)"
    + _grouped(DOT)
    + r"(?!\.[0-9])"
    + ")"
)

MOBILE_PATTERN = Pattern(
    name="cn_mobile",
    regex=_NOT_AFTER + r"(?:(?:\+|00)?86[ -]?)?" + _BODY + _NOT_BEFORE,
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
