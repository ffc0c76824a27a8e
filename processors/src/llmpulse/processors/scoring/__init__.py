"""Scorers: light ones for every call, model ones in micro-batches.

Light (``batching is None``): ``OperationsScorer`` (latency, tokens, cost) and
``QualityScorer`` (empty, truncated, refusal, repetition, length, JSON, language).
Batched: ``ToxicityScorer`` (Detoxify or alt-profanity-check), ``EmbeddingScorer``
(relevance, groundedness, attack similarity with MiniLM) and ``ReadabilityScorer``
(textstat). Models load on first use (or ``load()``); nothing here imports torch.

Example:
    >>> from llmpulse.processors.scoring import QualityScorer, Scorer
    >>> isinstance(QualityScorer(), Scorer), QualityScorer().batching is None
    (True, True)
"""

from llmpulse.processors.scoring.base import Scorer
from llmpulse.processors.scoring.embeddings import EmbeddingScorer
from llmpulse.processors.scoring.operations import OperationsScorer, PriceTable
from llmpulse.processors.scoring.quality import QualityScorer
from llmpulse.processors.scoring.readability import ReadabilityScorer
from llmpulse.processors.scoring.toxicity import ToxicityScorer

__all__ = [
    "EmbeddingScorer",
    "OperationsScorer",
    "PriceTable",
    "QualityScorer",
    "ReadabilityScorer",
    "Scorer",
    "ToxicityScorer",
]
