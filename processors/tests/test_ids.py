"""Derived event ids: the fast UUID constructor builds what ``uuid.UUID(int=)`` builds."""

from __future__ import annotations

import hashlib
import pickle
import random
import uuid

from llmpulse.processors._ids import DIGEST_SIZE, derived_uuid7, uuid7_of, uuid7_of_digest, uuid_from_int


def test_uuid_from_int_is_uuid_of_that_int() -> None:
    rng = random.Random(7)
    for value in [0, 1, 2**128 - 1, *(rng.getrandbits(128) for _ in range(2000))]:
        fast, slow = uuid_from_int(value), uuid.UUID(int=value)
        assert (fast, str(fast), repr(fast), hash(fast), fast.is_safe, fast.version, fast.bytes) == (
            slow, str(slow), repr(slow), hash(slow), slow.is_safe, slow.version, slow.bytes)
        assert pickle.loads(pickle.dumps(fast)) == slow


def test_derived_ids_keep_the_uuid7_layout_and_are_stable() -> None:
    one = derived_uuid7(1_764_000_000_000, b"otlp", "otel-1-2")
    assert one == derived_uuid7(1_764_000_000_000, b"otlp", "otel-1-2")
    assert (one.version, one.variant) == (7, uuid.RFC_4122)
    assert one.int >> 80 == 1_764_000_000_000
    assert str(one) == "019ab697-e800-7fe9-be8f-b469d0c978ff"  # as the ids before uuid_from_int


def test_uuid7_of_joined_parts_is_derived_uuid7() -> None:
    for call_id in ["otel-1-2", "ü", ""]:
        assert uuid7_of(42, b"otlp\x1f" + call_id.encode()) == derived_uuid7(42, b"otlp", call_id)


def test_uuid7_of_a_copied_prefix_digest_is_uuid7_of() -> None:
    """The OTLP mapper hashes a constant prefix once and ``copy()``s it per id."""
    prefix = hashlib.blake2b(b"otlp\x1f", digest_size=DIGEST_SIZE)
    for ms, call_id in [(0, ""), (42, "otel-1-2"), (2**48 - 1, "ü" * 40), (2**50, "x")]:
        digest = prefix.copy()
        digest.update(call_id.encode())
        assert uuid7_of_digest(ms, digest.digest()) == uuid7_of(ms, b"otlp\x1f" + call_id.encode())
