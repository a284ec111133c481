"""Re-identification risk of record-level outputs: k-anonymity and distinct l-diversity.

`assess` measures how identifiable records are by their quasi-identifiers (QIs); `enforce`
generalizes the QIs along declared hierarchies and suppresses (drops) the records of the
classes that still fail, until every equivalence class has >= k records and >= l distinct
values of each sensitive column. Reports hold numbers only, never a value of a record.

Generalized output: a QI left at level 0 keeps its dtype and values; a QI raised to level >= 1
becomes a pl.String column under the same name (e.g. "2021-Q3", "[0,100000)", "C*", "*").

Lattice search (`enforce`): a node is a vector of levels, one per QI; its height is the sum of
the levels. Generalizing only merges classes, so the rows needing suppression never increase
going up the lattice (monotonicity): if a node passes, every generalization of it passes, and if
some node of height h passes, some node of height h+1 does. We therefore binary-search the
height (Samarati's algorithm) for the least height with a passing node, then take the best node
of that height (fewest rows suppressed, then most classes kept, then lowest levels on the QIs
listed first). Unlike a greedy walk (raise the QI with most distinct values until k holds) this
returns a provably minimal total level, and only O(log height) heights are probed. Pruning:
nodes below a known failure fail, nodes above a known pass pass, and each QI alone bounds the
suppression from below (a class of the node lies inside its one-QI class), which also sets a
floor level per QI under which nothing is searched. Nodes are evaluated on the frame compressed
to distinct (QI, sensitive) codes rolled up to that floor, with per-value level maps computed
once, so a node costs a few numpy passes instead of a group_by over every row.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import reduce
from typing import Any

import numpy as np
import polars as pl

STAR = "*"
Generalize = Callable[[pl.Expr], pl.Expr]
_SIZE_BUCKETS: tuple[tuple[str, int, float], ...] = (
    ("1", 1, 1),
    ("2", 2, 2),
    ("3-4", 3, 4),
    ("5-9", 5, 9),
    ("10-49", 10, 49),
    ("50+", 50, math.inf),
)


# --- generalization hierarchies -------------------------------------------------------------


@dataclass(frozen=True)
class Level:
    """One step of a hierarchy: a name for reports and how to compute it from the raw value."""

    name: str
    apply: Generalize


def _compose(outer: Generalize, inner: Generalize) -> Generalize:
    """Bind both functions now (a lambda in a loop would capture the last one)."""
    return lambda e: outer(inner(e))


@dataclass(frozen=True)
class Generalization:
    """Levels 1..n-1 coarsen the raw value (level 0); the implicit top level n is '*'.

    Every level must be a function of the level below it (a tree), else generalizing could
    split a class and the lattice search would lose its monotonicity.
    """

    levels: tuple[Level, ...] = ()

    @property
    def height(self) -> int:
        """Index of the top level ('*')."""
        return len(self.levels) + 1

    @property
    def names(self) -> tuple[str, ...]:
        """Level names for reports (what was done, never a value)."""
        return ("as is", *(lv.name for lv in self.levels), STAR)

    def expr(self, column: str, level: int) -> pl.Expr:
        """The column at `level`, under its own name (strings for every level above 0)."""
        if not 0 <= level <= self.height:
            raise ValueError(f"{column}: level {level} outside 0..{self.height}")
        if level == 0:
            return pl.col(column)
        if level == self.height:
            return pl.repeat(pl.lit(STAR, dtype=pl.String), pl.len()).alias(column)  # full height
        return self.levels[level - 1].apply(pl.col(column)).cast(pl.String).alias(column)

    def then(self, other: Generalization) -> Generalization:
        """Continue with `other`'s levels, applied to this hierarchy's last level."""
        if not self.levels:
            return other
        last = self.levels[-1].apply
        more = tuple(Level(lv.name, _compose(lv.apply, last)) for lv in other.levels)
        return Generalization(self.levels + more)


def suppress() -> Generalization:
    """A free category with no meaningful coarsening: as is, then '*'."""
    return Generalization()


def _month_to_quarter(e: pl.Expr) -> pl.Expr:
    q = (e.str.slice(5, 2).cast(pl.Int32, strict=False) - 1) // 3 + 1
    return pl.concat_str(e.str.slice(0, 4), pl.lit("-Q"), q.cast(pl.String))


def months() -> Generalization:
    """'YYYY-MM' strings → 'YYYY-Qn' → 'YYYY' → '*'."""
    return Generalization(
        (Level("quarter", _month_to_quarter), Level("year", lambda e: e.str.slice(0, 4)))
    )


def dates() -> Generalization:
    """pl.Date → 'YYYY-MM' → 'YYYY-Qn' → 'YYYY' → '*'."""
    return Generalization((Level("month", lambda e: e.dt.strftime("%Y-%m")),)).then(months())


def prefix(*lengths: int) -> Generalization:
    """Codes truncated to each length, marked with '*': prefix(2, 1) makes '1311' → '13*' → '1*'."""
    if not lengths or any(n < 1 for n in lengths) or list(lengths) != sorted(set(lengths))[::-1]:
        raise ValueError("prefix lengths must be positive and strictly decreasing")

    def cut(n: int) -> Generalize:
        return lambda e: pl.concat_str(e.cast(pl.String).str.slice(0, n), pl.lit(STAR))

    return Generalization(tuple(Level(f"prefix {n}", cut(n)) for n in lengths))


def mapping(
    *maps: Mapping[str, str], names: Sequence[str] = (), default: str = STAR
) -> Generalization:
    """Chained lookups (e.g. industry division → section → '*'); unmapped values → `default`."""
    if not maps:
        raise ValueError("mapping needs at least one map")
    if names and len(names) != len(maps):
        raise ValueError("one name per map")

    def look(m: Mapping[str, str]) -> Generalize:
        table = {str(k): str(v) for k, v in m.items()}
        return lambda e: (
            pl.when(e.is_null())
            .then(pl.lit(None, dtype=pl.String))
            .otherwise(
                e.cast(pl.String).replace_strict(table, default=default, return_dtype=pl.String)
            )
        )

    out = Generalization()
    for i, m in enumerate(maps):
        out = out.then(Generalization((Level(names[i] if names else f"map {i + 1}", look(m)),)))
    return out


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def bands(*widths: int, top: int | None = None) -> Generalization:
    """Numbers → '[lo,hi)' bands of each width (each a multiple of the last); '≥top' above top."""
    if not widths or any(w <= 0 for w in widths):
        raise ValueError("band widths must be positive")
    if any(b % a for a, b in itertools.pairwise(widths)) or list(widths) != sorted(widths):
        raise ValueError("each band width must be a multiple of the previous one (nested bands)")
    if top is not None and any(top % w for w in widths):
        raise ValueError("top must be a multiple of every band width (nested bands)")

    def band(w: int) -> Generalize:
        def f(e: pl.Expr) -> pl.Expr:
            lo = ((e // w) * w).cast(pl.Int64)
            label = pl.concat_str(
                pl.lit("["), lo.cast(pl.String), pl.lit(","), (lo + w).cast(pl.String), pl.lit(")")
            )
            if top is None:
                return label
            return pl.when(e >= top).then(pl.lit(f"≥{top}")).otherwise(label)

        return f

    return Generalization(tuple(Level(f"width {_fmt(w)}", band(w)) for w in widths))


def scaled(hierarchy: Generalization, divisor: float) -> Generalization:
    """The same hierarchy over value / divisor (amounts stored in fen, banded in yuan)."""

    def over(apply: Generalize) -> Generalize:
        return lambda e: apply(e / divisor)

    return Generalization(tuple(Level(lv.name, over(lv.apply)) for lv in hierarchy.levels))


def cuts(*levels: Sequence[float]) -> Generalization:
    """Numbers → intervals at the given breakpoints; each level's breakpoints ⊂ the previous."""
    if not levels or any(not b for b in levels):
        raise ValueError("cuts needs at least one non-empty list of breakpoints per level")
    for b in levels:
        if list(b) != sorted(set(b)):
            raise ValueError("breakpoints must be strictly increasing")
    for finer, coarser in itertools.pairwise(levels):
        if not set(coarser) <= set(finer):
            raise ValueError("each level's breakpoints must be a subset of the previous level's")

    def cut(breaks: Sequence[float]) -> Generalize:
        labels = [f"<{_fmt(breaks[0])}"]
        labels += [f"[{_fmt(a)},{_fmt(b)})" for a, b in itertools.pairwise(breaks)]
        labels.append(f"≥{_fmt(breaks[-1])}")
        table = dict(enumerate(labels))

        def f(e: pl.Expr) -> pl.Expr:
            idx = reduce(lambda a, b: a + b, [(e >= b).cast(pl.Int32) for b in breaks])
            return idx.replace_strict(table, return_dtype=pl.String)

        return f

    return Generalization(tuple(Level(f"{len(b) + 1} intervals", cut(b)) for b in levels))


