"""PRC resident identity numbers (居民身份证号码), confirmed by check character and birth date."""

from __future__ import annotations

from presidio_analyzer import Pattern, PatternRecognizer

from pdo.privacy.checksums import is_valid_legacy_resident_id, is_valid_resident_id
from pdo.privacy.recognizers.separators import (
    DASH,
    DOT,
    LINE_BREAK,
    WHITESPACE,
    without_separators,
)

# Chinese text has no spaces, so "not inside a longer alphanumeric run" replaces \b.
_NOT_AFTER = r"(?<![0-9A-Za-z])"
_NOT_BEFORE = r"(?![0-9A-Za-z])"
_MMDD = r"(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
_BIRTH_DATE = r"(?:18|19|20)[0-9]{2}" + _MMDD
# How people group an ID in free text: 6-8-4 (area, birth date, sequence), 6-4-4-4 (the date
# as year and month-day), and in even blocks as a card is written, 3-3-4-4-4 and 4-4-4-4-2;
# the same kind of separator (whitespace, a dash, a dot) at every place.
_GROUP_SEPARATORS = (WHITESPACE, DASH, DOT)
_GROUPINGS = ((6, 8, 4), (6, 4, 4, 4), (3, 3, 4, 4, 4), (4, 4, 4, 4, 2))

ID18_PATTERN = Pattern(
    name="cn_resident_id_18",
    regex=_NOT_AFTER
    + r"[1-9][0-9]{5}(?:18|19|20)[0-9]{2}"
    + _MMDD
    + r"[0-9]{3}[0-9Xx]"
    + _NOT_BEFORE,
    score=0.5,
)
ID15_PATTERN = Pattern(
    name="cn_resident_id_15",
    regex=_NOT_AFTER + r"[1-9][0-9]{5}[0-9]{2}" + _MMDD + r"[0-9]{3}" + _NOT_BEFORE,
    score=0.4,
)


def _grouped_18(sep: str, sizes: tuple[int, ...]) -> str:
    """The 18 characters in groups of sizes, sep between them, and not one link of a longer
    chain of sep groups (the check character and birth date are validated afterwards)."""
    if sizes == (6, 8, 4):  # the birth date whole: checked here, as it always was
        groups = [r"[1-9][0-9]{5}", _BIRTH_DATE, r"[0-9]{3}[0-9Xx]"]
    else:
        groups = [f"[0-9]{{{n}}}" for n in sizes]
        groups[0] = f"[1-9][0-9]{{{sizes[0] - 1}}}"
        groups[-1] = f"[0-9]{{{sizes[-1] - 1}}}[0-9Xx]"
    body = sep.join(groups)
    return rf"(?<![0-9]{sep}){body}(?!{sep}[0-9])"  # the regex module allows any lookbehind


ID18_GROUPED_PATTERN = Pattern(
    name="cn_resident_id_18_grouped",
    regex=_NOT_AFTER
    + "(?:"
    + "|".join(_grouped_18(sep, sizes) for sizes in _GROUPINGS for sep in _GROUP_SEPARATORS)
    + ")"
    + _NOT_BEFORE,
    score=0.5,
)
# A line wrapped inside the ID: one line break anywhere (validated as 18 characters).
ID18_WRAPPED_PATTERN = Pattern(
    name="cn_resident_id_18_wrapped",
    regex=_NOT_AFTER + r"[1-9][0-9]{0,16}" + LINE_BREAK + r"[0-9]{0,16}[0-9Xx]" + _NOT_BEFORE,
    score=0.5,
)

CONTEXT = ["身份证", "身份证号", "公民身份号码", "证件号", "身份号码", "居民身份证"]


class ResidentIdRecognizer(PatternRecognizer):
    """CN_RESIDENT_ID: a valid 18-char ID scores 1.0; a legacy 15-digit ID keeps a lower score."""

    ENTITY = "CN_RESIDENT_ID"
    LEGACY_SCORE = ID15_PATTERN.score

    def __init__(self, supported_language: str = "zh") -> None:
        super().__init__(
            supported_entity=self.ENTITY,
            name="ResidentIdRecognizer",
            supported_language=supported_language,
            patterns=[
                Pattern(ID18_PATTERN.name, ID18_PATTERN.regex, ID18_PATTERN.score),
                Pattern(ID15_PATTERN.name, ID15_PATTERN.regex, ID15_PATTERN.score),
                Pattern(
                    ID18_GROUPED_PATTERN.name,
                    ID18_GROUPED_PATTERN.regex,
                    ID18_GROUPED_PATTERN.score,
                ),
                Pattern(
                    ID18_WRAPPED_PATTERN.name,
                    ID18_WRAPPED_PATTERN.regex,
                    ID18_WRAPPED_PATTERN.score,
                ),
            ],
            context=list(CONTEXT),
        )

    def validate_result(self, pattern_text: str) -> bool | None:
        """True (1.0) for a valid 18-char ID; None keeps the legacy score; False drops the match.

        A grouped or wrapped match is checked without its separators, and only as an 18-char ID.
        """
        compact = without_separators(pattern_text)
        if len(compact) == 18:
            return is_valid_resident_id(compact)
        if compact != pattern_text:
            return False
        if is_valid_legacy_resident_id(pattern_text):
            return None
        return False
