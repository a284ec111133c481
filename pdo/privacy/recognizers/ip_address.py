"""IP addresses (IP地址): IPv4 with every octet 0-255, IPv6 as the ipaddress module parses it."""

from __future__ import annotations

import ipaddress
import re

from presidio_analyzer import Pattern, PatternRecognizer

IPV4_PATTERN = Pattern(
    name="ipv4",
    # Not inside a longer dotted run (版本 1.2.3.4.5) or glued to letters/digits.
    regex=r"(?<![0-9A-Za-z]|[0-9]\.)(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?![0-9A-Za-z]|\.[0-9])",
    score=0.6,
)
IPV6_PATTERN = Pattern(
    name="ipv6",
    # A candidate only: hex groups with at least two colons, optionally an IPv4 tail;
    # ipaddress decides. Times such as 12:30:45 are candidates that fail validation.
    regex=(
        r"(?<![0-9A-Za-z:])"
        + r"(?:[0-9A-Fa-f]{0,4}:){2,7}"
        + r"(?:(?:[0-9]{1,3}\.){3}[0-9]{1,3}|[0-9A-Fa-f]{0,4})"
        + r"(?![0-9A-Za-z:]|\.[0-9])"
    ),
    score=0.6,
)

_SINGLE_DIGITS = re.compile(r"[0-9]\.[0-9]\.[0-9]\.[0-9]")

CONTEXT = ["IP", "IP地址", "登录地址", "访问地址"]


class IpAddressRecognizer(PatternRecognizer):
    """IP_ADDRESS (Presidio's name): a parsable address scores 1.0, anything else is dropped."""

    ENTITY = "IP_ADDRESS"

    def __init__(self, supported_language: str = "zh") -> None:
        super().__init__(
            supported_entity=self.ENTITY,
            name="IpAddressRecognizer",
            supported_language=supported_language,
            patterns=[Pattern(p.name, p.regex, p.score) for p in (IPV4_PATTERN, IPV6_PATTERN)],
            context=list(CONTEXT),
        )

    def validate_result(self, pattern_text: str) -> bool:
        """ipaddress rejects octets over 255, leading zeros and bad IPv6; '::' alone is no IP.

        Four single-digit parts (4.1.2.3) are clause and version numbers in Chinese standards
        and regulations far more often than addresses (the few real ones, 1.1.1.1 and 8.8.8.8,
        are public resolvers, not anybody's address), so they are dropped too.
        """
        if pattern_text == "::" or _SINGLE_DIGITS.fullmatch(pattern_text):
            return False
        try:
            ipaddress.ip_address(pattern_text)
        except ValueError:
            return False
        return True
