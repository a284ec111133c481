"""Keyed deterministic pseudonyms: one person joins across tables without being revealed."""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from pdo.settings import Settings

PREFIX = "p_"
HEX_CHARS = 24  # 96 bits: collisions are negligible at government-registry scale


def normalize(value: str) -> str:
    """NFKC (full-width → ASCII), trimmed and upper-cased, so 11010…x and １１０１０…X agree."""
    return unicodedata.normalize("NFKC", value).strip().upper()


class Pseudonymizer:
    """HMAC-SHA256 pseudonyms under one secret key; Presidio's hash operator salts randomly."""

    __slots__ = ("_key", "key_id")

    def __init__(self, key_id: str, key: bytes) -> None:
        if not key:
            raise ValueError("pseudonym key must not be empty")
        self.key_id = key_id
        self._key = bytes(key)

    def __repr__(self) -> str:
        return f"Pseudonymizer(key_id={self.key_id!r}, key=<redacted>)"

    __str__ = __repr__

    @classmethod
    def from_settings(cls, settings: Settings) -> Pseudonymizer:
        """The pseudonymizer for the configured key (env secret or local key file)."""
        key_id, key = settings.read_pseudonym_key()
        return cls(key_id, key)

    def pseudonym(self, value: str) -> str:
        """'p_' + 24 hex chars of HMAC-SHA256(key, normalized value); same input, same output."""
        digest = hmac.new(self._key, normalize(value).encode("utf-8"), hashlib.sha256)
        return PREFIX + digest.hexdigest()[:HEX_CHARS]

    def pseudonymize_series(self, series: pl.Series) -> pl.Series:
        """Pseudonyms for a polars column (cast to text); nulls stay null, name is kept."""
        text = series.cast(pl.Utf8)
        uniques = text.drop_nulls().unique()
        mapping = {v: self.pseudonym(v) for v in uniques.to_list()}
        return text.replace_strict(mapping, default=None, return_dtype=pl.Utf8).alias(series.name)
