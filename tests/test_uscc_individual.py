"""个体工商户 USCCs are personal data: found as such, redacted, and keyed by pseudonym."""

from __future__ import annotations

import polars as pl
import pytest
from presidio_anonymizer import AnonymizerEngine

from pdo.privacy.analyzer import build_analyzer, find_pii
from pdo.privacy.checksums import uscc_check_char
from pdo.privacy.entity_key import entity_key, entity_key_series
from pdo.privacy.pseudonym import Pseudonymizer
from pdo.privacy.redact import redact_text


def _code(body: str) -> str:
    return body + uscc_check_char(body)


INDIVIDUAL = _code("92330106MA2H4K7L3")
COMPANY = _code("91330106MA2H4K7L3")
PSEUDO = Pseudonymizer("k1", b"individual-test-key")


@pytest.fixture(scope="module")
def analyzer(tmp_path_factory: pytest.TempPathFactory):
    return build_analyzer(tmp_path_factory.mktemp("models"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"统一社会信用代码{INDIVIDUAL}", [("CN_USCC_INDIVIDUAL", INDIVIDUAL)]),
        (f"统一社会信用代码{COMPANY}", [("CN_USCC", COMPANY)]),
        (f"代码{INDIVIDUAL[:-1]}{'0' if INDIVIDUAL[-1] != '0' else '1'}", []),  # bad check
        (f"X{INDIVIDUAL}", []),  # inside a longer run
    ],
)
def test_individual_and_company_codes_are_told_apart(analyzer, text, expected) -> None:
    found = [(r.entity_type, text[r.start : r.end]) for r in find_pii(analyzer, text)]
    assert found == expected


def test_individual_code_is_redacted_company_code_kept(analyzer) -> None:
    text = f"当事人（个体工商户，统一社会信用代码{INDIVIDUAL}）与{COMPANY}公司"
    out = redact_text(analyzer, AnonymizerEngine(), text)
    assert INDIVIDUAL not in out and "〈个体工商户代码〉" in out and COMPANY in out


def test_entity_key_pseudonymizes_only_individuals() -> None:
    assert entity_key(COMPANY, PSEUDO) == COMPANY
    assert entity_key(INDIVIDUAL, PSEUDO) == PSEUDO.pseudonym(INDIVIDUAL)
    assert entity_key(INDIVIDUAL.lower(), PSEUDO) == entity_key(INDIVIDUAL, PSEUDO)
    column = pl.Series("uscc", [INDIVIDUAL, COMPANY, None, INDIVIDUAL])
    keyed = entity_key_series(column, PSEUDO).to_list()
    assert keyed == [PSEUDO.pseudonym(INDIVIDUAL), COMPANY, None, PSEUDO.pseudonym(INDIVIDUAL)]
