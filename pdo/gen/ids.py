"""Identifier factories: USCCs, organization codes, resident IDs and mobiles, vectorized."""

from __future__ import annotations

import numpy as np
import polars as pl

from pdo.privacy.checksums import USCC_ALPHABET, resident_id_check_char, uscc_check_char

_ORG_WEIGHTS = np.array([3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_DIGITS = np.frombuffer(b"0123456789", dtype=np.uint8)
_ALPHABET = np.frombuffer(USCC_ALPHABET.encode(), dtype=np.uint8)
_MOBILE_PREFIX_TEXT = """
130 131 132 133 134 135 136 137 138 139 150 151 152 153 155 156 157 158 159
166 173 175 176 177 178 180 181 182 183 184 185 186 187 188 189 191 198 199
"""
MOBILE_PREFIXES = tuple(_MOBILE_PREFIX_TEXT.split())


def _rows_to_str(chars: np.ndarray) -> np.ndarray:
    """(n, k) uint8 ASCII codes → array of n Python strings."""
    chars = np.ascontiguousarray(chars, dtype=np.uint8)
    width = chars.shape[1]
    return chars.view(f"S{width}").ravel().astype(f"U{width}").astype(object)


def _char_values(chars: np.ndarray) -> np.ndarray:
    """GB 11714 character values: digits 0–9, letters A=10 … Z=35."""
    v = chars.astype(np.int64)
    return np.where(v <= ord("9"), v - ord("0"), v - ord("A") + 10)


def organization_codes(rng: np.random.Generator, modern: np.ndarray) -> np.ndarray:
    """9-char organization codes: 8 body chars (digits, or 'MA'+alphabet for post-2015
    registrations) and the GB 11714 MOD 11 check character."""
    n = len(modern)
    body = _DIGITS[rng.integers(0, 10, size=(n, 8))]
    alpha = _ALPHABET[rng.integers(0, len(_ALPHABET), size=(n, 6))]
    digits6 = _DIGITS[rng.integers(0, 10, size=(n, 6))]
    tail = np.where(rng.random((n, 1)) < 0.6, digits6, alpha)
    ma = np.concatenate([np.full((n, 1), ord("M")), np.full((n, 1), ord("A")), tail], axis=1)
    body = np.where(modern[:, None], ma, body).astype(np.uint8)
    c = 11 - (_char_values(body) * _ORG_WEIGHTS).sum(axis=1) % 11
    check = np.where(c == 10, ord("X"), np.where(c == 11, ord("0"), ord("0") + c))
    return np.concatenate([body, check[:, None].astype(np.uint8)], axis=1)


def usccs(
    rng: np.random.Generator, type_digit: np.ndarray, region: np.ndarray, modern: np.ndarray
) -> np.ndarray:
    """18-char USCCs: '9' (market regulation) + type digit + 6-digit region + org code + check."""
    n = len(type_digit)
    head = np.concatenate(
        [
            np.full((n, 1), ord("9"), dtype=np.uint8),
            (ord("0") + type_digit.astype(np.uint8))[:, None],
            np.array([list(r.encode()) for r in region], dtype=np.uint8).reshape(n, 6),
            organization_codes(rng, modern),
        ],
        axis=1,
    )
    first17 = _rows_to_str(head)
    return np.array([p + uscc_check_char(p) for p in first17], dtype=object)


def unique_usccs(
    rng: np.random.Generator, type_digit: np.ndarray, region: np.ndarray, modern: np.ndarray
) -> np.ndarray:
    """Like `usccs`, redrawing until no two enterprises share a code."""
    codes = usccs(rng, type_digit, region, modern)
    for _ in range(20):
        dup = later_duplicates(codes)
        if not dup.any():
            return codes
        codes[dup] = usccs(rng, type_digit[dup], region[dup], modern[dup])
    raise RuntimeError("could not draw unique USCCs")


def later_duplicates(values: np.ndarray) -> np.ndarray:
    """Mask of entries equal to an earlier entry."""
    return ~pl.Series(values.tolist(), dtype=pl.String).is_first_distinct().to_numpy()


def resident_ids(
    rng: np.random.Generator, region: np.ndarray, birth_days: np.ndarray, male: np.ndarray
) -> np.ndarray:
    """GB 11643 IDs: region, birth date YYYYMMDD, 3-digit sequence (odd = male), check char."""
    n = len(region)
    births = np.asarray(birth_days, dtype="int64").astype("datetime64[D]").astype(str)
    ymd = np.char.replace(births.astype("U10"), "-", "")
    seq = rng.integers(0, 50, size=n) * 2 + np.where(male, 1, 0)
    seq = seq + rng.integers(0, 10, size=n) * 100
    seq_s = np.char.zfill(seq.astype("U3"), 3)
    first17 = np.char.add(np.char.add(region.astype("U6"), ymd), seq_s)
    return np.array([p + resident_id_check_char(p) for p in first17.tolist()], dtype=object)


def unique_resident_ids(
    rng: np.random.Generator, region: np.ndarray, birth_days: np.ndarray, male: np.ndarray
) -> np.ndarray:
    """Like `resident_ids`, redrawing sequence numbers until no two people share an ID."""
    ids = resident_ids(rng, region, birth_days, male)
    for _ in range(50):
        dup = later_duplicates(ids)
        if not dup.any():
            return ids
        ids[dup] = resident_ids(rng, region[dup], birth_days[dup], male[dup])
    raise RuntimeError("could not draw unique resident IDs")


def mobiles(rng: np.random.Generator, n: int) -> np.ndarray:
    """Distinct 11-digit mainland mobile numbers with real network prefixes."""
    prefixes = np.array(MOBILE_PREFIXES, dtype="U3")
    out = np.empty(0, dtype=object)
    while len(out) < n:
        k = n - len(out) + 16
        p = prefixes[rng.integers(0, len(prefixes), size=k)]
        rest = _rows_to_str(_DIGITS[rng.integers(0, 10, size=(k, 8))]).astype("U8")
        drawn = np.char.add(p, rest).astype(object)
        out = np.concatenate([out, drawn])
        out = out[~later_duplicates(out)]
    return out[:n]
