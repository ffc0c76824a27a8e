"""Sentence embeddings for drift: the scoring library's MiniLM, with a cache of texts.

Why a sample, and where the vectors come from: MiniLM costs 6-9 ms of CPU a text here
(126 texts: 0.8-1.2 s), so drift embeds only the ``embedding_sample`` calls of each window
with the smallest hash (64 by default: a fixed cost per window, whatever its size) and a
pinned reference once; a trailing baseline reuses the vectors of its windows. The heavy
path's embedding scorer already embeds every call's question and answer: pass the
``EmbeddingScorer`` the enricher holds (``enricher.batched_scorers["embeddings"]``) to
``default_embedder`` and its vectors are cached as it computes them; ``observe`` picks up
the vectors of the calls that enter a window's sample while they are still cached, so in
a worker that scores and watches drift in one process the embedding costs nothing more.
Otherwise (drift in another process) the sample is embedded when the window closes. The
model is loaded once per process either way.

Example:
    >>> import numpy as np
    >>> from llmpulse.processors.drift.embedding import CachedEmbedder
    >>> class Letters:  # any object with ``embed(texts) -> array`` will do
    ...     calls = 0
    ...     def embed(self, texts):
    ...         self.calls += 1
    ...         return np.array([[len(t), 1.0] for t in texts])
    >>> embedder = CachedEmbedder(Letters())
    >>> embedder.embed(["ab", "abc"]).shape, embedder.embed(["ab"]).tolist(), embedder.hits
    ((2, 2), [[2.0, 1.0]], 1)
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

__all__ = ["CachedEmbedder", "TextEmbedder", "default_embedder"]

logger = logging.getLogger(__name__)


class TextEmbedder(Protocol):
    """Anything that turns texts into vectors, one row a text."""

    def embed(self, texts: Sequence[str]) -> Any:
        ...


class CachedEmbedder:
    """Wraps an embedder with a cache of the last ``capacity`` texts (thread-safe).

    Attributes:
        hits: texts served from the cache.
        misses: texts sent to the model.
        backend: the wrapped embedder's ``backend`` (for messages).
    """

    def __init__(self, inner: TextEmbedder, *, capacity: int = 20_000) -> None:
        self.inner = inner
        self.capacity = capacity
        self.backend = str(getattr(inner, "backend", type(inner).__name__))
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of ``texts`` (float32, one row a text); raises what the model raises."""
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
            self.hits += len(texts) - len(missing)
            self.misses += len(missing)
        if missing:
            self.put(missing, self.inner.embed(missing))
        with self._lock:
            rows = []
            for text in texts:
                vector = self._cache.get(text)
                if vector is None:  # evicted meanwhile by another thread's batch
                    vector = np.asarray(self.inner.embed([text]), dtype=np.float32)[0]
                else:
                    self._cache.move_to_end(text)
                rows.append(vector)
        return np.vstack(rows) if rows else np.empty((0, 0), dtype=np.float32)


    def lookup(self, text: str) -> np.ndarray | None:
        """The cached vector of ``text``, or None (never calls the model)."""
        with self._lock:
            return self._cache.get(text)

    def put(self, texts: Sequence[str], vectors: Any) -> None:
        """Remember vectors computed elsewhere."""
        array = np.asarray(vectors, dtype=np.float32)
        with self._lock:
            for text, vector in zip(texts, array, strict=True):
                self._cache[text] = vector
                self._cache.move_to_end(text)
            while len(self._cache) > self.capacity:
                self._cache.popitem(last=False)

    def share_with(self, scorer: Any) -> None:
        """Cache every text ``scorer`` embeds from now on (its ``embed`` is wrapped on that
        instance): the embedding scorer of the heavy path already embeds each call's
        question and answer, so drift finds them here instead of embedding them again."""
        inner = scorer.embed

        def embed(texts: Sequence[str]) -> Any:
            vectors = inner(texts)
            self.put(list(texts), vectors)
            return vectors

        scorer.embed = embed


def default_embedder(scorer: Any = None, *, share: bool = True) -> CachedEmbedder:
    """MiniLM through the scoring library's ``EmbeddingScorer`` (given, or a new one).

    With ``share`` (and a scorer given), the texts the scorer embeds for its own scores are
    cached too (``CachedEmbedder.share_with``). The model loads on the first ``embed``; if
    it is missing, ``embed`` raises ``ModelUnavailableError`` naming it, and drift goes on
    without embedding features.
    """
    if scorer is None:
        from llmpulse.processors.scoring.embeddings import EmbeddingScorer

        scorer, share = EmbeddingScorer(), False
    cached = CachedEmbedder(scorer)
    if share:
        cached.share_with(scorer)
    return cached
