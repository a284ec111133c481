"""XLSX output: openpyxl for ordinary sizes, a streaming OOXML writer for very large cities.

Both write the same cells (integers as numbers, everything else as text, an empty cell for a
missing value so rows keep their width in readers that do not pad — openpyxl's write-only mode
writes no <dimension>, so read-only readers size each row by its last cell),
both are byte-for-byte reproducible (fixed zip timestamps and document dates), and both spill
past Excel's 1,048,576-row limit onto continuation sheets with the same header.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from pathlib import Path
from typing import IO, Any

import polars as pl

from pdo.gen.city import AS_OF
from pdo.sources.contract import ColumnType, SourceTable

MAX_DATA_ROWS = 1_048_575  # Excel's row limit minus the header row
ZIP_TIME = (AS_OF.year, AS_OF.month, AS_OF.day, 0, 0, 0)
DOC_TIME = dt.datetime(AS_OF.year, AS_OF.month, AS_OF.day)
_INT = r"^[0-9]+$"


def sheet_title(table: SourceTable, index: int) -> str:
    """First sheet is named after the table; continuation sheets are numbered."""
    base = table.label_zh[:25]
    return base if index == 0 else f"{base}({index + 1})"


def _integer_columns(table: SourceTable) -> set[str]:
    return {c.name for c in table.columns if c.type is ColumnType.INTEGER}


def _normalized_zip(data: bytes, path: Path) -> None:
    """Rewrite a zip with fixed member timestamps so equal content gives equal bytes.

    openpyxl stamps the save time into docProps/core.xml; it is pinned to the as-of date too.
    """
    stamp = DOC_TIME.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as src,
        zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as dst,
    ):
        for info in src.infolist():
            member = zipfile.ZipInfo(info.filename, date_time=ZIP_TIME)
            member.compress_type = zipfile.ZIP_DEFLATED
            member.external_attr = 0o600 << 16
            content = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                content = re.sub(
                    rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)",
                    rb"\g<1>" + stamp + rb"\g<2>",
                    content,
                )
            dst.writestr(member, content)


class OpenpyxlSink:
    """openpyxl in write-only mode; fine up to a few hundred thousand rows."""

    def __init__(self, path: Path, table: SourceTable, max_rows: int = MAX_DATA_ROWS) -> None:
        from openpyxl import Workbook

        self.path = path
        self.table = table
        self.max_rows = max_rows
        self.ints = _integer_columns(table)
        self.wb = Workbook(write_only=True)
        self.wb.properties.created = DOC_TIME
        self.wb.properties.modified = DOC_TIME
        self.wb.properties.creator = "pdo gen"
        self.sheets = 0
        self.in_sheet = max_rows  # forces a first sheet
        self.ws: Any = None

    def _empty(self) -> object:
        """A present-but-empty cell (text format), so the row keeps all its columns."""
        from openpyxl.cell import WriteOnlyCell

        cell = WriteOnlyCell(self.ws, value=None)
        cell.number_format = "@"
        return cell

    def _next_sheet(self) -> None:
        self.ws = self.wb.create_sheet(sheet_title(self.table, self.sheets))
        self.sheets += 1
        self.ws.append(self.table.column_names)
        self.in_sheet = 0

    def write(self, frame: pl.DataFrame) -> None:
        names = frame.columns
        is_int = [n in self.ints for n in names]
        for row in frame.iter_rows():
            if self.in_sheet >= self.max_rows:
                self._next_sheet()
            cells = [
                self._empty()
                if v is None
                else int(v)
                if (flag and v.isascii() and v.isdigit())
                else v
                for v, flag in zip(row, is_int, strict=True)
            ]
            self.ws.append(cells)
            self.in_sheet += 1

    def close(self) -> None:
        if self.ws is None:
            self._next_sheet()
        buf = io.BytesIO()
        self.wb.save(buf)
        _normalized_zip(buf.getvalue(), self.path)


_OOXML = "application/vnd.openxmlformats-officedocument.spreadsheetml"
_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    f'<Override PartName="/xl/workbook.xml" ContentType="{_OOXML}.sheet.main+xml"/>'
    f'<Override PartName="/xl/styles.xml" ContentType="{_OOXML}.styles+xml"/>'
    "{sheets}</Types>"
)
_SHEET_TYPE = (
    f'<Override PartName="/xl/worksheets/sheet{{i}}.xml" ContentType="{_OOXML}.worksheet+xml"/>'
)
_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>'
)
_WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    "<sheets>{sheets}</sheets></workbook>"
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    "{rels}"
    '<Relationship Id="rIdStyles" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/styles" Target="styles.xml"/></Relationships>'
)
_STYLES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)
_SHEET_HEAD = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
)
_SHEET_TAIL = "</sheetData></worksheet>"


def _xml_text(expr: pl.Expr) -> pl.Expr:
    return (
        expr.str.replace_all("&", "&amp;", literal=True)
        .str.replace_all("<", "&lt;", literal=True)
        .str.replace_all(">", "&gt;", literal=True)
    )


def _letter(i: int) -> str:
    return "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[i]


class StreamingSink:
    """Writes sheet XML straight into the zip, built with vectorized polars string ops."""

    def __init__(self, path: Path, table: SourceTable, max_rows: int = MAX_DATA_ROWS) -> None:
        self.path = path
        self.table = table
        self.max_rows = max_rows
        self.ints = _integer_columns(table)
        self.zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1)
        self.sheets = 0
        self.in_sheet = 0
        self.out: IO[bytes] | None = None

    def _member(self, name: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o600 << 16
        return info

    def _open_sheet(self) -> None:
        self.sheets += 1
        self.out = self.zip.open(
            self._member(f"xl/worksheets/sheet{self.sheets}.xml"), "w", force_zip64=True
        )
        self.in_sheet = 0
        self.out.write(_SHEET_HEAD.encode())
        self._rows(pl.DataFrame({c: [c] for c in self.table.column_names}), header=True)

    def _close_sheet(self) -> None:
        if self.out is not None:
            self.out.write(_SHEET_TAIL.encode())
            self.out.close()
            self.out = None

    def _rows(self, frame: pl.DataFrame, header: bool = False) -> None:
        """Append rows; row numbers continue from what this sheet already holds."""
        assert self.out is not None
        first = self.in_sheet + (1 if header else 2)
        r = pl.int_range(first, first + frame.height, eager=False).cast(pl.String)
        cells = []
        for i, name in enumerate(frame.columns):
            col = pl.col(name)
            ref = pl.concat_str(pl.lit(_letter(i)), r)
            text = pl.concat_str(
                pl.lit('<c r="'),
                ref,
                pl.lit('" t="inlineStr"><is><t>'),
                _xml_text(col),
                pl.lit("</t></is></c>"),
            )
            if name in self.ints and not header:
                number = pl.concat_str(
                    pl.lit('<c r="'), ref, pl.lit('"><v>'), col, pl.lit("</v></c>")
                )
                text = pl.when(col.str.contains(_INT)).then(number).otherwise(text)
            empty = pl.concat_str(pl.lit('<c r="'), ref, pl.lit('"/>'))
            cells.append(pl.when(col.is_null()).then(empty).otherwise(text))
        xml = frame.select(
            pl.concat_str([pl.lit('<row r="'), r, pl.lit('">'), *cells, pl.lit("</row>")])
            .str.join("")
            .alias("x")
        )["x"][0]
        self.out.write(xml.encode("utf-8"))
        if not header:
            self.in_sheet += frame.height

    def write(self, frame: pl.DataFrame) -> None:
        start = 0
        while start < frame.height:
            if self.out is None or self.in_sheet >= self.max_rows:
                self._close_sheet()
                self._open_sheet()
            take = min(self.max_rows - self.in_sheet, frame.height - start)
            self._rows(frame.slice(start, take))
            start += take

    def close(self) -> None:
        if self.out is None and self.sheets == 0:
            self._open_sheet()
        self._close_sheet()
        n = self.sheets
        sheets = "".join(
            f'<sheet name="{sheet_title(self.table, i)}" sheetId="{i + 1}" r:id="rId{i + 1}"/>'
            for i in range(n)
        )
        rels = "".join(
            f'<Relationship Id="rId{i + 1}" Type="http://schemas.openxmlformats.org/'
            f'officeDocument/2006/relationships/worksheet" Target="worksheets/sheet{i + 1}.xml"/>'
            for i in range(n)
        )
        parts = {
            "[Content_Types].xml": _CONTENT_TYPES.format(
                sheets="".join(_SHEET_TYPE.format(i=i + 1) for i in range(n))
            ),
            "_rels/.rels": _ROOT_RELS,
            "xl/workbook.xml": _WORKBOOK.format(sheets=sheets),
            "xl/_rels/workbook.xml.rels": _WORKBOOK_RELS.format(rels=rels),
            "xl/styles.xml": _STYLES,
        }
        for name, text in parts.items():
            self.zip.writestr(self._member(name), text.encode("utf-8"))
        self.zip.close()
