"""Desensitization throughput against its floors, in one run on the same generated city.

- pseudonymize: ``Pseudonymizer.pseudonymize_series`` vs a bare ``hmac.digest(key, value,
  "sha256")`` loop over the same values (already bytes: the floor of keyed hashing in Python);
- mask / generalize: ``pdo.privacy.vectorized`` vs a bare polars expression doing the same
  slicing (no normalization, no edge cases);
- scan: ``FastScanner`` (pattern and checksum recognizers, in process) vs stock Presidio
  ``AnalyzerEngine.analyze`` with the same recognizers, text by text, on free text (penalty
  summaries and CLUENER news) and separately on short column values, with the agreement of
  their findings (``checksum_agreement``: share of texts with identical findings, the lower);
- ner: names, addresses and organisations through ``FastScanner`` (batched, worker processes)
  vs the same recognizers called through ``AnalyzerEngine.analyze``, and their agreement.

Each timing is the best of --repeat runs (machines here are noisy; ratios hold). The last line
of output is one JSON object: {"bench": "desensitize", "figures", "ratios", "params"}.
"""

from __future__ import annotations

import argparse
import functools
import hmac
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import polars as pl

DEFAULT_CLUENER = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "cluener2020_train.jsonl"
)
NER_ENTITIES = ["PERSON", "CN_ADDRESS", "ORGANIZATION"]
KEY = b"bench-desensitize-key-0123456789"


