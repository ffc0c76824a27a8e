"""What a window is compared with: a closed window or a reference, reduced to arrays.

A ``Summary`` holds a window's sampled rows, category rows, feedback counts and the
embeddings of its embedding sample. The pinned reference is one summary; a trailing
baseline is the last N windows' summaries, combined.

Example:
    >>> import numpy as np
    >>> from llmpulse.processors.drift.reference import Summary, combine
    >>> a = Summary(calls=10, numeric=np.ones((2, 3)), categories=[["en"], ["en"]])
    >>> b = Summary(calls=5, numeric=np.zeros((1, 3)), categories=[["fr"]])
    >>> both = combine([a, b])
    >>> both.calls, both.numeric.shape, Summary.from_state(both.to_state()).categories
    (15, (3, 3), [['en'], ['en'], ['fr']])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from msgspec import Struct

from llmpulse.processors.drift.window import FeedbackCounts

__all__ = ["Summary", "SummaryState", "combine"]


@dataclass
class Summary:
    """A closed window (or a reference) as the tests need it."""

    calls: int
    numeric: np.ndarray
    categories: list[list[str]]
    feedback: FeedbackCounts = field(default_factory=FeedbackCounts)
    start: datetime | None = None
    end: datetime | None = None
    prompt_vectors: np.ndarray | None = None
    response_vectors: np.ndarray | None = None
    rate_counts: dict[str, list[int]] | None = None
    """A pinned reference's rates over every call it saw (``rate_calls`` of them), not only
    its sample (``compare.rate_counts``); None: counted on the sample."""
    rate_calls: int = 0

    def to_state(self) -> SummaryState:
        def pack(vectors: np.ndarray | None) -> bytes | None:
            return None if vectors is None else np.asarray(vectors, dtype=np.float16).tobytes()

        dim = 0
        for vectors in (self.prompt_vectors, self.response_vectors):
            if vectors is not None and vectors.ndim == 2:
                dim = vectors.shape[1]
        return SummaryState(calls=self.calls, start=self.start, end=self.end,
                            columns=self.numeric.shape[1] if self.numeric.ndim == 2 else 0,
                            numeric=np.ascontiguousarray(self.numeric, dtype=np.float64).tobytes(),
                            categories=self.categories, feedback=self.feedback, dim=dim,
                            prompt_vectors=pack(self.prompt_vectors),
                            response_vectors=pack(self.response_vectors),
                            rate_counts=self.rate_counts, rate_calls=self.rate_calls)

    @classmethod
    def from_state(cls, state: SummaryState) -> Summary:
        def unpack(data: bytes | None) -> np.ndarray | None:
            if data is None or state.dim == 0:
                return None
            return np.frombuffer(data, dtype=np.float16).astype(np.float32).reshape(-1, state.dim)

        numeric = np.frombuffer(state.numeric, dtype=np.float64).reshape(-1, state.columns).copy()
        return cls(calls=state.calls, numeric=numeric, categories=state.categories,
                   feedback=state.feedback, start=state.start, end=state.end,
                   prompt_vectors=unpack(state.prompt_vectors),
                   response_vectors=unpack(state.response_vectors),
                   rate_counts=state.rate_counts, rate_calls=state.rate_calls)


class SummaryState(Struct, kw_only=True):
    """A ``Summary`` as stored (msgpack): arrays as raw bytes, embeddings as float16."""

    calls: int
    start: datetime | None = None
    end: datetime | None = None
    columns: int
    numeric: bytes
    categories: list[list[str]]
    feedback: FeedbackCounts
    dim: int = 0
    prompt_vectors: bytes | None = None
    response_vectors: bytes | None = None
    rate_counts: dict[str, list[int]] | None = None
    rate_calls: int = 0


def _stack(parts: Sequence[np.ndarray | None]) -> np.ndarray | None:
    present = [p for p in parts if p is not None and len(p)]
    return np.vstack(present) if present else None


def combine(summaries: Sequence[Summary]) -> Summary:
    """One summary of several (a trailing baseline): rows stacked, counts added."""
    feedback = FeedbackCounts()
    for s in summaries:
        feedback.merge(s.feedback)
    starts = [s.start for s in summaries if s.start is not None]
    ends = [s.end for s in summaries if s.end is not None]
    return Summary(
        calls=sum(s.calls for s in summaries),
        numeric=np.vstack([s.numeric for s in summaries]),
        categories=[row for s in summaries for row in s.categories],
        feedback=feedback,
        start=min(starts) if starts else None,
        end=max(ends) if ends else None,
        prompt_vectors=_stack([s.prompt_vectors for s in summaries]),
        response_vectors=_stack([s.response_vectors for s in summaries]),
    )
