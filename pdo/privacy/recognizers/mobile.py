"""PRC mobile numbers (手机号码), with or without +86, grouped 3-4-4 or wrapped at a group.

A line break counts only after the 3-digit prefix, or after the 7th digit when the prefix is
set off too (139 1234 / 5678). A line ending in 7 digits and the next starting with 4 is far
more often an amount and a year (罚款1500000 / 2024年3月1日) than a mobile wrapped there with
no other grouping, so 1391234 / 5678 is not taken. That loses only ungrouped numbers wrapped
after their 7th digit; a guard on what follows (年) would keep them but still take
罚款1500000 / 2024, 合同金额1591234 / 5678元 and every amount-then-year wrap without 年.
"""

from __future__ import annotations

from presidio_analyzer import Pattern, PatternRecognizer

from pdo.privacy.recognizers.separators import DASH, DOT, LINE_BREAK, SPACES

# Not glued to letters/digits, and not one link of a dashed digit chain (0755-…, …-8).
_NOT_AFTER = r"(?<![0-9A-Za-z+]|[0-9]" + DASH + ")"
_NOT_BEFORE = r"(?![0-9A-Za-z]|" + DASH + "[0-9])"


def _grouped(sep: str) -> str:
    """3-4-4 digits with sep between the groups."""
    return r"1[3-9][0-9]" + sep + r"[0-9]{4}" + sep + r"[0-9]{4}"


_SPACE_OR_DASH = "(?:" + SPACES + "|" + DASH + ")"


def _wrapped() -> str:
    """3-4-4 with a line break after the prefix, or after the 7th digit with the prefix set off."""
    after_prefix = r"1[3-9][0-9]" + LINE_BREAK + r"[0-9]{4}"
    after_prefix += "(?:" + _SPACE_OR_DASH + "|" + LINE_BREAK + ")?" + r"[0-9]{4}"
    after_seventh = r"1[3-9][0-9]" + _SPACE_OR_DASH + r"[0-9]{4}" + LINE_BREAK + r"[0-9]{4}"
    return "(?:" + after_prefix + "|" + after_seventh + ")"


# A short run of spaces or one dash (each optional), a wrapped line (see the module docstring),
# or two dots; a dotted number is not one link of a longer dotted chain.
_BODY = (
    "(?:"
    + _grouped(_SPACE_OR_DASH + "?")
    + "|"
    + _wrapped()
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
