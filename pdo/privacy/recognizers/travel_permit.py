"""Travel permits (通行证): 港澳居民来往内地, 往来港澳, and labelled 台湾居民来往大陆 numbers."""

from __future__ import annotations

import re

from presidio_analyzer import Pattern, PatternRecognizer

# Not glued to letters/digits, and not an approval number right after 字/注: 国药准字H20003001
# is a chemical drug, not a Hong Kong resident.
_NOT_AFTER = r"(?<![0-9A-Za-z字注])"
_NOT_BEFORE = r"(?![0-9A-Za-z])"

# 港澳居民来往内地通行证 (回乡证): H (Hong Kong) / M (Macao) + 8 digits, or + 10 on older cards.
HK_MACAO_RESIDENT_PATTERN = Pattern(
    name="cn_permit_hk_macao_resident",
    regex=_NOT_AFTER + r"[HM](?:[0-9]{10}|[0-9]{8})" + _NOT_BEFORE,
    score=0.4,
)
# 往来港澳通行证 (mainland residents): C + 8 digits, or C + letter (no I/O) + 7 digits.
TO_HK_MACAO_PATTERN = Pattern(
    name="cn_permit_to_hk_macao",
    regex=_NOT_AFTER + r"C(?:[0-9]{8}|[A-HJ-NP-Z][0-9]{7})" + _NOT_BEFORE,
    score=0.4,
)
# 台湾居民来往大陆通行证 (台胞证): a bare 8-digit number is indistinguishable from dates,
# amounts and local phone numbers, so it is matched only right after its own label.
TAIWAN_RESIDENT_PATTERN = Pattern(
    name="cn_permit_taiwan_resident",
    regex=r"(?<=(?:台胞证|台湾居民来往大陆通行证)(?:号码|号)?[：:]?\s*)[0-9]{8}" + _NOT_BEFORE,
    score=0.6,
)

CONTEXT = ["通行证", "回乡证", "港澳通行证", "台胞证", "来往内地通行证"]


class TravelPermitRecognizer(PatternRecognizer):
    """CN_TRAVEL_PERMIT: no checksum; letter-prefixed forms 0.4, labelled 台胞证 numbers 0.6."""

    ENTITY = "CN_TRAVEL_PERMIT"

    def __init__(self, supported_language: str = "zh") -> None:
        super().__init__(
            supported_entity=self.ENTITY,
            name="TravelPermitRecognizer",
            supported_language=supported_language,
            patterns=[
                Pattern(p.name, p.regex, p.score)
                for p in (HK_MACAO_RESIDENT_PATTERN, TO_HK_MACAO_PATTERN, TAIWAN_RESIDENT_PATTERN)
            ],
            context=list(CONTEXT),
            global_regex_flags=re.DOTALL | re.MULTILINE,  # case-sensitive, like passports
        )
