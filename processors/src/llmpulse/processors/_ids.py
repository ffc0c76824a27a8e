"""Event ids derived from the source events, so a redelivered call gets the same ids.

ClickHouse tables are idempotent on ``event_id``; a worker that re-processes a call after
a restart must write the same ids again. The ids keep the UUIDv7 layout (the call's
time in the top 48 bits), with the other bits taken from a hash of the sources.
"""

from __future__ import annotations

import hashlib
import uuid

__all__ = ["DIGEST_SIZE", "derived_uuid7", "uuid7_of", "uuid7_of_digest", "uuid_from_int"]

_new_uuid = uuid.UUID.__new__
_set_int = uuid.UUID.__dict__["int"].__set__  # the slots' own setters (UUID forbids setattr)
_set_is_safe = uuid.UUID.__dict__["is_safe"].__set__
_UNKNOWN = uuid.SafeUUID.unknown
_VERSION_AND_VARIANT = 0x7 << 76 | 0b10 << 62


DIGEST_SIZE = 10
"""Bytes of the blake2b digest a derived UUIDv7 takes its bits from."""


def uuid_from_int(value: int) -> uuid.UUID:
    """``uuid.UUID(int=value)`` for a ``value`` of 128 bits at most, built as the
    constructor builds it without its checks of the arguments (a third of its cost)."""
    out = _new_uuid(uuid.UUID)
    _set_int(out, value)
    _set_is_safe(out, _UNKNOWN)
    return out


def derived_uuid7(ms: int, *parts: str | bytes) -> uuid.UUID:
    """A UUIDv7 with time ``ms`` whose other bits are a hash of ``parts``."""
    return uuid7_of(ms, b"\x1f".join([p if isinstance(p, bytes) else p.encode("utf-8") for p in parts]))


def uuid7_of(ms: int, data: bytes) -> uuid.UUID:
    """``derived_uuid7`` of parts already joined (``b"\\x1f"`` between them, as bytes)."""
    return uuid7_of_digest(ms, hashlib.blake2b(data, digest_size=DIGEST_SIZE).digest())


def uuid7_of_digest(ms: int, digest: bytes) -> uuid.UUID:
    """``uuid7_of`` from the blake2b digest (``DIGEST_SIZE`` bytes) of its data, for a
    caller that hashes a constant prefix once and ``copy()``s it (the same digest)."""
    bits = int.from_bytes(digest, "big")
    return uuid_from_int((ms & 0xFFFF_FFFF_FFFF) << 80 | ((bits >> 62) & 0xFFF) << 64
                         | bits & 0x3FFF_FFFF_FFFF_FFFF | _VERSION_AND_VARIANT)