@dataclass(frozen=True)
class QuasiIdentifier:
    """A column that, combined with others, can single a record out, and how to coarsen it."""

    column: str
    hierarchy: Generalization
    max_level: int | None = None  # highest level allowed (e.g. height - 1 to forbid '*')

    @property
    def top(self) -> int:
        """Highest level the search may use."""
        top = self.hierarchy.height if self.max_level is None else self.max_level
        if not 0 <= top <= self.hierarchy.height:
            raise ValueError(f"{self.column}: max_level {top} outside 0..{self.hierarchy.height}")
        return top


# --- reports ---------------------------------------------------------------------------------


class RiskThresholdError(RuntimeError):
    """No allowed generalization reaches k and l within the suppression budget."""

    def __init__(
        self,
        *,
        k: int,
        l: int,  # noqa: E741
        max_suppression: float,
        levels: Mapping[str, int],
        best_k: int,
        best_l: Mapping[str, int],
        rows: int,
        rows_to_suppress: int,
    ) -> None:
        self.k, self.l, self.max_suppression = k, l, max_suppression
        self.levels, self.best_k, self.best_l = dict(levels), best_k, dict(best_l)
        self.rows, self.rows_to_suppress = rows, rows_to_suppress
        share = rows_to_suppress / rows if rows else 0.0
        super().__init__(
            f"k={k}, l={l} not reachable within {max_suppression:.2%} suppression: "
            f"the most general allowed node {self.levels} has k={best_k}, l={self.best_l} "
            f"and would need {rows_to_suppress} of {rows} rows suppressed ({share:.2%})"
        )


