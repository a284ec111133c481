"""Realistic dirt, planted deterministically and logged cell by cell so tests can re-find it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import polars as pl

from pdo.privacy.checksums import USCC_ALPHABET
from pdo.sources.contract import ColumnType, Policy, SourceTable

FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


class DirtKind(StrEnum):
    """The kinds of dirt departments really deliver."""

    DUPLICATE_ROW = "duplicate_row"
    INVALID_USCC_CHECK = "invalid_uscc_check"
    INVALID_RESIDENT_ID_CHECK = "invalid_resident_id_check"
    MISSING_VALUE = "missing_value"
    FULL_WIDTH_DIGITS = "full_width_digits"
    MIXED_DATE_FORMAT = "mixed_date_format"
    UNPARSABLE_VALUE = "unparsable_value"


KIND_DESCRIPTIONS: dict[str, str] = {
    DirtKind.DUPLICATE_ROW: "row is an exact copy of an earlier row of the same file",
    DirtKind.INVALID_USCC_CHECK: "USCC whose GB 32100 check character is wrong",
    DirtKind.INVALID_RESIDENT_ID_CHECK: "resident ID whose GB 11643 check character is wrong",
    DirtKind.MISSING_VALUE: "cell left empty (null in Parquet/XLSX, empty field in CSV)",
    DirtKind.FULL_WIDTH_DIGITS: "digits written full-width (０-９); NFKC gives the clean value",
    DirtKind.MIXED_DATE_FORMAT: "date/month as 2025/03/07, 2025年3月7日 or 20250307 (2025/03, "
    "2025年3月, 202503) instead of ISO",
    DirtKind.UNPARSABLE_VALUE: "value that cannot be parsed as its column's type at all",
}

_UNPARSABLE_AMOUNTS = ("约五千", "待核定", "#VALUE!", "五千元整", "1.234.5", "见附件")
_UNPARSABLE_INTEGERS = ("约十人", "#N/A", "十二", "若干")


@dataclass(frozen=True)
class Plant:
    """Plant `kind` into `column` in about `rate` of the rows (at least `minimum` per file)."""

    kind: DirtKind
    column: str
    rate: float
    minimum: int = 1


@dataclass(frozen=True)
class DirtSpec:
    """All dirt planned for one table."""

    plants: tuple[Plant, ...] = ()
    duplicate_rate: float = 0.0
    duplicate_minimum: int = 0


@dataclass(frozen=True)
class DirtEntry:
    """One documented defect: the data row (1-based, header excluded) and cell it sits in."""

    kind: DirtKind
    row: int
    column: str | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": str(self.kind),
            "row": self.row,
            "column": self.column,
            "detail": self.detail,
        }


@dataclass
class DirtLog:
    """Every planted defect of a generation, by delivered file."""

    files: dict[str, list[DirtEntry]] = field(default_factory=dict)

    def add(self, file_name: str, entries: list[DirtEntry]) -> None:
        self.files.setdefault(file_name, []).extend(entries)

    def counts(self) -> dict[str, int]:
        c = Counter(e.kind for entries in self.files.values() for e in entries)
        return {str(k): c.get(k, 0) for k in DirtKind}

    def counts_by_file(self) -> dict[str, dict[str, int]]:
        out = {}
        for name, entries in self.files.items():
            c = Counter(str(e.kind) for e in entries)
            out[name] = dict(sorted(c.items()))
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "row_numbering": "1-based data row in the delivered file, header excluded "
            "(XLSX rows continue across continuation sheets)",
            "kinds": KIND_DESCRIPTIONS,
            "counts": self.counts(),
            "counts_by_file": self.counts_by_file(),
            "files": {
                name: [e.as_dict() for e in sorted(entries, key=lambda e: (e.row, e.column or ""))]
                for name, entries in self.files.items()
            },
        }


def _mixed_date(value: str, kind: ColumnType, rng: np.random.Generator) -> str:
    if kind is ColumnType.MONTH:
        y, m = value.split("-")
        return (f"{y}/{m}", f"{y}年{int(m)}月", f"{y}{m}")[int(rng.integers(0, 3))]
    y, m, d = value.split("-")
    return (f"{y}/{m}/{d}", f"{y}年{int(m)}月{int(d)}日", f"{y}{m}{d}")[int(rng.integers(0, 3))]


def _unparsable(value: str, kind: ColumnType, rng: np.random.Generator) -> str:
    if kind is ColumnType.DATE:
        y = value[:4]
        options = (
            f"{y}-{int(rng.integers(13, 20))}-{int(rng.integers(32, 46))}",
            f"{y}-02-30",
            "0000-00-00",
            f"{y}-04-31",
        )
        return options[int(rng.integers(0, len(options)))]
    if kind is ColumnType.MONTH:
        return (f"{value[:4]}-13", f"{value[:4]}-00")[int(rng.integers(0, 2))]
    if kind is ColumnType.INTEGER:
        return _UNPARSABLE_INTEGERS[int(rng.integers(0, len(_UNPARSABLE_INTEGERS)))]
    return _UNPARSABLE_AMOUNTS[int(rng.integers(0, len(_UNPARSABLE_AMOUNTS)))]


def _wrong_check(value: str, alphabet: str, rng: np.random.Generator) -> str:
    options = [c for c in alphabet if c != value[-1]]
    return value[:-1] + options[int(rng.integers(0, len(options)))]


def mutate(
    kind: DirtKind, value: str, table: SourceTable, column: str, rng: np.random.Generator
) -> tuple[str | None, str]:
    """The dirty value for a clean one, and the detail recorded for it."""
    col = table.column(column)
    # dirt.json must not become a second copy of personal data: echo only KEEP columns.
    shown = f" (clean value {value!r})" if col.policy is Policy.KEEP else ""
    if kind is DirtKind.MISSING_VALUE:
        which = "required" if col.required else "optional"
        return None, f"{which} column left empty{shown}"
    if kind is DirtKind.FULL_WIDTH_DIGITS:
        return value.translate(FULL_WIDTH), f"full-width digits; NFKC gives the clean value{shown}"
    if kind is DirtKind.MIXED_DATE_FORMAT:
        return _mixed_date(value, col.type, rng), f"non-ISO format for {value!r}"
    if kind is DirtKind.UNPARSABLE_VALUE:
        return _unparsable(value, col.type, rng), f"cannot be parsed{shown}"
    if kind is DirtKind.INVALID_USCC_CHECK:
        bad = _wrong_check(value, USCC_ALPHABET, rng)
        return bad, f"check character {bad[-1]!r} written; GB 32100 gives {value[-1]!r}"
    if kind is DirtKind.INVALID_RESIDENT_ID_CHECK:
        bad = _wrong_check(value, "0123456789X", rng)
        return bad, f"check character {bad[-1]!r} written; GB 11643 gives {value[-1]!r}"
    raise ValueError(f"{kind} is not a cell mutation")


def plant(
    clean: pl.DataFrame,
    table: SourceTable,
    spec: DirtSpec,
    rng: np.random.Generator,
    offset: int,
    first: bool,
) -> tuple[pl.DataFrame, list[DirtEntry]]:
    """Plant the spec's dirt into one chunk; at most one defect per row, so each is unambiguous.

    `offset` is the number of data rows already written before this chunk; `first` applies the
    per-file minimums (so even a tiny city carries every kind of dirt).
    """
    n = clean.height
    free = np.ones(n, dtype=bool)
    columns = {name: clean[name] for name in clean.columns}
    local: list[tuple[int, DirtKind, str | None, str]] = []
    for p in spec.plants:
        k = round(p.rate * n) + (p.minimum if first else 0)
        present = columns[p.column].is_not_null().to_numpy()
        candidates = np.flatnonzero(free & present)
        k = min(k, len(candidates))
        if k == 0:
            continue
        rows = np.sort(rng.choice(candidates, size=k, replace=False))
        free[rows] = False
        old = columns[p.column].gather(rows).to_list()
        new: list[str | None] = []
        for r, value in zip(rows.tolist(), old, strict=True):
            bad, detail = mutate(p.kind, value, table, p.column, rng)
            new.append(bad)
            local.append((r, p.kind, p.column, detail))
        columns[p.column] = columns[p.column].scatter(rows, pl.Series(new, dtype=pl.String))

    dup_k = round(spec.duplicate_rate * n) + (spec.duplicate_minimum if first else 0)
    candidates = np.flatnonzero(free)
    dup_k = min(dup_k, len(candidates))
    sources = (
        np.sort(rng.choice(candidates, size=dup_k, replace=False))
        if dup_k
        else (np.zeros(0, dtype=np.int64))
    )
    after = sources + (rng.random(dup_k) * (n - sources)).astype(np.int64)
    keys = np.concatenate([np.arange(n) * 2.0, after * 2.0 + 1.0])
    order = np.argsort(keys, kind="stable")
    gather = np.concatenate([np.arange(n), sources])[order]
    position = np.empty(n + dup_k, dtype=np.int64)
    position[order] = np.arange(n + dup_k)

    dirty = pl.DataFrame(columns).select(clean.columns)[gather]
    entries = [
        DirtEntry(kind, offset + int(position[r]) + 1, column, detail)
        for r, kind, column, detail in local
    ]
    for j, src in enumerate(sources.tolist()):
        entries.append(
            DirtEntry(
                DirtKind.DUPLICATE_ROW,
                offset + int(position[n + j]) + 1,
                None,
                f"exact copy of row {offset + int(position[src]) + 1}",
            )
        )
    return dirty, entries
