"""The offline Presidio analyzer: a blank zh spaCy pipeline on disk plus our PRC registry."""

from __future__ import annotations

import functools
from pathlib import Path

from presidio_analyzer import AnalyzerEngine, RecognizerResult
from presidio_analyzer.nlp_engine import SpacyNlpEngine

from pdo.privacy.recognizers import LANGUAGE, build_registry

MODEL_DIR_NAME = "zh_blank"


def ensure_blank_model(models_dir: Path) -> Path:
    """Save spacy.blank("zh") once; Presidio skips its model download only for a path."""
    import spacy

    path = models_dir / MODEL_DIR_NAME
    if not (path / "config.cfg").exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        spacy.blank(LANGUAGE).to_disk(tmp)
        if path.exists():  # a half-written model from an interrupted run
            import shutil

            shutil.rmtree(path)
        tmp.rename(path)
    return path


@functools.lru_cache(maxsize=4)
def _cached_analyzer(model_path: Path) -> AnalyzerEngine:
    nlp_engine = SpacyNlpEngine(models=[{"lang_code": LANGUAGE, "model_name": str(model_path)}])
    return AnalyzerEngine(
        nlp_engine=nlp_engine,
        registry=build_registry(),
        supported_languages=[LANGUAGE],
    )


def build_analyzer(models_dir: Path) -> AnalyzerEngine:
    """The zh AnalyzerEngine for this models dir, built once per process (loading spaCy is slow)."""
    model_path = ensure_blank_model(Path(models_dir).expanduser().resolve())
    return _cached_analyzer(model_path)


def find_pii(
    analyzer: AnalyzerEngine, text: str, entities: list[str] | None = None
) -> list[RecognizerResult]:
    """Detected spans in Chinese text, sorted by position."""
    results = analyzer.analyze(text=text, language=LANGUAGE, entities=entities)
    return sorted(results, key=lambda r: (r.start, r.end))
