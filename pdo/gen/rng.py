"""Named random streams: every table and chunk draws from its own stream, so output is stable."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np


def stream(seed: int, *names: str | int) -> np.random.Generator:
    """A Generator keyed by the run seed and a path of names (table, purpose, chunk index)."""
    key = [seed]
    for n in names:
        key.append(zlib.crc32(n.encode("utf-8")) if isinstance(n, str) else int(n))
    return np.random.default_rng(np.random.SeedSequence(key))


def choice_index(
    rng: np.random.Generator, weights: np.ndarray | Sequence[float], size: int
) -> np.ndarray:
    """Indices drawn with the given (unnormalized) weights."""
    w = np.asarray(weights, dtype=np.float64)
    return rng.choice(len(w), size=size, p=w / w.sum())


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function, for turning latent risk into probabilities."""
    return 1.0 / (1.0 + np.exp(-x))
