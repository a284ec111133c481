"""Ingest: read a department's file as delivered, normalize it, quarantine what cannot be parsed."""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from pdo.delivery.periods import BUSINESS_TZ
from pdo.sources.contract import ColumnType, SourceTable, matches_code_format
from pdo.sources.database import DatabaseSourceError, read_table_chunks

ROW = "source_row"


class SourceFileError(ValueError):
    """A delivered file cannot be read at all (wrong encoding, missing columns, unreadable)."""


@dataclass(frozen=True)
class IngestResult:
    """The parsed rows, the quarantined rows with reasons, and the reconciling counts."""

    clean: pl.DataFrame
    quarantine: pl.DataFrame
    rows_in: int
    file_sha256: str

    @property
    def reconciles(self) -> bool:
        return self.rows_in == self.clean.height + self.quarantine.height


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# Chinese text in UTF-8: 3-byte sequences for CJK radicals, punctuation and ideographs
# (U+2E80-U+9FFF) and full-width forms. GBK text is often valid UTF-8 by chance ("统一" is), but
# it reads as such characters next to never: none of the 21,626 CLUENER entity names, encoded
# in GBK, did. So a line of them is UTF-8, whatever the file declares.
_UTF8_WIDE = re.compile(rb"[\xe2-\xe9\xef][\x80-\xbf]{2}")
_CHINESE = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef]")
_GBK = ("gbk", "gb2312", "gb18030")
_ASCII = bytes(range(0x80))
# Byte-order marks, UTF-32 before UTF-16 (whose little-endian mark begins UTF-32's).
_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF8, "UTF-8"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


def _line_of(data: bytes, offset: int) -> int:
    """The 1-based line of a byte offset: messages name lines, never the values on them."""
    return data.count(b"\n", 0, offset) + 1


def _utf8_chinese_line(data: bytes) -> int | None:
    """The first line that reads as UTF-8 Chinese text, if any."""
    if _UTF8_WIDE.search(data.translate(None, _ASCII)) is None:
        return None  # no candidate even among the non-ASCII bytes alone: skip the slow scan
    pos = 0
    while (found := _UTF8_WIDE.search(data, pos)) is not None:
        start = data.rfind(b"\n", 0, found.start()) + 1
        end = data.find(b"\n", found.end())
        end = len(data) if end < 0 else end
        try:
            if _CHINESE.search(data[start:end].decode("utf-8")):
                return _line_of(data, start)
        except UnicodeDecodeError:
            pass
        pos = end
    return None


def _check_declared_encoding(path: Path, data: bytes, encoding: str) -> None:
    """GBK decodes UTF-8 bytes into mojibake without an error: refuse UTF-8 Chinese text in a
    file declared GBK, be it the whole file or some lines pasted in from elsewhere."""
    if encoding.lower() not in _GBK or data.isascii():
        return
    line = _utf8_chinese_line(data)
    if line is None:
        return
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise SourceFileError(
            f"{path.name}: line {line} is UTF-8 text in a file declared {encoding} "
            "(mixed encodings)"
        ) from None
    raise SourceFileError(f"{path.name}: not valid {encoding} text (the file is UTF-8)")


def _check_bytes(path: Path, data: bytes, encoding: str) -> None:
    """What no CSV in the declared encoding holds: nothing at all, another encoding's
    byte-order mark, NUL bytes (UTF-16 without a mark, or a damaged file)."""
    if not data:
        raise SourceFileError(f"{path.name}: the file is empty (0 bytes)")
    declared = codecs.lookup(encoding).name
    for bom, name in _BOMS:
        if data.startswith(bom) and not (name == "UTF-8" and declared == "utf-8"):
            raise SourceFileError(f"{path.name}: {name} text (byte-order mark), not {encoding}")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise SourceFileError(
            f"{path.name}: NUL byte at byte {nul} (line {_line_of(data, nul)}): "
            f"UTF-16 text or a damaged file, not {encoding}"
        )


# How codecs report bytes that stop in the middle of a character (UTF-8, GBK).
_CUT_OFF = ("unexpected end of data", "incomplete multibyte sequence")


def _decode(path: Path, data: bytes, encoding: str) -> str:
    """The text of a CSV that ends as complete files do; a cut names itself."""
    codec = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as exc:
        if exc.end == len(data) and exc.reason in _CUT_OFF:
            raise SourceFileError(
                f"{path.name}: ends in the middle of a {encoding} character: the file is cut off"
            ) from None
        raise SourceFileError(
            f"{path.name}: not valid {encoding} text at byte {exc.start} "
            f"(line {_line_of(data, exc.start)})"
        ) from None
    if not data.endswith((b"\n", b"\r")):
        raise SourceFileError(
            f"{path.name}: no line break after the last line: the file looks cut off "
            "(a complete export ends with one; ask the department to deliver it again)"
        )
    return text


