"""Hostile and broken delivered files (issue 11 item 2).

Each file is either refused with a SourceFileError that names the problem (and never a personal
value from the file), or read with its bad rows quarantined with a reason, and then every data
row of the file is accounted for: kept + quarantined = the rows the file holds. Nothing leaves
as a bare UnicodeDecodeError, KeyError, BadZipFile or MemoryError. Exports (batch files,
settlement statements) never write a cell a spreadsheet would run.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import struct
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import polars as pl
import pytest
from openpyxl import Workbook, load_workbook

from flows.ingest import ROW, IngestResult, SourceFileError, ingest_file, normalize
from flows.validate import validate_raw
from pdo.exports import csv_bytes, xlsx_bytes
from pdo.privacy.checksums import resident_id_check_char
from pdo.sources.contract import ContractError, SourceTable
from pdo.sources.tables import (
    BANK_LOANS,
    ENTERPRISE_REGISTRY,
    PENALTIES,
    SOCIAL_INSURANCE,
    TAX_CREDIT,
)
from pdo.validation.runner import RunInputs
from tests.test_ingest import GOOD, _frame, _uscc

RESIDENT_ID = "33010819900703497" + resident_id_check_char("33010819900703497")
MOBILE = "18688159135"
PERSONAL = (GOOD, RESIDENT_ID, MOBILE)  # no message may show these

LOANS = [
    ["HZB2024010000001", GOOD, "2024-01-05", "1000.00", "0"],
    ["HZB2024020000002", GOOD, "2024-02-05", "2500.50", "1"],
    ["HZB2024030000003", GOOD, "2024-03-05", "800", "0"],
]
REGISTRY_ROW = [
    GOOD,
    "杭州市萧山区宾记日用品经营部（个体工商户）",
    "宾佳",
    RESIDENT_ID,
    MOBILE,
    "杭州市萧山区齐齐哈尔路126号",
    "萧山区",
    "F",
    "52",
    "2.62",
    "2021-05-08",
    "存续",
]
TAX = [[GOOD, "2023", "A", "1200.00"], [GOOD, "2024", "B", "12345.67"]]
MONTHS = [[GOOD, "2026-01", 12], [GOOD, "2026-02", 13]]
FORMULAS = ['=HYPERLINK("http://x","y")', "+cmd", "-2+3", "@SUM(A1)"]


# ---------------------------------------------------------------------------------------------
# Building delivered files.


def _csv(header: list[str], rows: list[list[str]], eol: str = "\n") -> str:
    """CSV text quoted as spreadsheets write it, so only the damage a case adds is damage."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=eol)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _loans(eol: str = "\n", rows: list[list[str]] = LOANS) -> bytes:
    return _csv(BANK_LOANS.column_names, rows, eol).encode()


def _loans_with(column: str, value: str) -> bytes:
    """The loans with the second row's ``column`` replaced by ``value``."""
    rows = [list(r) for r in LOANS]
    rows[1][BANK_LOANS.column_names.index(column)] = value
    return _loans(rows=rows)


def _registry(encoding: str = "utf-8") -> bytes:
    return _csv(ENTERPRISE_REGISTRY.column_names, [REGISTRY_ROW]).encode(encoding)


def _tax(rows: list[list[str]] = TAX) -> bytes:
    return _csv(TAX_CREDIT.column_names, rows).encode("gbk")


def _penalties(rows: list[list[str]]) -> bytes:
    return _csv(PENALTIES.column_names, rows).encode()


def _workbook(
    *sheets: tuple[str, Sequence[Sequence[object]]], hidden: tuple[str, ...] = ()
) -> bytes:
    """An .xlsx holding these sheets in order (openpyxl, as departments' scripts write them)."""
    book = Workbook()
    book.remove(book.active)
    for title, rows in sheets:
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
        if title in hidden:
            sheet.sheet_state = "hidden"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _insurance(*rows: Sequence[object]) -> bytes:
    return _workbook(("参保人数", [SOCIAL_INSURANCE.column_names, *rows]))


