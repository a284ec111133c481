"""What a generation produced: files, rows, dirt, default rate — for the CLI and generation.json."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class GenerationReport:
    """Summary of one `generate` run (seconds is wall time and is not written to disk)."""

    out_dir: Path
    enterprises: int
    seed: int
    as_of: str
    row_counts: dict[str, int]  # delivered file → data rows (header excluded)
    dirt_counts: dict[str, int]  # dirt kind → planted count
    default_rate: float  # share of partner-bank loans that defaulted
    xlsx_writer: str  # openpyxl | streaming
    extra_files: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def files(self) -> list[str]:
        return [*self.row_counts, *self.extra_files]

    def manifest(self) -> dict[str, Any]:
        """The reproducible part, written as generation.json (no paths, no timings)."""
        return {
            "generator": "pdo gen",
            "params": {"enterprises": self.enterprises, "seed": self.seed},
            "as_of": self.as_of,
            "row_counts": self.row_counts,
            "dirt_counts": self.dirt_counts,
            "default_rate": round(self.default_rate, 6),
            "xlsx_writer": self.xlsx_writer,
            "files": self.files,
        }

    def as_json(self) -> dict[str, Any]:
        """Everything, for `pdo gen --json`."""
        return {"out_dir": str(self.out_dir), **self.manifest(), "seconds": round(self.seconds, 2)}
