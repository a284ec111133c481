"""Vectorized wire formatting: ISO dates, YYYY-MM months and yuan with exactly two decimals."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from pdo.gen.city import AS_OF

EPOCH = dt.date(1970, 1, 1)
AS_OF_DAY = (AS_OF - EPOCH).days
WINDOW_START = dt.date(2024, 7, 1)  # first month of the monthly series (24 months to AS_OF)
WINDOW_MONTHS = 24


def day(d: dt.date) -> int:
    """Days since 1970-01-01, the integer date representation used throughout the generator."""
    return (d - EPOCH).days


def to_date(days: int) -> dt.date:
    """Inverse of `day`."""
    return EPOCH + dt.timedelta(days=int(days))


def iso_dates(days: np.ndarray) -> pl.Series:
    """'2025-03-07' strings for an array of day numbers."""
    s = pl.Series("d", np.asarray(days, dtype="int64").astype("datetime64[D]"))
    return s.dt.strftime("%Y-%m-%d")


def month_labels(first: dt.date = WINDOW_START, count: int = WINDOW_MONTHS) -> list[str]:
    """'2024-07', '2024-08', … for `count` months starting at `first`."""
    out = []
    y, m = first.year, first.month
    for _ in range(count):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def month_start_days(first: dt.date = WINDOW_START, count: int = WINDOW_MONTHS) -> np.ndarray:
    """Day numbers of the first day of each month of the window, plus the day after the last."""
    labels = [*month_labels(first, count + 1)]
    return np.array([day(dt.date(int(x[:4]), int(x[5:]), 1)) for x in labels], dtype=np.int64)


def money(fen: np.ndarray) -> pl.Series:
    """'12345.67' strings for non-negative integer amounts in fen (hundredths)."""
    f = pl.Series("f", np.asarray(fen, dtype=np.int64))
    frame = pl.DataFrame({"f": f}).select(
        pl.concat_str(
            (pl.col("f") // 100).cast(pl.String),
            pl.lit("."),
            (pl.col("f") % 100).cast(pl.String).str.zfill(2),
        ).alias("m")
    )
    return frame["m"]


def integers(values: np.ndarray) -> pl.Series:
    """Plain decimal strings for integers."""
    return pl.Series("i", np.asarray(values, dtype=np.int64)).cast(pl.String)