def _with_part(xlsx: bytes, part: str, change: Callable[[bytes], bytes]) -> bytes:
    """The workbook with one zip part rewritten (re-compressed by zipfile)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(xlsx)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, change(data) if info.filename == part else data)
    return out.getvalue()


def _declaring_size(xlsx: bytes, part: str, size: int) -> bytes:
    """The workbook with the central directory declaring ``size`` uncompressed bytes for
    ``part``: what a crafted bomb shows a reader before anything is inflated."""
    data = bytearray(xlsx)
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        name_length = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46 : at + 46 + name_length] == part.encode():
            struct.pack_into("<I", data, at + 24, size)
        at = data.find(b"PK\x01\x02", at + 4)
    return bytes(data)


SHEET = "xl/worksheets/sheet1.xml"


def _bomb() -> bytes:
    """16 MiB of blanks in the sheet XML: the part deflates about 1,000 times (21 KB on disk)."""
    padding = b" " * (16 << 20)
    return _with_part(
        _insurance(*MONTHS),
        SHEET,
        lambda xml: xml.replace(b"<sheetData>", b"<sheetData>" + padding),
    )


def _cached_formulas() -> bytes:
    """Formula cells as Excel saves them, with the value it computed (openpyxl writes none)."""
    book = _insurance([GOOD, "2026-01", "=10+2"], [GOOD, "2026-02", "=SUM(1,2)"])
    return _with_part(
        book,
        SHEET,
        lambda xml: xml.replace(b"<f>10+2</f><v />", b"<f>10+2</f><v>12</v>").replace(
            b"<f>SUM(1,2)</f><v />", b"<f>SUM(1,2)</f><v>3</v>"
        ),
    )


def _text_formulas() -> bytes:
    """Formula-like text stored as text cells (what an export of user input looks like)."""
    book = Workbook()
    sheet = book.active
    sheet.append(PENALTIES.column_names)
    for i, value in enumerate(FORMULAS, start=1):
        sheet.append([f"C{i}", GOOD, "2025-01-01", None, value, "1", value])
    for cells in sheet.iter_rows():
        for cell in cells:
            if isinstance(cell.value, str):
                cell.data_type = "s"  # openpyxl would store "=…" as a formula
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------
# Files that must be refused, and what the message must say.


@dataclass(frozen=True)
class Refused:
    """A file ingest must refuse, and a regex its message must match."""

    table: SourceTable
    content: Callable[[], bytes]
    message: str


def _refused(case_id: str, table: SourceTable, content: Callable[[], bytes], message: str):
    return pytest.param(Refused(table, content, message), id=case_id)


_XLSX_BOOK = _insurance(*MONTHS)
_ZIP_BOMB = r"part 'xl/worksheets/sheet1.xml' would expand to [\d,]+ bytes .*zip bomb"

REFUSED = [
    # Encodings
    _refused(
        "gbk-file-declared-utf8",
        ENTERPRISE_REGISTRY,
        lambda: _registry("gbk"),
        r"not valid utf-8 text at byte \d+ \(line 2\)",
    ),
    _refused(
        "utf8-lines-in-a-gbk-file",
        TAX_CREDIT,
        lambda: _tax([*TAX, ["纳税人甲", "2022", "B", "1"]]) + f"{GOOD},2021,优良,1\n".encode(),
        r"line 5 is UTF-8 text in a file declared gbk \(mixed encodings\)",
    ),
    _refused(
        "gbk-lines-in-a-utf8-file",
        ENTERPRISE_REGISTRY,
        lambda: _registry() + ",".join(REGISTRY_ROW).encode("gbk") + b"\n",
        r"not valid utf-8 text at byte \d+ \(line 3\)",
    ),
    _refused(
        "utf8-bom-declared-gbk",
        TAX_CREDIT,
        lambda: b"\xef\xbb\xbf" + _csv(TAX_CREDIT.column_names, TAX).encode(),
        r"UTF-8 text \(byte-order mark\), not gbk",
    ),
    _refused(
        "utf16-with-bom",
        BANK_LOANS,
        lambda: _csv(BANK_LOANS.column_names, LOANS).encode("utf-16"),
        r"UTF-16 text \(byte-order mark\), not utf-8",
    ),
    _refused(
        "utf16-without-bom",
        BANK_LOANS,
        lambda: _csv(BANK_LOANS.column_names, LOANS).encode("utf-16-le"),
        r"NUL byte at byte 1 \(line 1\): UTF-16 text or a damaged file",
    ),
    # Truncation
    _refused(
        "cut-mid-row",
        BANK_LOANS,
        lambda: _loans()[:-9],
        r"no line break after the last line: the file looks cut off",
    ),
    _refused(
        "cut-inside-the-last-amount",  # "12345.67" → "123": it would parse, wrongly
        TAX_CREDIT,
        lambda: _tax()[:-6],
        r"no line break after the last line: the file looks cut off",
    ),
    _refused(
        "cut-mid-utf8-character",
        ENTERPRISE_REGISTRY,
        lambda: _registry()[: _registry().index("存续".encode()) + 4],
        r"ends in the middle of a utf-8 character: the file is cut off",
    ),
    _refused(
        "cut-mid-gbk-character",
        TAX_CREDIT,
        lambda: _tax() + f"{GOOD},2022,".encode() + "优".encode("gbk")[:1],
        r"ends in the middle of a gbk character: the file is cut off",
    ),
    # Nothing there
    _refused("empty-csv", BANK_LOANS, lambda: b"", r"the file is empty \(0 bytes\)"),
    _refused("empty-xlsx", SOCIAL_INSURANCE, lambda: b"", r"the file is empty \(0 bytes\)"),
    # Schema drift
    _refused(
        "renamed-column",
        BANK_LOANS,
        lambda: _loans().replace(b"uscc", "统一社会信用代码".encode(), 1),
        r"missing columns \['uscc'\]",
    ),
    _refused(
        "xlsx-missing-column",
        SOCIAL_INSURANCE,
        lambda: _workbook(("s", [["uscc", "month"], [GOOD, "2026-01"]])),
        r"sheet 's': missing columns \['insured_headcount'\]",
    ),
    _refused(
        "column-named-twice",
        BANK_LOANS,
        lambda: _csv([*BANK_LOANS.column_names, "uscc"], [[*r, "X"] for r in LOANS]).encode(),
        r"the header names \['uscc'\] more than once",
    ),
    _refused(
        "xlsx-column-named-twice",
        SOCIAL_INSURANCE,
        lambda: _workbook(("s", [[*SOCIAL_INSURANCE.column_names, "uscc"], [*MONTHS[0], "X"]])),
        r"sheet 's': the header names \['uscc'\] more than once",
    ),
    # Multi-sheet workbooks
    _refused(
        "notes-sheet-before-the-data",
        SOCIAL_INSURANCE,
        lambda: _workbook(
            ("填表说明", [["本表由人社局按月报送"], ["口径：月末参保人数"]]),
            ("数据", [SOCIAL_INSURANCE.column_names, *MONTHS]),
        ),
        r"sheet '填表说明' holds none of the table's columns",
    ),
    _refused(
        "hidden-sheet-with-rows",
        SOCIAL_INSURANCE,
        lambda: _workbook(
            ("数据", [SOCIAL_INSURANCE.column_names, *MONTHS]),
            ("旧数据", [SOCIAL_INSURANCE.column_names, [GOOD, "2025-01", 99]]),
            hidden=("旧数据",),
        ),
        r"sheet '旧数据' is hidden but holds the table's columns",
    ),
    # Not a workbook, or one that would not fit in memory
    _refused(
        "zip-bomb-by-ratio",
        SOCIAL_INSURANCE,
        _bomb,
        _ZIP_BOMB,
    ),
    _refused(
        "zip-bomb-by-declared-size",
        SOCIAL_INSURANCE,
        lambda: _declaring_size(_XLSX_BOOK, SHEET, 0xFFFF_FFF0),
        _ZIP_BOMB,
    ),
    _refused(
        "csv-named-xlsx",
        SOCIAL_INSURANCE,
        lambda: _csv(SOCIAL_INSURANCE.column_names, [[GOOD, "2026-01", "1"]]).encode(),
        r"not an \.xlsx workbook \(no zip directory",
    ),
    _refused(
        "legacy-xls-named-xlsx",
        SOCIAL_INSURANCE,
        lambda: bytes.fromhex("D0CF11E0A1B11AE1") + bytes(504),
        r"a legacy \.xls or password-protected workbook, not \.xlsx",
    ),
    _refused(
        "xlsx-cut-off",
        SOCIAL_INSURANCE,
        lambda: _XLSX_BOOK[: len(_XLSX_BOOK) // 2],
        r"not an \.xlsx workbook \(no zip directory: cut off",
    ),
    # Bytes no CSV holds, quotes that do not pair up
    _refused(
        "nul-byte-in-a-cell",
        BANK_LOANS,
        lambda: _loans().replace(b"HZB2024020000002", b"L\x002"),
        r"NUL byte at byte \d+ \(line 3\)",
    ),
    _refused(
        "unclosed-quote",  # polars' own message would quote the rest of the file
        ENTERPRISE_REGISTRY,
        lambda: _registry() + b'"' + ",".join(REGISTRY_ROW).encode() + b"\n" + _registry()[-80:],
        r"quotes do not pair up .*\(from line 3\)",
    ),
    _refused(
        "stray-quote-in-a-field",
        ENTERPRISE_REGISTRY,
        lambda: _registry().replace("宾佳".encode(), '宾"佳'.encode()),
        r"quotes do not pair up",
    ),
    _refused(
        "more-fields-than-the-header",
        ENTERPRISE_REGISTRY,
        lambda: _registry() + (",".join(REGISTRY_ROW) + ",多余\n").encode(),
        r"a row has more fields than the header \(from line 3\)",
    ),
]


@pytest.mark.parametrize("case", REFUSED)
def test_refused_with_a_message_naming_the_problem(case: Refused, tmp_path: Path) -> None:
    path = tmp_path / case.table.file_name
    path.write_bytes(case.content())
    with pytest.raises(SourceFileError, match=case.message) as refused:
        ingest_file(path, case.table)
    message = str(refused.value)
    assert message.startswith(f"{case.table.file_name}: ")
    assert not [v for v in PERSONAL if v in message]


# ---------------------------------------------------------------------------------------------
# Files that are read: the rows kept, the rows quarantined and why, all rows accounted for.


@dataclass(frozen=True)
class Read:
    """A file ingest reads: rows kept, rows quarantined (source row → part of the reason)."""

    table: SourceTable
    content: Callable[[], bytes]
    kept: int
    quarantined: dict[int, str]
    check: Callable[[IngestResult], object] | None = None  # what else the user relies on


def _read(
    case_id: str,
    table: SourceTable,
    content: Callable[[], bytes],
    kept: int,
    quarantined: dict[int, str],
    check: Callable[[IngestResult], object] | None = None,
):
    return pytest.param(Read(table, content, kept, quarantined, check), id=case_id)


def _equals(name: str, values: list[object]) -> Callable[[IngestResult], None]:
    def check(result: IngestResult) -> None:
        assert result.clean[name].to_list() == values

    return check


def _loan_amounts(result: IngestResult) -> None:
    assert result.clean["loan_id"].to_list() == [
        "HZB2024010000001",
        "HZB2024020000002",
        "HZB2024030000003",
    ]
    assert result.clean["amount"].to_list() == [100000, 250050, 80000]
    assert result.clean["defaulted"].to_list() == [0, 1, 0]


def _only_contract_columns(result: IngestResult) -> None:
    assert result.clean.columns == [ROW, *BANK_LOANS.column_names]
    _loan_amounts(result)


def _ten_mib_kept_whole(result: IngestResult) -> None:
    assert result.clean["summary"].str.len_bytes().to_list() == [10 << 20, 5]


def _formulas_kept_as_text(result: IngestResult) -> None:
    assert result.clean["authority"].to_list() == FORMULAS
    assert result.clean["summary"].to_list() == FORMULAS


READ = [
    # Encodings
    _read("utf8-bom", BANK_LOANS, lambda: b"\xef\xbb\xbf" + _loans(), 3, {}, _loan_amounts),
    _read(
        "gbk-text-that-is-also-valid-utf8",  # 统一 in GBK is two valid UTF-8 sequences
        TAX_CREDIT,
        lambda: _tax([[GOOD, "2023", "A", "1"], ["统一", "2024", "A", "1"]]),
        2,
        {},
        _equals("uscc", [GOOD, "统一"]),
    ),
    # Empty
    _read("header-only-csv", BANK_LOANS, lambda: _loans(rows=[]), 0, {}),
    _read("header-only-xlsx", SOCIAL_INSURANCE, _insurance, 0, {}),
    # Schema drift
    _read(
        "extra-column",
        BANK_LOANS,
        lambda: _csv(["备注", *BANK_LOANS.column_names], [["x", *r] for r in LOANS]).encode(),
        3,
        {},
        _only_contract_columns,
    ),
    _read(
        "reordered-columns",
        BANK_LOANS,
        lambda: _csv(BANK_LOANS.column_names[::-1], [r[::-1] for r in LOANS]).encode(),
        3,
        {},
        _loan_amounts,
    ),
    # Wrong types: quarantined with the column named, never guessed
    _read(
        "text-in-an-integer",
        BANK_LOANS,
        lambda: _loans_with("defaulted", "是"),
        2,
        {2: "defaulted: cannot parse as integer"},
    ),
    _read(
        "integer-overflow",
        BANK_LOANS,
        lambda: _loans_with("defaulted", "9223372036854775808"),
        2,
        {2: "defaulted: cannot parse as integer"},
    ),
    _read(
        "currency-sign-in-an-amount",
        BANK_LOANS,
        lambda: _loans_with("amount", "￥2,500.50"),
        2,
        {2: "amount: cannot parse as decimal"},
    ),
    _read(
        "exponent-in-an-amount",
        BANK_LOANS,
        lambda: _loans_with("amount", "2.5e3"),
        2,
        {2: "amount: cannot parse as decimal"},
    ),
    _read(
        "three-decimals-in-an-amount",
        BANK_LOANS,
        lambda: _loans_with("amount", "2500.505"),
        2,
        {2: "amount: cannot parse as decimal"},
    ),
    _read(
        "formula-in-an-amount",
        BANK_LOANS,
        lambda: _loans_with("amount", "-2+3"),
        2,
        {2: "amount: cannot parse as decimal"},
    ),
    _read(
        "february-30",
        BANK_LOANS,
        lambda: _loans_with("issued_on", "2024-02-30"),
        2,
        {2: "issued_on: cannot parse as date"},
    ),
    _read(
        "date-with-a-time",
        BANK_LOANS,
        lambda: _loans_with("issued_on", "2024-02-05 08:00"),
        2,
        {2: "issued_on: cannot parse as date"},
    ),
    _read(
        "amount-past-int64-fen",
        BANK_LOANS,
        lambda: _loans_with("amount", "99999999999999999"),
        2,
        {2: "amount: cannot parse as decimal"},
    ),
    _read(
        "loan-id-not-in-its-format",  # full-width digits are NFKC'd first, then in format
        BANK_LOANS,
        lambda: _loans_with("loan_id", "贷款2024020000002").replace(
            b"HZB2024030000003", "HZB２０２４０３００００００３".encode()
        ),
        2,
        {2: "loan_id: not in the format of its contract"},
        _equals("loan_id", ["HZB2024010000001", "HZB2024030000003"]),
    ),
    _read(
        "short-row",  # polars pads it; the missing required value quarantines it
        BANK_LOANS,
        lambda: _loans().replace(b",2500.50,1\n", b"\n"),
        2,
        {2: "defaulted: required value missing"},
    ),
    # Duplicates
    _read(
        "duplicate-row-padded-and-crlf",
        BANK_LOANS,
        lambda: _loans() + b" HZB2024030000003 ,\t" + GOOD.encode() + b",2024-03-05 , 800,0\r\n",
        3,
        {4: "duplicate_row: identical to an earlier row"},
    ),
    # A 10 MiB cell
    _read(
        "ten-mib-cell",
        PENALTIES,
        lambda: _penalties(
            [
                ["C1", GOOD, "2025-01-01", "", "a", "1", "x" * (10 << 20)],
                ["C2", GOOD, "2025-01-02", "", "a", "1", "short"],
            ]
        ),
        2,
        {},
        _ten_mib_kept_whole,
    ),
    # Formula injection: data, kept as text, never run
    _read(
        "formulas-in-csv-text-columns",
        PENALTIES,
        lambda: _penalties(
            [[f"C{i}", GOOD, "2025-01-01", "", v, "1", v] for i, v in enumerate(FORMULAS)]
        ),
        4,
        {},
        _formulas_kept_as_text,
    ),
    _read(
        "formulas-in-xlsx-text-cells",
        replace(PENALTIES, file_name="credit_penalties.xlsx", file_format="xlsx"),
        _text_formulas,
        4,
        {},
        _formulas_kept_as_text,
    ),
    _read(
        "xlsx-formula-cells-read-as-their-values",
        SOCIAL_INSURANCE,
        _cached_formulas,
        2,
        {},
        _equals("insured_headcount", [12, 3]),
    ),
    _read(
        "xlsx-month-as-excel-date-cells",  # typed as dates in Excel: calamine reads midnight
        SOCIAL_INSURANCE,
        lambda: _insurance(
            [GOOD, dt.date(2026, 1, 1), 12],
            [GOOD, dt.datetime(2026, 2, 1), 13],
            [GOOD, dt.date(2026, 3, 15), 14],  # a day, not a month
            [GOOD, dt.datetime(2026, 4, 1, 9, 30), 15],  # a time of day, not a month
        ),
        2,
        {3: "month: cannot parse as month", 4: "month: cannot parse as month"},
        _equals("month", ["2026-01", "2026-02"]),
    ),
    _read(
        "xlsx-dates-as-excel-date-cells",  # a loans table delivered as a workbook
        replace(BANK_LOANS, file_name="partner_bank_loan_outcomes.xlsx", file_format="xlsx"),
        lambda: _workbook(
            (
                "放款",
                [
                    BANK_LOANS.column_names,
                    ["HZB2024010000001", GOOD, dt.date(2024, 1, 5), "1000.00", 0],
                    ["HZB2024020000002", GOOD, dt.datetime(2024, 2, 5), "2500.50", 1],
                    # a time of day
                    ["HZB2024030000003", GOOD, dt.datetime(2024, 3, 5, 14, 0), "800", 0],
                ],
            )
        ),
        2,
        {3: "issued_on: cannot parse as date"},
        _equals("issued_on", [dt.date(2024, 1, 5), dt.date(2024, 2, 5)]),
    ),
    _read(
        "xlsx-formula-without-a-value",  # openpyxl saves none: an empty cell, not the formula
        SOCIAL_INSURANCE,
        lambda: _insurance(MONTHS[0], [GOOD, "2026-02", "=SUM(1,2)"]),
        1,
        {2: "insured_headcount: required value missing"},
    ),
    # Multi-sheet workbooks
    _read(
        "data-on-sheet-2",
        SOCIAL_INSURANCE,
        lambda: _workbook(("Sheet1", []), ("数据", [SOCIAL_INSURANCE.column_names, *MONTHS])),
        2,
        {},
        _equals("month", ["2026-01", "2026-02"]),
    ),
    _read(
        "two-data-sheets-in-different-column-orders",
        SOCIAL_INSURANCE,
        lambda: _workbook(
            ("一", [SOCIAL_INSURANCE.column_names, MONTHS[0]]),
            ("二", [SOCIAL_INSURANCE.column_names[::-1], MONTHS[1][::-1]]),
        ),
        2,
        {},
        _equals("insured_headcount", [12, 13]),
    ),
    _read(
        "hidden-drop-down-list-sheet",
        SOCIAL_INSURANCE,
        lambda: _workbook(
            ("数据", [SOCIAL_INSURANCE.column_names, *MONTHS]),
            ("下拉选项", [["正常"], ["注销"]]),
            hidden=("下拉选项",),
        ),
        2,
        {},
    ),
    # Line ends
    _read("crlf", BANK_LOANS, lambda: _loans("\r\n"), 3, {}, _loan_amounts),
    _read("cr-only", BANK_LOANS, lambda: _loans("\r"), 3, {}, _loan_amounts),
    _read(
        "mixed-line-ends",
        BANK_LOANS,
        lambda: _loans().replace(b"\n", b"\r\n", 2).replace(b"0\n", b"0\r", 1),
        3,
        {},
        _loan_amounts,
    ),
]


@pytest.mark.parametrize("case", READ)
def test_read_with_every_row_accounted_for(case: Read, tmp_path: Path) -> None:
    path = tmp_path / case.table.file_name
    path.write_bytes(case.content())
    result = ingest_file(path, case.table)
    assert result.rows_in == case.kept + len(case.quarantined)  # the data rows the file holds
    assert result.reconciles and result.clean.height == case.kept
    reasons = dict(zip(result.quarantine[ROW].to_list(), result.quarantine["reason"], strict=True))
    assert sorted(reasons) == sorted(case.quarantined)
    for row, why in case.quarantined.items():
        assert why in reasons[row]
        assert not [v for v in PERSONAL if v in reasons[row]]
    if case.check is not None:
        case.check(result)


# ---------------------------------------------------------------------------------------------
# What ingest leaves to the raw suites: check characters, and keys delivered twice.

WINDOW = RunInputs(window=(dt.date(2026, 1, 1), dt.date(2027, 1, 1)))
USCC_CHECK = "expect_column_values_to_be_valid_uscc(uscc)"
NOT_USCC = {
    "lower-case": GOOD.lower(),
    "letter-o-for-zero": GOOD.replace("0", "O", 1),
    "17-characters": GOOD[:-1],
    "19-characters": GOOD + "1",
    "check-character-of-another-code": _uscc("91110105MA01ABCDF")[:-1] + GOOD[-1],
    "resident-id-in-the-uscc-column": RESIDENT_ID,
    "mobile-in-the-uscc-column": MOBILE,
}


@pytest.fixture(scope="module")
def tax_suite_on_bad_codes() -> tuple[pl.DataFrame, dict[str, int]]:
    """One raw-suite run over a good row and one row per malformed code (GX starts slowly)."""
    rows: list[dict[str, str | None]] = [
        {"uscc": GOOD, "year": "2020", "grade": "A", "tax_paid": "1"}
    ]
    at: dict[str, int] = {}
    for i, (case_id, code) in enumerate(NOT_USCC.items()):
        rows.append({"uscc": code, "year": str(2021 + i), "grade": "A", "tax_paid": "1"})
        at[case_id] = len(rows)
    ingested = normalize(_frame(rows), TAX_CREDIT)
    assert ingested.clean.height == len(rows)  # ingest parses; the check is the suite's
    checked = validate_raw(ingested.clean, TAX_CREDIT, WINDOW)
    assert checked.reconciles and checked.passed[ROW].to_list() == [1]
    return checked.quarantine, at


@pytest.mark.parametrize("case_id", NOT_USCC)
def test_a_malformed_code_is_quarantined_by_the_raw_suite(
    tax_suite_on_bad_codes: tuple[pl.DataFrame, dict[str, int]], case_id: str
) -> None:
    quarantine, at = tax_suite_on_bad_codes
    (reason,) = quarantine.filter(pl.col(ROW) == at[case_id])["reason"].to_list()
    assert reason == USCC_CHECK  # names the check, never the value


def test_two_registry_rows_for_one_enterprise_are_flagged() -> None:
    """The registry's key repeated with other values: both rows are kept (neither is known to
    be right) and the raw suite warns; identical repeats are ingest's (duplicate_row)."""
    schema = dict.fromkeys(ENTERPRISE_REGISTRY.column_names, pl.String)
    other = [*REGISTRY_ROW[:-1], "注销"]
    frame = pl.DataFrame([REGISTRY_ROW, other], schema=schema, orient="row")
    ingested = normalize(frame.with_row_index(ROW, offset=1), ENTERPRISE_REGISTRY)
    assert ingested.clean.height == 2
    run = validate_raw(ingested.clean, ENTERPRISE_REGISTRY, WINDOW).run
    assert "expect_column_values_to_be_unique(uscc)" in {w.reason for w in run.warnings}