@dataclass(frozen=True)
class RiskReport:
    """Identifiability of a frame by its quasi-identifiers; counts and shares only."""

    rows: int
    quasi_identifiers: tuple[str, ...]
    sensitive: tuple[str, ...]
    k_target: int
    k: int  # smallest equivalence class (0 for an empty frame)
    classes: int
    uniques: int  # records alone in their class
    share_unique: float
    share_below_k: float  # records in classes smaller than k_target
    average_class_size: float
    # per sensitive column: fewest distinct non-null values in a class
    l: Mapping[str, int]  # noqa: E741
    prosecutor_risk_max: float  # 1 / smallest class
    prosecutor_risk_average: float  # mean over records of 1 / class size = classes / rows
    records_by_class_size: Mapping[str, int]
    levels: Mapping[str, int] | None = None  # after enforcement
    level_names: Mapping[str, str] | None = None
    rows_in: int | None = None
    rows_suppressed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types, for the regulator's report and the ledger."""
        d: dict[str, Any] = {
            "rows": self.rows,
            "quasi_identifiers": list(self.quasi_identifiers),
            "sensitive": list(self.sensitive),
            "k_target": self.k_target,
            "k": self.k,
            "classes": self.classes,
            "uniques": self.uniques,
            "share_unique": self.share_unique,
            "share_below_k": self.share_below_k,
            "average_class_size": self.average_class_size,
            "l": dict(self.l),
            "prosecutor_risk_max": self.prosecutor_risk_max,
            "prosecutor_risk_average": self.prosecutor_risk_average,
            "records_by_class_size": dict(self.records_by_class_size),
        }
        if self.levels is not None:
            rows_in = self.rows_in if self.rows_in is not None else self.rows
            d |= {
                "levels": dict(self.levels),
                "level_names": dict(self.level_names or {}),
                "rows_in": rows_in,
                "rows_suppressed": self.rows_suppressed,
                "share_suppressed": self.rows_suppressed / rows_in if rows_in else 0.0,
            }
        return d


