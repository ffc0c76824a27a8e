"""Kafka's default partitioner: murmur2 of the key, as the Java client computes it.

The SDK chooses the partition itself (so it can batch per partition), and it must be
the one any Kafka client would choose for the same key: a call's prompt, response and
feedback then meet in the same partition of the co-partitioned topics.

A record's key is ``event_key(event)``: the ``call_id`` of a call's events, the
``trace_id`` of a span (``llm.spans`` is partitioned by trace, so one worker sees a whole
trace), else the event id.

Example:
    >>> from llmpulse.schemas import partition_for
    >>> partition_for("0192b6f0-7c1e-7aaa-8bbb-123456789abc", 12)
    10
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from functools import lru_cache

from llmpulse.schemas._events import SpanEvent

__all__ = ["event_key", "murmur2", "partition_for"]

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_WORDS: dict[int, Callable[[bytes], tuple[int, ...]]] = {}


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (seed 0x9747b28c), returned as a signed 32-bit int like Java's."""
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    words = length >> 2
    unpack = _WORDS.get(words)
    if unpack is None:  # one C call reads every little-endian 4-byte word
        unpack = _WORDS[words] = struct.Struct(f"<{words}I").unpack_from
    for k in unpack(data):
        k = (k * _M) & _MASK
        k = ((k ^ (k >> 24)) * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    end = words << 2
    rest = length & 3
    if rest == 3:
        h ^= data[end + 2] << 16
    if rest >= 2:
        h ^= data[end + 1] << 8
    if rest >= 1:
        h ^= data[end]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - 0x1_0000_0000 if h & 0x8000_0000 else h


@lru_cache(maxsize=65_536)
def partition_for(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for ``key`` among ``partitions``.

    Cached: a call's id is hashed once for its prompt, response and feedback.
    """
    if partitions <= 0:
        raise ValueError(f"partitions must be positive, got {partitions}")
    return (murmur2(key.encode("utf-8")) & 0x7FFFFFFF) % partitions


def event_key(event: object) -> str:
    """The Kafka record key of ``event``: a span's ``trace_id``, else the ``call_id``, else
    the ``event_id`` (events that belong to no call).

    Example:
        >>> from datetime import UTC, datetime
        >>> from llmpulse.schemas import FeedbackEvent, SpanEvent, event_key
        >>> event_key(FeedbackEvent(call_id="c1", app="a", thumbs="up"))
        'c1'
        >>> event_key(SpanEvent(call_id="s1", span_id="s1", trace_id="t1", app="a", name="f",
        ...                     operation="execute_tool", started_at=datetime.now(UTC),
        ...                     latency_ms=1.0))
        't1'
    """
    if type(event) is SpanEvent:
        return event.trace_id
    call_id = getattr(event, "call_id", None)
    return call_id if isinstance(call_id, str) else str(getattr(event, "event_id", ""))
