"""The offline Presidio analyzer: a blank zh spaCy pipeline on disk plus our PRC registry."""

from __future__ import annotations

import functools
import threading
from pathlib import Path

from presidio_analyzer import AnalyzerEngine, RecognizerResult
from presidio_analyzer.nlp_engine import SpacyNlpEngine

from pdo.privacy.recognizers import LANGUAGE, build_registry

MODEL_DIR_NAME = "zh_blank"


_MODEL_LOCK = threading.Lock()


def ensure_blank_model(models_dir: Path) -> Path:
    """Save spacy.blank("zh") once; Presidio skips its model download only for a path."""
    import os
    import shutil

    import spacy

    path = models_dir / MODEL_DIR_NAME
    with _MODEL_LOCK:  # stage tasks run side by side: threads here, processes on Dask
        if not (path / "config.cfg").exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            spacy.blank(LANGUAGE).to_disk(tmp)
            if path.exists() and not (path / "config.cfg").exists():
                shutil.rmtree(path, ignore_errors=True)  # half-written by an interrupted run
            try:
                tmp.rename(path)
            except OSError:  # another process saved it first: theirs is as good as ours
                shutil.rmtree(tmp, ignore_errors=True)
                if not (path / "config.cfg").exists():
                    raise
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
