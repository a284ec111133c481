"""Desensitize: apply each column's declared policy, then scan every text column for leftovers."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import polars as pl

from pdo.privacy.entity_key import entity_key_series
from pdo.privacy.fastscan import FastScanner
from pdo.privacy.fastscan.anonymize import anonymize
from pdo.privacy.fastscan.results import Result
from pdo.privacy.pseudonym import Pseudonymizer
from pdo.privacy.redact import kept_entities
from pdo.privacy.risk import RiskThresholdError, assess, enforce
from pdo.privacy.vectorized import generalize_address_series, mask_series
from pdo.sources.contract import (
    ColumnType,
    Policy,
    SourceTable,
    check_contract,
    matches_code_format,
)

RISK_K_TARGET = 5  # the k the review package reports against


class ResidualPIIError(RuntimeError):
    """Personal data is still present after the policies ran; nothing may be written."""


# Amount bands in fen for `generalize` on money: [0, 1万), [1万, 10万), … [1亿, ∞) yuan.
AMOUNT_BANDS_FEN = (0, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000, 10_000_000_000)
AMOUNT_BAND_LABELS = ("<1万", "1万-10万", "10万-100万", "100万-1000万", "1000万-1亿", "≥1亿")


def amount_band(series: pl.Series) -> pl.Series:
    """Money (integer fen) generalized to a labelled band in yuan; negative amounts stay banded."""
    return series.cut(
        list(AMOUNT_BANDS_FEN[1:]), labels=list(AMOUNT_BAND_LABELS), left_closed=True
    ).cast(pl.String)


@dataclass(frozen=True)
class DesensitizeResult:
    """The desensitized frame and what the residual scan found per column."""

    frame: pl.DataFrame
    residual: dict[str, dict[str, int]] = field(default_factory=dict)
    risk: dict[str, Any] = field(default_factory=dict)  # k-anonymity report (numbers only)
    release: pl.DataFrame | None = None  # the k-anonymous record-level release, if declared
    redacted_again: dict[str, int] = field(default_factory=dict)  # distinct values per column


def policy_hash(table: SourceTable, key_id: str) -> str:
    """Identifies the policies applied (and the pseudonym key id, never the key)."""
    body = [
        (
            c.name,
            c.policy.value,
            c.mask_kind,
            *([list(c.disclosed)] if c.disclosed else []),
            *([{"code_format": c.code_format}] if c.code_format else []),
        )
        for c in table.columns
    ]
    return hashlib.sha256(json.dumps([table.name, body, key_id]).encode()).hexdigest()


def code_hash() -> str:
    """Identifies the desensitization code, so a code change yields a new dataset version."""
    privacy = Path(__file__).resolve().parents[1] / "pdo" / "privacy"
    files = [Path(__file__), *sorted(privacy.rglob("*.py"))]
    h = hashlib.sha256()
    for f in files:
        h.update(f.read_bytes())
    return h.hexdigest()


def _apply(
    df: pl.DataFrame, table: SourceTable, pseudo: Pseudonymizer, scanner: FastScanner
) -> tuple[pl.DataFrame, dict[str, dict[str, list[Result]]]]:
    """The policies applied, and each redacted column's values with their findings (the scan
    of the redacted text, done where it was redacted)."""
    out: list[pl.Series] = []
    rescanned: dict[str, dict[str, list[Result]]] = {}
    for c in table.columns:
        s = df[c.name]
        if c.policy is Policy.DROP:
            continue
        if c.policy is Policy.PSEUDONYMIZE:
            s = pseudo.pseudonymize_series(s)
        elif c.policy is Policy.ENTITY_KEY:
            s = entity_key_series(s, pseudo)
        elif c.policy is Policy.MASK:
            s = mask_series(c.mask_kind or "", s)
        elif c.policy is Policy.GENERALIZE:
            if c.type is ColumnType.DATE:
                s = s.dt.strftime("%Y-%m")
            elif c.type in (ColumnType.DECIMAL, ColumnType.INTEGER):
                s = amount_band(s)
            else:
                s = generalize_address_series(s)
        elif c.policy is Policy.REDACT:
            s, rescanned[c.name] = scanner.redact_and_rescan(s)
        out.append(s.alias(c.name))
    return pl.DataFrame(out), rescanned


REDACT_ROUNDS = 3  # a redacted value the residual scan still flags is redacted again at most 3×


@dataclass(frozen=True)
class ResidualScan:
    """What the deny-by-default scan still finds per column (entity counts over distinct values),
    and the redacted values it redacted again, per column (value as first redacted → final)."""

    found: dict[str, dict[str, int]] = field(default_factory=dict)
    redacted_again: dict[str, dict[str, str]] = field(default_factory=dict)

    def redacted_again_counts(self) -> dict[str, int]:
        """How many distinct values per column were redacted again (for the ledger; no values)."""
        return {name: len(again) for name, again in self.redacted_again.items()}

    def repair(self, frame: pl.DataFrame) -> pl.DataFrame:
        """frame with the values redacted again replaced by their final text."""
        return frame.with_columns(
            pl.col(name).replace(list(again), list(again.values()))
            for name, again in self.redacted_again.items()
        )


def scan_residual(
    frame: pl.DataFrame,
    scanner: FastScanner,
    disclosed: Mapping[str, Iterable[str]] | None = None,
    codes: Iterable[str] = (),
    redacted: Iterable[str] = (),
    code_formats: Mapping[str, str] | None = None,
    scanned: Mapping[str, Mapping[str, list[Result]]] | None = None,
    money: Iterable[str] = (),
) -> ResidualScan:
    """Deny by default: every distinct value of every text or integer column is scanned, except
    amounts (the `money` columns, integer fen): 1.5亿 yuan is 15000000000 fen, a mobile's shape.

    The scanner stands for the full Presidio analyzer (patterns, checksums and NER); personal
    entities are counted per column, kept ones (enterprise codes, organisations) are not, nor
    the entities a column declares disclosed. NER (names, addresses, organisations) only reads
    values that hold a letter; a column whose NER entities are all accepted, and the code
    columns (entity keys and pseudonyms), are scanned by the patterns only; so are the values
    of a column with a code format that have its shape (a case number; values that miss it
    are read by NER too). `scanned` gives, per column, the full scanner's findings of values
    already scanned (the redaction's own rescan); those values are not scanned again.

    In the redacted columns, a value the scan flags is redacted again with the scan's own
    findings and re-scanned alone (a name the model only sees once the text around it became
    placeholders), at most REDACT_ROUNDS times; only what is still found then is counted.
    """
    found: dict[str, dict[str, int]] = {}
    redacted_again: dict[str, dict[str, str]] = {}
    disclosed = disclosed or {}
    code_columns = set(codes)
    redacted_columns = set(redacted)
    code_formats = code_formats or {}
    money_columns = set(money)
    default_kept = kept_entities()
    for name, dtype in frame.schema.items():
        if not (dtype == pl.String or dtype.is_integer()):
            continue  # dates and floats cannot hold an identifier
        if dtype.is_integer() and name in money_columns:
            continue  # a parsed amount of money, not personal data
        values = frame[name].cast(pl.String).drop_nulls().unique()
        kept = default_kept | frozenset(disclosed.get(name, ()))
        ner = not (scanner.ner_entities <= kept or name in code_columns or dtype.is_integer())
        shape = code_formats.get(name)
        flagged = _personal(values, scanner, kept, ner, shape, (scanned or {}).get(name))
        if flagged and name in redacted_columns:
            final, flagged = redact_again(
                flagged, partial(_personal, scanner=scanner, kept=kept, ner=ner, shape=shape)
            )
            redacted_again[name] = final
        counts = Counter(r.entity_type for results in flagged.values() for r in results)
        if counts:
            found[name] = dict(counts)
    return ResidualScan(found, redacted_again)


def _personal(
    values: pl.Series,
    scanner: FastScanner,
    kept: frozenset[str],
    ner: bool,
    shape: str | None = None,
    scanned: Mapping[str, list[Result]] | None = None,
) -> dict[str, list[Result]]:
    """The values holding an entity not kept, with those findings (NER reads worded ones,
    except those in the column's code format; those `scanned` already are not read again)."""
    patterns = scanner.without_ner()
    if not ner:
        return patterns.personal_findings(values.to_list(), kept)
    worded = values.str.contains(r"\p{L}")
    if shape is not None:
        worded &= ~matches_code_format(values, shape)
    return patterns.personal_findings(
        values.filter(~worded).to_list(), kept
    ) | scanner.personal_findings(values.filter(worded).to_list(), kept, known=scanned)


def redact_again(
    flagged: dict[str, list[Result]],
    rescan: Callable[[pl.Series], dict[str, list[Result]]],
) -> tuple[dict[str, str], dict[str, list[Result]]]:
    """Each flagged value's text after redacting what the scans found, round by round, and the
    findings still left in those that did not come clean within REDACT_ROUNDS."""
    final = {value: value for value in flagged}
    pending = flagged
    for _ in range(REDACT_ROUNDS):
        if not pending:
            break
        for value, results in pending.items():
            final[value] = anonymize(final[value], results)
        again = rescan(pl.Series([final[v] for v in pending], dtype=pl.String))
        pending = {v: again[final[v]] for v in pending if final[v] in again}
    return final, pending


def _codes(table: SourceTable) -> list[str]:
    """Columns our own policies turn into codes: entity keys and pseudonyms."""
    return [c.name for c in table.columns if c.policy in (Policy.ENTITY_KEY, Policy.PSEUDONYMIZE)]


def _money(table: SourceTable) -> list[str]:
    """Columns the contract declares DECIMAL: amounts, read at ingest as integer fen."""
    return [c.name for c in table.columns if c.type is ColumnType.DECIMAL]


def release_hash(table: SourceTable) -> str:
    """Identifies a release rule (columns, k, l, budget and each hierarchy's level names)."""
    rule = table.release
    assert rule is not None
    body = [
        list(rule.columns),
        [(q.column, q.hierarchy.names, q.top) for q in rule.quasi_identifiers],
        rule.k,
        rule.l,
        rule.max_suppression,
    ]
    return hashlib.sha256(json.dumps([table.name, body]).encode()).hexdigest()


def make_release(frame: pl.DataFrame, table: SourceTable) -> tuple[pl.DataFrame, dict[str, Any]]:
    """The declared columns, generalized and suppressed until k and l hold (or RiskThresholdError).

    The report is the release's own (after), with the desensitized frame's (before) beside it.
    """
    rule = table.release
    assert rule is not None
    sensitive = [c for c in table.sensitive if c in rule.columns]
    done = enforce(
        frame.select(rule.columns),
        rule.quasi_identifiers,
        sensitive,
        k=rule.k,
        l=rule.l,
        max_suppression=rule.max_suppression,
    )
    report = done.report.to_dict() | {
        "enforced": True,
        "l_target": rule.l,
        "max_suppression": rule.max_suppression,
        "columns": list(rule.columns),
        "before": done.before.to_dict(),
    }
    return done.frame, report


def _residual_message(table: SourceTable, residual: dict[str, dict[str, int]]) -> str:
    """Column, entity type and count for each finding — never the values themselves."""
    parts = []
    for column, entities in residual.items():
        policy = table.column(column).policy
        found = ", ".join(f"{entity} × {n}" for entity, n in sorted(entities.items()))
        if policy is Policy.KEEP:
            parts.append(
                f"column {column!r} holds personal information ({found}) but has no "
                "policy: declare drop/pseudonymize/mask/generalize/redact in its contract"
            )
        else:
            parts.append(
                f"column {column!r} still holds personal information after {policy.value} ({found})"
            )
    return f"{table.name}: desensitization refused: " + "; ".join(parts)


def desensitize_part(
    df: pl.DataFrame, table: SourceTable, pseudo: Pseudonymizer, scanner: FastScanner
) -> tuple[pl.DataFrame, ResidualScan]:
    """One partition's rows with the column policies applied (and residual findings in redacted
    text redacted again), and what the residual scan still finds (counts add up across
    partitions)."""
    check_contract(table)
    frame, rescanned = _apply(df, table, pseudo, scanner)
    residual = scan_residual(
        frame,
        scanner,
        _disclosed(table),
        _codes(table),
        _redacted(table),
        _code_formats(table),
        scanned=rescanned,
        money=_money(table),
    )
    return residual.repair(frame), residual


def _redacted(table: SourceTable) -> list[str]:
    return [c.name for c in table.columns if c.policy is Policy.REDACT]


def _code_formats(table: SourceTable) -> dict[str, str]:
    return {c.name: c.code_format for c in table.columns if c.code_format}


def _disclosed(table: SourceTable) -> dict[str, tuple[str, ...]]:
    return {c.name: c.disclosed for c in table.columns if c.disclosed}


def add_residual(
    total: dict[str, dict[str, int]], part: dict[str, dict[str, int]]
) -> dict[str, dict[str, int]]:
    """Residual counts of two partitions together."""
    merged = {column: dict(entities) for column, entities in total.items()}
    for column, entities in part.items():
        for entity, n in entities.items():
            merged.setdefault(column, {})[entity] = merged.get(column, {}).get(entity, 0) + n
    return merged


def refuse_residual(table: SourceTable, residual: dict[str, dict[str, int]]) -> None:
    """Raise ResidualPIIError when anything personal is left."""
    if residual:
        raise ResidualPIIError(_residual_message(table, residual))


def release_and_risk(
    frame: pl.DataFrame, table: SourceTable, scanner: FastScanner
) -> tuple[pl.DataFrame | None, dict[str, Any]]:
    """The k-anonymous release (over the whole table: classes span partitions) and the risk."""
    risk: dict[str, Any] = {}
    release = None
    withheld = None
    if table.release is not None:
        try:
            release, risk = make_release(frame, table)
        except RiskThresholdError as e:  # too few records to hide among: nothing is released
            withheld = str(e)
        else:
            leftover = scan_residual(
                release,
                scanner,
                _disclosed(table),
                _codes(table),
                code_formats=_code_formats(table),
                money=_money(table),
            ).found
            if leftover:  # generalization only coarsens: this would be a bug, never a release
                raise ResidualPIIError(_residual_message(table, leftover))
    if release is None and table.quasi_identifiers:
        quasi = [q for q in table.quasi_identifiers if q in frame.columns]
        sensitive = [c for c in table.sensitive if c in frame.columns]
        risk = assess(frame, quasi, sensitive, k_target=RISK_K_TARGET).to_dict()
        if withheld:
            risk["release_withheld"] = withheld
    return release, risk


def desensitize(
    df: pl.DataFrame, table: SourceTable, pseudo: Pseudonymizer, scanner: FastScanner
) -> DesensitizeResult:
    """Policies applied; raises ResidualPIIError when the scan still finds personal data.

    scanner must cover every entity the analyzer knows (``FastScanner(analyzer, ner=True)``).
    """
    frame, residual = desensitize_part(df, table, pseudo, scanner)
    refuse_residual(table, residual.found)
    release, risk = release_and_risk(frame, table, scanner)
    return DesensitizeResult(
        frame=frame,
        residual=residual.found,
        risk=risk,
        release=release,
        redacted_again=residual.redacted_again_counts(),
    )
