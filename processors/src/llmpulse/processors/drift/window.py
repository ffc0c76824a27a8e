"""Windows of one key: a uniform sample of its calls, its feedback counts, and their state.

A window keeps at most ``sample_size`` calls: those with the smallest hash of ``call_id``
(bottom-k sampling). That is a uniform sample without replacement, the same after a
restart or a replay (no random state to save), and a call that cannot enter the sample is
rejected on its hash alone, before any descriptor is computed. The first ``m`` calls by
the same hash are the window's embedding sample, so the two samples nest.

Example:
    >>> from llmpulse.processors.drift.window import DriftKey, Sample, call_priority
    >>> key = DriftKey(app="shop", prompt_id="faq", prompt_version="3", model="gpt-4o-mini")
    >>> DriftKey.decode(key.encode()) == key
    True
    >>> s = Sample(2)
    >>> [s.add(call_priority(cid), cid, [1.0], ["en"]) for cid in ("a", "b", "c")].count(True) >= 2
    True
    >>> len(s), s.capacity
    (2, 2)
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple

import numpy as np
from msgspec import Struct, field

from llmpulse.schemas import CallEvent

__all__ = [
    "DriftKey",
    "FeedbackCounts",
    "Sample",
    "SampleState",
    "TextSample",
    "TextSampleState",
    "WindowData",
    "WindowState",
    "call_priority",
]

_SEP = "\x1f"


class DriftKey(NamedTuple):
    """What drift is tracked per: app, environment, prompt id, prompt version, model."""

    app: str
    environment: str = "production"
    prompt_id: str = ""
    prompt_version: str = ""
    model: str = ""

    @classmethod
    def of(cls, event: CallEvent) -> DriftKey:
        """The key of a call (or of feedback that names its prompt and model)."""
        return cls(event.app, event.environment, event.prompt_id or "", event.prompt_version or "",
                   event.request_model or "")

    def encode(self) -> str:
        """A string for a table key (fields joined by the unit separator)."""
        return _SEP.join(self)

    @classmethod
    def decode(cls, text: str | bytes) -> DriftKey:
        """The key ``encode`` wrote."""
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return cls(*text.split(_SEP))

    def label(self) -> str:
        """``app/prompt_id@version (model)`` for messages and file names."""
        name = f"{self.app}/{self.prompt_id or '-'}@{self.prompt_version or '-'}"
        return f"{name} ({self.model})" if self.model else name


def call_priority(call_id: str) -> float:
    """The call's place in bottom-k sampling: a hash of its id, uniform in [0, 1)."""
    digest = hashlib.blake2b(call_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


class Sample:
    """The ``capacity`` calls with the smallest priority: their numeric rows and categories."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._heap: list[tuple[float, str, list[float], list[str]]] = []  # (-priority, ...)
        self._ids: set[str] = set()

    def __len__(self) -> int:
        return len(self._heap)

    def admits(self, priority: float) -> bool:
        """Whether a call of this priority would enter (check before computing its row)."""
        return len(self._heap) < self.capacity or priority < -self._heap[0][0]

    def add(self, priority: float, call_id: str, values: list[float], categories: list[str]) -> bool:
        """Add a call (a call id already in the sample is ignored); True if it entered."""
        if call_id in self._ids or not self.admits(priority):
            return False
        item = (-priority, call_id, values, categories)
        if len(self._heap) < self.capacity:
            heapq.heappush(self._heap, item)
        else:
            dropped = heapq.heapreplace(self._heap, item)
            self._ids.discard(dropped[1])
        self._ids.add(call_id)
        return True

    def arrays(self, n_numeric: int) -> tuple[np.ndarray, list[list[str]]]:
        """The numeric rows (n x columns, float64) and the category rows."""
        if not self._heap:
            return np.empty((0, n_numeric)), []
        return (np.array([item[2] for item in self._heap], dtype=np.float64).reshape(-1, n_numeric),
                [item[3] for item in self._heap])

    def to_state(self) -> SampleState:
        items = sorted(self._heap, reverse=True)
        return SampleState(capacity=self.capacity, priority=[-i[0] for i in items],
                           ids=[i[1] for i in items], values=[i[2] for i in items],
                           categories=[i[3] for i in items])

    @classmethod
    def from_state(cls, state: SampleState) -> Sample:
        sample = cls(state.capacity)
        for p, cid, values, cats in zip(state.priority, state.ids, state.values, state.categories,
                                        strict=True):
            sample.add(p, cid, values, cats)
        return sample


class TextSample:
    """The ``capacity`` calls with the smallest priority: their prompt and answer texts, and
    the vectors of those texts already embedded elsewhere (float16 bytes, by text)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._heap: list[tuple[float, str, str, str | None]] = []
        self._ids: set[str] = set()
        self.vectors: dict[str, bytes] = {}

    def __len__(self) -> int:
        return len(self._heap)

    def admits(self, priority: float) -> bool:
        return len(self._heap) < self.capacity or priority < -self._heap[0][0]

    def add(self, priority: float, call_id: str, prompt: str, response: str | None,
            vectors: dict[str, bytes] | None = None) -> None:
        if call_id in self._ids or not self.admits(priority):
            return
        item = (-priority, call_id, prompt, response)
        if len(self._heap) < self.capacity:
            heapq.heappush(self._heap, item)
        else:
            dropped = heapq.heapreplace(self._heap, item)
            self._ids.discard(dropped[1])
            if self.vectors:
                kept = {t for i in self._heap for t in (i[2], i[3]) if t}
                for text in (dropped[2], dropped[3]):
                    if text and text not in kept:
                        self.vectors.pop(text, None)
        self._ids.add(call_id)
        if vectors:
            self.vectors.update(vectors)

    def texts(self) -> tuple[list[str], list[str]]:
        """The non-empty prompts and answers, in priority order."""
        items = sorted(self._heap, reverse=True)
        return [i[2] for i in items if i[2]], [i[3] for i in items if i[3]]

    def to_state(self) -> TextSampleState:
        return TextSampleState(capacity=self.capacity, vectors=self.vectors,
                               items=[(-i[0], i[1], i[2], i[3]) for i in self._heap])

    @classmethod
    def from_state(cls, state: TextSampleState) -> TextSample:
        sample = cls(state.capacity)
        for p, cid, prompt, response in state.items:
            sample.add(p, cid, prompt, response)
        sample.vectors = dict(state.vectors)
        return sample


class FeedbackCounts(Struct, kw_only=True):
    """Feedback that arrived in a window: thumbs and 1-5 ratings."""

    up: int = 0
    down: int = 0
    ratings: list[int] = field(default_factory=lambda: [0, 0, 0, 0, 0])

    def add(self, thumbs: str | None, rating: int | None) -> None:
        if thumbs == "up":
            self.up += 1
        elif thumbs == "down":
            self.down += 1
        if rating is not None and 1 <= rating <= 5:
            self.ratings[rating - 1] += 1

    def merge(self, other: FeedbackCounts) -> None:
        self.up += other.up
        self.down += other.down
        self.ratings = [a + b for a, b in zip(self.ratings, other.ratings, strict=True)]

    @property
    def thumbs(self) -> int:
        return self.up + self.down

    @property
    def rated(self) -> int:
        return sum(self.ratings)


class WindowData:
    """A window being filled (or the pinned reference being built).

    Attributes:
        index: the window's number within its key (0, 1, ...).
        start: the earliest event time seen (for time windows: the bucket's start).
        end: the latest event time seen (for time windows: the bucket's end).
        bucket: the time bucket (``floor(t / window_seconds)``) the window ends in.
        calls: every call counted, sampled or not.
        rate_counts: a pinned reference's ``{rate: [events, calls]}`` over every call it saw,
            not only its sample, up to ``rate_reference_calls`` calls (``rate_calls``), the
            newest of a longer one (``count_newest``).
    """

    def __init__(self, index: int, sample_size: int, text_size: int) -> None:
        self.index = index
        self.start: datetime | None = None
        self.end: datetime | None = None
        self.bucket: int | None = None
        self.calls = 0
        self.sample = Sample(sample_size)
        self.texts = TextSample(text_size)
        self.feedback = FeedbackCounts()
        self.rate_counts: dict[str, list[int]] = {}
        self.rate_calls = 0
        # rate_counts in chunks of calls, oldest first, in memory only (count_newest)
        self.rate_chunks: list[tuple[dict[str, list[int]], list[int]]] = []

    def count_newest(self, count: Callable[[dict[str, list[int]]], None], cap: int) -> None:
        """Count one call's rates (``count`` adds them to a ``{rate: [events, calls]}``), keeping
        the NEWEST calls: counted in chunks of ``cap / 16`` calls, the oldest chunk dropped once
        more than ``cap`` are counted, so a longer period ends with its newest 15/16 x ``cap`` to
        ``cap`` calls counted. A state restored mid-way is one chunk (dropped whole)."""
        if not self.rate_chunks or self.rate_chunks[-1][1][0] >= max(1, -(-cap // 16)):
            self.rate_chunks.append(({}, [0]))
        counts, calls = self.rate_chunks[-1]
        count(counts)
        count(self.rate_counts)
        calls[0] += 1
        self.rate_calls += 1
        while self.rate_calls > cap and self.rate_chunks:
            old, old_calls = self.rate_chunks.pop(0)
            for name, (events, seen) in old.items():
                held = self.rate_counts[name]
                held[0] -= events
                held[1] -= seen
            self.rate_calls -= old_calls[0]

    def stretch(self, start: datetime, end: datetime) -> None:
        """Widen the bounds to cover ``start``-``end``."""
        self.start = start if self.start is None or start < self.start else self.start
        self.end = end if self.end is None or end > self.end else self.end

    def to_state(self) -> WindowState:
        return WindowState(index=self.index, start=self.start, end=self.end, bucket=self.bucket,
                           calls=self.calls, sample=self.sample.to_state(), texts=self.texts.to_state(),
                           feedback=self.feedback, rate_counts=self.rate_counts, rate_calls=self.rate_calls)

    @classmethod
    def from_state(cls, state: WindowState) -> WindowData:
        window = cls(state.index, 1, 1)
        window.start, window.end, window.bucket = state.start, state.end, state.bucket
        window.calls = state.calls
        window.sample = Sample.from_state(state.sample)
        window.texts = TextSample.from_state(state.texts)
        window.feedback = state.feedback
        window.rate_counts = {name: list(held) for name, held in state.rate_counts.items()}
        window.rate_calls = state.rate_calls
        if state.rate_calls:  # its chunks are not kept: one chunk, the oldest
            window.rate_chunks = [({name: list(held) for name, held in state.rate_counts.items()},
                                   [state.rate_calls])]
        return window


class SampleState(Struct, kw_only=True):
    """A ``Sample`` as stored (msgpack)."""

    capacity: int
    priority: list[float]
    ids: list[str]
    values: list[list[float]]
    categories: list[list[str]]


class TextSampleState(Struct, kw_only=True):
    """A ``TextSample`` as stored: ``(priority, call_id, prompt, answer)`` items."""

    capacity: int
    items: list[tuple[float, str, str, str | None]]
    vectors: dict[str, bytes] = {}


class WindowState(Struct, kw_only=True):
    """A ``WindowData`` as stored."""

    index: int
    start: datetime | None
    end: datetime | None
    bucket: int | None
    calls: int
    sample: SampleState
    texts: TextSampleState
    feedback: FeedbackCounts
    rate_counts: dict[str, list[int]] = {}
    rate_calls: int = 0
