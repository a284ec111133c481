"""Ingest normalizes what departments really send and quarantines the rest, with reasons."""

from __future__ import annotations

import polars as pl
import pytest

from flows.ingest import ROW, SourceFileError, ingest_file, normalize, read_as_text
from pdo.privacy.checksums import uscc_check_char
from pdo.sources.tables import PENALTIES, TAX_CREDIT


def _uscc(body: str) -> str:
    return body + uscc_check_char(body)


GOOD = _uscc("91110105MA01ABCDE")


def _frame(rows: list[dict[str, str | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows, schema=dict.fromkeys(TAX_CREDIT.column_names, pl.String)
    ).with_row_index(ROW, offset=1)


@pytest.mark.parametrize(
    ("value", "fen"),
    [
        ("12.5", 1250),
        ("1,000.05", 100005),
        ("０", 0),
        ("3", 300),
        ("１２.３４", 1234),
        ("-3.1", -310),
    ],
)
def test_decimal_to_fen(value: str, fen: int) -> None:
    r = normalize(
        _frame([{"uscc": GOOD, "year": "2024", "grade": "A", "tax_paid": value}]), TAX_CREDIT
    )
    assert r.clean["tax_paid"].to_list() == [fen]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (
            {"uscc": GOOD, "year": "2024", "grade": "A", "tax_paid": "约五千"},
            "tax_paid: cannot parse",
        ),
        (
            {"uscc": None, "year": "2024", "grade": "A", "tax_paid": "1"},
            "uscc: required value missing",
        ),
        ({"uscc": GOOD, "year": "二〇二四", "grade": "A", "tax_paid": "1"}, "year: cannot parse"),
    ],
)
def test_bad_rows_are_quarantined_with_reason(row: dict[str, str | None], reason: str) -> None:
    ok = {"uscc": GOOD, "year": "2023", "grade": "B", "tax_paid": "1"}
    r = normalize(_frame([ok, row]), TAX_CREDIT)
    assert r.clean.height == 1 and r.quarantine.height == 1 and r.reconciles
    assert r.quarantine[ROW].to_list() == [2]
    assert reason in r.quarantine["reason"][0]


def test_full_width_uscc_normalizes_and_duplicates_are_quarantined() -> None:
    full_width = GOOD.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    rows = [
        {"uscc": full_width, "year": "2024", "grade": "A", "tax_paid": "1"},
        {"uscc": GOOD, "year": "2024", "grade": "A", "tax_paid": "1"},
    ]
    r = normalize(_frame(rows), TAX_CREDIT)
    assert r.clean["uscc"].to_list() == [GOOD]
    assert "duplicate_row" in r.quarantine["reason"][0]


def _penalty(decided_on: str) -> pl.DataFrame:
    row = {
        "case_no": "X1",
        "uscc": GOOD,
        "decided_on": decided_on,
        "published_on": None,
        "authority": "a",
        "amount": "1",
        "summary": "s",
    }
    schema = dict.fromkeys(PENALTIES.column_names, pl.String)
    return pl.DataFrame([row], schema=schema).with_row_index(ROW, offset=1)


@pytest.mark.parametrize(
    "raw", ["2025-03-07", "2025/3/7", "2025年3月7日", "20250307", "２０２５-０３-０７"]
)
def test_mixed_date_formats(raw: str) -> None:
    import datetime as dt

    r = normalize(_penalty(raw), PENALTIES)
    assert r.clean["decided_on"].to_list() == [dt.date(2025, 3, 7)]


def test_impossible_date_is_quarantined() -> None:
    r = normalize(_penalty("2025-13-45"), PENALTIES)
    assert r.clean.height == 0 and "decided_on: cannot parse as date" in r.quarantine["reason"][0]


def test_wrong_encoding_and_missing_columns_are_clear_errors(tmp_path) -> None:
    path = tmp_path / TAX_CREDIT.file_name
    path.write_bytes(b"uscc,year,grade,tax_paid\n" + "统一,2024,A,1\n".encode())
    with pytest.raises(SourceFileError, match="not valid gbk"):
        read_as_text(path, TAX_CREDIT)
    path.write_bytes("uscc,year\n1,2\n".encode("gbk"))
    with pytest.raises(SourceFileError, match="missing columns"):
        read_as_text(path, TAX_CREDIT)


