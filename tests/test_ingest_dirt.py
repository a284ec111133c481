"""The generator's documented dirt: ingest and the raw suites quarantine exactly the bad rows."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest

from flows.ingest import ingest_file
from flows.validate import validate_raw
from pdo.sources.tables import SOURCE_TABLES
from pdo.validation.runner import RunInputs

QUARANTINED_KINDS = {"duplicate_row", "unparsable_value"}  # at ingest, by the contract
VALIDATION_KINDS = {"invalid_uscc_check", "invalid_resident_id_check"}  # by the raw suites


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


@pytest.mark.parametrize("table", SOURCE_TABLES, ids=lambda t: t.name)
def test_raw_suites_quarantine_exactly_the_checksum_dirt(delivery: Path, table) -> None:
    dirt = json.loads((delivery / "dirt.json").read_text(encoding="utf-8"))
    ingested = ingest_file(delivery / table.file_name, table)
    at_ingest = set(ingested.quarantine["source_row"].to_list())
    expected = {
        item["row"]
        for item in dirt["files"].get(table.file_name, [])
        if item["kind"] in VALIDATION_KINDS
    } - at_ingest
    if table.name == "enterprise_registry":
        assert expected  # the planted checksum dirt is there to be found
    window = (dt.date(2026, 1, 1), dt.date(2027, 1, 1))
    result = validate_raw(ingested.clean, table, RunInputs(window=window))
    assert result.reconciles and result.run.success
    assert set(result.quarantine["source_row"].to_list()) == expected
    reasons = set(result.quarantine["reason"].to_list())
    assert reasons <= {
        "expect_column_values_to_be_valid_uscc(uscc)",
        "expect_column_values_to_be_valid_resident_id(legal_rep_id)",
        "expect_column_values_to_be_valid_uscc(uscc); "
        "expect_column_values_to_be_valid_resident_id(legal_rep_id)",
    }
    if table.name != "enterprise_registry":  # no registry in this run: reference check skipped
        assert result.skipped == [
            "expect_column_values_to_be_in_set(uscc): enterprise_registry.uscc not in run"
        ]


MEDIAN_BOUNDED = {
    "enterprise_registry": "registered_capital",
    "tax_credit": "tax_paid",
    "social_insurance": "insured_headcount",
    "utility_payments": "amount_due",
    "penalties": "amount",
    "court_cases": "amount",
    "bank_loans": "amount",
}


@pytest.mark.parametrize(("name", "column"), sorted(MEDIAN_BOUNDED.items()))
def test_distribution_bounds_pass_on_delivered_data_and_flag_a_unit_error(
    delivery: Path, name: str, column: str
) -> None:
    """A key amount delivered in the wrong unit (×100: fen for yuan) shows as a warning."""
    table = next(t for t in SOURCE_TABLES if t.name == name)
    reason = f"expect_column_median_to_be_between({column})"
    window = (dt.date(2026, 1, 1), dt.date(2027, 1, 1))
    clean = ingest_file(delivery / table.file_name, table).clean
    as_delivered = validate_raw(clean, table, RunInputs(window=window)).run
    assert reason not in {w.reason for w in as_delivered.warnings}
    wrong_unit = clean.with_columns(clean[column] * 100)
    shifted = validate_raw(wrong_unit, table, RunInputs(window=window)).run
    assert shifted.success  # a warning: shown to the reviewer, never blocks or quarantines
    assert reason in {w.reason for w in shifted.warnings}


@pytest.mark.parametrize("name", ["social_insurance", "utility_payments"])
def test_a_month_after_the_authorization_is_quarantined_not_passed(
    delivery: Path, name: str
) -> None:
    """A mistyped future month (2062-06 for 2026-06) would re-date every product built on it."""
    table = next(t for t in SOURCE_TABLES if t.name == name)
    clean = ingest_file(delivery / table.file_name, table).clean
    typo = clean.head(1).with_columns(
        month=pl.lit("2062-06"), source_row=pl.lit(clean["source_row"].max() + 1, pl.UInt32)
    )
    window = (dt.date(2026, 1, 1), dt.date(2027, 1, 1))
    result = validate_raw(pl.concat([clean, typo]), table, RunInputs(window=window))
    assert result.reconciles and result.run.success
    assert result.quarantine["source_row"].to_list() == typo["source_row"].to_list()
    assert result.quarantine["reason"].to_list() == [
        "expect_column_values_to_be_month_not_after(month)"
    ]
    assert result.passed["month"].max() <= "2027-01"


@pytest.mark.parametrize("name", ["social_insurance", "utility_payments"])
def test_a_month_after_the_runs_month_is_quarantined_within_the_authorization(
    delivery: Path, name: str
) -> None:
    """Packaging refuses to date products by a month after the run's (Beijing time), so such a
    row is quarantined even while the grant still covers it, and the rest of the table goes on."""
    table = next(t for t in SOURCE_TABLES if t.name == name)
    clean = ingest_file(delivery / table.file_name, table).clean
    typo = clean.head(1).with_columns(
        month=pl.lit("2027-01"), source_row=pl.lit(clean["source_row"].max() + 1, pl.UInt32)
    )
    window = (dt.date(2026, 6, 1), dt.date(2027, 6, 1))
    december = dt.datetime(2026, 12, 31, 15, 30, tzinfo=dt.UTC)  # 23:30 on the 31st in Beijing
    delivered = pl.concat([clean, typo])
    result = validate_raw(delivered, table, RunInputs(window=window, run_at=december))
    assert result.reconciles and result.run.success
    assert result.quarantine["source_row"].to_list() == typo["source_row"].to_list()
    assert result.quarantine["reason"].to_list() == [
        "expect_column_values_to_be_month_not_after(month)"
    ]
    assert result.passed.height == clean.height
    january = december + dt.timedelta(hours=1)  # still December in UTC, January in Beijing
    assert validate_raw(delivered, table, RunInputs(window=window, run_at=january)).passed.equals(
        delivered
    )