def _check_columns(df: pl.DataFrame, quasi: Sequence[str], sensitive: Sequence[str]) -> None:
    missing = [c for c in (*quasi, *sensitive) if c not in df.columns]
    if missing:
        raise ValueError(f"columns not in frame: {missing}")
    if len(set(quasi)) != len(quasi) or len(set(sensitive)) != len(sensitive):
        raise ValueError("quasi-identifiers and sensitive columns must be distinct")
    if set(quasi) & set(sensitive):
        raise ValueError(
            f"columns both quasi-identifier and sensitive: {set(quasi) & set(sensitive)}"
        )


def assess(
    df: pl.DataFrame, quasi: Sequence[str], sensitive: Sequence[str] = (), *, k_target: int = 5
) -> RiskReport:
    """Class sizes by polars group_by; nulls form their own QI value and never count toward l."""
    _check_columns(df, quasi, sensitive)
    quasi, sensitive = tuple(quasi), tuple(sensitive)
    n = df.height
    if n == 0:
        return RiskReport(
            0, quasi, sensitive, k_target, 0, 0, 0, 0.0, 0.0, 0.0,
            dict.fromkeys(sensitive, 0), 0.0, 0.0, {b: 0 for b, _, _ in _SIZE_BUCKETS},
        )  # fmt: skip
    if quasi:
        aggs = [pl.len().alias("__size")]
        aggs += [
            pl.col(s).drop_nulls().n_unique().alias(f"__l{i}") for i, s in enumerate(sensitive)
        ]
        g = df.group_by(list(quasi)).agg(aggs)
    else:  # no QI: the whole frame is one class
        g = df.select(
            pl.len().alias("__size"),
            *(pl.col(s).drop_nulls().n_unique().alias(f"__l{i}") for i, s in enumerate(sensitive)),
        )
    sizes = g["__size"].to_numpy().astype(np.int64)
    k = int(sizes.min())
    by_size = {
        name: int(sizes[(sizes >= lo) & (sizes <= hi)].sum()) for name, lo, hi in _SIZE_BUCKETS
    }
    return RiskReport(
        rows=n,
        quasi_identifiers=quasi,
        sensitive=sensitive,
        k_target=k_target,
        k=k,
        classes=len(sizes),
        uniques=int((sizes == 1).sum()),
        share_unique=float((sizes == 1).sum()) / n,
        share_below_k=float(sizes[sizes < k_target].sum()) / n,
        average_class_size=n / len(sizes),
        l={s: int(g[f"__l{i}"].to_numpy().min()) for i, s in enumerate(sensitive)},
        prosecutor_risk_max=1.0 / k,
        prosecutor_risk_average=len(sizes) / n,
        records_by_class_size=by_size,
    )


