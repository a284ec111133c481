"""Schema contracts for delivered tables: columns, types, labels and column policies."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import PurePosixPath

import polars as pl

from pdo.privacy.risk import QuasiIdentifier


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
    ENTITY_KEY = "entity_key"  # USCC kept for companies, pseudonymized for 个体工商户


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
    pii: str | None = None  # the personal information it holds (entity type), if any
    classification: Classification | None = None  # overrides the table's, if stricter
    # Entities the value carries because it is publicly disclosed as such (企业名称 names a
    # place and often a person under 企业信息公示暂行条例): the residual scan accepts them here.
    disclosed: tuple[str, ...] = ()
    # The shape of a code column (a case or loan number) as a regex the whole NFKC-normalized
    # value matches: ingest quarantines a row whose value misses it, and the residual scan
    # reads the values of this shape with the patterns only (a code holds no prose to name
    # anyone in). The shape must leave no room for a name: no two free letters side by side.
    code_format: str | None = None


@dataclass(frozen=True)
class ReleaseRule:
    """A record-level release of a table: which columns leave, and the k / l that must hold.

    Columns not listed never reach the release (deny by default: direct identifiers such as
    names and codes stay behind); the quasi-identifiers are generalized along their hierarchies
    and the records of classes that still fail are suppressed, within max_suppression.
    """

    columns: tuple[str, ...]
    quasi_identifiers: tuple[QuasiIdentifier, ...]
    k: int = 5
    l: int = 1  # noqa: E741
    max_suppression: float = 0.05


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
    quasi_identifiers: tuple[str, ...] = ()  # columns that together could single a record out
    sensitive: tuple[str, ...] = ()  # attributes whose diversity protects a class (l-diversity)
    release: ReleaseRule | None = None  # a k-anonymous record-level release, if one is made

    def column(self, name: str) -> Column:
        """Look a column up by name."""
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.name} has no column {name!r}")

    def __post_init__(self) -> None:
        # A delivery is found as source_dir / file_name: a path here would read outside it.
        name = self.file_name
        if name in ("", ".", "..") or PurePosixPath(name).name != name or "\\" in name:
            raise ContractError(f"contract {self.name}: file_name {name!r} is not a bare file name")

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


# Which policies each classification allows for columns that hold personal information.
# 重要: masks only for names/addresses (a masked mobile still shows 7 of 11 digits).
# 核心: nothing leaves, not even pseudonymized.
ALLOWED_PII_POLICIES: dict[Classification, frozenset[Policy]] = {
    Classification.GENERAL: frozenset(
        {
            Policy.PSEUDONYMIZE,
            Policy.MASK,
            Policy.GENERALIZE,
            Policy.REDACT,
            Policy.DROP,
            Policy.ENTITY_KEY,
        }
    ),
    Classification.IMPORTANT: frozenset(
        {
            Policy.PSEUDONYMIZE,
            Policy.MASK,
            Policy.GENERALIZE,
            Policy.REDACT,
            Policy.DROP,
            Policy.ENTITY_KEY,
        }
    ),
    Classification.CORE: frozenset({Policy.DROP}),
}


IMPORTANT_MASKS = frozenset({"name", "address"})


class ContractError(ValueError):
    """A contract declares a policy its data classification does not allow."""


def check_contract(table: SourceTable) -> None:
    """Refuse policies the classification forbids: 核心 never leaves, PII never kept as is."""
    problems = []
    for c in table.columns:
        level = c.classification or table.classification
        if level is Classification.CORE and c.policy is not Policy.DROP:
            problems.append(f"{c.name}: {level.value} data never leaves the domain (drop it)")
        elif c.pii and c.policy not in ALLOWED_PII_POLICIES[level]:
            allowed = ", ".join(sorted(p.value for p in ALLOWED_PII_POLICIES[level]))
            problems.append(
                f"{c.name} holds {c.pii}: policy {c.policy.value} is not allowed for "
                f"{level.value} data (allowed: {allowed})"
            )
        if c.disclosed and (c.pii or c.policy is not Policy.KEEP):
            problems.append(f"{c.name}: only a kept column without personal data is disclosed")
        if c.policy is Policy.MASK and not c.mask_kind:
            problems.append(f"{c.name}: mask policy needs a mask_kind")
        if c.code_format is not None:
            problems += _code_format_problems(c)
        if (
            c.policy is Policy.MASK
            and level is Classification.IMPORTANT
            and c.mask_kind not in IMPORTANT_MASKS
        ):
            problems.append(
                f"{c.name}: a partial {c.mask_kind} mask is not allowed for {level.value} data"
            )
    unknown = set(table.quasi_identifiers + table.sensitive) - set(table.column_names)
    if unknown:
        problems.append(f"unknown quasi-identifier/sensitive columns {sorted(unknown)}")
    if table.release is not None:
        problems += _release_problems(table, table.release)
    if problems:
        raise ContractError(f"contract {table.name}: " + "; ".join(problems))


def _code_format_problems(column: Column) -> list[str]:
    """A code format is a valid regex (polars' syntax) on a kept text column."""
    if column.type is not ColumnType.STRING or column.policy is not Policy.KEEP:
        return [f"{column.name}: a code format is for kept string columns"]
    try:
        matches_code_format(pl.Series([""]), column.code_format or "")
    except pl.exceptions.ComputeError as exc:
        return [f"{column.name}: code format {column.code_format!r} is not a regex ({exc})"]
    return []


def matches_code_format(values: pl.Series, code_format: str) -> pl.Series:
    """True where the whole value has the shape of the code format (null stays null)."""
    return values.str.contains(f"^(?:{code_format})$")


def _release_problems(table: SourceTable, rule: ReleaseRule) -> list[str]:
    """A release must cover every declared quasi-identifier and let no personal column out."""
    problems = []
    unknown = set(rule.columns) - set(table.column_names)
    if unknown:
        problems.append(f"release: unknown columns {sorted(unknown)}")
    generalized = [q.column for q in rule.quasi_identifiers]
    released_qis = [q for q in table.quasi_identifiers if q in rule.columns]
    if sorted(generalized) != sorted(released_qis):
        problems.append(
            f"release: hierarchies for {sorted(generalized)} but the released quasi-identifiers "
            f"are {sorted(released_qis)}"
        )
    personal = [c for c in rule.columns if c in table.column_names and table.column(c).pii]
    if personal:
        problems.append(f"release: columns holding personal information {personal}")
    if rule.l > 1 and not any(s in rule.columns for s in table.sensitive):
        problems.append("release: l > 1 needs a released sensitive column")
    return problems


@dataclass(frozen=True)
class Department:
    """A government department (or partner) that holds source data and shares in revenue."""

    code: str
    name_zh: str
    name_en: str
