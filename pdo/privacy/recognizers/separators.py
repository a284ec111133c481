"""What may stand between the groups of a number written in groups, shared by ID and mobile.

A short run of horizontal whitespace (space, tab, NBSP, ideographic space) optionally with one
line break, one character of the dash family (-, U+2010-U+2015, U+2212), or a dot. NFKC at
ingest folds NBSP and ideographic space but not tabs, en dashes or minus signs, so the
recognizers accept them themselves.
"""

from __future__ import annotations

import regex

_HORIZONTAL = "[ \t\u00a0\u3000]"
# One character of the dash family: hyphen-minus, U+2010-U+2015 (hyphen ... horizontal bar), minus.
DASH = "[\\-\u2010-\u2015\u2212]"
SPACES = _HORIZONTAL + "{1,3}"
# One line break, with a little horizontal whitespace either side (a trailing space, an indent).
LINE_BREAK = _HORIZONTAL + "{0,3}\\r?\\n" + _HORIZONTAL + "{0,3}"
WHITESPACE = "(?:" + SPACES + "|" + LINE_BREAK + ")"
DOT = r"\."

_SEPARATOR_CHARS = regex.compile("[ \t\u00a0\u3000\r\n.\\-\u2010-\u2015\u2212]")


def without_separators(text: str) -> str:
    """The number a grouped match writes, so it is validated like one written in one piece."""
    return _SEPARATOR_CHARS.sub("", text)
