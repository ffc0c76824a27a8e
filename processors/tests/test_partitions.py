"""The vectorised partitions of a batch of keys are Kafka's, key for key."""

from __future__ import annotations

import random

import pytest

from llmpulse.processors._partitions import MIN_VECTOR_KEYS, partitions_for
from llmpulse.schemas import partition_for


@pytest.mark.parametrize("partitions", [1, 2, 6, 12, 1000])
def test_a_batch_gets_the_partitions_of_the_scalar_partitioner(partitions: int) -> None:
    rng = random.Random(partitions)
    keys = [f"otel-{rng.getrandbits(128):032x}-{rng.getrandbits(64):016x}" for _ in range(300)]
    # every byte length 0..40 (each remainder mod 4) in vectorised groups, rare lengths,
    # and multi-byte characters
    keys += ["".join(rng.choice("ab7é€-") for _ in range(n)) for n in range(41)
             for _ in range(MIN_VECTOR_KEYS)]
    keys += ["", "x", "call-1", "ключ"]
    rng.shuffle(keys)
    assert partitions_for(keys, partitions) == [partition_for(key, partitions) for key in keys]


def test_small_batches_and_bad_counts() -> None:
    keys = ["c1", "c2", "c3"]
    assert partitions_for(keys, 6) == [partition_for(key, 6) for key in keys]
    assert partitions_for([], 6) == []
    with pytest.raises(ValueError, match="positive"):
        partitions_for(keys * 10, 0)
