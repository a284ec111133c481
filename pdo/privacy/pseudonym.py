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
REPEATS_WORTH_DEDUPLICATING = 0.8  # distinct share below which each value is hashed once
ASCII_WHITESPACE = "".join(chr(c) for c in range(128) if chr(c).isspace())


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
        """pseudonym() for each value of a column (cast to text); nulls stay null, name kept.

        Normalizing, hex-encoding and slicing run as column operations, so the Python loop is
        the bare HMAC call. A column with many repeats hashes each distinct value once.
        """
        text = series.cast(pl.Utf8)
        if text.n_unique() <= REPEATS_WORTH_DEDUPLICATING * text.len():
            uniques = text.drop_nulls().unique()
            return text.replace_strict(
                uniques, self._codes(uniques), default=None, return_dtype=pl.Utf8
            ).alias(series.name)
        return self._codes(text).alias(series.name)

    def _codes(self, text: pl.Series) -> pl.Series:
        key = self._key
        messages = normalize_series(text).cast(pl.Binary).to_list()
        digests = [None if m is None else hmac.digest(key, m, "sha256") for m in messages]
        hexes = pl.Series(digests, dtype=pl.Binary).bin.encode("hex").str.head(HEX_CHARS)
        return PREFIX + hexes


def normalize_series(series: pl.Series) -> pl.Series:
    """normalize() on a text column, value for value.

    ASCII values (most identifiers) are stripped and upper-cased as columns; the others go
    through normalize() itself, since polars' Unicode tables are newer than Python's (its
    upper case of U+019B differs) and only Python's answer keeps pseudonyms stable.
    """
    out = series.str.strip_chars(ASCII_WHITESPACE).str.to_uppercase()
    wide = (series.str.len_bytes() != series.str.len_chars()).fill_null(False)
    if not wide.any():
        return out
    index = wide.arg_true()
    redo = pl.Series([normalize(v) for v in series.gather(index).to_list()], dtype=pl.Utf8)
    return out.scatter(index, redo)
