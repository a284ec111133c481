"""Desensitize: apply each column's declared policy, then scan every text column for leftovers."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from pdo.privacy.masks import MASKS, generalize_address
from pdo.privacy.pseudonym import Pseudonymizer
from pdo.privacy.redact import redact_text, residual_pii
from pdo.sources.contract import ColumnType, Policy, SourceTable

RESIDUAL_SCAN_SAMPLE = 20_000


class ResidualPIIError(RuntimeError):
    """Personal data is still present after the policies ran; nothing may be written."""


@dataclass(frozen=True)
class DesensitizeResult:
    """The desensitized frame and what the residual scan found per column."""

    frame: pl.DataFrame
    residual: dict[str, dict[str, int]] = field(default_factory=dict)


def policy_hash(table: SourceTable, key_id: str) -> str:
    """Identifies the policies applied (and the pseudonym key id, never the key)."""
    body = [(c.name, c.policy.value, c.mask_kind) for c in table.columns]
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
    df: pl.DataFrame, table: SourceTable, pseudo: Pseudonymizer, analyzer: Any, anonymizer: Any
) -> pl.DataFrame:
    out: list[pl.Series] = []
    for c in table.columns:
        s = df[c.name]
        if c.policy is Policy.DROP:
            continue
        if c.policy is Policy.PSEUDONYMIZE:
            s = pseudo.pseudonymize_series(s)
        elif c.policy is Policy.MASK:
            mask = MASKS[c.mask_kind or ""]
            s = s.map_elements(mask, return_dtype=pl.String)
        elif c.policy is Policy.GENERALIZE:
            if c.type is ColumnType.DATE:
                s = s.dt.strftime("%Y-%m")
            else:
                s = s.map_elements(generalize_address, return_dtype=pl.String)
        elif c.policy is Policy.REDACT:
            s = s.map_elements(
                lambda text: redact_text(analyzer, anonymizer, text), return_dtype=pl.String
            )
        out.append(s.alias(c.name))
    return pl.DataFrame(out)


def scan_residual(frame: pl.DataFrame, analyzer: Any) -> dict[str, dict[str, int]]:
    """Deny by default: every text column is scanned; any personal entity found is reported."""
    found: dict[str, dict[str, int]] = {}
    for name, dtype in frame.schema.items():
        if dtype != pl.String:
            continue
        values = frame[name].drop_nulls().unique()
        if values.len() > RESIDUAL_SCAN_SAMPLE:
            values = values.sample(RESIDUAL_SCAN_SAMPLE, seed=0)
        counts: Counter[str] = residual_pii(analyzer, values.to_list())
        if counts:
            found[name] = dict(counts)
    return found


def desensitize(
    df: pl.DataFrame, table: SourceTable, pseudo: Pseudonymizer, analyzer: Any, anonymizer: Any
) -> DesensitizeResult:
    """Policies applied; raises ResidualPIIError when the scan still finds personal data."""
    frame = _apply(df, table, pseudo, analyzer, anonymizer)
    residual = scan_residual(frame, analyzer)
    if residual:
        summary = ", ".join(f"{col}: {ents}" for col, ents in residual.items())
        raise ResidualPIIError(
            f"{table.name}: personal data remains after desensitization ({summary})"
        )
    return DesensitizeResult(frame=frame, residual=residual)
