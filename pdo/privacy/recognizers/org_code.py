"""Organization codes (组织机构代码, GB 11714), confirmed by their MOD 11 check character."""

from __future__ import annotations

import re

from presidio_analyzer import Pattern, PatternRecognizer

from pdo.privacy.checksums import is_valid_org_code

# Upper-case only (as issued); not glued to letters/digits, nor one link of a dashed chain.
ORG_CODE_PATTERN = Pattern(
    name="cn_org_code",
    regex=(
        r"(?<![0-9A-Za-z]|[0-9A-Za-z]-)"
        + r"(?=[A-Z]{0,7}[0-9])[0-9A-Z]{8}-?[0-9X]"
        + r"(?![0-9A-Za-z]|-[0-9A-Za-z])"
    ),
    score=0.4,
)

# Undashed values that also read as a personal document number (护照/通行证): letter + 8 digits
# or two letters + 7 digits. As with USCC vs resident ID, the personal reading wins.
_PERSONAL_DOCUMENT = re.compile(r"[CEGHM][0-9]{8}|[CE][A-Z][0-9]{7}")

CONTEXT = ["组织机构代码", "机构代码", "组织代码"]


class OrgCodeRecognizer(PatternRecognizer):
    """CN_ORG_CODE: an organization's code, found so that it is kept, not taken for personal data.

    The dashed form XXXXXXXX-X with a valid check character scores 1.0; the undashed form
    keeps 0.4, since one in eleven random nine-digit numbers passes the check.
    """

    ENTITY = "CN_ORG_CODE"

    def __init__(self, supported_language: str = "zh") -> None:
        super().__init__(
            supported_entity=self.ENTITY,
            name="OrgCodeRecognizer",
            supported_language=supported_language,
            patterns=[Pattern(p.name, p.regex, p.score) for p in (ORG_CODE_PATTERN,)],
            context=list(CONTEXT),
            global_regex_flags=re.DOTALL | re.MULTILINE,  # case-sensitive: codes are upper-case
        )

    def validate_result(self, pattern_text: str) -> bool | None:
        """False drops a wrong check character; True (1.0) only for the dashed, written form."""
        if not is_valid_org_code(pattern_text.replace("-", "")):
            return False
        return True if "-" in pattern_text else None

    def invalidate_result(self, pattern_text: str) -> bool:
        """An undashed value shaped like a passport or travel permit is treated as personal."""
        return _PERSONAL_DOCUMENT.fullmatch(pattern_text) is not None
