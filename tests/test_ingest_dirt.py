"""Ingest against the generator's documented dirt: exactly the bad rows are quarantined."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows.ingest import ingest_file
from pdo.sources.tables import SOURCE_TABLES

QUARANTINED_KINDS = {"duplicate_row", "invalid_uscc_check", "unparsable_value"}


@pytest.fixture(scope="module")
def delivery(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pdo.gen import generate

    out = tmp_path_factory.mktemp("delivery") / "city"
    generate(out, enterprises=400, seed=11, progress=False)
    return out


def _expected_rows(dirt: dict, file_name: str, required: set[str]) -> set[int]:
    rows = set()
    for item in dirt["files"].get(file_name, []):
        if item["kind"] in QUARANTINED_KINDS or (
            item["kind"] == "missing_value" and item["column"] in required
        ):
            rows.add(item["row"])
    return rows


@pytest.mark.parametrize("table", SOURCE_TABLES, ids=lambda t: t.name)
def test_quarantine_is_exactly_the_documented_dirt(delivery: Path, table) -> None:
    dirt = json.loads((delivery / "dirt.json").read_text(encoding="utf-8"))
    required = {c.name for c in table.columns if c.required}
    result = ingest_file(delivery / table.file_name, table)
    assert result.reconciles
    quarantined = set(result.quarantine["source_row"].to_list())
    assert quarantined == _expected_rows(dirt, table.file_name, required)
    assert all(r for r in result.quarantine["reason"].to_list())


def test_normalizable_dirt_is_kept(delivery: Path) -> None:
    """Full-width digits and mixed date formats are repaired, not quarantined."""
    dirt = json.loads((delivery / "dirt.json").read_text(encoding="utf-8"))
    repaired = {
        k: v for k, v in dirt["counts"].items() if k in ("full_width_digits", "mixed_date_format")
    }
    assert all(n > 0 for n in repaired.values())
