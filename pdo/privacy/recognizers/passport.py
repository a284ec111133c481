"""PRC ordinary passports (普通护照): E + 8 digits, E + letter + 7 digits, legacy G + 8 digits."""

from __future__ import annotations

import re

from presidio_analyzer import Pattern, PatternRecognizer

# Approval numbers share the shape: 国食健注G20190001 (health food), 国药准字H20003001 (drugs,
# see travel_permit). A letter right after 字 or 注 is such a number, never a passport.
NOT_APPROVAL_NUMBER = r"(?<![0-9A-Za-z字注])"

PASSPORT_PATTERN = Pattern(
    name="cn_passport",
    regex=NOT_APPROVAL_NUMBER + r"(?:[EG][0-9]{8}|E[A-HJ-NP-Z][0-9]{7})(?![0-9A-Za-z])",
    score=0.3,
)

CONTEXT = ["护照", "护照号", "护照号码", "证件号"]


class PassportRecognizer(PatternRecognizer):
    """CN_PASSPORT: no checksum and a short shape, so a low 0.3 (product codes look alike)."""

    ENTITY = "CN_PASSPORT"

    def __init__(self, supported_language: str = "zh") -> None:
        super().__init__(
            supported_entity=self.ENTITY,
            name="PassportRecognizer",
            supported_language=supported_language,
            patterns=[Pattern(p.name, p.regex, p.score) for p in (PASSPORT_PATTERN,)],
            context=list(CONTEXT),
            global_regex_flags=re.DOTALL | re.MULTILINE,  # case-sensitive: e12345678 is no passport
        )