def _first_bad_line(text: str) -> int | None:
    """Where Python's csv module (strict quoting) first finds a record it cannot read, or one
    wider than the header: the line the record starts on."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start = 1
    try:
        width = len(next(reader))
        while True:
            start = reader.line_num + 1
            row = next(reader)
            if len(row) > width:
                return start
    except StopIteration:
        return None
    except csv.Error:
        return start


def _csv_problem(text: str, message: str) -> str:
    """What polars refused in a CSV, in words, without quoting it: its message quotes the
    rows, personal data and all."""
    if "more fields" in message:
        what = "a row has more fields than the header"
    elif "escaped" in message or "malformed" in message:
        what = "quotes do not pair up (a quoted field left open, or a stray quote)"
    else:
        what = "not well-formed CSV"
    line = _first_bad_line(text)
    return what if line is None else f"{what} (from line {line})"


def _repeated_columns(table: SourceTable, columns: list[str], suffix: str) -> list[str]:
    """Contract columns the header names twice (the reader renamed the second with suffix)."""
    return [
        c
        for c in table.column_names
        if any(re.fullmatch(re.escape(c) + suffix, n) for n in columns)
    ]


def _read_csv(path: Path, table: SourceTable) -> pl.DataFrame:
    """A CSV's rows as text, or a SourceFileError naming what is wrong and on which line."""
    data = path.read_bytes()
    _check_bytes(path, data, table.encoding)
    if b"\r" in data and b"\n" not in data:  # classic Mac line ends; no encoding here uses \r
        data = data.replace(b"\r", b"\n")
    _check_declared_encoding(path, data, table.encoding)
    text = _decode(path, data, table.encoding)
    try:
        df = pl.read_csv(io.StringIO(text), infer_schema=False)
    except pl.exceptions.ComputeError as exc:
        raise SourceFileError(f"{path.name}: {_csv_problem(text, str(exc))}") from None
    repeated = _repeated_columns(table, df.columns, r"_duplicated_\d+")
    if repeated:
        raise SourceFileError(f"{path.name}: the header names {repeated} more than once")
    return df


# Apache POI's zip-bomb limits (ZipSecureFile): a part expands at most 100 times and to 4 GiB at
# most. calamine holds a sheet's whole XML in memory and trusts no size, so they are checked
# here on the sizes the zip's directory declares; parts under 10 MiB are harmless at any ratio.
XLSX_MAX_RATIO = 100
XLSX_MAX_PART_BYTES = 4 << 30
XLSX_RATIO_FROM_BYTES = 10 << 20
_OLE2 = bytes.fromhex("D0CF11E0A1B11AE1")  # the container of .xls and of encrypted workbooks


