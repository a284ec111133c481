"""The score lookup's query reader decodes exactly what Starlette's `QueryParams` would."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from starlette.datastructures import QueryParams

from api.query import query_values

NAMES = frozenset({"purpose", "consent"})
CASES = [
    f"purpose={quote('贷前审查')}&consent=C-1",
    f"consent=C-1&purpose={quote('贷后管理')}",
    "purpose=a+b&consent=x%2By",  # + is a space, %2B a plus
    "purpose=first&purpose=second",  # the last value wins
    "purpose&consent=",  # no '=' and an empty value both read as ""
    "purpose=%E8%B4%B7%E5",  # a cut UTF-8 sequence is replaced, not an error
    "purpose=%ZZ%&consent=%",  # malformed escapes stay as written
    "pur%70ose=encoded-name&other=1",  # an encoded name is still the name
    "&&purpose=x&&",  # empty pairs are skipped
    "purpose=a=b",  # only the first '=' separates
    "purpose=%00",  # a NUL is decoded (the route refuses it before this)
    "",
    "consent=only",
]


@pytest.mark.parametrize("raw", CASES)
def test_query_values_read_as_starlette_does(raw: str) -> None:
    encoded = raw.encode("latin-1")
    expected = QueryParams(encoded)
    assert query_values(encoded, NAMES) == {n: expected[n] for n in NAMES if n in expected}


def test_latin1_bytes_outside_escapes_read_as_starlette_does() -> None:
    raw = "purpose=caf\u00e9".encode("latin-1")
    assert query_values(raw, NAMES) == {"purpose": QueryParams(raw)["purpose"]}
