"""Presidio's findings, fast: the registry's own patterns without spaCy, and NER in batches.

``AnalyzerEngine.analyze`` spends most of its time around the regexes: a spaCy pass per text,
explanation objects and a deep copy per result, logging, and a regex scan that tries every
pattern at every character of mostly Chinese text. :class:`FastScanner` keeps Presidio as the
definition of truth and replays only what decides the outcome:

- each ``PatternRecognizer``'s own ``patterns``, compiled exactly as Presidio compiles them
  (``regex`` module, the recognizer's ``global_regex_flags``) and its ``validate_result`` /
  ``invalidate_result`` with the scores they set (True → 1.0, False → 0, invalidated → 0;
  zero-score and empty matches dropped);
- Presidio's post-processing, in its order: the recognizer's ``remove_duplicates``, context
  enhancement (inert here, see :func:`context_is_inert`), the engine's score thresholds (per
  recognizer and entity, then the recognizer default, then the engine default), the engine's
  ``remove_duplicates`` (per entity type only: a result contained in another result of the same
  type with an equal or higher score goes; different types never remove each other), and the
  engine's output order (score descending, start, longer first, then entity type);
- NER-backed recognizers (:class:`pdo.privacy.ner.presidio.NerRecognizer`): the backend is
  called once per batch of distinct texts instead of once per text through the engine.

Speed comes from exact shortcuts (see :class:`Program` and :mod:`.runs`): values are
de-duplicated; a batch of texts is reduced to the runs of characters any pattern can test at all
(digits, Latin letters, a few separators and label characters), each distinct run is scanned
and scored once per call (each pattern over the runs long enough for it, or holding a rare
character it requires) and a text's results are its runs' own; a lookaround-free relaxation of
a pattern can locate its candidates; large inputs can be spread over worker processes.

Whatever cannot be shown equal is left to Presidio's own code: a pattern the analysis does not
model runs with plain ``finditer`` per text; a recognizer that is neither a plain pattern
recognizer nor an NER one runs its own ``analyze`` with spaCy artifacts; and if context
enhancement could change a score, every text with a raw finding goes to
``AnalyzerEngine.analyze``.
"""

from __future__ import annotations

import functools
import multiprocessing
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import chain
from typing import TYPE_CHECKING, Any, TypeVar

from presidio_analyzer import EntityRecognizer, PatternRecognizer

from pdo.privacy import redact as _redact
from pdo.privacy.fastscan.alphabets import SEPARATORS, alphabets
from pdo.privacy.fastscan.anonymize import anonymize
from pdo.privacy.fastscan.plans import (
    Memo,
    NerPlan,
    PatternPlan,
    context_is_inert,
    is_plain,
    threshold_of,
)
from pdo.privacy.fastscan.programs import Program
from pdo.privacy.fastscan.results import Result, engine_order, full_key, per_recognizer
from pdo.privacy.fastscan.runs import Hit, RunFinder
from pdo.privacy.ner.presidio import NerRecognizer
from pdo.privacy.recognizers import LANGUAGE

if TYPE_CHECKING:
    from multiprocessing.pool import Pool

    import polars as pl
    from presidio_analyzer import AnalyzerEngine

BATCH = 512  # distinct texts per batch (one compressed text, one NER backend call)
POOL_CHUNK = 4096  # distinct texts per worker task (patterns only)
POOL_CHUNK_NER = 512  # NER costs ~1 ms a text: smaller tasks keep the workers level
POOL_MIN_TEXTS = 20_000  # below this many distinct texts, workers cost more than they save
POOL_MIN_TEXTS_NER = 2_000

T = TypeVar("T")
_new = tuple.__new__  # builds a Result without the Python-level NamedTuple constructor


