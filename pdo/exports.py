"""CSV and XLSX files for people to open in a spreadsheet: no cell is ever run as a formula."""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import polars as pl

# A cell starting with one of these is run as a formula by Excel, LibreOffice and Sheets.
FORMULA_PATTERN = r"^[=+\-@\t\r]"


def spreadsheet_safe(frame: pl.DataFrame) -> pl.DataFrame:
    """Text cells a spreadsheet would execute get a leading apostrophe (shown, not run)."""
    return frame.with_columns(
        pl.when(pl.col(name).str.contains(FORMULA_PATTERN))
        .then(pl.lit("'") + pl.col(name))
        .otherwise(pl.col(name))
        .alias(name)
        for name, dtype in frame.schema.items()
        if dtype == pl.String
    )


def csv_bytes(frame: pl.DataFrame) -> bytes:
    """CSV with a BOM (so Excel reads the Chinese text), formula-safe."""
    buffer = io.BytesIO()
    spreadsheet_safe(frame).write_csv(buffer, include_bom=True)
    return buffer.getvalue()


def xlsx_bytes(sheets: Mapping[str, pl.DataFrame]) -> bytes:
    """A workbook with one sheet per frame; every text cell is stored as text, never a formula."""
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    for title, frame in sheets.items():
        sheet = book.create_sheet(title=title[:31])
        sheet.append(list(frame.columns))
        for row in spreadsheet_safe(frame).iter_rows():
            sheet.append(list(row))
        for cells in sheet.iter_rows(min_row=1):
            for cell in cells:
                if isinstance(cell.value, str):
                    cell.data_type = "s"  # openpyxl would store "=…" as a formula otherwise
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def write_atomically(path: Path, data: bytes) -> Path:
    """Readers see the whole file or none: a synced temp file beside it, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
