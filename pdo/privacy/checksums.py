"""Check characters of PRC identifiers, shared by the generator, recognizers and validators."""

from __future__ import annotations

import datetime as dt

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_RID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_RID_CHECK = "10X98765432"


def uscc_check_char(first17: str) -> str:
    """GB 32100-2015 check character (MOD 31-3) for the first 17 characters of a USCC."""
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def is_valid_uscc(code: str) -> bool:
    """True when an 18-character USCC uses the GB 32100 alphabet and its check character holds."""
    if len(code) != 18 or any(c not in USCC_ALPHABET for c in code):
        return False
    return uscc_check_char(code[:17]) == code[17]


def resident_id_check_char(first17: str) -> str:
    """GB 11643 check character (ISO 7064 MOD 11-2) for the first 17 digits of a resident ID."""
    total = sum(int(c) * w for c, w in zip(first17, _RID_WEIGHTS, strict=True))
    return _RID_CHECK[total % 11]


def _is_real_date(yyyymmdd: str) -> bool:
    try:
        dt.date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        return False
    return True


def is_valid_resident_id(value: str) -> bool:
    """True for an 18-character resident ID with a real birth date and a correct check character."""
    if len(value) != 18 or not value[:17].isdecimal():
        return False
    check = value[17].upper()
    if check not in _RID_CHECK:
        return False
    year = int(value[6:10])
    if not 1900 <= year <= 2100 or not _is_real_date(value[6:14]):
        return False
    return resident_id_check_char(value[:17]) == check


def is_valid_legacy_resident_id(value: str) -> bool:
    """True for a 15-digit (pre-1999) resident ID whose 6-digit birth date (19YYMMDD) is real."""
    return len(value) == 15 and value.isdecimal() and _is_real_date("19" + value[6:12])


def luhn_ok(digits: str) -> bool:
    """Luhn check used by UnionPay personal bank cards."""
    if not digits.isdecimal():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


ORG_CODE_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"  # digits 0-9, then A=10 … Z=35
_ORG_CODE_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def org_code_check_char(body8: str) -> str:
    """GB 11714-1997 check character (MOD 11) for the 8-character body of an organization code."""
    total = sum(
        ORG_CODE_ALPHABET.index(c) * w for c, w in zip(body8, _ORG_CODE_WEIGHTS, strict=True)
    )
    check = 11 - total % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


def is_valid_org_code(code: str) -> bool:
    """True for a 9-character organization code (dash before the check character removed)."""
    if len(code) != 9 or any(c not in ORG_CODE_ALPHABET for c in code[:8]):
        return False
    return org_code_check_char(code[:8]) == code[8]