def test_two_tax_grades_for_one_enterprise_and_year_are_flagged() -> None:
    rows: list[dict[str, str | None]] = [
        {"uscc": GOOD, "year": "2024", "grade": g, "tax_paid": "1"} for g in ("A", "D")
    ]
    checked = validate_raw(normalize(_frame(rows), TAX_CREDIT).clean, TAX_CREDIT, WINDOW)
    flagged = checked.quarantine.height or [w for w in checked.run.warnings if "unique" in w.reason]
    assert flagged


# ---------------------------------------------------------------------------------------------
# File names: contracts name bare files; odd names are read and named in messages.


@pytest.mark.parametrize(
    "file_name", ["../x.csv", "sub/x.csv", "/etc/passwd", "..\\x.csv", "..", ""]
)
def test_a_contract_file_name_cannot_leave_the_delivery_directory(file_name: str) -> None:
    with pytest.raises(ContractError, match="is not a bare file name"):
        replace(BANK_LOANS, file_name=file_name)


@pytest.mark.parametrize(
    "file_name",
    ["纳税信用（2024）ｔａｘ ☃.csv", "x\u202egpj.csv", "空 格 .csv", "e\u0301.csv", "-rf.csv"],
)
def test_odd_file_names_are_read_and_named(file_name: str, tmp_path: Path) -> None:
    table = replace(BANK_LOANS, file_name=file_name)
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / ".." / file_name  # a path through ".." is the file it names
    path.write_bytes(_loans())
    assert ingest_file(path, table).clean.height == 3
    path.write_bytes(b"")
    with pytest.raises(SourceFileError, match="empty") as refused:
        ingest_file(path, table)
    assert str(refused.value).startswith(file_name + ": ")