def test_a_parquet_delivery_that_is_cut_or_lacks_columns_is_a_clear_error(tmp_path) -> None:
    from pdo.sources.tables import UTILITY_PAYMENTS

    path = tmp_path / UTILITY_PAYMENTS.file_name
    rows = {c: ["1"] * 3 for c in UTILITY_PAYMENTS.column_names}
    pl.DataFrame(rows).write_parquet(path)
    assert ingest_file(path, UTILITY_PAYMENTS).rows_in == 3
    path.write_bytes(path.read_bytes()[:-20])  # the footer cut off
    with pytest.raises(SourceFileError, match=f"{path.name}: cannot be read"):
        ingest_file(path, UTILITY_PAYMENTS)
    pl.DataFrame(rows).drop("month").write_parquet(path)
    with pytest.raises(SourceFileError, match=r"missing columns \['month'\]"):
        ingest_file(path, UTILITY_PAYMENTS)


def test_xlsx_rows_continue_across_sheets(tmp_path) -> None:
    from openpyxl import Workbook

    from pdo.sources.tables import SOCIAL_INSURANCE

    wb = Workbook()
    first = wb.active
    second = wb.create_sheet("续表1")
    for sheet, months in ((first, ("2026-01", "2026-02")), (second, ("2026-03",))):
        sheet.append(SOCIAL_INSURANCE.column_names)
        for m in months:
            sheet.append([GOOD, m, 12])
    path = tmp_path / SOCIAL_INSURANCE.file_name
    wb.save(path)
    frame = read_as_text(path, SOCIAL_INSURANCE)
    assert frame["month"].to_list() == ["2026-01", "2026-02", "2026-03"]
    assert frame[ROW].to_list() == [1, 2, 3]
    assert frame["insured_headcount"].to_list() == ["12", "12", "12"]


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_an_error_cell_is_quarantined_as_its_csv_twin_is(tmp_path, fmt: str) -> None:
    """A failed formula (#DIV/0!, #N/A) is a value that is not a number, in either format; an
    XLSX read used to turn it into an empty cell and keep the row with the amount lost."""
    import dataclasses

    from openpyxl import Workbook

    from pdo.sources.tables import BANK_LOANS

    table = dataclasses.replace(BANK_LOANS, file_format=fmt, file_name=f"loans.{fmt}")
    rows = [
        ["HZB2024010000001", GOOD, "2024-01-05", "#DIV/0!", "0"],
        ["HZB2024020000002", GOOD, "2024-02-05", "#N/A", "1"],
        ["HZB2024030000003", GOOD, "2024-03-05", "1200.50", "0"],
    ]
    path = tmp_path / table.file_name
    if fmt == "xlsx":
        wb = Workbook()
        ws = wb.active
        ws.append(BANK_LOANS.column_names)
        for row in rows:
            ws.append(row)
        for ref in ("D2", "D3"):  # the amounts as the error values a formula left
            ws[ref].data_type = "e"
        wb.save(path)
    else:
        lines = [BANK_LOANS.column_names, *rows]
        path.write_text("".join(",".join(line) + "\n" for line in lines), encoding="utf-8")
    result = ingest_file(path, table)
    assert (result.rows_in, result.clean.height, result.quarantine.height) == (3, 1, 2)
    assert result.quarantine["reason"].to_list() == ["amount: cannot parse as decimal"] * 2
    assert result.quarantine["source_row"].to_list() == [1, 2]


def test_a_parquet_instant_reads_as_the_beijing_day_it_names(tmp_path) -> None:
    """pandas and Arrow write a timestamp with a time zone in UTC: a Beijing midnight is
    16:00 the day before there, and reads as its Beijing day (as a database's timestamptz);
    a UTC midnight is 08:00 in Beijing, not a plain date."""
    import dataclasses
    import datetime as dt
    from zoneinfo import ZoneInfo

    from pdo.sources.tables import ABNORMAL_OPERATIONS

    table = dataclasses.replace(ABNORMAL_OPERATIONS, file_format="parquet", file_name="ab.parquet")
    beijing = ZoneInfo("Asia/Shanghai")
    listed = [
        dt.datetime(2026, 1, 31, tzinfo=beijing),
        dt.datetime(1988, 5, 1, tzinfo=beijing),  # daylight saving: +09
        dt.datetime(2026, 1, 31, tzinfo=dt.UTC),
    ]
    frame = pl.DataFrame(
        {
            "uscc": [GOOD] * 3,
            "listed_on": pl.Series(listed).dt.convert_time_zone("UTC"),
            "reason": ["无法联系"] * 3,
            "removed_on": pl.Series([None] * 3, dtype=pl.Date),
        }
    )
    path = tmp_path / table.file_name
    frame.write_parquet(path)
    result = ingest_file(path, table)
    assert result.clean["listed_on"].to_list() == [dt.date(2026, 1, 31), dt.date(1988, 5, 1)]
    assert result.quarantine["reason"].to_list() == ["listed_on: cannot parse as date"]


