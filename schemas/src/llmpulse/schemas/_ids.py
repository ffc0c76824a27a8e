"""Identifiers: UUIDv7 (RFC 9562) for events and calls.

Python 3.11 has no ``uuid.uuid7``; this is a small, monotonic implementation.

Example:
    >>> from llmpulse.schemas import uuid7
    >>> uuid7().version
    7
"""

from __future__ import annotations

import random
import threading
import time
import uuid

__all__ = ["uuid7", "uuid7_block", "uuid7_str", "uuid7_time_ms"]

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def uuid7() -> uuid.UUID:
    """Return a new UUIDv7: 48-bit Unix milliseconds, then a 12-bit counter and 62 random bits.

    Within one millisecond the counter keeps ids from one process sorted in creation order.
    """
    global _last_ms, _counter
    ms = time.time_ns() // 1_000_000
    rand = random.getrandbits(64)  # the random module reseeds itself after fork()
    with _lock:
        if ms <= _last_ms:
            _counter += 1
            if _counter > 0xFFF:  # counter exhausted: borrow the next millisecond
                _last_ms += 1
                _counter = 0
            ms = _last_ms
        else:
            _last_ms = ms
            _counter = rand >> 52  # random start keeps ids unguessable across processes
            _counter &= 0x7FF
        counter = _counter
    value = (ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76
    value |= counter << 64
    value |= 0b10 << 62
    value |= rand & 0x3FFF_FFFF_FFFF_FFFF
    # uuid.UUID(int=...) re-validates what is valid by construction; this skips it (3x faster).
    new = object.__new__(uuid.UUID)
    object.__setattr__(new, "int", value)
    object.__setattr__(new, "is_safe", uuid.SafeUUID.unknown)
    return new


def uuid7_block(n: int) -> list[uuid.UUID]:
    """``n`` UUIDv7s made at once: the first from ``uuid7()``, the next ones with the same
    time and counter and the random bits counted up (a call's id and its events' ids: one
    clock read, one random draw)."""
    first = uuid7().int
    low = first & 0x3FFF_FFFF_FFFF_FFFF
    high = first & ~0x3FFF_FFFF_FFFF_FFFF
    out = []
    for i in range(n):
        new = object.__new__(uuid.UUID)
        object.__setattr__(new, "int", high | ((low + i) & 0x3FFF_FFFF_FFFF_FFFF))
        object.__setattr__(new, "is_safe", uuid.SafeUUID.unknown)
        out.append(new)
    return out


def uuid7_str() -> str:
    """Return a new UUIDv7 in its canonical text form."""
    return str(uuid7())


def uuid7_time_ms(value: uuid.UUID) -> int:
    """Return the Unix time in milliseconds stored in a UUIDv7."""
    return value.int >> 80
