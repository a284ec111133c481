"""The raw-zone GX suite of the enterprise registry vs the same checks in plain pandas, one run.

Data: a generated city's ``market_enterprise_registry.csv`` (``--enterprises`` of them), parsed
as the pipeline does (``flows.ingest.ingest_file``), then tiled to ``--rows`` rows with fresh
``source_row`` ids 1..rows. Tiling would make every USCC repeat, so by default (``--keys
rekey``) each copy after the first changes two pairs of USCC characters by amounts that leave
the GB 32100 weighted sum unchanged mod 31: valid codes stay valid, invalid ones stay invalid,
and the copies' codes are distinct (the source's own duplicates stay duplicated). ``--keys
repeat`` keeps the codes as they are: the uniqueness warning then fails on every row.

Subject: ``pdo.validation.runner.run_suite`` with ``flows.validate``'s reviewed suite
``expectations/enterprise_registry.raw.json`` (row count, valid USCC and valid resident ID at
row severity, unique USCC as a warning, freshness of ``established_on`` against an
authorization window), exactly as ``flows.validate.validate_raw`` calls it.

Baseline: the same checks as a data engineer would write them in vectorized pandas and numpy:
row count bounds; USCC (GB 32100 alphabet and MOD 31-3 check character) and resident ID
(GB 11643 MOD 11-2 check character, a real birth date in 1900–2100, ``x`` read as ``X``) by
character-code arithmetic over the distinct values of each column, spread back to the rows,
failing row ids collected; ``duplicated(keep=False)`` for uniqueness; the column max against
the window's bounds. Non-ASCII identifiers simply fail in the baseline; the agreement check
would catch data where that differs from the reviewed rule.

Fairness: both sides start from the same polars frame and each pays the same polars → pandas
conversion (all columns, row ids as the index), which is part of the real cost of the GX
path; that conversion is also timed alone (``to_pandas_seconds``). Both sides are warmed up
on a small slice first (GX's import and context creation are not timed).

The two sides must agree (same failing row ids for each row-level check, same verdict and
count for the aggregates): ``figures.agreement``; the exit status is 1 when they do not.
``--profile N`` prints the top N functions (cumulative) of one more GX run to stderr.

Each timing is the best of --repeat runs (machines here are noisy; ratios hold). The last line
of output is one JSON object: {"bench": "validate", "figures", "ratios", "params"}.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import json
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

TABLE = "enterprise_registry"
ROW = "source_row"
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = np.array([1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28])
RID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
RID_CHECK = np.array([ord(c) for c in "10X98765432"])
MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
# Rekeying: (p, q) position pairs of the 17 weighted characters; copy k shifts pair 0 by k % 31
# and pair 1 by k // 31 (so up to 961 copies are distinct).
REKEY_PAIRS = ((9, 10), (11, 12))


def best_of(repeat: int, run: Callable[[], object]) -> float:
    """The fastest of repeat timed calls, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


# -- data -----------------------------------------------------------------------------------------