# --- enforcement ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Enforcement:
    """The released frame, its risk report, the input's report, and what was done."""

    frame: pl.DataFrame
    report: RiskReport
    before: RiskReport
    k: int
    l: int  # noqa: E741
    max_suppression: float
    levels: Mapping[str, int]
    level_names: Mapping[str, str]
    rows_suppressed: int
    nodes_evaluated: int
    lattice_size: int
    strategy: str = "binary search on height (Samarati); monotone and one-QI bound pruning"
    timings: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """What was done and both reports, as plain JSON types (the frame is left out)."""
        return {
            "k": self.k,
            "l": self.l,
            "max_suppression": self.max_suppression,
            "levels": dict(self.levels),
            "level_names": dict(self.level_names),
            "rows_suppressed": self.rows_suppressed,
            "nodes_evaluated": self.nodes_evaluated,
            "lattice_size": self.lattice_size,
            "strategy": self.strategy,
            "before": self.before.to_dict(),
            "after": self.report.to_dict(),
        }


@dataclass(frozen=True)
class _Outcome:
    """What one lattice node does to the data, for the lattice's k and l."""

    levels: tuple[int, ...]
    suppressed: int
    classes_kept: int
    k_raw: int
    l_raw: tuple[int, ...] = ()


def _codes(s: pl.Series) -> np.ndarray:
    """Dense codes 1..m in value order, 0 for null (same codes on any superset of the values)."""
    values = s.drop_nulls().unique().sort()  # hash unique + binary search: rank() is 5-10x slower
    codes = values.search_sorted(s, side="left").to_numpy().astype(np.int64) + 1
    codes[s.is_null().to_numpy()] = 0
    return codes


def _dense(key: np.ndarray) -> tuple[np.ndarray, int]:
    uniq, inverse = np.unique(key, return_inverse=True)
    return inverse.astype(np.int64).reshape(-1), max(len(uniq), 1)


def _compress(
    codes: Sequence[np.ndarray], weights: np.ndarray
) -> tuple[list[np.ndarray], np.ndarray]:
    """Distinct code combinations and their summed weights (one int64 key when it fits)."""
    cards = [int(c.max()) + 1 if c.size else 1 for c in codes]
    if math.prod(cards) < 2**62:  # hash one column, then decode the mixed radix
        key = np.zeros(len(weights), dtype=np.int64)
        for c, card in zip(codes, cards, strict=True):
            key = key * card + c
        g = pl.DataFrame({"key": key, "w": weights}).group_by("key").agg(pl.col("w").sum())
        rest, out = g["key"].to_numpy(), []
        for card in reversed(cards):
            out.append(rest % card)
            rest = rest // card
        return out[::-1], g["w"].to_numpy()
    names = [f"c{i}" for i in range(len(codes))]
    frame = pl.DataFrame({**dict(zip(names, codes, strict=True)), "w": weights})
    g = frame.group_by(names).agg(pl.col("w").sum())
    return [g[c].to_numpy() for c in names], g["w"].to_numpy()


def _is_function(coarse: np.ndarray, fine: np.ndarray) -> bool:
    """Each fine code maps to one coarse code: the level above only merges classes."""
    one = np.zeros(int(fine.max()) + 1, dtype=np.int64)
    one[fine] = coarse  # some coarse code per fine code; all must agree with it
    return bool((one[fine] == coarse).all())


def _failing_rows(
    key: np.ndarray,
    radix: int,
    weights: np.ndarray,
    distinct: Sequence[np.ndarray],
    k: int,
    l: int,  # noqa: E741
) -> tuple[int, int, int, tuple[int, ...]]:
    """Rows in classes below k or l, classes kept, smallest class, fewest distinct per column."""
    sizes = np.bincount(key, weights=weights, minlength=radix).astype(np.int64)
    present = sizes > 0
    fail = present & (sizes < k)
    l_raw = []
    for d in distinct:  # per class id: distinct non-null sensitive values
        fail |= present & (d < l)
        l_raw.append(int(d[present].min()) if present.any() else 0)
    k_raw = int(sizes[present].min()) if present.any() else 0
    return int(sizes[fail].sum()), int((present & ~fail).sum()), k_raw, tuple(l_raw)


