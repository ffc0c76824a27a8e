"""What every scorer is: a name, a version, the scores it emits, and ``score(batch)``.

A scorer takes a batch of ``EnrichedCall`` and returns, for each call, its list of
``ScoreResult``. Light scorers (``batching is None``) are cheap enough to run on every
call as it passes; model scorers carry ``BatchSettings`` that the stream agents read to
feed them micro-batches.

Example:
    >>> from llmpulse.processors.scoring.base import last_user_text
    >>> from llmpulse.schemas import ChatMessage, PromptEvent
    >>> p = PromptEvent(call_id="c", app="a", messages=[
    ...     ChatMessage(role="system", content="Be brief."),
    ...     ChatMessage(role="user", content="Where is my parcel?")])
    >>> last_user_text(p)
    'Where is my parcel?'
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from typing import Protocol, runtime_checkable

from llmpulse.processors.config import BatchSettings
from llmpulse.schemas import EnrichedCall, PromptEvent, ScoreResult

__all__ = [
    "Scorer",
    "context_texts",
    "hub_offline",
    "last_user_text",
    "not_applicable",
    "shared_result",
    "unavailable",
]


@runtime_checkable
class Scorer(Protocol):
    """The interface of every scorer.

    Attributes:
        name: the scorer's name (``toxicity``, ``quality``...).
        version: bumped whenever its output for the same input may change.
        produces: the names of the ``ScoreResult`` it emits.
        batching: None for a light scorer; the micro-batch settings of a model scorer.
    """

    name: str
    version: str
    produces: tuple[str, ...]
    batching: BatchSettings | None

    def score(self, calls: Sequence[EnrichedCall]) -> list[list[ScoreResult]]:
        """Score a batch of calls; one list of results per call, in order. Never raises
        for one bad call: its results say ``status="error"``."""
        ...


def last_user_text(prompt: PromptEvent | None) -> str:
    """The text a user sent last (the question), else the last message, else ''."""
    if prompt is None or not prompt.messages:
        return ""
    for message in reversed(prompt.messages):
        if message.role == "user":
            return message.content
    return prompt.messages[-1].content


def context_texts(prompt: PromptEvent | None) -> list[str]:
    """The retrieved documents' texts (empty ones left out)."""
    if prompt is None:
        return []
    return [doc.content for doc in prompt.retrieved_context if doc.content]


@lru_cache(maxsize=1024)
def shared_result(name: str, version: str, backend: str, value: float | None = None,
                  label: str | None = None, status: str = "ok", detail: str | None = None) -> ScoreResult:
    """One shared instance per distinct result (``refusal = 0.0``, ``not_applicable: no
    answer``...): most calls repeat a few such results, and sharing them saves building
    and garbage-collecting them. Treat results as immutable."""
    return ScoreResult(name=name, scorer_version=version, backend=backend, value=value, label=label,
                       status=status, detail=detail)  # type: ignore[arg-type]


def unavailable(name: str, version: str, backend: str, detail: str) -> ScoreResult:
    """A score no model could produce: no value, and why, naming the model."""
    return shared_result(name, version, backend, status="unavailable", detail=detail)


def not_applicable(name: str, version: str, backend: str, detail: str) -> ScoreResult:
    """A score that does not apply to this call (no context to ground in, no answer...)."""
    return shared_result(name, version, backend, status="not_applicable", detail=detail)


def hub_offline() -> None:
    """No model hub at run time: transformers and huggingface_hub must read local files."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
