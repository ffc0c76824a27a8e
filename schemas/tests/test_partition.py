"""murmur2 and partition_for agree with Kafka's Java client."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from llmpulse.schemas import murmur2, partition_for

# From Kafka's own UtilsTest.testMurmur2 (clients/src/test/.../UtilsTest.java).
JAVA_VECTORS = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize(("key", "expected"), JAVA_VECTORS.items())
def test_murmur2_matches_the_java_clients_test_vectors(key: bytes, expected: int) -> None:
    assert murmur2(key) == expected


@given(st.binary(max_size=200))
def test_murmur2_matches_kafka_python(data: bytes) -> None:
    assert murmur2(data) & 0x7FFFFFFF == kafka_python_murmur2(data) & 0x7FFFFFFF


@given(st.text(max_size=60), st.integers(1, 500))
def test_partition_for_is_in_range_and_stable(key: str, partitions: int) -> None:
    p = partition_for(key, partitions)
    assert 0 <= p < partitions and p == partition_for(key, partitions)


def test_partition_for_rejects_zero_partitions() -> None:
    with pytest.raises(ValueError, match="positive"):
        partition_for("k", 0)
