"""What the driver needs to produce one delivered file: its contract, chunks, and planned dirt."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import polars as pl

from pdo.gen.dirt import DirtSpec
from pdo.sources.contract import SourceTable

ENTERPRISE_CHUNK = 50_000  # firms per chunk of the per-firm tables (fixed: output depends on it)
ROW_CHUNK = 250_000  # rows per chunk of tables built whole (registry, penalties, courts, …)


@dataclass(frozen=True)
class TableJob:
    """A table's clean chunks (built lazily, in order) and the dirt to plant into them."""

    table: SourceTable
    dirt: DirtSpec
    chunks: Callable[[], Iterator[pl.DataFrame]]
    chunk_hint: int  # how many chunks to expect, for the progress bar


def enterprise_ranges(n: int) -> list[tuple[int, int]]:
    """[start, stop) enterprise index ranges of the fixed chunk size."""
    return [(s, min(s + ENTERPRISE_CHUNK, n)) for s in range(0, max(n, 1), ENTERPRISE_CHUNK)]


def per_enterprise_job(
    table: SourceTable, dirt: DirtSpec, n: int, build: Callable[[int, int, int], pl.DataFrame]
) -> TableJob:
    """A job whose rows are built chunk by chunk from ranges of firms: build(chunk, start, stop)."""
    ranges = enterprise_ranges(n)

    def chunks() -> Iterator[pl.DataFrame]:
        for i, (start, stop) in enumerate(ranges):
            yield build(i, start, stop)

    return TableJob(table, dirt, chunks, len(ranges))


def whole_table_job(
    table: SourceTable, dirt: DirtSpec, frame: Callable[[], pl.DataFrame], rows_hint: int
) -> TableJob:
    """A job for a table built in one go (it needs global numbering) and cut into row chunks."""

    def chunks() -> Iterator[pl.DataFrame]:
        f = frame()
        for start in range(0, max(f.height, 1), ROW_CHUNK):
            yield f.slice(start, ROW_CHUNK)

    return TableJob(table, dirt, chunks, max(1, -(-rows_hint // ROW_CHUNK)))
