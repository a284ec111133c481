"""How an enterprise is named to a bank: companies by USCC, a 个体工商户 masked."""

from __future__ import annotations

import re
import unicodedata

from pdo.privacy.checksums import is_individual_business

# A code in free text, typed in ASCII or full width (an input method's ９２…), in either case.
_CODE_CHAR = r"[0-9A-Za-z０-９Ａ-Ｚａ-ｚ]"
CODE_IN_TEXT = re.compile(rf"(?<!{_CODE_CHAR}){_CODE_CHAR}{{18}}(?!{_CODE_CHAR})")


def shown_as(uscc: str) -> str:
    """A company's USCC as is; a 个体工商户's code (a natural person's) with its middle masked."""
    code = uscc.strip().upper()
    if not is_individual_business(code):
        return code
    return code[:6] + "*" * (len(code) - 10) + code[-4:]


def individual_codes_in(text: str) -> list[str]:
    """The 个体工商户 codes written in a text (normalized), in order."""
    codes = (unicodedata.normalize("NFKC", m.group(0)).upper() for m in CODE_IN_TEXT.finditer(text))
    return [code for code in codes if is_individual_business(code)]


LONG_NUMBER = re.compile(r"[0-9]{11}")  # a mobile, a 身份证号 or a card holds such a run
PERSONAL_NUMBER_IN_TEXT = (
    "a person's number (身份证号, 手机号, 银行卡号, a 个体工商户's code) must not be written "
    "here: it would be stored and shown as sent"
)


def holds_personal_number(value: str) -> bool:
    """A 个体工商户 code, or a long number the registry's pattern recognizers call personal:
    refused in names and references a bank or an operator types, which are stored as typed."""
    text = unicodedata.normalize("NFKC", value)
    if individual_codes_in(text):
        return True
    if not LONG_NUMBER.search(text):
        return False
    from pdo.privacy.redact import redact_numbers  # Presidio, loaded when a text needs it

    return redact_numbers(text) != text
