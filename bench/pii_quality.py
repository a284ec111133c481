"""Quality of Chinese name / address / organisation detection, measured, per backend.

Corpora:
- CLUENER 2020 (real news sentences, hand-labelled): recall and precision with overlap
  matching (a predicted span is a true positive if it overlaps a gold span of the same type;
  gold name→PERSON, address→ADDRESS, company/organization/government→ORGANIZATION; predicted
  LOCATION and CN_ADDRESS both count as ADDRESS), for every backend, plus texts/s;
- (a) generated penalty summaries (``pdo.gen``): the legal representative's name, ID number,
  mobile and address planted from the enterprise registry, through the full zh analyzer.

The last line printed is one JSON object: {"bench": "pii_quality", "figures": ..., ...}.

    .venv/bin/python bench/pii_quality.py [--cluener PATH] [--limit N] [--enterprises N]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CLUENER = REPO / ".." / "shared" / "data" / "cluener2020_train.jsonl"
THROUGHPUT_TEXTS = 2000
# Rules were tuned looking at CLUENER lines [0, 5000); lines from here on were only scored.
HOLDOUT_FROM = 5000

GOLD_TYPES = {
    "name": "PERSON",
    "address": "ADDRESS",
    "company": "ORGANIZATION",
    "organization": "ORGANIZATION",
    "government": "ORGANIZATION",
}
PREDICTED_TYPES = {
    "PERSON": "PERSON",
    "LOCATION": "ADDRESS",
    "CN_ADDRESS": "ADDRESS",
    "ORGANIZATION": "ORGANIZATION",
}
EVAL_TYPES = ("PERSON", "ADDRESS", "ORGANIZATION")


@dataclass(frozen=True)
class Labelled:
    """One text with typed gold spans (start, end exclusive)."""

    text: str
    gold: tuple[tuple[str, int, int], ...]


@dataclass
class Tally:
    """Overlap-matched counts for one entity type."""

    gold: int = 0
    gold_found: int = 0
    predicted: int = 0
    predicted_right: int = 0

    def add(self, gold: Sequence[tuple[int, int]], predicted: Sequence[tuple[int, int]]) -> None:
        self.gold += len(gold)
        self.gold_found += sum(any(_overlap(g, p) for p in predicted) for g in gold)
        self.predicted += len(predicted)
        self.predicted_right += sum(any(_overlap(p, g) for g in gold) for p in predicted)

    def figure(self) -> dict[str, float | int]:
        return {
            "recall": round(self.gold_found / self.gold, 4) if self.gold else 0.0,
            "precision": (
                round(self.predicted_right / self.predicted, 4) if self.predicted else 0.0
            ),
            "n": self.gold,
            "predicted": self.predicted,
        }


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def load_cluener(path: Path, limit: int | None) -> list[Labelled]:
    """CLUENER JSON lines; label offsets are [start, end_inclusive]."""
    rows: list[Labelled] = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if limit is not None and len(rows) >= limit:
                break
            if not line.strip():
                continue
            record = json.loads(line)
            gold = tuple(
                (GOLD_TYPES[kind], start, end + 1)
                for kind, mentions in record.get("label", {}).items()
                if kind in GOLD_TYPES
                for spans in mentions.values()
                for start, end in spans
            )
            rows.append(Labelled(record["text"], gold))
    return rows


def score_cluener(rows: Sequence[Labelled], predictions: Sequence[Sequence[Any]]) -> dict:
    """Per-type recall / precision for backend spans (objects with entity, start, end)."""
    tallies = {t: Tally() for t in EVAL_TYPES}
    for row, spans in zip(rows, predictions, strict=True):
        for kind in EVAL_TYPES:
            gold = [(s, e) for t, s, e in row.gold if t == kind]
            predicted = [(p.start, p.end) for p in spans if PREDICTED_TYPES.get(p.entity) == kind]
            tallies[kind].add(gold, predicted)
    return {kind: tally.figure() for kind, tally in tallies.items()}


def score_specific_addresses(
    rows: Sequence[Labelled], predictions: Sequence[Sequence[Any]]
) -> dict:
    """What the CN_ADDRESS recognizer reports: recall on gold addresses finer than a district,
    precision of CN_ADDRESS spans against any gold address."""
    from pdo.privacy.ner.addresses import is_specific_address

    tally = Tally()
    for row, spans in zip(rows, predictions, strict=True):
        addresses = [(s, e) for t, s, e in row.gold if t == "ADDRESS"]
        specific = [(s, e) for s, e in addresses if is_specific_address(row.text[s:e])]
        predicted = [(p.start, p.end) for p in spans if p.entity == "CN_ADDRESS"]
        tally.gold += len(specific)
        tally.gold_found += sum(any(_overlap(g, p) for p in predicted) for g in specific)
        tally.predicted += len(predicted)
        tally.predicted_right += sum(any(_overlap(p, g) for g in addresses) for p in predicted)
    return tally.figure()


def timed_detect(detect: Callable[[list[str]], list], texts: list[str]) -> tuple[list, float]:
    started = time.perf_counter()
    out = detect(texts)
    return out, time.perf_counter() - started


def cluener_figures(path: Path, limit: int | None, backends: Sequence[str]) -> dict[str, Any]:
    """CLUENER quality per backend, hold-out figures for the default, texts/s for each."""
    from pdo.privacy.ner import DEFAULT_BACKEND, get_backend

    rows = load_cluener(path, limit)
    texts = [r.text for r in rows]
    sample = texts[:THROUGHPUT_TEXTS]
    figures: dict[str, Any] = {}
    for name in backends:
        backend = get_backend(name)
        backend.detect(["预热：张三在北京市朝阳区建国路88号工作。"])  # load the model first
        _, seconds = timed_detect(backend.detect, sample)
        figures[f"throughput.{name}"] = {
            "texts_per_s": round(len(sample) / seconds, 1),
            "n": len(sample),
        }
        predictions, _ = timed_detect(backend.detect, texts)
        for kind, figure in score_cluener(rows, predictions).items():
            figures[f"cluener.{name}.{kind}"] = figure
        if name == DEFAULT_BACKEND:
            for kind, figure in score_cluener(rows, predictions).items():
                figures[f"cluener.{kind}"] = figure
            figures["cluener.CN_ADDRESS"] = score_specific_addresses(rows, predictions)
            if len(rows) > HOLDOUT_FROM:
                held = score_cluener(rows[HOLDOUT_FROM:], predictions[HOLDOUT_FROM:])
                for kind, figure in held.items():
                    figures[f"cluener_holdout.{kind}"] = figure
        print(
            f"{name:>10}: "
            + "  ".join(
                f"{k} R={figures[f'cluener.{name}.{k}']['recall']:.3f} "
                f"P={figures[f'cluener.{name}.{k}']['precision']:.3f}"
                for k in EVAL_TYPES
            )
            + f"  {figures[f'throughput.{name}']['texts_per_s']} texts/s",
            file=sys.stderr,
        )
    return figures


# ----------------------------------------------------------------------------------------------
# (a) generated penalty summaries through the full analyzer


def _norm(value: str | None) -> str:
    """Codes and numbers as written anywhere (registry dirt includes full-width digits)."""
    return unicodedata.normalize("NFKC", value or "").strip()


# Codes the registry may hold in full-width form; names and addresses are compared as written.
_NFKC_COLUMNS = frozenset({"legal_rep_id", "legal_rep_mobile"})


def _occurrences(text: str, value: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    if not value:
        return spans
    start = text.find(value)
    while start >= 0:
        spans.append((start, start + len(value)))
        start = text.find(value, start + len(value))
    return spans


@dataclass(frozen=True)
class PlantedSummary:
    """One penalty summary and what the registry says it names (None: unknown, not scored)."""

    text: str
    planted: dict[str, tuple[str, ...] | None]  # entity → known values (None: not scored)


PLANTED_COLUMNS = {
    "PERSON": "legal_rep_name",
    "CN_RESIDENT_ID": "legal_rep_id",
    "CN_MOBILE": "legal_rep_mobile",
    "CN_ADDRESS": "address",
    "ORGANIZATION": "name",
}


def load_planted(data_dir: Path) -> tuple[list[PlantedSummary], int]:
    """Penalty summaries joined to the registry by uscc; (summaries, rows skipped)."""
    from pdo.privacy.checksums import is_valid_resident_id

    registry: dict[str, dict[str, str]] = {}
    with (data_dir / "market_enterprise_registry.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            registry.setdefault(_norm(row["uscc"]).upper(), row)
    out: list[PlantedSummary] = []
    skipped = 0
    with (data_dir / "credit_penalties.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            firm = registry.get(_norm(row["uscc"]).upper())
            text = row.get("summary") or ""
            if firm is None or not text.strip():
                skipped += 1
                continue
            planted: dict[str, tuple[str, ...] | None] = {}
            for entity, column in PLANTED_COLUMNS.items():
                raw = firm.get(column) or ""
                value = _norm(raw) if column in _NFKC_COLUMNS else raw.strip()
                # Registry dirt (a missing value, a wrong check character) hides the true value.
                if not value or (entity == "CN_RESIDENT_ID" and not is_valid_resident_id(value)):
                    planted[entity] = None
                else:
                    planted[entity] = (value,)
            authority = (row.get("authority") or "").strip()
            if planted["ORGANIZATION"] and authority:  # the deciding authority is named too
                planted["ORGANIZATION"] = (*planted["ORGANIZATION"], authority)
            out.append(PlantedSummary(text, planted))
    return out, skipped


def _score_planted(
    summaries: Sequence[PlantedSummary], found: Sequence[Sequence[tuple[str, int, int]]]
) -> dict[str, Tally]:
    """Overlap-matched tallies of (entity, start, end) results against the planted values."""
    tallies = {entity: Tally() for entity in PLANTED_COLUMNS}
    for summary, results in zip(summaries, found, strict=True):
        for entity, values in summary.planted.items():
            if values is None:
                continue
            gold = [span for value in values for span in _occurrences(summary.text, value)]
            predicted = [(s, e) for kind, s, e in results if kind == entity]
            tallies[entity].add(gold, predicted)
    return tallies


def generated_figures(
    enterprises: int, seed: int, backends: Sequence[str] = (), data_dir: Path | None = None
) -> dict[str, Any] | None:
    """Corpus (a): planted values in generated penalty summaries through the full analyzer,
    and the name / address / organisation spans of each backend on the same summaries.

    Returns None when pdo.gen is not available. With data_dir, reads an existing delivery
    instead of generating one.
    """
    try:
        from pdo.gen import generate
    except ImportError:
        return None
    from pdo.privacy.analyzer import build_analyzer, find_pii
    from pdo.privacy.ner import CACHE_SIZE, get_backend, prime

    with tempfile.TemporaryDirectory(prefix="pii_quality_") as tmp:
        if data_dir is None:
            data_dir = Path(tmp) / "gen"
            generate(data_dir, enterprises=enterprises, seed=seed, progress=False)
        summaries, skipped = load_planted(data_dir)
        analyzer = build_analyzer(Path(tmp) / "models")
        started = time.perf_counter()
        results: list[list[Any]] = []
        for i in range(0, len(summaries), CACHE_SIZE):
            chunk = summaries[i : i + CACHE_SIZE]
            prime(s.text for s in chunk)
            results.extend(find_pii(analyzer, s.text) for s in chunk)
        seconds = time.perf_counter() - started

    tallies = _score_planted(
        summaries, [[(r.entity_type, r.start, r.end) for r in found] for found in results]
    )
    figures: dict[str, Any] = {
        f"generated.{entity}": tally.figure() for entity, tally in tallies.items()
    }
    for name in backends:
        spans = get_backend(name).detect([s.text for s in summaries])
        per_backend = _score_planted(
            summaries, [[(p.entity, p.start, p.end) for p in found] for found in spans]
        )
        for entity in ("PERSON", "CN_ADDRESS", "ORGANIZATION"):
            figures[f"generated.{name}.{entity}"] = per_backend[entity].figure()
    figures["throughput.analyzer"] = {
        "texts_per_s": round(len(summaries) / seconds, 1) if seconds else 0.0,
        "n": len(summaries),
    }
    figures["generated.summaries"] = {"n": len(summaries), "skipped": skipped}
    return figures


# ----------------------------------------------------------------------------------------------


def main(argv: Iterable[str] | None = None) -> int:
    from pdo.privacy.ner import BACKEND_NAMES, DEFAULT_BACKEND

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cluener", type=Path, default=DEFAULT_CLUENER)
    parser.add_argument("--limit", type=int, default=None, help="first N CLUENER lines")
    parser.add_argument(
        "--backends", default=",".join(BACKEND_NAMES), help="comma-separated backend names"
    )
    parser.add_argument("--enterprises", type=int, default=2000, help="corpus (a) size")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-generated", action="store_true", help="skip corpus (a)")
    args = parser.parse_args(list(argv) if argv is not None else None)

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    figures: dict[str, Any] = {}
    cluener_path = args.cluener.resolve()
    if cluener_path.exists():
        figures.update(cluener_figures(cluener_path, args.limit, backends))
    else:
        print(f"CLUENER file not found: {cluener_path}", file=sys.stderr)
    generated = (
        None if args.no_generated else generated_figures(args.enterprises, args.seed, backends)
    )
    if generated is not None:
        figures.update(generated)
    params = {
        "cluener": str(cluener_path),
        "limit": args.limit,
        "backends": backends,
        "default_backend": DEFAULT_BACKEND,
        "matching": "overlap, same type",
        "throughput_texts": THROUGHPUT_TEXTS,
        "holdout_from_line": HOLDOUT_FROM,
        "generated": None
        if generated is None
        else {"enterprises": args.enterprises, "seed": args.seed},
    }
    print(
        json.dumps(
            {"bench": "pii_quality", "figures": figures, "ratios": {}, "params": params},
            ensure_ascii=False,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