def _check_workbook(path: Path) -> None:
    """An .xlsx is a zip of XML parts: refuse what is not one, or would expand past memory."""
    with path.open("rb") as fh:
        head = fh.read(len(_OLE2))
    if not head:
        raise SourceFileError(f"{path.name}: the file is empty (0 bytes)")
    if head == _OLE2:
        raise SourceFileError(
            f"{path.name}: a legacy .xls or password-protected workbook, not .xlsx "
            "(save it as .xlsx without a password)"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            parts = archive.infolist()
    except zipfile.BadZipFile:
        raise SourceFileError(
            f"{path.name}: not an .xlsx workbook (no zip directory: cut off, or another format)"
        ) from None
    for part in parts:
        ratio = part.file_size / max(part.compress_size, 1)
        if part.file_size > XLSX_MAX_PART_BYTES or (
            part.file_size > XLSX_RATIO_FROM_BYTES and ratio > XLSX_MAX_RATIO
        ):
            raise SourceFileError(
                f"{path.name}: part {part.filename!r} would expand to {part.file_size:,} bytes "
                f"from {part.compress_size:,} ({ratio:,.0f}x): refused as a possible zip bomb"
            )


# An Excel date cell as calamine renders it (dates are numbers with a format in the workbook),
# and a database timestamp as its driver does (SQLite's text keeps zero microseconds).
# A midnight (a database's timestamp with time zone is read as Beijing's wall-clock time).
_AT_MIDNIGHT = r"[ T]00:00:00(?:\.0+)?"
_MIDNIGHT = rf"^(\d{{4}}-\d{{2}}-\d{{2}}){_AT_MIDNIGHT}$"
_FIRST_OF_MONTH_MIDNIGHT = rf"^(\d{{4}}-\d{{2}})-01{_AT_MIDNIGHT}$"
# A MONTH column stored as a date type (in a database or Parquet): the first of the month.
_FIRST_OF_MONTH = rf"^(\d{{4}}-\d{{2}})-01(?:{_AT_MIDNIGHT})?$"


def _calendar_cells(frame: pl.DataFrame, table: SourceTable) -> pl.DataFrame:
    """Date cells read as what the column holds: a DATE column's midnight as its date, a MONTH
    column's first of the month at midnight as its month. Any other time of day stays as read
    (and is quarantined as unparseable): it is not a plain date."""
    patterns = {ColumnType.DATE: _MIDNIGHT, ColumnType.MONTH: _FIRST_OF_MONTH_MIDNIGHT}
    return frame.with_columns(
        pl.col(c.name).str.replace(patterns[c.type], "${1}")
        for c in table.columns
        if c.type in patterns
    )


# Excel's error values as its cells show them, by calamine's names: a CSV saved from the same
# sheet carries these texts, so both formats parse (or quarantine) such a cell alike.
EXCEL_ERRORS = {
    "Div0": "#DIV/0!",
    "NA": "#N/A",
    "Name": "#NAME?",
    "Null": "#NULL!",
    "Num": "#NUM!",
    "Ref": "#REF!",
    "Value": "#VALUE!",
    "GettingData": "#GETTING_DATA",
}
_ERROR_CELL = re.compile(r"Error\((\w+)\)")


def _with_error_values(
    frame: pl.DataFrame, errors: Any, table: SourceTable, where: str
) -> pl.DataFrame:
    """The sheet's text with each error cell (a failed formula) of the table's columns as Excel
    shows it; fastexcel reads such a cell as empty, which kept the row with its value silently
    lost. Columns outside the contract are not read, so their cells do not matter."""
    patches: dict[str, dict[int, str]] = {}
    for error in errors:
        row, column = error.offset_position
        if frame.columns[column] not in table.column_names:
            continue
        found = _ERROR_CELL.search(error.detail)
        if found is None or found.group(1) not in EXCEL_ERRORS:  # no cell's text is quoted
            raise SourceFileError(
                f"{where}: row {row + 1}, column {frame.columns[column]!r} cannot be read as text"
            )
        patches.setdefault(frame.columns[column], {})[row] = EXCEL_ERRORS[found.group(1)]
    for name, cells in patches.items():
        values = frame[name].to_list()
        for row, shown in cells.items():
            values[row] = shown
        frame = frame.with_columns(pl.Series(name, values, dtype=pl.String))
    return frame


def _header_repeats(reader: Any, sheet_name: str, table: SourceTable) -> list[str]:
    """Contract columns the sheet's header row names more than once, read as delivered."""
    header = reader.load_sheet_by_name(sheet_name, header_row=None, n_rows=1, dtypes="string")
    row = pl.from_arrow(header.to_arrow())
    assert isinstance(row, pl.DataFrame)
    cells = row.row(0) if row.height else ()
    return [c for c in table.column_names if cells.count(c) > 1]


def _cause(exc: BaseException) -> str:
    """A reader's error in one line: its class and first line (polars appends the expression
    that failed on further lines)."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def raw_values(frame: pl.DataFrame, names: list[str]) -> pl.Series:
    """Each row's named values as one JSON object (what the quarantine keeps), built on the
    calling thread: as a polars UDF it ran on polars' worker threads, which then wait for the
    GIL, and a pipeline task holding the GIL in a polars call that waits for those same workers
    (`to_pandas`) hung the run."""
    return pl.Series(
        "raw_values",
        [
            json.dumps(row, ensure_ascii=False, default=str)
            for row in frame.select(names).iter_rows(named=True)
        ],
        dtype=pl.String,
    )


def _read_xlsx(path: Path, table: SourceTable) -> pl.DataFrame:
    """The table's columns from every visible sheet, as text, one sheet after another (rows past
    Excel's limit continue on further sheets, each with the header). Blank sheets, and hidden
    ones without the table's columns (the lists behind drop-downs), are skipped; a hidden sheet
    with them is refused: its rows would arrive unseen by whoever sent the file."""
    import fastexcel

    _check_workbook(path)
    reader = fastexcel.read_excel(path)
    frames: list[pl.DataFrame] = []
    for name in reader.sheet_names:
        sheet = reader.load_sheet_by_name(name, dtypes="string")
        columns = [c.name for c in sheet.available_columns()]
        missing = [c for c in table.column_names if c not in columns]
        if sheet.visible != "visible":
            if len(missing) < len(table.column_names):
                raise SourceFileError(
                    f"{path.name}: sheet {name!r} is hidden but holds the table's columns: "
                    "unhide it (its rows are delivered too) or delete it"
                )
            continue
        if not columns:
            continue  # an empty sheet (say, a notes tab left blank) holds no rows
        if len(missing) == len(table.column_names):
            raise SourceFileError(
                f"{path.name}: sheet {name!r} holds none of the table's columns (every visible "
                "sheet must hold the table: move notes out of the workbook)"
            )
        if missing:
            raise SourceFileError(f"{path.name}: sheet {name!r}: missing columns {missing}")
        # fastexcel renames a repeated name "month_1", "month_2", …; a column may also be named
        # so: only then is the header row itself read, to count the names as delivered
        repeated = _repeated_columns(table, columns, r"_\d+") and _header_repeats(
            reader, name, table
        )
        if repeated:
            raise SourceFileError(
                f"{path.name}: sheet {name!r}: the header names {repeated} more than once"
            )
        batch, errors = sheet.to_arrow_with_errors()
        frame = pl.from_arrow(batch)
        assert isinstance(frame, pl.DataFrame)
        if errors is not None and errors.errors:
            frame = _with_error_values(frame, errors.errors, table, f"{path.name}: sheet {name!r}")
        frames.append(
            _calendar_cells(frame.select(pl.col(table.column_names).cast(pl.String)), table)
        )
    return pl.concat(frames) if frames else pl.DataFrame()


def read_as_text(path: Path, table: SourceTable) -> pl.DataFrame:
    """Every column as text, exactly as delivered, with the 1-based data row number."""
    try:
        if table.file_format == "csv":
            df = _read_csv(path, table)
        elif table.file_format == "xlsx":
            df = _read_xlsx(path, table)
        elif table.file_format == "parquet":
            return ParquetText(path, table).slice(0)
        else:
            raise SourceFileError(f"{path.name}: unsupported format {table.file_format!r}")
    except SourceFileError:
        raise
    except Exception as exc:  # a broken file must say which file and why
        raise SourceFileError(f"{path.name}: cannot be read ({_cause(exc)})") from exc
    missing = [c for c in table.column_names if c not in df.columns]
    if missing:
        raise SourceFileError(f"{path.name}: missing columns {missing}")
    return df.select(table.column_names).with_row_index(ROW, offset=1)


def _typed_calendar(table: SourceTable, schema: Any) -> dict[str, str]:
    """Per DATE or MONTH column stored as a Parquet date or timestamp, the pattern that reads its
    text as what the column holds (as `_calendar_cells` does for spreadsheet and database
    cells): a midnight as its date, a first of the month as its month. Text columns are read
    as delivered."""
    patterns: dict[str, str] = {}
    for c in table.columns:
        stored = schema.get(c.name)
        if c.type is ColumnType.DATE and isinstance(stored, pl.Datetime):
            patterns[c.name] = _MIDNIGHT
        elif c.type is ColumnType.MONTH and isinstance(stored, pl.Datetime):
            patterns[c.name] = _FIRST_OF_MONTH_MIDNIGHT
        elif c.type is ColumnType.MONTH and stored == pl.Date:
            patterns[c.name] = _FIRST_OF_MONTH
    return patterns


class ParquetText:
    """A Parquet delivery as text with its row numbers, read a slice at a time, so the whole
    table never exists as text (29M utility rows as text took several GB beside their typed
    copy). A slice is what ``read_as_text`` gives for those rows."""

    def __init__(self, path: Path, table: SourceTable) -> None:
        self.path, self.names = path, table.column_names
        try:
            columns = pl.read_parquet_schema(path)
            self.height: int = pl.scan_parquet(path).select(pl.len()).collect().item()
        except Exception as exc:  # a broken file must say which file and why
            raise SourceFileError(f"{path.name}: cannot be read ({_cause(exc)})") from exc
        missing = [c for c in self.names if c not in columns]
        if missing:
            raise SourceFileError(f"{path.name}: missing columns {missing}")
        self.calendar = _typed_calendar(table, columns)
        # an instant (a timestamp with a time zone) as the wall-clock time in Beijing it names
        self.instants = {
            c
            for c in self.calendar
            if isinstance(stored := columns[c], pl.Datetime) and stored.time_zone is not None
        }

    def _read(self, rows: pl.LazyFrame) -> pl.DataFrame:
        try:
            return rows.collect()
        except Exception as exc:
            raise SourceFileError(f"{self.path.name}: cannot be read ({_cause(exc)})") from exc

    def _text(self) -> pl.LazyFrame:
        return pl.scan_parquet(self.path, row_index_name=ROW, row_index_offset=1).select(
            pl.col(ROW),
            *(
                self._local(name).cast(pl.String).str.replace(self.calendar[name], "${1}")
                if name in self.calendar
                else pl.col(name).cast(pl.String)
                for name in self.names
            ),
        )

    def _local(self, name: str) -> pl.Expr:
        if name not in self.instants:
            return pl.col(name)
        return pl.col(name).dt.convert_time_zone(BUSINESS_TZ.key).dt.replace_time_zone(None)

    def slice(self, offset: int, length: int | None = None) -> pl.DataFrame:
        """Rows offset to offset + length (to the end without a length)."""
        return self._read(self._text().slice(offset, length))

    def gather(self, rows: pl.Series) -> pl.DataFrame:
        """The rows at these 0-based indices, in increasing order."""
        wanted = (rows.cast(pl.Int64) + 1).implode()
        return self._read(self._text().filter(pl.col(ROW).cast(pl.Int64).is_in(wanted)))


def _gather(raw: pl.DataFrame | ParquetText, rows: pl.Series) -> pl.DataFrame:
    """The rows at these increasing 0-based indices, from a frame or a file read in slices."""
    return raw[rows] if isinstance(raw, pl.DataFrame) else raw.gather(rows)


# Code points whose NFKC form is themselves and that never combine with a neighbour
# (combining class 0, never the second half of a canonical composition): a string made only
# of them is already NFKC, so str.normalize runs on the other values alone. ASCII, general
# punctuation (‘’“”—), CJK punctuation (、。《》「」【】〔〕) and the CJK Unified Ideographs;
# tests/test_ingest_normalize.py checks every one of them against unicodedata.
NFKC_STABLE: tuple[tuple[int, int], ...] = (
    (0x0000, 0x007F),
    (0x2012, 0x2016),
    (0x2018, 0x2023),
    (0x3001, 0x3029),
    (0x4E00, 0x9FFF),
)
_NFKC_UNSTABLE = "[^" + "".join(rf"\x{{{lo:04X}}}-\x{{{hi:04X}}}" for lo, hi in NFKC_STABLE) + "]"


def _rows(mask: pl.Series) -> pl.Series:
    """Indices of the rows where ``mask`` is true (not null)."""
    return mask.fill_null(False).arg_true()


def _patch(base: pl.Series, rows: pl.Series, values: Callable[[pl.Series], pl.Series]) -> pl.Series:
    """``base`` with the rows at indices ``rows`` replaced by ``values(rows)``."""
    if rows.is_empty():
        return base
    return base.clone().scatter(rows, values(rows))


def _nfkc(values: pl.Series) -> pl.Series:
    """``str.normalize("NFKC")``, run only on the values holding a character outside
    NFKC_STABLE (looked for among the non-ASCII values only: bytes != characters)."""
    rows = _rows(values.str.len_bytes() != values.str.len_chars())
    rows = rows.filter(values.gather(rows).str.contains(_NFKC_UNSTABLE))
    return _patch(values, rows, lambda r: values.gather(r).str.normalize("NFKC"))


def _text(raw: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    """The columns NFKC-normalized and stripped, with "" as null: what parses and the
    duplicate check read."""
    nfkc = raw.with_columns([_nfkc(raw[c]) for c in names]).lazy()
    stripped = nfkc.with_columns([pl.col(c).str.strip_chars() for c in names])
    return stripped.with_columns(
        [pl.when(pl.col(c) == "").then(None).otherwise(pl.col(c)).alias(c) for c in names]
    ).collect()


# The shapes a date is read from, each (year, month, day): eight digits, or one separator used
# on both sides. Anything else is quarantined: "2023111" or "2023-11" would otherwise be split
# some way (2023-11-01? 2023-01-11?) and a guess reach the product.
_DATES = (
    r"^(\d{4})(\d{2})(\d{2})$",
    r"^(\d{4})\s*-\s*(\d{1,2})\s*-\s*(\d{1,2})$",
    r"^(\d{4})\s*/\s*(\d{1,2})\s*/\s*(\d{1,2})$",
    r"^(\d{4})\s*\.\s*(\d{1,2})\s*\.\s*(\d{1,2})$",
    r"^(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日?$",
)
# A number with commas reads only as thousands grouping ("1,234,567.89"); "12,50" is not 1250.
_GROUPED = r"^-?\d{1,3}(,\d{3})+(\.\d+)?$"
_MONTH = r"^(\d{4})\s*[-/.年]?\s*(\d{1,2})\s*月?$"


# The largest whole-yuan amount whose fen fit an Int64 (a larger one cannot parse: quarantined).
MAX_AMOUNT_YUAN = (2**63 - 1 - 99) // 100


def _ungrouped(src: pl.Expr) -> pl.Expr:
    """The number without its thousands commas; a comma anywhere else leaves it unparseable."""
    return (
        pl.when(src.str.contains(_GROUPED))
        .then(src.str.replace_all(",", "", literal=True))
        .otherwise(src)
    )


def _parse(name: str, kind: ColumnType) -> pl.Expr:
    """Typed value of normalized text (null: cannot parse). ``_shortcut`` gives the same
    values for the usual shapes of text more cheaply; this parses the rest."""
    src = pl.col(name)
    if kind is ColumnType.INTEGER:
        return _ungrouped(src).cast(pl.Int64, strict=False)
    if kind is ColumnType.DECIMAL:
        plain = _ungrouped(src)
        ok = plain.str.contains(r"^-?\d+(\.\d{1,2})?$")
        parts = plain.str.split_exact(".", 1)
        yuan = parts.struct.field("field_0").cast(pl.Int64, strict=False)
        frac = (
            parts.struct.field("field_1")
            .fill_null("")
            .str.pad_end(2, "0")
            .cast(pl.Int64, strict=False)
        )
        sign = pl.when(src.str.starts_with("-")).then(-1).otherwise(1)
        fen = yuan.abs() * 100 + frac
        return pl.when(ok & (yuan.abs() <= MAX_AMOUNT_YUAN)).then(sign * fen).otherwise(None)
    if kind is ColumnType.DATE:
        readings = []
        for shape in _DATES:
            groups = src.str.extract_groups(shape)
            readings.append(
                pl.concat_str(
                    groups.struct.field("1"),
                    groups.struct.field("2").str.zfill(2),
                    groups.struct.field("3").str.zfill(2),
                    separator="-",
                )
            )
        return pl.coalesce(readings).str.to_date("%Y-%m-%d", strict=False)
    if kind is ColumnType.MONTH:
        groups = src.str.extract_groups(_MONTH)
        month = groups.struct.field("2").str.zfill(2)
        valid = month.cast(pl.Int64, strict=False).is_between(1, 12)
        return pl.when(valid).then(pl.concat_str(groups.struct.field("1"), month, separator="-"))
    return src


# An ISO date is its own _DATES reading, a valid YYYY-MM its own _MONTH value.
_ISO_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_ISO_MONTH = r"^[0-9]{4}-(?:0[1-9]|1[0-2])$"
# A plain decimal: no commas, ASCII digits only (other digits that \d matches fail _parse's
# integer casts, so they never parse) and at most 16 characters (the yuan * 100 fit an Int64
# without wrapping; a Decimal(18, 2) holds the value). With no comma before it, a leading
# "-" is the number's own sign, so _parse's sign * (|yuan| * 100 + frac) is its value in fen.
_PLAIN_DECIMAL = r"^-?[0-9]+(?:\.[0-9]{1,2})?$"
_PLAIN_DECIMAL_CHARS = 16


def _shortcut(name: str, kind: ColumnType) -> tuple[pl.Expr, pl.Expr] | None:
    """(value, covered): ``_parse``'s value for the rows ``covered`` is true on, cheaper;
    None where ``_parse`` is cheap already."""
    src = pl.col(name)
    if kind is ColumnType.DECIMAL:
        covered = src.str.contains(_PLAIN_DECIMAL) & (src.str.len_bytes() <= _PLAIN_DECIMAL_CHARS)
        # A Decimal's integer is its value in hundredths: the signed fen.
        return src.cast(pl.Decimal(18, 2), strict=False).to_physical().cast(pl.Int64), covered
    if kind is ColumnType.DATE:
        return src.str.to_date("%Y-%m-%d", strict=False), src.str.contains(_ISO_DATE)
    if kind is ColumnType.MONTH:
        return src, src.str.contains(_ISO_MONTH)
    return None


def _parsed(text: pl.DataFrame, table: SourceTable) -> pl.DataFrame:
    """``text`` with every column parsed: shortcuts where they apply, else ``_parse``."""
    exprs: list[pl.Expr] = []
    rest: dict[str, str] = {}
    for c in table.columns:
        shortcut = _shortcut(c.name, c.type)
        if shortcut is None:
            exprs.append(_parse(c.name, c.type).alias(c.name))
            continue
        value, covered = shortcut
        rest[c.name] = f"\0rest {c.name}"
        exprs.append(pl.when(covered).then(value).alias(c.name))
        exprs.append((~covered & pl.col(c.name).is_not_null()).alias(rest[c.name]))
    fast = text.lazy().select(exprs).collect()
    columns = [fast[c] for c in table.column_names]
    for i, c in enumerate(table.columns):
        if c.name in rest:
            values = text[c.name]

            def parse(rows: pl.Series, values: pl.Series = values, kind: ColumnType = c.type):
                subset = values.gather(rows).to_frame()
                return subset.select(_parse(values.name, kind)).to_series()

            columns[i] = _patch(columns[i], _rows(fast[rest[c.name]]), parse)
    return text.with_columns(columns)


def _first_distinct(
    hashes: pl.Series, text_of: Callable[[pl.Series], pl.DataFrame], names: list[str]
) -> pl.Series:
    """``pl.struct(names).is_first_distinct()`` of the normalized text, from each row's hash
    of it: a row whose hash no other row has is the first of its kind; the rows that share a
    hash (``text_of`` gives their text, in row order) are compared by value."""
    ordered = hashes.sort()
    repeated = ordered.filter(ordered == ordered.shift(1)).unique()
    shared = hashes.is_in(repeated.implode())
    return _patch(
        ~shared,
        _rows(shared),
        lambda r: text_of(r).select(pl.struct(names).is_first_distinct()).to_series(),
    )


def _first_occurrences(text: pl.DataFrame, names: list[str], seen: set[bytes]) -> pl.Series:
    """True for rows whose normalized text is not in ``seen`` (nor earlier in this frame);
    ``seen`` collects a 16-byte blake2b digest of every row, across the frames it is given."""
    encoded = text.select(pl.struct(names).struct.json_encode()).to_series().to_list()
    first: list[bool] = []
    for row in encoded:
        digest = hashlib.blake2b(row.encode(), digest_size=16).digest()
        first.append(digest not in seen)
        seen.add(digest)
    return pl.Series(first, dtype=pl.Boolean)


def _checks(
    text: pl.DataFrame, parsed: pl.DataFrame, table: SourceTable
) -> list[tuple[pl.Series, str]]:
    """Per row check, in order: the rows it fails and the reason they carry."""
    checks: list[tuple[pl.Series, str]] = []
    for c in table.columns:
        was = text[c.name].is_not_null()
        checks.append((was & parsed[c.name].is_null(), f"{c.name}: cannot parse as {c.type.value}"))
        if c.required:
            checks.append((~was, f"{c.name}: required value missing"))
        if c.code_format is not None:
            misses = ~matches_code_format(parsed[c.name], c.code_format).fill_null(True)
            checks.append((misses, f"{c.name}: not in the format of its contract"))
    return checks


# Rows normalized at a time: a whole table's text and parse intermediates took about 8 times
# its own size (7.3M utility rows: 0.4 GB of text, 3.3 GB at the peak).
NORMALIZE_CHUNK_ROWS = 1_000_000


def normalize(
    raw: pl.DataFrame | ParquetText,
    table: SourceTable,
    *,
    seen: set[bytes] | None = None,
    chunk_rows: int = NORMALIZE_CHUNK_ROWS,
) -> IngestResult:
    """Typed rows out, quarantined rows with a reason each; in = out + quarantined.

    A row identical (after normalization) to an earlier one is a duplicate; with ``seen``,
    "earlier" includes the rows of every frame normalized before with the same set (the
    chunks of one database read). The rows are normalized ``chunk_rows`` at a time (the same
    result for any size: every step but the duplicate check is row by row, and that one
    keeps a hash per row and re-reads only the rows whose hashes meet)."""
    names = table.column_names
    reasons: list[str] = []
    parsed_parts: list[pl.DataFrame] = []
    flag_parts: list[pl.DataFrame] = []
    firsts: list[pl.Series] = []  # with seen: each chunk's own first occurrences
    hashes: list[pl.Series] = []  # without: each row's hash of its normalized text
    for start in range(0, max(raw.height, 1), chunk_rows):
        text = _text(raw.slice(start, chunk_rows), names)
        parsed = _parsed(text, table)
        checks = _checks(text, parsed, table)
        reasons = [why for _, why in checks]
        flag_parts.append(pl.DataFrame({str(i): flag for i, (flag, _) in enumerate(checks)}))
        parsed_parts.append(parsed)
        if seen is None:
            hashes.append(text.select(pl.struct(names).hash()).to_series())
        else:
            firsts.append(_first_occurrences(text, names, seen))
        del text
    first = (
        pl.concat(firsts)
        if seen is not None
        else _first_distinct(
            pl.concat(hashes), lambda rows: _text(_gather(raw, rows), names), names
        )
    )
    flag_frame = pl.concat(flag_parts).with_columns((~first).alias(str(len(reasons))))
    reasons.append("duplicate_row: identical to an earlier row")
    bad = flag_frame.select(pl.any_horizontal(pl.all())).to_series()
    # The reasons of the quarantined rows, in the order of the checks.
    reason = (
        flag_frame.filter(bad)
        .select(
            pl.concat_str(
                [pl.when(pl.col(str(i))).then(pl.lit(why)) for i, why in enumerate(reasons)],
                separator="; ",
                ignore_nulls=True,
            )
        )
        .to_series()
    )
    clean = _keep(parsed_parts, ~bad)  # ROW stays: validation quarantines by it
    quarantined = _gather(raw, _rows(bad))
    quarantine = quarantined.select(
        pl.col(ROW), reason.alias("reason"), raw_values(quarantined, names)
    )
    return IngestResult(clean=clean, quarantine=quarantine, rows_in=raw.height, file_sha256="")


def _keep(parts: list[pl.DataFrame], keep: pl.Series) -> pl.DataFrame:
    """The kept rows of the chunks, as one frame; ``parts`` is emptied as it goes, so the
    table is never held twice (a chunk without quarantined rows is kept as it is)."""
    kept: list[pl.DataFrame] = []
    offset = 0
    parts.reverse()
    while parts:
        part = parts.pop()
        mask = keep.slice(offset, part.height)
        offset += part.height
        kept.append(part if mask.all() else part.filter(mask))
        del part
    return pl.concat(kept)


def ingest_file(
    path: Path, table: SourceTable, *, chunk_rows: int = NORMALIZE_CHUNK_ROWS
) -> IngestResult:
    """Read, normalize and quarantine one delivered file (a Parquet file a chunk at a time)."""
    raw = ParquetText(path, table) if table.file_format == "parquet" else read_as_text(path, table)
    result = normalize(raw, table, chunk_rows=chunk_rows)
    return IngestResult(result.clean, result.quarantine, result.rows_in, file_sha256(path))


def ingest_database(
    url: str,
    source_table: str,
    table: SourceTable,
    *,
    chunk_rows: int = 100_000,
    progress: Callable[[int], None] | None = None,
) -> IngestResult:
    """Read a department's database table in chunks, normalize and quarantine it like a file.

    Rows are numbered in the key order across chunks; duplicates are found across chunks too;
    ``file_sha256`` is the streamed content hash (see pdo.sources.database). ``progress`` gets
    the number of rows read so far after each chunk. Unreachable database, missing table or
    columns: SourceFileError (the URL's password never shown)."""
    reader = read_table_chunks(url, source_table, table, chunk_rows=chunk_rows)
    seen: set[bytes] = set()
    parts: list[IngestResult] = []
    try:
        for chunk in reader:
            # a timestamp column holding dates (Oracle's DATE always does) reads as an XLSX
            # date cell does: midnight as the date, any other time quarantined; a month
            # stored as a date reads as its month, as a Parquet date column does
            cells = _calendar_cells(chunk, table).with_columns(
                pl.col(c.name).str.replace(_FIRST_OF_MONTH, "${1}")
                for c in table.columns
                if c.type is ColumnType.MONTH and c.name in reader.date_columns
            )
            parts.append(normalize(cells, table, seen=seen))
            if progress is not None:
                progress(reader.rows_read)
    except DatabaseSourceError as exc:
        raise SourceFileError(str(exc)) from exc
    if not parts:  # an empty table: empty frames with the same columns and types
        empty = pl.DataFrame(schema=dict.fromkeys(table.column_names, pl.String))
        parts.append(normalize(empty.with_row_index(ROW, offset=1), table, seen=seen))
    return IngestResult(
        clean=pl.concat([p.clean for p in parts]),
        quarantine=pl.concat([p.quarantine for p in parts]),
        rows_in=sum(p.rows_in for p in parts),
        file_sha256=reader.sha256,
    )
