"""The sink's /healthz, /readyz and /metrics, against the real broker and chDB."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Producer
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from waiting import wait_until

from llmpulse.cli.topics import ensure_topics
from llmpulse.schemas import encode_batch, encode_event, partition_for
from llmpulse.schemas.errors import LlmpulseError
from llmpulse.schemas.health import HealthServer
from llmpulse.schemas.topics import catalogue
from llmpulse.sinks.sink import Sink, SinkConfig
from llmpulse.sinks.store import Store
from llmpulse.sinks.testing import sample_calls

pytestmark = pytest.mark.kafka
PARTITIONS = 2


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.fixture
def running(kafka_bootstrap: str, store: Store) -> Iterator[tuple[Sink, HealthServer]]:
    prefix = f"hs{uuid.uuid4().hex[:8]}."
    ensure_topics(kafka_bootstrap, specs=catalogue(prefix=prefix, partitions=PARTITIONS))
    sink = Sink(SinkConfig(bootstrap_servers=kafka_bootstrap, prefix=prefix,
                           group_id=f"{prefix}sink", batch_seconds=0.2), store)
    health = HealthServer(sink.metrics.registry, ready=sink.readiness,
                          address="127.0.0.1:0").start()
    thread = threading.Thread(target=sink.run, daemon=True)
    thread.start()
    yield sink, health
    sink.stop()
    thread.join(60)
    health.stop()


def test_metrics_count_what_the_sink_wrote_and_the_freshness_agrees(
        kafka_bootstrap: str, running: tuple[Sink, HealthServer]) -> None:
    sink, health = running
    calls = sample_calls(120, seed=4)
    topic = sink.config.topics[0]  # llm.enriched
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for partition in range(PARTITIONS):
        mine = [encode_event(c) for c in calls if partition_for(c.call_id, PARTITIONS) == partition]
        producer.produce(topic, encode_batch(mine), b"k", partition=partition)
    producer.produce(topic, b'{"type":"enriched_call",', b"bad", partition=0)
    assert producer.flush(10) == 0

    wait_until(lambda: sink.stats.written.get("calls", 0) >= len(calls)
               and sink.stats.written.get("dead_letters", 0) >= 1,
               what="the calls and the dead letter written")
    assert sink.stats.written["calls"] == len(calls)
    status, text = _get(f"{health.url}/metrics")
    assert status == 200
    samples = _samples(text)
    stage = (("stage", "sink"),)
    assert samples[("llmpulse_events_out_total", (*stage, ("target", "calls")))] == len(calls)
    # the calls, and the dead letter read back from llm.dlq and stored
    assert samples[("llmpulse_events_in_total", stage)] == len(calls) + 1
    assert samples[("llmpulse_events_out_total", (*stage, ("target", "dead_letters")))] == 1
    assert samples[("llmpulse_dead_letters_total",
                    (("reason", "malformed_json"), *stage))] == 1
    processed = (("span", "processed"), *stage)
    count = samples[("llmpulse_freshness_seconds_count", processed)]
    assert count == len(calls)
    mean = samples[("llmpulse_freshness_seconds_sum", processed)] / count
    expected = sum((c.processed_at - c.occurred_at).total_seconds() for c in calls) / len(calls)
    assert mean == pytest.approx(expected, rel=1e-6)
    assert samples[("llmpulse_freshness_seconds_count", (("span", "inserted"), *stage))] == count
    assert samples[("llmpulse_batch_events_count", stage)] >= 1

    assert _get(f"{health.url}/healthz") == (200, "ok\n")
    status, body = _get(f"{health.url}/readyz")
    assert status == 200 and body.startswith("ready"), body

    # librdkafka's statistics (every 5 s) bring the lag of each assigned partition: 0 now
    lag: dict[str, float] = {}

    def every_partition_has_a_lag() -> bool:
        lag.clear()
        lag.update({dict(labels)["partition"]: value
                    for (name, labels), value in _samples(_get(f"{health.url}/metrics")[1]).items()
                    if name == "llmpulse_consumer_lag" and dict(labels)["topic"] == topic})
        return len(lag) >= PARTITIONS

    wait_until(every_partition_has_a_lag, timeout=30, what="the lag of every partition", every=0.5)
    assert lag == {str(p): 0.0 for p in range(PARTITIONS)}


def test_readyz_says_not_ready_before_the_sink_consumes() -> None:
    sink = Sink(SinkConfig(bootstrap_servers="127.0.0.1:1"), store=None)  # type: ignore[arg-type]
    health = HealthServer(sink.metrics.registry, ready=sink.readiness,
                          address="127.0.0.1:0").start()
    try:
        assert _get(f"{health.url}/readyz") == (503, "not ready: the consume loop is not running\n")
        assert _get(f"{health.url}/nope")[0] == 404
    finally:
        health.stop()


def test_a_non_loopback_address_needs_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMPULSE_HEALTH_TOKEN", raising=False)
    with pytest.raises(LlmpulseError, match="LLMPULSE_HEALTH_TOKEN"):
        HealthServer(CollectorRegistry(), ready=lambda: (True, ""), address="0.0.0.0:0")
    server = HealthServer(CollectorRegistry(), ready=lambda: (True, ""), address="0.0.0.0:0",
                          token="s3cret").start()
    try:
        assert server._allowed("127.0.0.1", None)  # the container's own healthcheck
        assert not server._allowed("10.1.2.3", None)
        assert not server._allowed("10.1.2.3", "Bearer wrong")
        assert server._allowed("10.1.2.3", "Bearer s3cret")
        assert _get(f"http://127.0.0.1:{server.port}/healthz") == (200, "ok\n")
    finally:
        server.stop()


def test_a_broker_that_does_not_answer_is_one_warning_and_no_client_noise(
        caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
    """The client retries on and on; the sink says so once, and librdkafka's own error lines
    (about 800 a minute before) stay quiet."""
    import socket
    from types import SimpleNamespace

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        broker = f"127.0.0.1:{s.getsockname()[1]}"  # closed once the block ends
    errors: list[int] = []

    class Counted(Sink):
        def _on_kafka_error(self, error: object) -> None:
            errors.append(error.code())  # type: ignore[attr-defined]
            super()._on_kafka_error(error)  # type: ignore[arg-type]

    sink = Counted(SinkConfig(bootstrap_servers=broker,
                              kafka_config={"reconnect.backoff.max.ms": 100}),
                   store=SimpleNamespace(url="chdb://not-written"))  # type: ignore[arg-type]
    caplog.set_level("WARNING", logger="llmpulse.sinks.sink")
    thread = threading.Thread(target=sink.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(errors) >= 5, what="the client to fail and retry five times")
    finally:
        sink.stop()
        thread.join(30)
    assert len(errors) >= 5, errors  # the client kept failing and retrying
    said = [r.getMessage() for r in caplog.records if r.name == "llmpulse.sinks.sink"]
    assert len(said) == 1, said
    assert said[0].startswith(f"Kafka at {broker} does not answer (") and "Connection refused" in \
        said[0] and said[0].endswith("); the sink keeps retrying: start the broker, or check "
                                     "--bootstrap-servers"), said
    assert "%3|" not in capfd.readouterr().err  # librdkafka's FAIL lines