class FastScanner:
    """Exactly ``analyzer.analyze(text, language="zh", entities=self.entities)``, fast.

    By default the entities are those of the registry's PatternRecognizers (no spaCy, no NER).
    With ``ner=True`` the scanner stands for ``analyzer.analyze(text, language="zh")`` with all
    entities, NER included (names, addresses, organisations), the NER backend being called in
    batches. ``entities`` selects recognizers exactly as ``analyze(entities=...)`` does.
    """

    def __init__(
        self,
        analyzer: AnalyzerEngine,
        entities: Iterable[str] | None = None,
        *,
        ner: bool = False,
        language: str = LANGUAGE,
        processes: int | None = None,
    ) -> None:
        self.language = language
        self.processes = processes  # the default for calls that do not say
        registry = analyzer.registry
        if entities is None and ner:
            recognizers = registry.get_recognizers(language=language, all_fields=True)
            wanted = analyzer.get_supported_entities(language=language)
        else:
            if entities is None:
                entities = {
                    e
                    for r in registry.get_recognizers(language=language, all_fields=True)
                    if isinstance(r, PatternRecognizer)
                    for e in r.supported_entities
                }
            wanted = sorted(set(entities))
            recognizers = registry.get_recognizers(
                language=language, entities=wanted, all_fields=False
            )
        self.entities: tuple[str, ...] = tuple(sorted(wanted))
        default = analyzer.default_score_threshold
        self._default_threshold = default
        self._plans: list[PatternPlan] = []
        self._ner: list[NerPlan] = []
        self._other: list[EntityRecognizer] = []
        programs: dict[tuple[str, int], Program] = {}
        users: dict[tuple[str, int], list[tuple[PatternPlan, str, float]]] = {}
        for r in recognizers:
            if is_plain(r, PatternRecognizer):
                plan = PatternPlan(r, default)  # type: ignore[arg-type]
                self._plans.append(plan)
                flags = r.global_regex_flags  # type: ignore[attr-defined]
                for p in r.patterns:  # type: ignore[attr-defined]
                    key = (p.regex, flags)
                    if key not in programs:
                        programs[key] = Program(p.regex, flags)
                    users.setdefault(key, []).append((plan, p.name, p.score))
            elif NerRecognizer is not None and is_plain(r, NerRecognizer):
                self._ner.append(NerPlan(r, default))
            else:
                self._other.append(r)
        self._programs = list(programs.values())
        self._users = [users[key] for key in programs]
        by_flags: dict[int, list[Program]] = {}
        for program in self._programs:
            by_flags.setdefault(program.flags, []).append(program)
        for flags, group in by_flags.items():
            for program, chars in zip(
                group, alphabets([p.atom_class for p in group], flags), strict=True
            ):
                program.set_alphabet(chars)
        compressed = [k for k, p in enumerate(self._programs) if p.alphabet is not None]
        self._compressed = compressed
        self._direct = [k for k in range(len(self._programs)) if k not in set(compressed)]
        sigma: set[str] = set()
        for k in compressed:
            sigma |= self._programs[k].alphabet or frozenset()
        self._separator = next((c for c in SEPARATORS if c not in sigma), "")
        if compressed and not self._separator:  # pragma: no cover - every candidate is used
            self._direct, self._compressed = list(range(len(self._programs))), []
        self._inert = context_is_inert(analyzer, recognizers)
        # pattern findings only, all from alphabet runs: a text's results are its runs' own
        self._simple = bool(self._compressed) and not (self._direct or self._ner or self._other)
        self._finder = RunFinder(
            self._programs, self._users, self._compressed, self._separator, not self._simple
        )
        self._analyzer: AnalyzerEngine | None = analyzer
        self._pool: Pool | None = None
        self._pool_size = 0

    # -- introspection ------------------------------------------------------------------------

    @property
    def exact_fast_path(self) -> bool:
        """False when texts with findings are handed to AnalyzerEngine.analyze (still exact)."""
        return self._inert and not self._other

    @property
    def pattern_entities(self) -> frozenset[str]:
        return frozenset(p.entity for p in self._plans)

    @property
    def ner_entities(self) -> frozenset[str]:
        return frozenset(p.entity for p in self._ner)

    def without_ner(self) -> FastScanner:
        """The same patterns without NER (built once), for texts whose NER entities are kept."""
        if not self._ner:
            return self
        twin = self.__dict__.get("_patterns_only")
        if twin is None:
            if self._analyzer is None:  # pragma: no cover - only the owning process builds it
                raise RuntimeError("a scanner copied to a worker cannot build its twin")
            twin = FastScanner(self._analyzer, ner=False, processes=self.processes)
            self.__dict__["_patterns_only"] = twin
        return twin

    def describe(self) -> dict[str, Any]:
        """How each pattern runs (for logs and the bench)."""
        patterns = {}
        for program, users in zip(self._programs, self._users, strict=True):
            mode = (
                ("compressed+located" if program.use_locator else "compressed")
                if program.alphabet is not None
                else ("located" if program.locator is not None else "finditer")
            )
            for plan, name, _ in users:
                patterns[f"{plan.name}/{name}"] = mode
        return {
            "patterns": patterns,
            "alphabet_size": len(self._finder.sigma),
            "ner": sorted(p.entity for p in self._ner),
            "other": [str(r.name) for r in self._other],  # type: ignore[has-type]
            "context_inert": self._inert,
        }

    def __getstate__(self) -> dict[str, Any]:
        # the engine, the workers and the pattern-only twin stay in this process
        local = ("_analyzer", "_pool", "_patterns_only")
        return {k: (None if k in local else v) for k, v in self.__dict__.items()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    # -- API ----------------------------------------------------------------------------------

    def scan(self, text: str) -> list[Result]:
        """Findings for one text, in AnalyzerEngine.analyze's order."""
        return self._scan_batch([text])[0] if text else []

    def scan_many(
        self, texts: Iterable[str | None], *, processes: int | None = None
    ) -> list[list[Result]]:
        """Findings per text; each distinct value is scanned once (None or "" → no findings).

        processes=N spreads large inputs (POOL_MIN_TEXTS distinct values or more, or
        POOL_MIN_TEXTS_NER with NER) over N worker processes, started once and kept until
        close(); the results are the same.
        """
        values = list(texts)
        distinct = list(dict.fromkeys(t for t in values if t))
        found = dict(zip(distinct, self._scan_distinct(distinct, processes), strict=True))
        return _hand_out(values, found)

    def personal_findings(
        self,
        texts: Iterable[str | None],
        kept: Iterable[str] | None = None,
        *,
        processes: int | None = None,
        known: Mapping[str, list[Result]] | None = None,
    ) -> dict[str, list[Result]]:
        """The distinct texts holding an entity that is not kept, each with those findings only
        (what the residual check refuses and what redacting them again would replace).

        kept defaults to ``redact.kept_entities()``; texts in `known` (this scanner's findings
        of them, e.g. from ``redact_and_rescan``) are not scanned again.
        """
        keep = frozenset(_redact.kept_entities() if kept is None else kept)
        distinct = list(dict.fromkeys(t for t in texts if t))
        known = known or {}
        unread = [t for t in distinct if t not in known]
        scanned = dict(zip(unread, self._scan_distinct(unread, processes), strict=True))
        found: dict[str, list[Result]] = {}
        for text in distinct:
            personal = _not_kept(known[text] if text in known else scanned[text], keep)
            if personal:
                found[text] = personal
        return found

    def count_personal(
        self,
        texts: Iterable[str | None],
        kept: Iterable[str] | None = None,
        *,
        processes: int | None = None,
    ) -> Counter[str]:
        """Counts of findings whose entity is not kept, over texts (the residual check).

        With ner=True this equals ``residual_pii(analyzer, texts)``; by default it covers the
        pattern entities only. kept defaults to ``redact.kept_entities()``.
        """
        occurrences = Counter(t for t in texts if t)
        counts: Counter[str] = Counter()
        for text, personal in self.personal_findings(
            occurrences, kept, processes=processes
        ).items():
            for r in personal:
                counts[r.entity_type] += occurrences[text]
        return counts

    def fast_redact(
        self,
        texts: Iterable[str | None],
        kept: Iterable[str] | None = None,
        *,
        processes: int | None = None,
    ) -> list[str | None]:
        """What ``redact_text`` gives for each text (None and "" unchanged); placeholders from
        ``redact.PLACEHOLDERS``; kept defaults to ``redact.kept_entities()``.

        With ner=True this equals ``redact_text(analyzer, anonymizer, text)``; by default only
        the pattern entities are redacted.
        """
        keep = frozenset(_redact.kept_entities() if kept is None else kept)
        values = list(texts)
        distinct = list(dict.fromkeys(t for t in values if t))
        redacted = {
            text: _without_kept(text, results, keep)
            for text, results in zip(
                distinct, self._scan_distinct(distinct, processes), strict=True
            )
        }
        return [redacted[t] if t else t for t in values]

    def redact_series(self, series: pl.Series, kept: Iterable[str] | None = None) -> pl.Series:
        """fast_redact over a polars text column; nulls stay null, the name is kept."""
        import polars as pl

        uniques = series.cast(pl.Utf8).drop_nulls().unique()
        return _replaced(series, uniques, self.fast_redact(uniques.to_list(), kept))

    def redact_and_rescan(
        self,
        series: pl.Series,
        kept: Iterable[str] | None = None,
        *,
        processes: int | None = None,
    ) -> tuple[pl.Series, dict[str, list[Result]]]:
        """redact_series, and the findings of every distinct redacted value (as ``scan`` gives
        them), each worked out by the process that redacted it (for the residual scan).

        A worker that scans a redacted text it did not redact reads the unchanged sentences
        through the model again; here they come from the redacting worker's cache.
        """
        import polars as pl

        keep = frozenset(_redact.kept_entities() if kept is None else kept)
        uniques = series.cast(pl.Utf8).drop_nulls().unique()
        values = uniques.to_list()
        distinct = [t for t in values if t]
        done = dict(
            zip(
                distinct,
                self._run_distinct(distinct, processes, _RedactAndRescan(keep)),
                strict=True,
            )
        )
        redacted = [done[t][0] if t else t for t in values]
        return _replaced(series, uniques, redacted), dict(done.values())

    # -- internals ----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the worker processes, if any (they also stop when the scanner is collected)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.terminate()
            pool.join()

    def _scan_distinct(self, distinct: list[str], processes: int | None) -> list[list[Result]]:
        return self._run_distinct(distinct, processes, _scan_here)

    def _run_distinct(
        self,
        distinct: list[str],
        processes: int | None,
        job: Callable[[FastScanner, list[str]], list[T]],
    ) -> list[T]:
        """job's answer per distinct text, from this process or spread over the workers."""
        processes = self.processes if processes is None else processes
        least = POOL_MIN_TEXTS_NER if self._ner else POOL_MIN_TEXTS
        if processes and processes > 1 and len(distinct) >= least and self.exact_fast_path:
            return self._run_pool(distinct, processes, job)
        return job(self, distinct)

    def _run_pool(
        self, distinct: list[str], processes: int, job: Callable[[FastScanner, list[str]], list[T]]
    ) -> list[T]:
        if self._compressed and not all(self._programs[k].calibrated for k in self._compressed):
            head, distinct = distinct[:BATCH], distinct[BATCH:]
            first = job(self, head)  # calibrates here, so every worker inherits it
        else:
            first = []
        size = POOL_CHUNK_NER if self._ner else POOL_CHUNK
        chunks = [distinct[i : i + size] for i in range(0, len(distinct), size)]
        parts = self._workers(processes).map(partial(_worker_run, job), chunks, chunksize=1)
        return first + [answer for part in parts for answer in part]

    def _workers(self, processes: int) -> Pool:
        """A pool forked from a server that has imported pdo but loaded no model (fork-safe)."""
        if self._pool is not None and self._pool_size == processes:
            return self._pool
        self.close()
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([__name__])
        pool = ctx.Pool(processes, initializer=_worker_init, initargs=(self,))
        self._pool, self._pool_size = pool, processes
        weakref.finalize(self, pool.terminate)
        return pool

    def _scan_simple(self, texts: Sequence[str], memo: Memo) -> list[list[Result]]:
        """_scan_batch when every finding comes from alphabet runs: each text's results are
        its runs' own, shifted to where the runs lie."""
        finder = self._finder
        tokens = finder.tokens(texts)
        finder.fill(tokens, memo)
        final = memo.final  # also maps the separator to (), so that texts' ends stay in view
        out: list[list[Result]] = []
        results: list[Result] = []
        index = cursor = 0
        for token in filter(final.__contains__, tokens):
            found = final[token]
            if not found:
                out.append(self._finish(texts[index], results))
                index, cursor, results = index + 1, 0, []
                continue
            at = finder.position(texts[index], token, cursor)
            cursor = at + len(token)
            for i in range(0, len(found), 4):
                results.append(
                    _new(Result, (found[i], found[i + 1] + at, found[i + 2] + at, found[i + 3]))
                )
        return out

    def _finish(self, text: str, results: list[Result]) -> list[Result]:
        """A text's results from its runs (which never overlap), in the engine's order."""
        if not results:
            return results
        if not self._inert:
            return self._presidio(text)
        if len(results) > 1:
            results.sort(key=full_key)
        return results

    def _located_runs(self, texts: Sequence[str], memo: Memo) -> list[list[tuple[int, str]]]:
        """Per text, (position, run) of each alphabet run with findings, in order."""
        assert self._finder.runs is not None
        findall = self._finder.runs.findall
        runs_of = [findall(t) for t in texts]
        self._finder.fill(chain.from_iterable(runs_of), memo)
        with_findings = memo.found.keys()  # the runs to locate
        located: list[list[tuple[int, str]]] = []
        for text, runs in zip(texts, runs_of, strict=True):
            if with_findings.isdisjoint(runs):
                located.append([])
                continue
            cursor, spots = 0, []
            for r in runs:
                if r in with_findings:
                    cursor = self._finder.position(text, r, cursor)
                    spots.append((cursor, r))
                    cursor += len(r)
            located.append(spots)
        return located

    def _direct_hits(self, texts: Sequence[str]) -> list[list[Hit]]:
        """(program, start, end) of every finditer match of the uncompressed programs."""
        hits: list[list[Hit]] = [[] for _ in texts]
        for k in self._direct:
            program = self._programs[k]
            for i, text in enumerate(texts):
                for start, end in program.find(text):
                    hits[i].append((k, start, end))
        return hits

    def _scan_batch(self, texts: Sequence[str], memo: Memo | None = None) -> list[list[Result]]:
        """Findings for a batch of non-empty texts (one NER backend call for the batch).

        memo lives for one call: findings per alphabet run, validator outcomes per value.
        """
        memo = memo or self._finder.memo()
        if self._simple:
            return self._scan_simple(texts, memo)
        located = self._located_runs(texts, memo) if self._compressed else None
        direct = self._direct_hits(texts) if self._direct else None
        spans = self._ner_spans(texts) if self._ner else None
        out: list[list[Result]] = []
        for i, text in enumerate(texts):
            spots = located[i] if located is not None else []
            raw = self._raw(text, spots, direct[i] if direct else [], memo)
            raw.extend(self._ner_results(spans[i]) if spans is not None else ())
            raw.extend(self._run_other(text) if self._other else ())
            out.append(self._presidio(text) if raw and not self._inert else engine_order(raw))
        return out

    def _raw(
        self, text: str, spots: list[tuple[int, str]], direct: list[Hit], memo: Memo
    ) -> list[Result]:
        """Pattern results after each recognizer's own de-duplication and threshold."""
        found = [
            (plan, Result(r.entity_type, r.start + at, r.end + at, r.score))
            for at, run in spots
            for plan, r in memo.found[run]
        ]
        if direct:
            found.extend(self._finder.score(text, direct, memo))
        return per_recognizer(found)

    def _ner_results(self, spans: tuple[Any, ...]) -> list[Result]:
        return [
            Result(ner.entity, span.start, span.end, span.score)
            for span in spans
            for ner in self._ner
            if span.entity == ner.span_entity and span.score >= ner.threshold
        ]

    def _ner_spans(self, texts: Sequence[str]) -> list[tuple[Any, ...]]:
        """``ner_spans(text)`` for each text, the backend called once for the batch."""
        from pdo.privacy.ner import get_backend

        todo = [t for t in dict.fromkeys(texts) if t.strip()]
        detected = dict(zip(todo, get_backend().detect(todo), strict=True)) if todo else {}
        return [tuple(detected.get(t, ())) for t in texts]

    def _run_other(self, text: str) -> list[Result]:
        """Recognizers the replay does not model: their own analyze, with spaCy artifacts."""
        analyzer = self._require_analyzer()
        artifacts = analyzer.nlp_engine.process_text(text, self.language)
        out: list[Result] = []
        for r in self._other:
            if not r.is_loaded:
                r.load()
                r.is_loaded = True
            results = r.analyze(text=text, entities=list(self.entities), nlp_artifacts=artifacts)
            out.extend(
                Result(x.entity_type, x.start, x.end, x.score)
                for x in results or []
                if x.score >= threshold_of(r, x.entity_type, self._default_threshold)
            )
        return out

    def _presidio(self, text: str) -> list[Result]:
        analyzer = self._require_analyzer()
        results = analyzer.analyze(text=text, language=self.language, entities=list(self.entities))
        return [Result(r.entity_type, r.start, r.end, r.score) for r in results]

    def _require_analyzer(self) -> AnalyzerEngine:
        if self._analyzer is None:
            raise RuntimeError("this scanner was unpickled without its analyzer")
        return self._analyzer


def _replaced(series: pl.Series, uniques: pl.Series, values: list[str | None]) -> pl.Series:
    """series with each of uniques replaced by its value; nulls stay null, the name is kept."""
    import polars as pl

    return (
        series.cast(pl.Utf8)
        .replace_strict(
            uniques, pl.Series(values, dtype=pl.Utf8), default=None, return_dtype=pl.Utf8
        )
        .alias(series.name)
    )


def _not_kept(results: list[Result], keep: frozenset[str]) -> list[Result]:
    """Findings of an entity not kept: what redaction replaces and the residual check refuses."""
    return [r for r in results if r.entity_type not in keep]


def _without_kept(text: str, results: list[Result], keep: frozenset[str]) -> str:
    """text with every finding replaced except those of a kept entity."""
    return anonymize(text, _not_kept(results, keep))


def _hand_out(values: list[str | None], found: dict[str, list[Result]]) -> list[list[Result]]:
    """One list per value: a text's own list the first time, copies for its repeats."""
    out: list[list[Result]] = []
    given: set[str] = set()
    for t in values:
        if not t:
            out.append([])
        elif t in given:
            out.append(list(found[t]))
        else:
            given.add(t)
            out.append(found[t])
    return out


_worker_scanner: FastScanner | None = None


def _worker_init(scanner: FastScanner) -> None:
    """The scanner each worker uses (its NER model runs on one thread: the workers share out
    the cores, see lac_backend.INTRA_OP_THREADS)."""
    global _worker_scanner
    _worker_scanner = scanner


def _worker_run(job: Callable[[FastScanner, list[str]], list[T]], texts: list[str]) -> list[T]:
    assert _worker_scanner is not None
    return job(_worker_scanner, texts)


def _scan_here(scanner: FastScanner, texts: list[str]) -> list[list[Result]]:
    """Findings per distinct text, in this process, batch by batch."""
    out: list[list[Result]] = []
    memo = scanner._finder.memo()
    for b in range(0, len(texts), BATCH):
        out.extend(scanner._scan_batch(texts[b : b + BATCH], memo))
    return out


@dataclass(frozen=True)
class _RedactAndRescan:
    """Redact distinct texts, then scan what came out, in the same process: the sentences the
    redaction left unchanged are still in that process's model cache, and a text it left
    whole keeps the findings it already has."""

    keep: frozenset[str]

    def __call__(self, scanner: FastScanner, texts: list[str]) -> list[tuple[str, list[Result]]]:
        found = _scan_here(scanner, texts)
        redacted = [
            _without_kept(text, results, self.keep)
            for text, results in zip(texts, found, strict=True)
        ]
        known = {t: r for t, r, out in zip(texts, found, redacted, strict=True) if out == t}
        changed = [t for t in dict.fromkeys(redacted) if t not in known]
        known.update(zip(changed, _scan_here(scanner, changed), strict=True))
        return [(text, known[text]) for text in redacted]


@functools.lru_cache(maxsize=8)
def get_scanner(
    analyzer: AnalyzerEngine, *, ner: bool = False, processes: int | None = None
) -> FastScanner:
    """The scanner for this analyzer, built once per process (alphabets take ~0.3 s)."""
    return FastScanner(analyzer, ner=ner, processes=processes)
