"""Names operators type for banks, plans and users: shown in consoles, ids and audit records."""

from __future__ import annotations

import re
import unicodedata

MAX_NAME = 120
# Unicode categories a name must not hold: control, format (zero-width, bidi overrides),
# surrogate, private use and unassigned characters: invisible or rendered differently per screen.
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
# A plan's name is the part after `product/` in its id (`credit_risk/standard`).
PLAN_NAME = re.compile(r"[\w.-]{1,40}")


def checked_name(kind: str, text: str, max_len: int = MAX_NAME) -> str:
    """The name as typed, or ValueError saying what is wrong (without echoing it)."""
    if not text.strip():
        raise ValueError(f"a {kind} name must not be empty")
    if text != text.strip():
        raise ValueError(f"a {kind} name must not begin or end with whitespace")
    if len(text) > max_len:
        raise ValueError(f"a {kind} name has at most {max_len} characters, not {len(text)}")
    if any(unicodedata.category(c) in HIDDEN_CATEGORIES for c in text):
        raise ValueError(f"a {kind} name must not hold control, invisible or unassigned characters")
    return text


def checked_plan_name(text: str) -> str:
    """A plan name usable in its id: letters, digits, `_`, `-` and `.`, at most 40."""
    if not PLAN_NAME.fullmatch(text):
        raise ValueError(
            "a plan name has 1 to 40 letters, digits, '_', '-' or '.' "
            "(no '/' or spaces: it becomes the id product/name)"
        )
    return text
