"""Check characters of PRC identifiers, shared by the generator, recognizers and validators.

The validators run once per candidate match when scanning text, so their weighted sums avoid
per-character Python loops: a weight sequence that is geometric modulo m (w_j = q**j) makes
the sum, modulo m, the value of the digits read in any base b ≡ q (mod m), which ``int``
computes in C. ``int`` reads every decimal digit ``str.isdecimal`` accepts (full-width ones
too) by its digit value, exactly as ``int(c)`` per character does.
"""

from __future__ import annotations

from operator import mul

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)  # 3**j mod 31
_USCC_DIGITS = b"0123456789abcdefghijklmnopqrstu"  # a USCC character's value as a base-34 digit
_USCC_TO_DIGITS = bytes.maketrans(USCC_ALPHABET.encode(), _USCC_DIGITS)
_USCC_BASE = 34  # 34 ≡ 3 (mod 31), above the largest value (30)
_RID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)  # 2**(17-j) mod 11
_RID_BASE = 13  # 13 ≡ 2 (mod 11), above the largest digit
_RID_CHECK = "10X98765432"
_DAYS_IN_MONTH = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def uscc_check_char(first17: str) -> str:
    """GB 32100-2015 check character (MOD 31-3) for the first 17 characters of a USCC."""
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def is_valid_uscc(code: str) -> bool:
    """True when an 18-character USCC uses the GB 32100 alphabet and its check character holds."""
    if len(code) != 18 or code.strip(USCC_ALPHABET):  # strip leaves any outside character
        return False
    digits = code.encode("ascii").translate(_USCC_TO_DIGITS)
    total = int(digits[16::-1], _USCC_BASE)  # ≡ the weighted sum of the first 17 (mod 31)
    return _USCC_DIGITS[(31 - total % 31) % 31] == digits[17]


def resident_id_check_char(first17: str) -> str:
    """GB 11643 check character (ISO 7064 MOD 11-2) for the first 17 digits of a resident ID."""
    if len(first17) == 17 and first17.isdecimal():
        return _RID_CHECK[2 * int(first17, _RID_BASE) % 11]  # Σ d·2**(16-j), doubled
    total = sum(int(c) * w for c, w in zip(first17, _RID_WEIGHTS, strict=True))  # raises
    return _RID_CHECK[total % 11]


def _is_real_date(year: int, month: int, day: int) -> bool:
    """What ``datetime.date`` accepts, for years 1-9999."""
    if not 1 <= month <= 12 or not 1 <= day <= _DAYS_IN_MONTH[month]:
        return False
    return day < 29 or month != 2 or (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0))


def _is_real_yyyymmdd(number: int) -> bool:
    return _is_real_date(number // 10000, number // 100 % 100, number % 100)


def is_valid_resident_id(value: str) -> bool:
    """True for an 18-character resident ID with a real birth date and a correct check character."""
    if len(value) != 18 or not value[:17].isdecimal():
        return False
    check = value[17].upper()
    if check not in _RID_CHECK:
        return False
    birth = int(value[6:14])
    if not 1900 <= birth // 10000 <= 2100 or not _is_real_yyyymmdd(birth):
        return False
    return resident_id_check_char(value[:17]) == check


def is_valid_legacy_resident_id(value: str) -> bool:
    """True for a 15-digit (pre-1999) resident ID whose 6-digit birth date (19YYMMDD) is real."""
    return (
        len(value) == 15 and value.isdecimal() and _is_real_yyyymmdd(19_000_000 + int(value[6:12]))
    )


_LUHN_DOUBLED = bytes.maketrans(b"0123456789", b"0246813579")  # 2d, less 9 when over 9


def luhn_ok(digits: str) -> bool:
    """Luhn check used by UnionPay personal bank cards."""
    if not digits.isdecimal():
        return False
    if digits.isascii():
        data = digits.encode()
        total = sum(data[::-2]) + sum(data[-2::-2].translate(_LUHN_DOUBLED))
        return (total - ord("0") * len(data)) % 10 == 0
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
_ORG_CODE_VALUES = bytes.maketrans(ORG_CODE_ALPHABET.encode(), bytes(range(len(ORG_CODE_ALPHABET))))


def org_code_check_char(body8: str) -> str:
    """GB 11714-1997 check character (MOD 11) for the 8-character body of an organization code."""
    total = sum(
        ORG_CODE_ALPHABET.index(c) * w for c, w in zip(body8, _ORG_CODE_WEIGHTS, strict=True)
    )
    return _org_code_check(total)


def _org_code_check(total: int) -> str:
    check = 11 - total % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


def is_valid_org_code(code: str) -> bool:
    """True for a 9-character organization code (dash before the check character removed)."""
    if len(code) != 9 or code[:8].strip(ORG_CODE_ALPHABET):
        return False
    values = code[:8].encode("ascii").translate(_ORG_CODE_VALUES)
    return _org_code_check(sum(map(mul, values, _ORG_CODE_WEIGHTS))) == code[8]


INDIVIDUAL_PREFIX = "92"  # registration authority 9 (market regulation), type 2 (个体工商户)


def is_individual_business(code: str) -> bool:
    """A USCC registered to a natural person's business rather than a legal entity."""
    return code.upper().startswith(INDIVIDUAL_PREFIX)
