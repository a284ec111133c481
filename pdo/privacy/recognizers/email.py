"""E-mail addresses (电子邮箱), matched offline: no tldextract, no public-suffix download."""

from __future__ import annotations

from presidio_analyzer import Pattern, PatternRecognizer

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"

EMAIL_PATTERN = Pattern(
    name="email_offline",
    regex=(
        r"(?<![A-Za-z0-9.!#$%&'*+/=?^_`{|}~-])"  # the local part starts here, not mid-way
        + rf"{_ATOM}(?:\.{_ATOM})*"
        + rf"@(?:{_LABEL}\.)+"
        + r"(?:[A-Za-z]{2,24}|xn--[A-Za-z0-9-]{1,59})"  # alphabetic or punycode top-level domain
        + r"(?![A-Za-z0-9-]|\.[A-Za-z0-9])"
    ),
    score=0.5,
)

# Top-level domains seen in PRC documents; with any two-letter country code they score 1.0.
_COMMON_TLDS = """
    com net org edu gov mil int info biz name pro mobi asia top xyz site online shop club
    vip work ltd group tech store link live life cloud email wang ren
"""
COMMON_TLDS = frozenset(_COMMON_TLDS.split())
# "logo@2x.png" and the like are file names, not addresses.
_FILE_EXTENSIONS = """
    png jpg jpeg gif bmp svg webp ico tif tiff pdf doc docx xls xlsx ppt pptx csv txt
    zip rar gz tar js css html htm json xml md py
"""
FILE_EXTENSIONS = frozenset(_FILE_EXTENSIONS.split())

CONTEXT = ["邮箱", "电子邮箱", "电子邮件", "邮件", "email", "e-mail"]


class EmailRecognizer(PatternRecognizer):
    """EMAIL_ADDRESS (Presidio's name): common or country TLD 1.0, other alphabetic TLD 0.5."""

    ENTITY = "EMAIL_ADDRESS"

    def __init__(self, supported_language: str = "zh") -> None:
        super().__init__(
            supported_entity=self.ENTITY,
            name="EmailRecognizer",
            supported_language=supported_language,
            patterns=[Pattern(EMAIL_PATTERN.name, EMAIL_PATTERN.regex, EMAIL_PATTERN.score)],
            context=list(CONTEXT),
        )

    def validate_result(self, pattern_text: str) -> bool | None:
        """Judge the top-level domain only; nothing is looked up."""
        tld = pattern_text.rsplit(".", 1)[1].lower()
        if tld in FILE_EXTENSIONS:
            return False
        if tld in COMMON_TLDS or tld.startswith("xn--") or (len(tld) == 2 and tld.isalpha()):
            return True
        return None
