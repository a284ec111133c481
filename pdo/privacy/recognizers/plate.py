"""PRC motor-vehicle plates (机动车号牌, GA 36): province, issuing-office letter, serial."""

from __future__ import annotations

import re

from presidio_analyzer import Pattern, PatternRecognizer

PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
_LETTER = r"[A-HJ-NP-Z]"  # plates never use I or O (read as 1 and 0)
_ALNUM = r"[0-9A-HJ-NP-Z]"

PLATE_PATTERN = Pattern(
    name="cn_vehicle_plate",
    regex=(
        rf"[{PROVINCES}]{_LETTER}[·• ]?"
        + rf"(?:[DF]{_ALNUM}[0-9]{{4}}"  # new-energy small car: D/F first (粤B·D12345)
        + r"|[0-9]{5}[DF]"  # new-energy large vehicle: D/F last (粤B·12345D)
        + rf"|{_ALNUM}{{5}}"  # ordinary: five digits/letters (京A·12345)
        + rf"|{_ALNUM}{{4}}[挂学警港澳])"  # trailer, driving school, police, HK/Macao
        + r"(?![0-9A-Za-z])"
    ),
    score=0.5,
)

CONTEXT = ["车牌", "车牌号", "号牌", "号牌号码", "车辆", "机动车"]

_SERIAL_LETTERS = re.compile(r"[A-Z]")


class PlateRecognizer(PatternRecognizer):
    """CN_VEHICLE_PLATE: no checksum, so 0.5; ordinary serials hold at most two letters."""

    ENTITY = "CN_VEHICLE_PLATE"

    def __init__(self, supported_language: str = "zh") -> None:
        super().__init__(
            supported_entity=self.ENTITY,
            name="PlateRecognizer",
            supported_language=supported_language,
            patterns=[Pattern(PLATE_PATTERN.name, PLATE_PATTERN.regex, PLATE_PATTERN.score)],
            context=list(CONTEXT),
            global_regex_flags=re.DOTALL | re.MULTILINE,  # case-sensitive: plates are upper-case
        )

    def validate_result(self, pattern_text: str) -> bool | None:
        """None keeps 0.5; False drops a serial with more than two letters (京A·BCDEF, 新ABCDEF)."""
        serial = pattern_text[2:].lstrip("·• ")
        if len(serial) == 6:  # new-energy forms are fixed by the regex
            return None
        return None if len(_SERIAL_LETTERS.findall(serial)) <= 2 else False