def _rekeyer(copy: int) -> Callable[[str | None], str | None]:
    """A USCC → a distinct code with the same GB 32100 verdict, for tiled copy number copy."""
    index = {c: i for i, c in enumerate(USCC_ALPHABET)}
    shifts: list[tuple[int, int, int, int]] = []
    for (p, q), d in zip(REKEY_PAIRS, (copy % 31, copy // 31), strict=True):
        if d:
            w_p, w_q = int(USCC_WEIGHTS[p]), int(USCC_WEIGHTS[q])
            # +d at p and -d·w_p/w_q at q: the weighted sum is unchanged mod 31
            shifts.append((p, q, d, (-d * w_p * pow(w_q, -1, 31)) % 31))

    def rekey(code: str | None) -> str | None:
        if code is None:
            return None
        if len(code) != 18 or any(code[i] not in index for s in shifts for i in s[:2]):
            return f"{code}#{copy}"  # '#' is outside the alphabet: invalid stays invalid
        chars = list(code)
        for p, q, dp, dq in shifts:
            chars[p] = USCC_ALPHABET[(index[chars[p]] + dp) % 31]
            chars[q] = USCC_ALPHABET[(index[chars[q]] + dq) % 31]
        return "".join(chars)

    return rekey


def tile(base: pl.DataFrame, rows: int, keys: str) -> pl.DataFrame:
    """base repeated (and cut) to rows rows, source_row 1..rows, USCCs rekeyed per copy."""
    copies = -(-rows // base.height)
    if keys == "rekey" and copies > 31 * 31:
        raise SystemExit(f"--keys rekey supports at most 961 copies, not {copies}")
    parts = []
    for copy in range(copies):
        part = base
        if copy and keys == "rekey":
            rekey = _rekeyer(copy)
            part = part.with_columns(
                pl.Series("uscc", [rekey(c) for c in part["uscc"].to_list()], dtype=pl.String)
            )
        parts.append(part)
    frame = pl.concat(parts).head(rows)
    ids = pl.int_range(1, rows + 1, eager=True).cast(base[ROW].dtype)
    return frame.with_columns(ids.alias(ROW))


def load_registry(data: Path) -> pl.DataFrame:
    """The registry as the pipeline's ingest leaves it (clean rows, with source_row)."""
    from flows.ingest import ingest_file
    from pdo.sources.tables import table

    result = ingest_file(data / "market_enterprise_registry.csv", table(TABLE))
    return result.clean


# -- the two sides --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdicts:
    """What both sides must agree on: failing row ids per row check, aggregates' verdicts."""

    row_count_ok: bool
    uscc_failing: frozenset[int]
    resident_id_failing: frozenset[int]
    uscc_unique_ok: bool
    uscc_duplicated: int
    freshness_ok: bool

    def counts(self) -> dict[str, Any]:
        return {
            "row_count_ok": self.row_count_ok,
            "uscc_invalid_rows": len(self.uscc_failing),
            "resident_id_invalid_rows": len(self.resident_id_failing),
            "uscc_unique_ok": self.uscc_unique_ok,
            "uscc_duplicated_rows": self.uscc_duplicated,
            "freshness_ok": self.freshness_ok,
        }


def gx_verdicts(run: Any) -> Verdicts:
    """Read a SuiteRun's outcomes as Verdicts."""
    by_key = {(o.expectation, o.column): o for o in run.outcomes}
    row_count = by_key[("expect_table_row_count_to_be_between", None)]
    uscc = by_key[("expect_column_values_to_be_valid_uscc", "uscc")]
    rid = by_key[("expect_column_values_to_be_valid_resident_id", "legal_rep_id")]
    unique = by_key[("expect_column_values_to_be_unique", "uscc")]
    fresh = by_key[("expect_column_max_to_be_between", "established_on")]
    return Verdicts(
        row_count_ok=row_count.success,
        uscc_failing=frozenset(uscc.failed_rows),
        resident_id_failing=frozenset(rid.failed_rows),
        uscc_unique_ok=unique.success,
        uscc_duplicated=unique.unexpected_count or 0,
        freshness_ok=fresh.success,
    )


def to_pandas(frame: pl.DataFrame) -> pd.DataFrame:
    """The frame as pandas, indexed by source_row (the conversion the GX path also pays)."""
    out = frame.drop(ROW).to_pandas()
    out.index = pd.Index(frame[ROW].cast(pl.Int64).to_numpy(), name=ROW)
    return out


def _distinct_codes(column: pd.Series, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row codes into the distinct values, which distinct values are width long, their
    code points as an (n, width) matrix)."""
    codes, uniques = pd.factorize(column)  # nulls: code -1
    distinct = pd.Series(uniques)
    fits = (distinct.str.len() == width).to_numpy(dtype=bool)
    text = distinct[fits].to_numpy(dtype=object).astype(f"<U{width}")
    return codes, fits, text.view(np.uint32).reshape(-1, width).astype(np.int64)


def _failing_rows(index: pd.Index, codes: np.ndarray, ok_distinct: np.ndarray) -> frozenset[int]:
    failing = ~np.append(ok_distinct, True)[codes]  # a null (code -1) is skipped, as in GX
    return frozenset(index[failing].tolist())


def uscc_failing(column: pd.Series) -> frozenset[int]:
    """Rows whose non-null USCC breaks GB 32100 (alphabet, length, MOD 31-3)."""
    codes, fits, points = _distinct_codes(column, 18)
    lookup = np.full(129, -1)
    lookup[[ord(c) for c in USCC_ALPHABET]] = np.arange(31)
    value = lookup[np.minimum(points, 128)]
    check = (31 - (value[:, :17] @ USCC_WEIGHTS) % 31) % 31
    ok = np.zeros(len(fits), dtype=bool)
    ok[fits] = (value >= 0).all(axis=1) & (value[:, 17] == check)
    return _failing_rows(column.index, codes, ok)


def resident_id_failing(column: pd.Series) -> frozenset[int]:
    """Rows whose non-null resident ID breaks GB 11643 (17 digits, birth date, MOD 11-2)."""
    codes, fits, points = _distinct_codes(column, 18)
    digits = points[:, :17] - ord("0")
    all_digits = np.asarray(((digits >= 0) & (digits <= 9)).all(axis=1), dtype=bool)
    year = digits[:, 6:10] @ np.array([1000, 100, 10, 1])
    month = digits[:, 10] * 10 + digits[:, 11]
    day = digits[:, 12] * 10 + digits[:, 13]
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    days = MONTH_DAYS[np.clip(month, 0, 12)] + ((month == 2) & leap)
    real_date = (year >= 1900) & (year <= 2100) & (month >= 1) & (month <= 12)
    real_date &= (day >= 1) & (day <= days)
    last = np.where(points[:, 17] == ord("x"), ord("X"), points[:, 17])
    expected = RID_CHECK[(np.where(all_digits[:, None], digits, 0) @ RID_WEIGHTS) % 11]
    ok = np.zeros(len(fits), dtype=bool)
    ok[fits] = all_digits & real_date & (last == expected)
    return _failing_rows(column.index, codes, ok)


def raw_verdicts(frame: pl.DataFrame, bounds: tuple[dt.datetime, dt.datetime]) -> Verdicts:
    """The suite's checks in plain pandas, from the polars frame (conversion included)."""
    df = to_pandas(frame)
    uscc = df["uscc"]
    duplicated = int((uscc.duplicated(keep=False) & uscc.notna()).sum())
    newest = df["established_on"].max()
    return Verdicts(
        row_count_ok=len(df) >= 1,
        uscc_failing=uscc_failing(uscc),
        resident_id_failing=resident_id_failing(df["legal_rep_id"]),
        uscc_unique_ok=duplicated == 0,
        uscc_duplicated=duplicated,
        freshness_ok=bool(pd.notna(newest) and bounds[0] <= newest <= bounds[1]),
    )


def freshness_bounds(
    spec: dict[str, Any], window: tuple[dt.date, dt.date]
) -> tuple[dt.datetime, dt.datetime]:
    """The established_on bounds the suite's freshness check derives from the window."""
    (config,) = [e for e in spec["expectations"] if (e.get("meta") or {}).get("freshness")]
    start = window[0] - dt.timedelta(days=int(config["meta"].get("max_age_days", 0)))
    return dt.datetime.combine(start, dt.time.min), dt.datetime.combine(window[1], dt.time.max)


def profile_gx(run: Callable[[], object], top: int) -> None:
    """cProfile one GX run; the top functions by cumulative and by own time, to stderr."""
    profiler = cProfile.Profile()
    profiler.enable()
    run()
    profiler.disable()
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(top)
        print(f"-- GX profile by {order} --\n{out.getvalue()}", file=sys.stderr)


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--enterprises", type=int, default=100_000)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows after tiling")
    parser.add_argument("--keys", choices=("rekey", "repeat"), default="rekey")
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--data", type=Path, help="an existing generated delivery")
    parser.add_argument("--valid-from", type=dt.date.fromisoformat, default=dt.date(2026, 7, 1))
    parser.add_argument("--valid-to", type=dt.date.fromisoformat, default=dt.date(2027, 6, 30))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="top N GX functions")
    args = parser.parse_args(list(argv) if argv is not None else None)

    from flows.validate import applicable, load_suite
    from pdo.validation.runner import RunInputs, run_suite

    with tempfile.TemporaryDirectory(prefix="bench_validate_") as tmp:
        data = args.data
        if data is None:
            from pdo.gen import generate

            data = Path(tmp) / "city"
            print(f"generating {args.enterprises:,} enterprises…", file=sys.stderr)
            generate(data, enterprises=args.enterprises, seed=args.seed, progress=False)
        base = load_registry(data)
    print(f"tiling {base.height:,} registry rows to {args.rows:,} ({args.keys})…", file=sys.stderr)
    frame = tile(base, args.rows, args.keys)

    window = (args.valid_from, args.valid_to)
    inputs = RunInputs(window=window)
    spec, skipped = applicable(load_suite(TABLE, "raw"), inputs)
    if skipped:
        raise SystemExit(f"suite checks this bench cannot feed: {skipped}")
    bounds = freshness_bounds(spec, window)

    runs: dict[str, Any] = {}

    def gx_side(f: pl.DataFrame = frame) -> None:
        runs["gx"] = run_suite(spec, f.drop(ROW), inputs, row_ids=f[ROW])

    def raw_side(f: pl.DataFrame = frame) -> None:
        runs["raw"] = raw_verdicts(f, bounds)

    print("warming up (GX import and context)…", file=sys.stderr)
    warm = frame.head(2_000)
    gx_side(warm)
    raw_side(warm)
    warm_agree = gx_verdicts(runs["gx"]) == runs["raw"]

    print(f"polars → pandas, best of {args.repeat}…", file=sys.stderr)
    conversion = best_of(args.repeat, lambda: to_pandas(frame))
    print(f"raw pandas checks, best of {args.repeat}…", file=sys.stderr)
    raw = best_of(args.repeat, raw_side)
    print(f"GX suite, best of {args.repeat}…", file=sys.stderr)
    gx = best_of(args.repeat, gx_side)
    if args.profile:
        profile_gx(gx_side, args.profile)

    theirs, ours = gx_verdicts(runs["gx"]), runs["raw"]
    agreement = warm_agree and theirs == ours
    if not agreement:
        print("DISAGREEMENT between GX and the pandas baseline:", file=sys.stderr)
        for name, mine in ours.counts().items():
            print(f"  {name}: gx {theirs.counts()[name]} raw {mine}", file=sys.stderr)

    figures = {
        "rows": frame.height,
        "gx_seconds": round(gx, 4),
        "raw_seconds": round(raw, 4),
        "to_pandas_seconds": round(conversion, 4),
        "gx_checks_seconds": round(gx - conversion, 4),
        "raw_checks_seconds": round(raw - conversion, 4),
        "gx_rows_per_s": round(frame.height / gx),
        "raw_rows_per_s": round(frame.height / raw),
        "checks": ours.counts(),
        "gx_checks": theirs.counts(),
        "suite_success": runs["gx"].success,
        "agreement": agreement,
    }
    params = {
        "table": TABLE,
        "suite": spec["name"],
        "enterprises": None if args.data else args.enterprises,
        "registry_rows": base.height,
        "rows": args.rows,
        "tiled": f"registry rows repeated {-(-args.rows // base.height)}× and cut to rows",
        "keys": args.keys,
        "uscc_distinct": frame["uscc"].n_unique(),
        "legal_rep_id_distinct": frame["legal_rep_id"].n_unique(),
        "seed": args.seed,
        "data": str(args.data) if args.data else None,
        "window": [args.valid_from.isoformat(), args.valid_to.isoformat()],
        "both_sides_from": "polars frame (each pays the pandas conversion)",
        "repeat": args.repeat,
        "cpu_count": os.cpu_count(),
    }
    print(
        json.dumps(
            {
                "bench": "validate",
                "figures": figures,
                "ratios": {"gx_vs_raw": round(gx / raw, 3)},
                "params": params,
            },
            ensure_ascii=False,
        )
    )
    return 0 if agreement else 1


if __name__ == "__main__":
    raise SystemExit(main())
