"""Kafka's default partitions of many record keys at once (``partition_for`` over a batch).

``llmpulse.schemas.partition_for`` hashes one key in pure Python: murmur2 as the Java client
computes it, a dozen integer operations per 4 bytes, about as costly per call as mapping
a small span. A mapped batch (an OTLP record of hundreds of spans) has many call ids of
one length, so numpy hashes them column by column instead: uint32 arithmetic wraps as
murmur2's masked arithmetic does. Small batches and rare lengths take the scalar function.
The partitions are the same, by construction and by test.

Example:
    >>> from llmpulse.schemas import partition_for
    >>> keys = [f"otel-{n:032x}-{n:016x}" for n in range(40)]
    >>> partitions_for(keys, 6) == [partition_for(key, 6) for key in keys]
    True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from llmpulse.schemas import partition_for

__all__ = ["MIN_VECTOR_KEYS", "partitions_for"]

MIN_VECTOR_KEYS = 16
"""Fewer keys of one length than this are hashed one by one (numpy's per-call cost)."""
_M = np.uint32(0x5BD1E995)
_SEED = 0x9747B28C


def partitions_for(keys: Sequence[str], partitions: int) -> list[int]:
    """``[partition_for(key, partitions) for key in keys]``, vectorised per key length.

    Raises:
        ValueError: ``partitions`` is not positive.
    """
    if partitions <= 0:
        raise ValueError(f"partitions must be positive, got {partitions}")
    if len(keys) < MIN_VECTOR_KEYS:
        return [partition_for(key, partitions) for key in keys]
    encoded = [key.encode("utf-8") for key in keys]
    by_length: dict[int, list[int]] = {}
    for at, data in enumerate(encoded):
        by_length.setdefault(len(data), []).append(at)
    out = [0] * len(keys)
    for length, rows in by_length.items():
        if len(rows) < MIN_VECTOR_KEYS:
            for at in rows:
                out[at] = partition_for(keys[at], partitions)
            continue
        table = np.frombuffer(b"".join([encoded[at] for at in rows]),
                              dtype=np.uint8).reshape(len(rows), length)
        chosen = ((_murmur2(table) & np.uint32(0x7FFF_FFFF)) % np.uint32(partitions)).tolist()
        for at, partition in zip(rows, chosen, strict=True):
            out[at] = partition
    return out


def _murmur2(table: np.ndarray) -> np.ndarray:
    """Kafka's murmur2 of each row of ``table`` (n keys x their common byte length), as
    unsigned 32-bit values (``llmpulse.schemas.murmur2`` returns the same bits, signed)."""
    rows, length = table.shape
    h = np.full(rows, (_SEED ^ length) & 0xFFFF_FFFF, dtype=np.uint32)
    words = length >> 2
    if words:
        packed = np.ascontiguousarray(table[:, :words * 4]).view("<u4").astype(np.uint32)
        for column in range(words):
            k = packed[:, column] * _M
            k ^= k >> np.uint32(24)
            k *= _M
            h *= _M
            h ^= k
    end, rest = words * 4, length & 3
    if rest == 3:
        h ^= table[:, end + 2].astype(np.uint32) << np.uint32(16)
    if rest >= 2:
        h ^= table[:, end + 1].astype(np.uint32) << np.uint32(8)
    if rest >= 1:
        h ^= table[:, end].astype(np.uint32)
        h *= _M
    h ^= h >> np.uint32(13)
    h *= _M
    h ^= h >> np.uint32(15)
    return h
