"""Chunked writers for the three delivery formats, each in the encoding the contract declares."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from pdo.gen.xlsx import OpenpyxlSink, StreamingSink
from pdo.sources.contract import SourceTable

# From this city size on, XLSX is written by the streaming writer instead of openpyxl.
STREAMING_XLSX_FROM = 50_000


class Sink(Protocol):
    """Receives the chunks of one delivered file in order."""

    def write(self, frame: pl.DataFrame) -> None: ...
    def close(self) -> None: ...


class CsvSink:
    """CSV with a header row, minimal quoting, '\\n' line ends, in the declared encoding."""

    def __init__(self, path: Path, table: SourceTable) -> None:
        self.fh = path.open("wb")
        self.encoding = table.encoding
        self.header = True
        self.columns = table.column_names

    def write(self, frame: pl.DataFrame) -> None:
        text = frame.select(self.columns).write_csv(include_header=self.header)
        self.header = False
        self.fh.write(text.encode(self.encoding))

    def close(self) -> None:
        if self.header:
            self.fh.write((",".join(self.columns) + "\n").encode(self.encoding))
        self.fh.close()


class ParquetSink:
    """Parquet with every column as UTF-8 text (the wire form ingest normalizes), zstd."""

    def __init__(self, path: Path, table: SourceTable) -> None:
        self.schema = pa.schema([pa.field(c, pa.string()) for c in table.column_names])
        self.writer = pq.ParquetWriter(path, self.schema, compression="zstd")
        self.columns = table.column_names

    def write(self, frame: pl.DataFrame) -> None:
        self.writer.write_table(frame.select(self.columns).to_arrow().cast(self.schema))

    def close(self) -> None:
        self.writer.close()


def xlsx_writer_for(enterprises: int) -> str:
    """Which XLSX writer a city of this size gets: 'openpyxl' or 'streaming'."""
    return "streaming" if enterprises >= STREAMING_XLSX_FROM else "openpyxl"


def open_sink(out_dir: Path, table: SourceTable, enterprises: int) -> Sink:
    """The sink for a table's delivered file, chosen by its contract format."""
    path = out_dir / table.file_name
    if table.file_format == "csv":
        return CsvSink(path, table)
    if table.file_format == "parquet":
        return ParquetSink(path, table)
    if table.file_format == "xlsx":
        if xlsx_writer_for(enterprises) == "openpyxl":
            return OpenpyxlSink(path, table)
        return StreamingSink(path, table)
    raise ValueError(f"unsupported format {table.file_format!r} for {table.name}")
