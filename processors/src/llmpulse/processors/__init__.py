"""llmpulse stream processors: scoring, guardrails and (later) drift, as plain Python.

The same code runs in the Faust workers, in replay and in the embedded demo; nothing
here imports Kafka or Faust, and the models load only when a batched scorer first runs.

Example:
    >>> from llmpulse.processors import CallPair, Enricher, load_config
    >>> enricher = Enricher(load_config(environ={}))
    >>> sorted(enricher.batching)
    ['embeddings', 'readability', 'toxicity']
"""

from llmpulse.processors.config import ProcessorConfig, load_config
from llmpulse.processors.pipeline import CallPair, Enricher

__all__ = ["CallPair", "Enricher", "ProcessorConfig", "load_config"]
