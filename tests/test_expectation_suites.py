"""The suites in expectations/ are reviewed like code: each parses, names what it covers, loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows.validate import EXPECTATIONS_DIR, applicable, load_suite
from pdo.sources.tables import SOURCE_TABLES
from pdo.validation.runner import RunInputs, Severity, resolve
from products.registry import PRODUCTS

SUITE_FILES = sorted(EXPECTATIONS_DIR.glob("*.json"))
TABLES = {t.name for t in SOURCE_TABLES}
PRODUCT_NAMES = {p.name for p in PRODUCTS}


def test_every_table_and_product_has_its_suites() -> None:
    names = {p.name for p in SUITE_FILES}
    for t in TABLES:
        assert f"{t}.raw.json" in names and f"{t}.desensitized.json" in names, t
    for p in PRODUCT_NAMES:
        assert f"{p}.product.json" in names, p


@pytest.mark.parametrize("path", SUITE_FILES, ids=lambda p: p.name)
def test_suite_parses_and_belongs_to_a_known_table_or_product(path: Path) -> None:
    spec = json.loads(path.read_text(encoding="utf-8"))
    owner, zone = path.name.removesuffix(".json").split(".")
    assert spec["name"] == f"{owner}.{zone}"
    if zone == "product":
        assert owner in PRODUCT_NAMES and spec["meta"]["product"] == owner
    else:
        assert zone in ("raw", "desensitized")
        assert owner in TABLES and spec["meta"]["table"] == owner
    assert spec["expectations"], "an empty suite passes everything"
    for config in spec["expectations"]:
        Severity((config.get("meta") or {}).get("severity", "blocking"))
        assert config["type"].startswith("expect_")


@pytest.mark.parametrize("path", SUITE_FILES, ids=lambda p: p.name)
def test_suite_loads_into_gx_with_every_expectation(path: Path) -> None:
    """GX silently drops unknown types; the loaded suite must keep every expectation."""
    import great_expectations as gx

    from pdo.validation.expectations import register

    register()
    owner, zone = path.name.removesuffix(".json").split(".")
    inputs = RunInputs(references={"enterprise_registry.uscc": {"X"}}, window=None)
    spec, _ = applicable(load_suite(owner, zone), inputs)
    configs = [
        c
        for c in spec["expectations"]
        if (c.get("meta") or {}).get("freshness") is None  # needs the run's window
    ]
    suite = gx.ExpectationSuite(name=spec["name"], expectations=resolve(configs, inputs))
    assert len(suite.expectations) == len(configs)