@pytest.mark.parametrize("stored", ["date", "datetime", "string"])
def test_a_typed_parquet_month_reads_as_its_month(tmp_path, stored: str) -> None:
    """A department's Parquet may type a month column as a date or a timestamp (the first of
    the month): read as the month, as spreadsheet and database cells are; every row used to
    be quarantined. A text column is read as delivered ("2026-01-01" is not a month)."""
    import dataclasses
    import datetime as dt

    from pdo.sources.tables import SOCIAL_INSURANCE

    table = dataclasses.replace(SOCIAL_INSURANCE, file_format="parquet", file_name="si.parquet")
    firsts = [dt.date(2026, 1, 1), dt.date(2026, 2, 1)]
    months = {
        "date": pl.Series("month", firsts, dtype=pl.Date),
        "datetime": pl.Series("month", firsts, dtype=pl.Date).cast(pl.Datetime("us")),
        "string": pl.Series("month", [d.isoformat() for d in firsts]),
    }[stored]
    frame = pl.DataFrame(
        {"uscc": [GOOD, GOOD], "month": months, "insured_headcount": pl.Series([12, 13])}
    )
    path = tmp_path / table.file_name
    frame.write_parquet(path)
    result = ingest_file(path, table)
    if stored == "string":
        assert result.clean.height == 0
        assert set(result.quarantine["reason"]) == {"month: cannot parse as month"}
    else:
        assert result.quarantine.height == 0
        assert result.clean["month"].cast(pl.String).to_list() == ["2026-01", "2026-02"]


@pytest.mark.parametrize(
    ("extra", "refused"),
    [(["month_2"], False), (["month_1"], False), (["month", "month_1"], True)],
)
def test_an_extra_column_named_like_a_renamed_repeat_is_read(
    tmp_path, extra: list[str], refused: bool
) -> None:
    """The reader names a repeated header "month_1"; a sheet's own column may be named so too:
    only a name the header row really repeats is refused."""
    from openpyxl import Workbook

    from pdo.sources.tables import SOCIAL_INSURANCE

    wb = Workbook()
    wb.active.append([*SOCIAL_INSURANCE.column_names, *extra])
    wb.active.append([GOOD, "2026-01", 12, *(["x"] * len(extra))])
    path = tmp_path / SOCIAL_INSURANCE.file_name
    wb.save(path)
    if refused:
        with pytest.raises(SourceFileError, match=r"the header names \['month'\] more than once"):
            read_as_text(path, SOCIAL_INSURANCE)
    else:
        assert read_as_text(path, SOCIAL_INSURANCE)["month"].to_list() == ["2026-01"]


def test_a_parquet_column_that_is_not_text_is_refused_in_one_line(tmp_path) -> None:
    import dataclasses

    from pdo.sources.tables import SOCIAL_INSURANCE

    table = dataclasses.replace(SOCIAL_INSURANCE, file_format="parquet", file_name="si.parquet")
    path = tmp_path / table.file_name
    pl.DataFrame({"uscc": [[GOOD]], "month": ["2026-01"], "insured_headcount": [12]}).write_parquet(
        path
    )
    with pytest.raises(SourceFileError) as refused:
        ingest_file(path, table)
    assert str(refused.value).startswith("si.parquet: cannot be read (InvalidOperationError: ")
    assert "\n" not in str(refused.value) and GOOD not in str(refused.value)


def test_checksums_are_left_to_the_raw_suite() -> None:
    """Ingest parses; the GX raw suite quarantines a wrong check character, naming the check."""
    import datetime as dt

    from flows.validate import validate_raw
    from pdo.validation.runner import RunInputs

    bad = {"uscc": GOOD[:-1] + ("0" if GOOD[-1] != "0" else "1"), "year": "2024", "grade": "A"}
    ok = {"uscc": GOOD, "year": "2023", "grade": "B", "tax_paid": "1"}
    r = normalize(_frame([ok, {**bad, "tax_paid": "1"}]), TAX_CREDIT)
    assert r.clean.height == 2 and r.quarantine.height == 0
    checked = validate_raw(r.clean, TAX_CREDIT, RunInputs(window=(dt.date(2026, 1, 1),) * 2))
    assert checked.reconciles and checked.passed.height == 1
    assert checked.quarantine["reason"].to_list() == ["expect_column_values_to_be_valid_uscc(uscc)"]
    assert checked.quarantine["source_row"].to_list() == [2]
