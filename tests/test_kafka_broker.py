"""The test broker is a real Apache Kafka (KRaft) and keeps its data across a restart."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from kafka_broker import KafkaBroker, free_port

pytestmark = pytest.mark.kafka

TIMEOUT = 30.0  # seconds; any single Kafka operation that takes longer is a failure


def _create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    futures[name].result(timeout=TIMEOUT)
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:  # wait until every partition has a leader
        md = admin.list_topics(name, timeout=TIMEOUT).topics[name]
        if (
            md.error is None
            and len(md.partitions) == partitions
            and all(p.leader >= 0 for p in md.partitions.values())
        ):
            return
        time.sleep(0.1)
    raise AssertionError(f"topic {name} has no leaders after {TIMEOUT}s")


def _produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    errors: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            errors.append(err)

    # Idempotence keeps each partition in send order even when a request is retried (a
    # freshly created topic's leader may not be ready for the first requests).
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                         "enable.idempotence": True})
    for key, value in records:
        producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
        producer.poll(0)
    assert producer.flush(TIMEOUT) == 0, "records still undelivered after flush"
    assert errors == []


def _consume_all(
    bootstrap: str, topic: str, n: int
) -> list[tuple[bytes | None, bytes | None, int | None, int | None]]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    got: list[tuple[bytes | None, bytes | None, int | None, int | None]] = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 2 * TIMEOUT
        while len(got) < n and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=1000, timeout=0.5):
                if msg.error() is not None:
                    raise KafkaException(msg.error())
                got.append((msg.key(), msg.value(), msg.partition(), msg.offset()))
    finally:
        consumer.close()
    return got


def test_session_broker_is_real_kafka(kafka_broker: KafkaBroker, kafka_bootstrap: str) -> None:
    assert kafka_bootstrap == f"127.0.0.1:{kafka_broker.port}"
    md = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=TIMEOUT)
    assert [b.id for b in md.brokers.values()] == [1]
    assert md.cluster_id
    assert kafka_broker.is_running()


@pytest.mark.slow
def test_records_survive_a_broker_restart(tmp_path: Path) -> None:
    n = 2000
    topic = "durable"
    records = [
        (f"key-{i:05d}".encode(), f"value-{i}-".encode() + bytes([i % 256]) * (i % 17))
        for i in range(n)
    ]
    broker = KafkaBroker(tmp_path / "kafka", free_port())
    broker.start()
    try:
        _create_topic(broker.bootstrap, topic, partitions=3)
        _produce(broker.bootstrap, topic, records)

        broker.stop()
        assert not broker.is_running()
        broker.start()  # same dir, same port: storage is not formatted again

        got = _consume_all(broker.bootstrap, topic, n)
    finally:
        broker.stop()

    assert len(got) == n
    assert sorted((k, v) for k, v, _, _ in got) == sorted(records)
    # Kafka keeps per-partition order: offsets are 0..len-1 in each partition, keys in send order.
    by_partition: dict[int, list[tuple[int, bytes]]] = {}
    for k, _, p, off in got:
        assert k is not None and p is not None and off is not None
        by_partition.setdefault(p, []).append((off, k))
    for p, rows in by_partition.items():
        assert [off for off, _ in rows] == list(range(len(rows))), p
        keys = [k for _, k in rows]
        assert keys == sorted(keys), p


def test_aiokafka_produces_and_consumes(kafka_bootstrap: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    topic = f"aiokafka-{uuid.uuid4().hex[:8]}"
    _create_topic(kafka_bootstrap, topic, partitions=2)
    records = [(f"k{i}".encode(), f"v{i}".encode()) for i in range(200)]

    async def roundtrip() -> list[tuple[bytes, bytes]]:
        producer = AIOKafkaProducer(
            bootstrap_servers=kafka_bootstrap, acks="all", request_timeout_ms=int(TIMEOUT * 1000)
        )
        await producer.start()
        try:
            batch = [await producer.send(topic, key=k, value=v) for k, v in records]
            await asyncio.gather(*batch)
        finally:
            await producer.stop()

        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka_bootstrap,
            group_id=f"aio-{uuid.uuid4().hex}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        got: list[tuple[bytes, bytes]] = []
        try:
            while len(got) < len(records):
                batches = await consumer.getmany(timeout_ms=500)
                got.extend((m.key, m.value) for msgs in batches.values() for m in msgs)
            await consumer.commit()
        finally:
            await consumer.stop()
        return got

    got = asyncio.run(asyncio.wait_for(roundtrip(), timeout=2 * TIMEOUT))
    assert sorted(got) == sorted(records)
