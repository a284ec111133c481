"""Bank card numbers (银行卡号): 16-19 digits, plain or in groups of four; Luhn sets the score."""

from __future__ import annotations

import re

from presidio_analyzer import Pattern, PatternRecognizer

from pdo.privacy.checksums import is_valid_resident_id, is_valid_uscc, luhn_ok

# One body, two forms. Plain: a run of exactly 16-19 digits. Grouped: 4-4-4-4(-1..3) with one
# separator used throughout, and no further "sep digit" on either side (a 20-digit grouped run
# is not a card with a tail). Neither form may be a link of a dashed digit chain.
_PLAIN = r"(?<![0-9A-Za-z]|[0-9]-)[0-9]{16,19}(?![0-9A-Za-z]|-[0-9])"
_GROUPED = (
    r"(?<![0-9A-Za-z]|[0-9][ -])"
    r"[0-9]{4}(?P<sep>[ -])[0-9]{4}(?P=sep)[0-9]{4}(?P=sep)[0-9]{4}(?:(?P=sep)[0-9]{1,3})?"
    r"(?![0-9A-Za-z]|(?P=sep)[0-9])"
)
_CARD = r"(?:" + _PLAIN + r"|" + _GROUPED + r")"

# UnionPay (62…): kept even when Luhn fails (some older domestic cards do not carry it).
UNIONPAY_PATTERN = Pattern(name="cn_bank_card_unionpay", regex=r"(?=62)" + _CARD, score=0.3)
# Any other issuer: detected only when Luhn holds, then at a medium score.
OTHER_CARD_PATTERN = Pattern(name="cn_bank_card_other", regex=r"(?!62)" + _CARD, score=0.6)

# Card issuer prefixes (ISO/IEC 7812 major industry identifiers in use for payment cards):
# 3 JCB/Amex/Diners, 4 Visa, 5 Mastercard, 6 UnionPay/Discover, 9 legacy domestic (e.g. 9558),
# and 2221-2720 Mastercard. Order numbers and timestamps (1…, 20…) are left alone.
_ISSUER = re.compile(r"[34569]|2(?:22[1-9]|2[3-9][0-9]|[3-6][0-9]{2}|7[01][0-9]|720)")

CONTEXT = ["银行卡", "银行卡号", "卡号", "账号", "银行账号", "开户行"]


def _digits(text: str) -> str:
    return re.sub(r"[ -]", "", text)


class BankCardRecognizer(PatternRecognizer):
    """CN_BANK_CARD: Luhn-valid 62… scores 1.0, other Luhn-valid cards 0.6, non-Luhn 62… 0.3."""

    ENTITY = "CN_BANK_CARD"
    OTHER_SCORE = OTHER_CARD_PATTERN.score
    UNCHECKED_UNIONPAY_SCORE = UNIONPAY_PATTERN.score

    def __init__(self, supported_language: str = "zh") -> None:
        super().__init__(
            supported_entity=self.ENTITY,
            name="BankCardRecognizer",
            supported_language=supported_language,
            patterns=[
                Pattern(p.name, p.regex, p.score) for p in (UNIONPAY_PATTERN, OTHER_CARD_PATTERN)
            ],
            context=list(CONTEXT),
        )

    def validate_result(self, pattern_text: str) -> bool | None:
        """True (1.0) for Luhn-valid 62…; None keeps the pattern score; False drops the match."""
        digits = _digits(pattern_text)
        unionpay = digits.startswith("62")
        if luhn_ok(digits):
            if unionpay:
                return True
            return None if _ISSUER.match(digits) else False
        return None if unionpay else False

    def invalidate_result(self, pattern_text: str) -> bool:
        """Resident IDs and all-digit USCCs (both 18 digits) are theirs; one repeated digit too."""
        digits = _digits(pattern_text)
        if len(set(digits)) == 1:
            return True
        return len(digits) == 18 and (is_valid_resident_id(digits) or is_valid_uscc(digits))
