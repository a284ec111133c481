"""PRC landline numbers (固定电话): area code, local number, optional extension."""

from __future__ import annotations

from presidio_analyzer import Pattern, PatternRecognizer

# Not glued to letters/digits, and not one link of a dashed digit chain (as for mobiles).
_NOT_AFTER = r"(?<![0-9A-Za-z+]|[0-9]-)"
_NOT_BEFORE = r"(?![0-9A-Za-z]|-[0-9])"
# Area codes: 010 and 020-029 (three digits), 03xx-09xx (four). 01x other than 010 does not
# exist, so a trunk "0" before a mobile (013812345678) is no area code.
_AREA = r"(?:10|2[0-9]|[3-9][0-9]{2})"
# Local numbers are 7-8 digits, optionally split 3/4-4. Issued ones begin with 2-9, but a
# written separator is evidence enough to accept 1 (0755-12345678); never 0 (no trunk twice).
_LOCAL = r"[1-9][0-9]{2,3}[ -]?[0-9]{4}"
_EXTENSION = r"(?:(?:转|分机|-)[0-9]{1,6})?"

LANDLINE_PATTERN = Pattern(
    name="cn_landline",
    regex=(
        _NOT_AFTER
        + rf"(?:(?:\+|00)86[ -]?{_AREA}[ -]?"  # +86 10 12345678: trunk 0 dropped
        + rf"|[(（]0{_AREA}[)）][ -]?"  # (010)12345678
        + rf"|0{_AREA}[ -])"  # 0755-12345678, 021 6123 4567
        + _LOCAL
        + _EXTENSION
        + _NOT_BEFORE
    ),
    score=0.5,
)
# Written without any separator the number is just a 10-12 digit run starting with 0, so
# the local number must begin with 2-9 as issued ones do, and a run labelled 代码 is a code
# (发票代码044031900111, region 4403), not a phone.
LANDLINE_BARE_PATTERN = Pattern(
    name="cn_landline_bare",
    regex=_NOT_AFTER
    + r"(?<!代码[：:]?\s*)0"
    + _AREA
    + r"[2-9][0-9]{6,7}"
    + _EXTENSION
    + _NOT_BEFORE,
    score=0.3,
)

CONTEXT = ["电话", "固定电话", "座机", "联系电话", "办公电话", "传真"]


class LandlineRecognizer(PatternRecognizer):
    """CN_LANDLINE: no checksum exists, so a moderate 0.5 (0.3 written without separators)."""

    ENTITY = "CN_LANDLINE"

    def __init__(self, supported_language: str = "zh") -> None:
        super().__init__(
            supported_entity=self.ENTITY,
            name="LandlineRecognizer",
            supported_language=supported_language,
            patterns=[
                Pattern(p.name, p.regex, p.score) for p in (LANDLINE_PATTERN, LANDLINE_BARE_PATTERN)
            ],
            context=list(CONTEXT),
        )
