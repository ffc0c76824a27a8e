"""The stacked tier of the ``prompt_injection`` rule (``classifier: minilm-stack``): a small
logistic regression over what the other tiers see, run where MiniLM runs (off the light path).

Three inputs per text: the character n-gram model's log-odds (``guardrails.ngram``), the
log-odds of a logistic head over the text's MiniLM embedding, and its best cosine similarity
to the attack exemplars (``data/attack_exemplars.txt``). The pattern tier's hit is not an
input (the patterns were tuned on every training split, where they look perfect); the rule
flags what the patterns OR the n-gram model OR the stack flag, each verdict naming its tier.
The weights of the head and of the stack ship in
``data/injection_stack.json`` with their provenance and the threshold chosen by
leave-one-split-out cross-validation (``benchmarks/train_injection_stack.py``). When MiniLM
is missing, ``missing`` says why and ``scores`` returns None: no score is made up.

Example:
    >>> from llmpulse.processors.guardrails.stack import StackClassifier, load_stack
    >>> load_stack()["features"]
    ['ngram_logit', 'head_logit', 'exemplar_similarity']
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from llmpulse.processors.guardrails.embedding_head import (
    EmbeddingHeadClassifier,
    attack_probability,
    load_head,
)
from llmpulse.processors.guardrails.ngram import load_ngram_model

__all__ = ["STACK_NAME", "StackClassifier", "load_stack"]

STACK_NAME = "minilm-stack"
"""The ``classifier`` value of the rule that selects this tier."""
_WEIGHTS = "data/injection_stack.json"


@lru_cache(maxsize=1)
def load_stack() -> dict[str, Any]:
    """The shipped stack: head and stack weights, threshold and provenance."""
    return load_head(_WEIGHTS, "head_weights")


class StackClassifier(EmbeddingHeadClassifier):
    """The stack, with the classifier tiers' interface (``scores(texts) -> list[float] | None``).

    Args:
        embedder: as ``EmbeddingHeadClassifier``'s (default: the embedding scorer).
    """

    name = STACK_NAME

    def __init__(self, embedder: Any = None, *, max_chars: int = 2000) -> None:
        super().__init__(embedder, max_chars=max_chars)
        self._exemplars: Any = None

    def _load_weights(self) -> dict[str, Any]:
        from llmpulse.processors.scoring.embeddings import load_exemplars

        # The scorer embedded the shipped exemplars at its load unless it was given its own
        # file (the stack was trained on the shipped ones): reuse them, not embed them twice.
        config = getattr(self._embedder, "config", None)
        shipped = (getattr(self._embedder, "_exemplars", None)
                   if config is not None and getattr(config, "exemplars", "") is None else None)
        if shipped is None:
            shipped = self._embedder.embed(load_exemplars(None))
        self._exemplars = np.asarray(shipped, dtype=np.float64)
        return load_stack()

    def _scores(self, head: dict[str, Any], texts: Sequence[str], vectors: Any) -> list[float]:
        vectors = np.asarray(vectors, dtype=np.float64)
        ngram = load_ngram_model()
        inputs = np.column_stack([
            [ngram.logit(t) for t in texts],
            vectors @ np.asarray(head["head_weights"]) + head["head_bias"],
            (vectors @ self._exemplars.T).max(axis=1),
        ])
        return attack_probability(inputs, head["stack_weights"], head["stack_bias"])
