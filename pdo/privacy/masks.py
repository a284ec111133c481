"""Default masks (Policy.MASK) and generalizations (Policy.GENERALIZE), documented in one place."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable

STAR = "*"


def _clean(value: str) -> str:
    return unicodedata.normalize("NFKC", value).strip()


def mask_name(name: str) -> str:
    """Keep the first character only: 张伟 → 张*, 欧阳娜娜 → 欧***; a one-character name → *."""
    name = _clean(name)
    if len(name) <= 1:
        return STAR * len(name)
    return name[0] + STAR * (len(name) - 1)


def _keep_ends(digits: str, head: int, tail: int) -> str:
    """head + stars + tail, same length; all stars when too short to show both ends safely."""
    if len(digits) <= head + tail:
        return STAR * len(digits)
    return digits[:head] + STAR * (len(digits) - head - tail) + digits[-tail:]


def mask_mobile(phone: str) -> str:
    """+86 138-1234-5678 → 138****5678 (country code and separators dropped)."""
    digits = re.sub(r"[^0-9]", "", _clean(phone))
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    elif len(digits) == 15 and digits.startswith("0086"):
        digits = digits[4:]
    return _keep_ends(digits, 3, 4)


def mask_resident_id(rid: str) -> str:
    """First 6 (region) + stars + last 4: 110105194912310021 → 110105********0021."""
    return _keep_ends(re.sub(r"\s", "", _clean(rid)).upper(), 6, 4)


def mask_bank_card(card: str) -> str:
    """First 6 (issuer BIN) + stars + last 4, as on bank receipts."""
    return _keep_ends(re.sub(r"[^0-9]", "", _clean(card)), 6, 4)


# Administrative levels as they are written: province, prefecture, county. Unit names are
# Chinese characters that are not themselves level suffixes or street-level words.
def _name_chars(exclude: str) -> str:
    return rf"[^\W\d_A-Za-z{exclude}]"


_PROVINCE = re.compile(
    r"(?:北京|天津|上海|重庆)市|" + _name_chars("市区县省") + r"{2,8}?(?:省|自治区|特别行政区)"
)
_PREFECTURE = re.compile(_name_chars("市区县省镇街村路号社") + r"{1,12}?(?:自治州|地区|盟|市)")
_COUNTY = re.compile(
    r"[\u4e00-\u9fff]"  # first char may be 市: 济南市市中区
    + _name_chars("市区县省镇街村路号社")
    + r"{0,12}?(?:自治县|自治旗|区|县|旗|市)"
)
_NOT_A_COUNTY = ("小区", "社区", "校区", "景区", "片区", "街区", "园区")
_COUNTRY = re.compile(r"^(?:中华人民共和国|中国)")


def _compact(addr: str) -> str:
    return _COUNTRY.sub("", re.sub(r"\s", "", _clean(addr)))


def generalize_address(addr: str) -> str:
    """Keep province/city/district only: 浙江省杭州市西湖区文三路1号 → 浙江省杭州市西湖区.

    Cuts after the first county-level unit (区/县/旗/county-level 市; 市辖区 is skipped),
    else after the prefecture (市/自治州/地区/盟), else after the province. Returns "" when
    no administrative unit is found, so nothing below the district can leak.
    """
    rest = _compact(addr)
    kept = ""
    for level in (_PROVINCE, _PREFECTURE):
        match = level.match(rest)
        if match:
            kept += match.group()
            rest = rest[match.end() :]
    if rest.startswith("市辖区"):
        rest = rest[len("市辖区") :]
    county = _COUNTY.match(rest)
    if county and not county.group().endswith(_NOT_A_COUNTY):
        kept += county.group()
    return kept


def mask_address(addr: str) -> str:
    """Generalized address + ****: 北京市朝阳区建国路88号 → 北京市朝阳区****."""
    kept = generalize_address(addr)
    return kept if len(kept) == len(_compact(addr)) else kept + STAR * 4


_DATE = re.compile(r"^\s*(\d{4})\s*(?:[-/.年]\s*(\d{1,2})|(\d{2})(?=\d{2}\s*$))")


def generalize_date_to_month(value: str | dt.date | None) -> str | None:
    """A date (2024-03-15, 2024/3/15, 2024年3月15日, 20240315 or a date object) → 2024-03."""
    if value is None:
        return None
    if isinstance(value, dt.date):
        return f"{value.year:04d}-{value.month:02d}"
    match = _DATE.match(_clean(value))
    if not match:
        raise ValueError(f"not a date: {value!r}")
    month = int(match.group(2) or match.group(3))
    if not 1 <= month <= 12:
        raise ValueError(f"not a date: {value!r}")
    return f"{match.group(1)}-{month:02d}"


MASKS: dict[str, Callable[[str], str]] = {
    "name": mask_name,
    "mobile": mask_mobile,
    "resident_id": mask_resident_id,
    "bank_card": mask_bank_card,
    "address": mask_address,
}


def mask(kind: str, value: str) -> str:
    """Apply the default mask for Column.mask_kind; an unknown kind fails, never passes through."""
    try:
        fn = MASKS[kind]
    except KeyError:
        raise KeyError(f"no mask for kind {kind!r}; known: {sorted(MASKS)}") from None
    return fn(value)