class _Lattice:
    """The frame as distinct code combinations with counts, and per-QI maps from level 0 upwards.

    Before any search, each QI alone gives a lower bound on suppression at each of its levels (a
    class of the full node lies inside its class for one QI, so a row failing k or l for one QI
    fails for the node). The levels below each QI's first affordable level are never searched,
    and the compressed frame is rolled up to that floor once, so nodes cost less to evaluate.
    """

    def __init__(
        self,
        df: pl.DataFrame,
        quasi: Sequence[QuasiIdentifier],
        sensitive: Sequence[str],
        k: int,
        l: int,  # noqa: E741
        budget: int,
    ) -> None:
        self.k, self.l, self.budget = k, l, budget
        self.tops = tuple(q.top for q in quasi)
        self.maps: list[list[np.ndarray]] = []  # per QI, per level: level-0 code → level code
        self.cards: list[list[int]] = []
        cols: dict[str, np.ndarray] = {}
        present: list[np.ndarray] = []  # level-0 codes that occur (0, null, may not)
        for q in quasi:
            cols[f"q{len(present)}"] = _codes(df[q.column])
            uniq = df.select(pl.col(q.column).unique())
            ucode = _codes(uniq[q.column])
            maps: list[np.ndarray] = []
            cards: list[int] = []
            for level in range(q.hierarchy.height + 1):
                m = np.zeros(int(ucode.max()) + 1, dtype=np.int64)
                m[ucode] = _codes(uniq.select(q.hierarchy.expr(q.column, level)).to_series())
                if level and not _is_function(m[ucode], maps[-1][ucode]):
                    raise ValueError(
                        f"{q.column}: level {q.hierarchy.names[level]!r} splits values that "
                        f"level {q.hierarchy.names[level - 1]!r} groups (not a hierarchy)"
                    )
                maps.append(m)
                cards.append(int(m.max()) + 1)
            self.maps.append(maps)
            self.cards.append(cards)
            present.append(ucode)
        for j, s in enumerate(sensitive):
            cols[f"s{j}"] = _codes(df[s])
        self.n_q, self.n_sensitive = len(quasi), len(sensitive)
        self._set_base(*_compress(list(cols.values()), np.ones(df.height, dtype=np.int64)))
        self.single_bound = [
            [self._single(i, lv) for lv in range(top + 1)] for i, top in enumerate(self.tops)
        ]
        self.floors = tuple(
            next((lv for lv, b in enumerate(bounds) if b <= budget), top)
            for bounds, top in zip(self.single_bound, self.tops, strict=True)
        )
        if any(self.floors):  # roll up once; from here on, codes and maps start at the floor
            floor_codes = []
            for i, f in enumerate(self.floors):
                at_floor = self.maps[i][f]
                floor_codes.append(at_floor[self.base_q[i]])
                seen = present[i]
                for lv in range(f, len(self.maps[i])):
                    m = np.zeros(self.cards[i][f], dtype=np.int64)
                    m[at_floor[seen]] = self.maps[i][lv][seen]  # nested: one value per floor code
                    self.maps[i][lv] = m
            self._set_base(*_compress(floor_codes + self.base_s, self.weights))
        self.evaluated = 0

    def _set_base(self, codes: list[np.ndarray], weights: np.ndarray) -> None:
        self.n_base = len(weights)
        self.weights = weights.astype(np.float64)
        self.base_q = codes[: self.n_q]
        self.base_s = codes[self.n_q : self.n_q + self.n_sensitive]
        self.s_card = [int(c.max()) + 1 if c.size else 1 for c in self.base_s]

    def _distinct(self, key: np.ndarray, radix: int, force: bool = False) -> list[np.ndarray]:
        """Per sensitive column, distinct non-null values in each class id (when l matters)."""
        if self.l <= 1 and not force:
            return []
        out = []
        for s, card in zip(self.base_s, self.s_card, strict=True):
            if radix * card <= 8 * self.n_base + 4096:  # presence table beats hashing
                seen = np.bincount(key * card + s, minlength=radix * card).reshape(radix, card)
                out.append((seen[:, 1:] > 0).sum(axis=1))
            else:
                has = s > 0
                pairs = pl.Series(key[has] * card + s[has]).unique().to_numpy()
                out.append(np.bincount(pairs // card, minlength=radix))
        return out

    def _single(self, i: int, level: int) -> int:
        """Rows that fail k or l on QI i alone at `level`: a lower bound for any node there."""
        key = self.maps[i][level][self.base_q[i]]
        radix = self.cards[i][level]
        distinct = self._distinct(key, radix)
        return _failing_rows(key, radix, self.weights, distinct, self.k, self.l)[0]

    def bound(self, levels: tuple[int, ...]) -> int:
        """Rows that must be suppressed at `levels`, known without evaluating the node."""
        return max((b[lv] for b, lv in zip(self.single_bound, levels, strict=True)), default=0)

    def keys(self, levels: tuple[int, ...]) -> tuple[np.ndarray, int]:
        """Class id of each base row under `levels`, by mixed radix (densified before overflow)."""
        key = np.zeros(self.n_base, dtype=np.int64)
        radix = 1
        for i, lv in enumerate(levels):
            card = self.cards[i][lv]
            if card == 1:
                continue
            if radix * card >= 2**62:
                key, radix = _dense(key)
            key = key * card + self.maps[i][lv][self.base_q[i]]
            radix *= card
        if radix > 4 * self.n_base + 1024:
            key, radix = _dense(key)
        return key, radix

    def evaluate(self, levels: tuple[int, ...], all_l: bool = False) -> _Outcome:
        """Rows in classes failing k or l (to be suppressed), classes kept, and raw k / l."""
        self.evaluated += 1
        key, radix = self.keys(levels)
        distinct = self._distinct(key, radix, force=all_l)
        suppressed, kept, k_raw, l_raw = _failing_rows(
            key, radix, self.weights, distinct, self.k, self.l
        )
        return _Outcome(levels, suppressed, kept, k_raw, l_raw)


def _nodes_at(
    height: int, lows: Sequence[int], tops: Sequence[int], order: Sequence[int]
) -> Iterator[tuple[int, ...]]:
    """Level vectors of total `height` within [lows, tops], raising QIs first in `order` first."""
    q = len(tops)
    levels = list(lows)

    def rec(pos: int, left: int) -> Iterator[tuple[int, ...]]:
        if pos == q:
            if left == 0:
                yield tuple(levels)
            return
        i = order[pos]
        rest = sum(tops[order[p]] - lows[order[p]] for p in range(pos + 1, q))
        for extra in range(min(tops[i] - lows[i], left), max(0, left - rest) - 1, -1):
            levels[i] = lows[i] + extra
            yield from rec(pos + 1, left - extra)
        levels[i] = lows[i]

    yield from rec(0, height - sum(lows))


def _leq(a: Sequence[int], b: Sequence[int]) -> bool:
    return all(x <= y for x, y in zip(a, b, strict=True))


def _search(lat: _Lattice, order: Sequence[int]) -> _Outcome:
    """Least height with a passing node by binary search; best node of that height."""
    lows, tops, budget = lat.floors, lat.tops, lat.budget
    passed: list[tuple[int, ...]] = []
    failed: list[tuple[int, ...]] = []
    cache: dict[tuple[int, ...], _Outcome] = {}

    def ok(node: tuple[int, ...]) -> bool:
        if any(_leq(node, f) for f in failed) or lat.bound(node) > budget:
            return False
        if node not in cache:
            cache[node] = lat.evaluate(node)
            (passed if cache[node].suppressed <= budget else failed).append(node)
        return cache[node].suppressed <= budget

    def exists(height: int) -> bool:
        nodes = _nodes_at(height, lows, tops, order)
        return any(any(_leq(p, n) for p in passed) or ok(n) for n in nodes)

    lo, hi = sum(lows) - 1, sum(tops)  # invariant: nothing passes at lo, something at hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if exists(mid):
            hi = mid
        else:
            lo = mid
    best = [cache[n] for n in _nodes_at(hi, lows, tops, order) if ok(n)]
    return min(best, key=lambda o: (o.suppressed, -o.classes_kept, o.levels))


def enforce(
    df: pl.DataFrame,
    quasi: Sequence[QuasiIdentifier],
    sensitive: Sequence[str] = (),
    k: int = 5,
    l: int = 1,  # noqa: E741
    max_suppression: float = 0.05,
) -> Enforcement:
    """Least generalization, then suppression of failing classes, giving k and l (or raise)."""
    names = [q.column for q in quasi]
    _check_columns(df, names, sensitive)
    if k < 1 or l < 1:
        raise ValueError("k and l must be at least 1")
    if l > 1 and not sensitive:
        raise ValueError("l > 1 needs at least one sensitive column")
    if not 0.0 <= max_suppression < 1.0:
        raise ValueError("max_suppression must be in [0, 1)")
    t0 = time.perf_counter()
    n = df.height
    budget = math.floor(max_suppression * n + 1e-9)
    tops = tuple(q.top for q in quasi)
    before = assess(df, names, sensitive, k_target=k)
    t1 = t2 = time.perf_counter()
    chosen, evaluated = _Outcome(tuple(0 for _ in quasi), 0, 0, 0), 0
    if n:  # an empty frame identifies no one: released as is
        lat = _Lattice(df, quasi, sensitive, k, l, budget)
        t1 = time.perf_counter()
        top = lat.evaluate(tops, all_l=True)  # passes if anything does (monotonicity)
        if top.suppressed > budget:
            raise RiskThresholdError(
                k=k,
                l=l,
                max_suppression=max_suppression,
                levels=dict(zip(names, top.levels, strict=True)),
                best_k=top.k_raw,
                best_l=dict(zip(sensitive, top.l_raw, strict=True)),
                rows=n,
                rows_to_suppress=top.suppressed,
            )
        order = sorted(range(len(quasi)), key=lambda i: -lat.cards[i][0])
        chosen, evaluated = _search(lat, order), lat.evaluated
        t2 = time.perf_counter()

    out = df.with_columns(
        [q.hierarchy.expr(q.column, lv) for q, lv in zip(quasi, chosen.levels, strict=True) if lv]
    )
    if n:
        fail = pl.len().over(names) < k if names else pl.lit(n < k)
        if l > 1:
            for s in sensitive:
                d = pl.col(s).drop_nulls().n_unique()
                fail = fail | ((d.over(names) if names else d) < l)
        out = out.filter(~fail)
    suppressed = n - out.height
    if suppressed != chosen.suppressed:  # the compressed evaluation and the frame must agree
        raise AssertionError(f"suppressed {suppressed} rows, lattice predicted {chosen.suppressed}")
    levels = dict(zip(names, chosen.levels, strict=True))
    level_names = {
        q.column: q.hierarchy.names[lv] for q, lv in zip(quasi, chosen.levels, strict=True)
    }
    after = assess(out, names, sensitive, k_target=k)
    report = replace(
        after, levels=levels, level_names=level_names, rows_in=n, rows_suppressed=suppressed
    )
    t3 = time.perf_counter()
    return Enforcement(
        frame=out,
        report=report,
        before=before,
        k=k,
        l=l,
        max_suppression=max_suppression,
        levels=levels,
        level_names=level_names,
        rows_suppressed=suppressed,
        nodes_evaluated=evaluated,
        lattice_size=math.prod(t + 1 for t in tops),
        timings={"prepare": t1 - t0, "search": t2 - t1, "apply": t3 - t2},
    )