# ---------------------------------------------------------------------------------------------
# Exports: a formula-like value leaves escaped, as text, in CSV and in XLSX.

ESCAPED = [*FORMULAS, "\t=1+1", "\r=1+1"]


def _csv_cells(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def _xlsx_cells(data: bytes) -> list[list[tuple[object, str]]]:
    sheet = load_workbook(io.BytesIO(data)).active
    return [[(c.value, c.data_type) for c in row] for row in sheet.iter_rows()]


@pytest.mark.parametrize("value", ESCAPED)
@pytest.mark.parametrize("dtype", [pl.String, pl.Categorical], ids=["text", "categorical"])
def test_csv_export_escapes_a_formula(value: str, dtype: pl.DataType) -> None:
    frame = pl.DataFrame(
        {"银行 subscriber": [value], "n": [1]}, schema_overrides={"银行 subscriber": dtype}
    )
    assert _csv_cells(csv_bytes(frame))[1] == ["'" + value, "1"]


@pytest.mark.parametrize("value", ESCAPED)
@pytest.mark.parametrize("dtype", [pl.String, pl.Categorical], ids=["text", "categorical"])
def test_xlsx_export_escapes_a_formula(value: str, dtype: pl.DataType) -> None:
    frame = pl.DataFrame(
        {"银行 subscriber": [value], "n": [1]}, schema_overrides={"银行 subscriber": dtype}
    )
    shown = ("'" + value).replace("\r", "\n")  # XML reads a CR in text back as a LF
    assert _xlsx_cells(xlsx_bytes({"s": frame}))[1] == [(shown, "s"), (1, "n")]


def test_a_formula_in_a_column_name_is_escaped_too() -> None:
    frame = pl.DataFrame({'=HYPERLINK("http://x","y")': ["a"]})
    assert _csv_cells(csv_bytes(frame))[0] == ['\'=HYPERLINK("http://x","y")']
    assert _xlsx_cells(xlsx_bytes({"s": frame}))[0] == [('\'=HYPERLINK("http://x","y")', "s")]


def test_control_characters_do_not_break_an_xlsx_export() -> None:
    """XML cannot hold them (openpyxl refused the whole workbook): shown as U+FFFD instead."""
    frame = pl.DataFrame({"name": ["银行\x01\x1b甲"]})
    assert _xlsx_cells(xlsx_bytes({"s": frame}))[1] == [("银行\ufffd\ufffd甲", "s")]
    assert _csv_cells(csv_bytes(frame))[1] == ["银行\x01\x1b甲"]