def best_of(repeat: int, run: Callable[[], object]) -> float:
    """The fastest of repeat timed calls, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def read_delivery(directory: Path) -> dict[str, pl.DataFrame]:
    """Every CSV and Parquet table of a generated delivery, all columns as text."""
    tables: dict[str, pl.DataFrame] = {}
    for path in sorted(directory.glob("*.csv")):
        if path.stem != "data_dictionary":
            tables[path.stem] = pl.read_csv(path, infer_schema_length=0, encoding="utf8-lossy")
    for path in sorted(directory.glob("*.parquet")):
        frame = pl.read_parquet(path)
        tables[path.stem] = frame.select(pl.all().cast(pl.Utf8))
    return tables


# -- pseudonymization ---------------------------------------------------------------------------


def hmac_loop(messages: list[bytes]) -> list[bytes]:
    """The floor: keyed SHA-256 of each value, nothing else."""
    return [hmac.digest(KEY, m, "sha256") for m in messages]


def pseudonymize_figures(tables: dict[str, pl.DataFrame], repeat: int) -> dict[str, Any]:
    from pdo.privacy import vectorized
    from pdo.privacy.pseudonym import Pseudonymizer

    registry = tables["market_enterprise_registry"]
    identifiers = ("uscc", "legal_rep_id", "legal_rep_mobile", "legal_rep_name")
    distinct = pl.concat([registry[c] for c in identifiers]).drop_nulls().unique()
    with_repeats = pl.concat(
        [frame["uscc"] for frame in tables.values() if "uscc" in frame.columns]
    ).drop_nulls()
    pseudo = Pseudonymizer("bench", KEY)
    vectorized.warm_up()
    pseudo.pseudonymize_series(distinct.head(100))

    figures: dict[str, Any] = {}
    for label, values in (("distinct", distinct), ("with_repeats", with_repeats)):
        messages = [v.encode("utf-8") for v in values.to_list()]
        bare = best_of(repeat, functools.partial(hmac_loop, messages))
        ours = best_of(repeat, functools.partial(pseudo.pseudonymize_series, values))
        figures[label] = {
            "values": values.len(),
            "distinct_share": round(values.n_unique() / values.len(), 4),
            "hmac_values_per_s": round(values.len() / bare),
            "pseudonymize_values_per_s": round(values.len() / ours),
            "ratio": round(bare / ours, 3),
        }
    check = distinct.head(2_000)
    agree = pseudo.pseudonymize_series(check).to_list() == [
        pseudo.pseudonym(v) for v in check.to_list()
    ]
    figures["agreement_with_per_value"] = agree
    return figures


# -- masks and generalizations ------------------------------------------------------------------


def _bare_keep_ends(v: pl.Expr, head: int, tail: int) -> pl.Expr:
    return v.str.head(head).str.pad_end(v.str.len_chars() - tail, "*") + v.str.tail(tail)


BARE: dict[str, Callable[[pl.Expr], pl.Expr]] = {
    "name": lambda v: v.str.head(1).str.pad_end(v.str.len_chars(), "*"),
    "mobile": lambda v: v.str.head(3) + pl.lit("****") + v.str.tail(4),
    "resident_id": lambda v: _bare_keep_ends(v, 6, 4),
    "address": lambda v: v.str.extract(r"^(.+?[省市].*?[市州].*?[区县])", 1) + pl.lit("****"),
    "generalize_address": lambda v: v.str.extract(r"^(.+?[省市].*?[市州].*?[区县])", 1),
    "date_to_month": lambda v: v.str.head(7),
}


def mask_figures(tables: dict[str, pl.DataFrame], repeat: int, copies: int) -> dict[str, Any]:
    from pdo.privacy import masks, vectorized

    registry = tables["market_enterprise_registry"]
    columns = {
        "name": registry["legal_rep_name"],
        "mobile": registry["legal_rep_mobile"],
        "resident_id": registry["legal_rep_id"],
        "address": registry["address"],
        "generalize_address": registry["address"],
        "date_to_month": registry["established_on"],
    }

    def lenient_month(value: str) -> str | None:
        try:
            return masks.generalize_date_to_month(value)
        except ValueError:  # dirty dates ("0000-00-00") become null in the lenient column form
            return None

    ours: dict[str, Callable[[pl.Series], pl.Series]] = {
        "generalize_address": vectorized.generalize_address_series,
        "date_to_month": lambda s: vectorized.date_to_month_series(s, strict=False),
    }
    python: dict[str, Callable[[str], str | None]] = {
        "generalize_address": masks.generalize_address,
        "date_to_month": lenient_month,
    }
    vectorized.warm_up()
    figures: dict[str, Any] = {}
    total_bare = total_ours = 0.0
    agree_all = True
    for kind, column in columns.items():
        values = pl.concat([column.drop_nulls()] * copies).alias("v")
        run = ours.get(kind) or functools.partial(vectorized.mask_series, kind)
        run(values.head(100))
        frame = values.to_frame()
        bare = best_of(repeat, functools.partial(frame.select, BARE[kind](pl.col("v"))))
        mine = best_of(repeat, functools.partial(run, values))
        one = python.get(kind) or functools.partial(masks.mask, kind)
        sample = column.drop_nulls().head(5_000)
        agree = run(sample).to_list() == [one(x) for x in sample.to_list()]
        agree_all &= agree
        total_bare += bare
        total_ours += mine
        figures[kind] = {
            "values": values.len(),
            "values_per_s": round(values.len() / mine),
            "bare_polars_values_per_s": round(values.len() / bare),
            "ratio": round(bare / mine, 3),
            "agreement_with_python": agree,
        }
    figures["all_agree_with_python"] = agree_all
    figures["ratio_total"] = round(total_bare / total_ours, 3)
    return figures


# -- free-text scanning ---------------------------------------------------------------------------


def load_cluener(path: Path) -> list[str]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f if line.strip()]


def _key(results: Iterable[Any]) -> list[tuple[str, int, int, float]]:
    return [(r.entity_type, r.start, r.end, round(r.score, 9)) for r in results]


def scan_figures(
    analyzer: Any, texts: list[str], warm: list[str], processes: int, repeat: int
) -> dict[str, Any]:
    from pdo.privacy.fastscan import FastScanner
    from pdo.privacy.recognizers import LANGUAGE

    started = time.perf_counter()
    scanner = FastScanner(analyzer, processes=processes)
    scanner.scan_many(warm)
    setup = time.perf_counter() - started
    entities = list(scanner.entities)
    analyzer.analyze(text=warm[0], language=LANGUAGE, entities=entities)

    started = time.perf_counter()
    theirs = [analyzer.analyze(text=t, language=LANGUAGE, entities=entities) for t in texts]
    presidio = time.perf_counter() - started
    ours_results: list[Any] = []

    def run() -> None:
        ours_results[:] = scanner.scan_many(texts)

    ours = best_of(repeat, run)
    scanner.close()
    agree = sum(_key(a) == _key(b) for a, b in zip(theirs, ours_results, strict=True))
    return {
        "texts": len(texts),
        "distinct_share": round(len(set(texts)) / len(texts), 4),
        "findings": sum(map(len, theirs)),
        "presidio_texts_per_s": round(len(texts) / presidio),
        "fast_texts_per_s": round(len(texts) / ours),
        "fast_setup_s": round(setup, 3),
        "agreement": agree / len(texts),
        "ratio": round(presidio / ours, 2),
    }


def ner_figures(analyzer: Any, texts: list[str], warm: list[str], processes: int) -> dict[str, Any]:
    from pdo.privacy.fastscan import FastScanner
    from pdo.privacy.recognizers import LANGUAGE

    analyzer.analyze(text=warm[0], language=LANGUAGE, entities=NER_ENTITIES)
    started = time.perf_counter()
    theirs = [analyzer.analyze(text=t, language=LANGUAGE, entities=NER_ENTITIES) for t in texts]
    presidio = time.perf_counter() - started

    single = FastScanner(analyzer, entities=NER_ENTITIES)
    single.scan_many(warm[:200])
    started = time.perf_counter()
    in_process = single.scan_many(texts)
    one = time.perf_counter() - started

    pooled = FastScanner(analyzer, entities=NER_ENTITIES, processes=processes)
    started = time.perf_counter()
    pooled.scan_many(warm)  # starts the workers (and their models) once
    pool_start = time.perf_counter() - started
    started = time.perf_counter()
    ours_results = pooled.scan_many(texts)
    ours = time.perf_counter() - started
    pooled.close()
    agree = sum(_key(a) == _key(b) for a, b in zip(theirs, ours_results, strict=True))
    same_in_process = sum(_key(a) == _key(b) for a, b in zip(in_process, ours_results, strict=True))
    return {
        "texts": len(texts),
        "findings": sum(map(len, theirs)),
        "presidio_texts_per_s": round(len(texts) / presidio, 1),
        "fast_in_process_texts_per_s": round(len(texts) / one, 1),
        "fast_texts_per_s": round(len(texts) / ours, 1),
        "processes": processes,
        "pool_start_s": round(pool_start, 2),
        "agreement": agree / len(texts),
        "pool_equals_in_process": same_in_process == len(texts),
        "ratio_in_process": round(presidio / one, 2),
        "ratio": round(presidio / ours, 2),
    }


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--enterprises", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--data", type=Path, help="an existing generated delivery")
    parser.add_argument("--cluener", type=Path, default=DEFAULT_CLUENER)
    parser.add_argument("--scan-texts", type=int, default=20_000, help="texts per scan corpus")
    parser.add_argument("--ner-texts", type=int, default=6_000, help="texts for NER")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--mask-copies", type=int, default=5, help="registry column copies")
    args = parser.parse_args(list(argv) if argv is not None else None)

    from pdo.privacy.analyzer import build_analyzer

    with tempfile.TemporaryDirectory(prefix="bench_desensitize_") as tmp:
        data = args.data
        if data is None:
            from pdo.gen import generate

            data = Path(tmp) / "city"
            print(f"generating {args.enterprises:,} enterprises…", file=sys.stderr)
            generate(data, enterprises=args.enterprises, seed=args.seed, progress=False)
        tables = read_delivery(data)
        analyzer = build_analyzer(Path(tmp) / "models")

        print("pseudonymize…", file=sys.stderr)
        pseudo = pseudonymize_figures(tables, args.repeat)
        print("masks…", file=sys.stderr)
        mask = mask_figures(tables, args.repeat, args.mask_copies)

        cluener = load_cluener(args.cluener.resolve())
        summaries = tables["credit_penalties"]["summary"].drop_nulls().to_list()
        free_text = summaries + cluener
        step = max(1, len(free_text) // args.scan_texts)
        texts, warm = free_text[::step][: args.scan_texts], free_text[1::step][:1_000]
        print(f"scan of {len(texts):,} free texts…", file=sys.stderr)
        scan = scan_figures(analyzer, texts, warm, 1, args.repeat)
        values = sorted(
            {v for frame in tables.values() for c in frame.columns for v in frame[c].drop_nulls()}
        )
        step = max(1, len(values) // args.scan_texts)
        cells, warm = values[::step][: args.scan_texts], values[1::step][:1_000]
        print(f"scan of {len(cells):,} column values…", file=sys.stderr)
        scan_cells = scan_figures(analyzer, cells, warm, 1, args.repeat)

        prose = cluener or summaries
        ner_texts = (prose[: args.ner_texts] + summaries)[: args.ner_texts]
        ner_warm = (prose[args.ner_texts :] or prose)[:2_500]
        print(f"NER on {len(ner_texts):,} texts…", file=sys.stderr)
        ner = ner_figures(analyzer, ner_texts, ner_warm, args.processes)

    figures = {
        "pseudonymize": pseudo,
        "mask": mask,
        "scan": scan,
        "scan_column_values": scan_cells,
        "ner": ner,
        "checksum_agreement": min(scan["agreement"], scan_cells["agreement"]),
        "ner_agreement": ner["agreement"],
    }
    ratios = {
        "pseudonymize_vs_hmac": pseudo["distinct"]["ratio"],
        "pseudonymize_vs_hmac_with_repeats": pseudo["with_repeats"]["ratio"],
        "mask_vs_polars": mask["ratio_total"],
        "scan_vs_presidio": scan["ratio"],
        "scan_column_values_vs_presidio": scan_cells["ratio"],
        "ner_vs_presidio": ner["ratio"],
    }
    params = {
        "enterprises": None if args.data else args.enterprises,
        "seed": args.seed,
        "data": str(args.data) if args.data else None,
        "cluener": str(args.cluener) if cluener else None,
        "processes": args.processes,
        "repeat": args.repeat,
        "cpu_count": os.cpu_count(),
    }
    print(
        json.dumps(
            {"bench": "desensitize", "figures": figures, "ratios": ratios, "params": params},
            ensure_ascii=False,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
