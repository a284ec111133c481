"""Both XLSX writers: same cells, full-width rows, sheet spill past the row limit, stable bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import openpyxl
import polars as pl
import pytest

from pdo.gen import generate, writer
from pdo.gen.xlsx import OpenpyxlSink, StreamingSink
from pdo.sources.tables import SOCIAL_INSURANCE

ROWS = [
    ("91330106MA2ABCDE1X", "2024-07", "12"),
    ("91330106MA2ABCDE1X", "2024/08", "１２"),
    ("91330106MA2ABCDE1X", "2024-09", None),
    ("91330106MA2ABCDE1X", "2024-10", "约十人"),
    ("91330106MA2ABCDE1X", "2024-11", "0"),
    ("92330102MA27XY3Z0K", "2024-07", "3"),
    ("92330102MA27XY3Z0K", "2024-08", "4"),
]


def _frame(rows: list[tuple[str | None, ...]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows, schema=dict.fromkeys(SOCIAL_INSURANCE.column_names, pl.String), orient="row"
    )


def _write(sink_type: type[OpenpyxlSink] | type[StreamingSink], path: Path) -> None:
    sink = sink_type(path, SOCIAL_INSURANCE, max_rows=3)
    sink.write(_frame(ROWS[:4]))
    sink.write(_frame(ROWS[4:]))
    sink.close()


def _read(path: Path) -> tuple[list[str], list[tuple[object, ...]]]:
    wb = openpyxl.load_workbook(path, read_only=True)
    rows: list[tuple[object, ...]] = []
    for ws in wb.worksheets:
        it = ws.iter_rows(values_only=True)
        assert list(next(it)) == SOCIAL_INSURANCE.column_names
        rows += list(it)
    names = wb.sheetnames
    wb.close()
    return names, rows


@pytest.mark.parametrize("sink_type", [OpenpyxlSink, StreamingSink])
def test_cells_types_and_spill(
    sink_type: type[OpenpyxlSink] | type[StreamingSink], tmp_path: Path
) -> None:
    path = tmp_path / "x.xlsx"
    _write(sink_type, path)
    names, rows = _read(path)
    assert names == ["社会保险参保人数", "社会保险参保人数(2)", "社会保险参保人数(3)"]
    expected = [
        (u, m, int(h) if h is not None and h.isascii() and h.isdigit() else h) for u, m, h in ROWS
    ]
    assert rows == expected
    assert all(len(r) == 3 for r in rows)  # an empty cell is present, not dropped
    first = hashlib.sha256(path.read_bytes()).hexdigest()
    _write(sink_type, path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == first


def test_streaming_writer_matches_openpyxl_on_a_city(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generate(tmp_path / "small", enterprises=300, seed=2, progress=False)
    monkeypatch.setattr(writer, "STREAMING_XLSX_FROM", 1)
    report = generate(tmp_path / "fast", enterprises=300, seed=2, progress=False)
    assert report.xlsx_writer == "streaming"
    a = _read(tmp_path / "small" / SOCIAL_INSURANCE.file_name)
    b = _read(tmp_path / "fast" / SOCIAL_INSURANCE.file_name)
    assert a == b and len(a[1]) > 1000
