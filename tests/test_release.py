"""Record-level releases: the declared columns only, k and l enforced, withheld when impossible."""

from __future__ import annotations

import dataclasses

import polars as pl
import pytest

from flows.desensitize import desensitize
from flows.ingest import ingest_file
from pdo.privacy.analyzer import build_analyzer
from pdo.privacy.fastscan import FastScanner
from pdo.privacy.pseudonym import Pseudonymizer
from pdo.privacy.risk import QuasiIdentifier, assess, suppress
from pdo.sources.contract import ContractError, ReleaseRule, check_contract
from pdo.sources.tables import ENTERPRISE_REGISTRY

PSEUDO = Pseudonymizer("test-key", b"k" * 32)
RULE = ENTERPRISE_REGISTRY.release
assert RULE is not None


@pytest.fixture(scope="module")
def scanner(tmp_path_factory: pytest.TempPathFactory) -> FastScanner:
    return FastScanner(build_analyzer(tmp_path_factory.mktemp("models")), ner=True)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    from pdo.gen import generate

    out = tmp_path_factory.mktemp("release") / "city"
    generate(out, enterprises=600, seed=9, progress=False)
    return ingest_file(out / ENTERPRISE_REGISTRY.file_name, ENTERPRISE_REGISTRY).clean


def test_release_meets_its_rule_by_an_independent_count(registry, scanner) -> None:
    result = desensitize(registry, ENTERPRISE_REGISTRY, PSEUDO, scanner)
    release = result.release
    assert release is not None
    assert release.columns == list(RULE.columns)
    assert not {"uscc", "name", "legal_rep_name", "legal_rep_id", "address"} & set(release.columns)
    qis = [q.column for q in RULE.quasi_identifiers]
    check = assess(release, qis, ["status"], k_target=RULE.k)
    assert check.k >= RULE.k and check.l["status"] >= RULE.l
    risk = result.risk
    assert risk["enforced"] and risk["k"] == check.k and risk["rows"] == release.height
    assert risk["rows_in"] == result.frame.height == release.height + risk["rows_suppressed"]
    assert risk["rows_suppressed"] <= RULE.max_suppression * risk["rows_in"]
    assert risk["before"]["k"] < RULE.k  # the desensitized zone alone would not do


def test_release_is_the_same_on_a_rerun(registry, scanner) -> None:
    first = desensitize(registry, ENTERPRISE_REGISTRY, PSEUDO, scanner).release
    again = desensitize(registry, ENTERPRISE_REGISTRY, PSEUDO, scanner).release
    assert first is not None and again is not None and first.equals(again)


def test_too_few_records_withhold_the_release_without_failing(registry, scanner) -> None:
    result = desensitize(registry.head(3), ENTERPRISE_REGISTRY, PSEUDO, scanner)
    assert result.release is None and result.frame.height == 3
    assert "k=5, l=2 not reachable" in result.risk["release_withheld"]
    assert result.risk["k"] < RULE.k  # the report shows the unreleased frame's risk


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"columns": (*RULE.columns, "legal_rep_name")}, "personal information"),
        ({"columns": (*RULE.columns, "nonexistent")}, "unknown columns"),
        ({"quasi_identifiers": RULE.quasi_identifiers[1:]}, "hierarchies for"),
        (
            {"quasi_identifiers": (*RULE.quasi_identifiers, QuasiIdentifier("status", suppress()))},
            "hierarchies for",
        ),
        ({"columns": tuple(c for c in RULE.columns if c != "status")}, "sensitive column"),
    ],
)
def test_contract_refuses_a_bad_release_rule(change: dict, problem: str) -> None:
    rule = dataclasses.replace(RULE, **change)
    if "columns" in change and "quasi_identifiers" not in change:
        released = set(rule.columns)
        rule = dataclasses.replace(
            rule, quasi_identifiers=tuple(q for q in RULE.quasi_identifiers if q.column in released)
        )
    bad = dataclasses.replace(ENTERPRISE_REGISTRY, release=rule)
    with pytest.raises(ContractError, match=problem):
        check_contract(bad)


def test_the_declared_release_rule_is_valid() -> None:
    check_contract(ENTERPRISE_REGISTRY)
    assert isinstance(RULE, ReleaseRule) and RULE.k >= 5
