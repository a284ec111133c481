"""How an enterprise is named to a bank: companies by USCC, a 个体工商户 masked."""

from __future__ import annotations

from pdo.privacy.checksums import is_individual_business


def shown_as(uscc: str) -> str:
    """A company's USCC as is; a 个体工商户's code (a natural person's) with its middle masked."""
    code = uscc.strip().upper()
    if not is_individual_business(code):
        return code
    return code[:6] + "*" * (len(code) - 10) + code[-4:]
