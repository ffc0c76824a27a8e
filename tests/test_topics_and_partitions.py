"""Topic creation and the SDK's partitioner, against the real broker."""

from __future__ import annotations

import uuid

import msgspec
import pytest
from click.testing import CliRunner
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, ConfigResource

from llmpulse.cli.main import main
from llmpulse.cli.topics import TopicError, ensure_topics
from llmpulse.schemas import partition_for
from llmpulse.schemas.topics import CATALOGUE, TopicSpec, catalogue

pytestmark = pytest.mark.kafka


def test_topics_create_is_idempotent_and_applies_the_catalogue(kafka_bootstrap: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    runner = CliRunner()
    first = runner.invoke(main, ["topics", "create", "--bootstrap-servers", kafka_bootstrap,
                                 "--partitions", "4", "--prefix", prefix])
    assert first.exit_code == 0, first.output
    assert first.output.count("created") == len(CATALOGUE)
    second = runner.invoke(main, ["topics", "create", "--bootstrap-servers", kafka_bootstrap,
                                  "--partitions", "4", "--prefix", prefix])
    assert second.exit_code == 0, second.output
    assert second.output.count("exists") == len(CATALOGUE) and "created" not in second.output

    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    topics = admin.list_topics(timeout=10).topics
    for spec in catalogue(prefix=prefix, partitions=4):
        assert len(topics[spec.name].partitions) == spec.partitions
    resource = ConfigResource(ConfigResource.Type.TOPIC, f"{prefix}llm.feedback")
    config = admin.describe_configs([resource])[resource].result(timeout=10)
    assert config["retention.ms"].value == str(30 * 24 * 3600 * 1000)
    assert config["max.message.bytes"].value == str(8 * 1024 * 1024)


def test_co_partitioned_topics_that_disagree_are_refused(kafka_bootstrap: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    call_topics = [s for s in catalogue(prefix=prefix) if s.co_partitioned]
    mismatched = [msgspec.structs.replace(s, partitions=2 + i) for i, s in enumerate(call_topics)]
    with pytest.raises(TopicError, match="co-partitioned"):
        ensure_topics(kafka_bootstrap, specs=mismatched)


def test_partition_for_matches_the_java_compatible_murmur2_partitioner(
        kafka_bootstrap: str) -> None:
    """librdkafka's ``murmur2_random`` is the Java client's default partitioner."""
    topic = f"murmur-{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka_bootstrap, specs=[TopicSpec(name=topic, key="k", value="v",
                                                    description="test", partitions=7)])
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "partitioner": "murmur2_random"})
    delivered: dict[str, int] = {}

    def on_delivery(err: object, msg: object) -> None:
        assert err is None, err
        delivered[msg.key().decode()] = msg.partition()  # type: ignore[attr-defined]

    keys = [str(uuid.uuid4()) for _ in range(300)] + ["a", "é", "call-1", "x" * 100]
    for key in keys:
        producer.produce(topic, key=key.encode(), value=b"v", on_delivery=on_delivery)
    assert producer.flush(30) == 0
    assert len(delivered) == len(keys)
    mismatches = {k: (p, partition_for(k, 7)) for k, p in delivered.items()
                  if p != partition_for(k, 7)}
    assert not mismatches
    assert len(set(delivered.values())) == 7
