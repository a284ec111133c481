"""CSV and XLSX files for people to open in a spreadsheet: no cell is ever run as a formula."""

from __future__ import annotations

import io
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

import polars as pl

# A cell starting with one of these is run as a formula by Excel, LibreOffice and Sheets.
FORMULA_PATTERN = r"^[=+\-@\t\r]"
_CATEGORIES = (pl.Categorical, pl.Enum)


def _safe_text(value: str) -> str:
    """One text cell made safe the way spreadsheet_safe makes a column."""
    return "'" + value if re.match(FORMULA_PATTERN, value) else value


def spreadsheet_safe(frame: pl.DataFrame) -> pl.DataFrame:
    """Text cells a spreadsheet would execute get a leading apostrophe (shown, not run): the
    values of text and categorical columns, and the column names (a CSV's header row)."""
    text = [n for n, t in frame.schema.items() if t == pl.String or isinstance(t, _CATEGORIES)]
    safe = frame.with_columns(
        pl.when(pl.col(name).cast(pl.String).str.contains(FORMULA_PATTERN))
        .then(pl.lit("'") + pl.col(name).cast(pl.String))
        .otherwise(pl.col(name).cast(pl.String))
        .alias(name)
        for name in text
    )
    return safe.rename({name: _safe_text(name) for name in safe.columns})


def csv_bytes(frame: pl.DataFrame) -> bytes:
    """CSV with a BOM (so Excel reads the Chinese text), formula-safe."""
    buffer = io.BytesIO()
    spreadsheet_safe(frame).write_csv(buffer, include_bom=True)
    return buffer.getvalue()


def xlsx_bytes(sheets: Mapping[str, pl.DataFrame]) -> bytes:
    """A workbook with one sheet per frame; every text cell is stored as text, never a formula."""
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    def cell_text(value: str) -> str:
        """Control characters XML cannot hold (openpyxl would refuse the workbook) as U+FFFD."""
        return ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)

    book = Workbook()
    book.remove(book.active)
    for title, frame in sheets.items():
        sheet = book.create_sheet(title=title[:31])
        safe = spreadsheet_safe(frame)
        sheet.append([cell_text(name) for name in safe.columns])
        for row in safe.iter_rows():
            sheet.append([cell_text(v) if isinstance(v, str) else v for v in row])
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


def write_together(out_dir: Path, files: Mapping[str, bytes]) -> list[Path]:
    """Files that belong together are staged in a folder beside their targets and moved into
    place only once every one was written: a failed write leaves none of them behind."""
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir, prefix=".staging-"))
    try:
        staged = [write_atomically(staging / name, data) for name, data in files.items()]
        return [path.replace(out_dir / path.name) for path in staged]
    finally:
        shutil.rmtree(staging, ignore_errors=True)
