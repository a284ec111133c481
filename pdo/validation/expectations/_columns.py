"""Shared by the metrics: judge each distinct value once; read fixed-width code points."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

CHUNK = 1 << 16  # distinct values judged at a time


def per_distinct(column: pd.Series, judge: Callable[[np.ndarray], np.ndarray]) -> pd.Series:
    """judge(distinct values as an object array) → bools, spread back over the rows.

    IDs and codes repeat across rows (joined tables, repeated filings), so a value is judged
    once, in chunks of CHUNK values (bounded memory for the code point matrices). Nulls (GX
    filters them out before the metric; kept here for safety) count as passing.
    """
    codes, uniques = pd.factorize(column)
    values = np.asarray(uniques, dtype=object)
    parts = [judge(values[i : i + CHUNK]) for i in range(0, len(values), CHUNK)]
    ok = np.concatenate(parts).astype(bool) if parts else np.zeros(0, dtype=bool)
    ok = np.append(ok, True)  # code -1 (a null) indexes this last slot
    return pd.Series(ok[codes], index=column.index)


def fixed_width(values: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(positions, code points) of the values that are str of exactly width characters.

    The code points form an (n, width) uint32 matrix, so checks run as numpy column arithmetic.
    """
    try:
        lengths = pd.Series(values, dtype=object).str.len()  # NaN for non-str values
    except AttributeError:  # no str value at all
        lengths = pd.Series(np.nan, index=range(len(values)))
    positions = np.flatnonzero((lengths == width).to_numpy())
    text = np.array(values[positions].tolist(), dtype=f"<U{width}")
    return positions, text.view(np.uint32).reshape(len(positions), width)
