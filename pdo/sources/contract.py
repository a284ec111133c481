"""Schema contracts for delivered tables: columns, types, labels and column policies."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class ColumnType(StrEnum):
    """Logical types that ingest normalizes raw text into."""

    STRING = "string"
    INTEGER = "integer"
    DECIMAL = "decimal"  # yuan with 2 decimals on the wire, stored as integer fen
    DATE = "date"  # ISO date after normalization
    MONTH = "month"  # YYYY-MM after normalization


class Policy(StrEnum):
    """What desensitization does with a column before it leaves the raw zone."""

    KEEP = "keep"
    DROP = "drop"
    PSEUDONYMIZE = "pseudonymize"
    MASK = "mask"
    REDACT = "redact"
    GENERALIZE = "generalize"


class Classification(StrEnum):
    """Data classification of a source table (数据分类分级)."""

    GENERAL = "一般"
    IMPORTANT = "重要"
    CORE = "核心"


@dataclass(frozen=True)
class Column:
    """One field of a source table's contract."""

    name: str
    type: ColumnType
    label_zh: str
    label_en: str
    policy: Policy = Policy.KEEP
    required: bool = False
    mask_kind: str | None = None  # e.g. "name", "mobile" for Policy.MASK


@dataclass(frozen=True)
class SourceTable:
    """A table a department delivers, how it arrives, and what may be done with it."""

    name: str
    department: str  # Department.code
    label_zh: str
    label_en: str
    file_name: str
    file_format: str  # csv | xlsx | parquet
    columns: tuple[Column, ...]
    encoding: str = "utf-8"
    classification: Classification = Classification.GENERAL
    key: tuple[str, ...] = field(default_factory=tuple)

    def column(self, name: str) -> Column:
        """Look a column up by name."""
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.name} has no column {name!r}")

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


@dataclass(frozen=True)
class Department:
    """A government department (or partner) that holds source data and shares in revenue."""

    code: str
    name_zh: str
    name_en: str
