"""``llmpulse worker``'s /healthz, /readyz and /metrics, on the real broker; the watchdog."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer
from kafka_broker import free_port
from kafka_events import read_events
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from worker_process import WorkerProcess

from llmpulse.cli.topics import ensure_topics
from llmpulse.processors.worker.health import Watchdog
from llmpulse.schemas import PromptEvent, ResponseEvent, encode_event, partition_for

PARTITIONS = 2


def _produce_calls(producer: Producer, prefix: str, call_ids: list[str]) -> None:
    for call_id in call_ids:
        for event in (PromptEvent(call_id=call_id, app="a"),
                      ResponseEvent(call_id=call_id, app="a", text="ok", latency_ms=3.0)):
            topic = "llm.prompts" if isinstance(event, PromptEvent) else "llm.responses"
            producer.produce(f"{prefix}{topic}", encode_event(event), call_id.encode(),
                             partition=partition_for(call_id, PARTITIONS))
    assert producer.flush(10) == 0


def _consumer_byte_rate(bootstrap: str, client_id: str, rate: float | None) -> None:
    """Set (or remove, ``None``) the broker's fetch quota of one client id: what
    ``kafka-configs.sh --alter --entity-type clients --add-config consumer_byte_rate=N``
    does, through the Admin API (AlterClientQuotas)."""
    from kafka.admin import KafkaAdminClient
    from kafka.protocol.admin import AlterClientQuotasRequest

    request = AlterClientQuotasRequest(
        entries=[([("client-id", client_id)],
                  [("consumer_byte_rate", rate or 0.0, rate is None)])],
        validate_only=False)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="llmpulse-test-quota")
    try:
        async def send() -> object:
            return await admin._manager.send(request)

        response = admin._manager.run(send)
    finally:
        admin.close()
    errors = [(entry.error_code, entry.error_message) for entry in response.entries
              if entry.error_code]
    assert not errors, errors


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.mark.kafka
@pytest.mark.slow
def test_the_worker_serves_its_health_and_metrics(kafka_bootstrap: str, tmp_path: Path) -> None:
    """20 calls, 3 lonely prompts and a malformed record through a worker whose heavy path
    runs (readability only: no model to load): events in and out, dead letters, lag, batch
    sizes, the join table and lingering halves, the scorer queue; /healthz and /readyz."""
    prefix = f"wh{uuid.uuid4().hex[:8]}."
    ensure_topics(kafka_bootstrap, prefix=prefix, partitions=PARTITIONS)
    port = free_port()
    config = tmp_path / "llmpulse.yaml"
    config.write_text("scoring:\n  toxicity: {enabled: false}\n  embeddings: {enabled: false}\n")
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    _produce_calls(producer, prefix, [f"h{i}" for i in range(20)])
    for i in range(3):  # no response will come: they linger, then wait in the join table
        producer.produce(f"{prefix}llm.prompts", encode_event(PromptEvent(call_id=f"lonely{i}",
                                                                          app="a")),
                         f"lonely{i}".encode(), partition=partition_for(f"lonely{i}", PARTITIONS))
    producer.produce(f"{prefix}llm.prompts", b"{not json", b"bad", partition=0)
    assert producer.flush(10) == 0
    url = f"http://127.0.0.1:{port}"
    with WorkerProcess(kafka_bootstrap, prefix, tmp_path / "w", heavy=True,
                       extra=["--health-address", f"127.0.0.1:{port}", "--config", str(config),
                              "--join-linger", "1"]) as worker:
        assert len(read_events(kafka_bootstrap, [f"{prefix}llm.enriched"], expected=20)) == 20
        samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        out = ("llmpulse_events_out_total", (("stage", "worker"), ("target", "enriched")))
        table = ("llmpulse_join_table_size", (("stage", "worker"),))
        queue = ("llmpulse_scorer_queue_depth", (("scorer", "heavy"), ("stage", "worker")))
        deadline = time.monotonic() + 30  # the metrics timer runs every 5 s
        while time.monotonic() < deadline and (
                samples.get(out) != 20 or samples.get(table) != 3 or samples.get(queue) != 0
                or not any(name == "llmpulse_consumer_lag" for name, _ in samples)):
            samples = _samples(_get(f"{url}/metrics")[1])
            time.sleep(0.5)
        assert samples.get(out) == 20, worker.tail()
        assert samples[("llmpulse_events_in_total", (("stage", "worker"),))] == 43
        assert samples[("llmpulse_dead_letters_total",
                        (("reason", "malformed_json"), ("stage", "worker")))] == 1
        # every valid event was in one observed batch of the join agent
        assert samples[("llmpulse_batch_events_sum", (("stage", "worker"),))] == 43
        assert samples[("llmpulse_batch_events_count", (("stage", "worker"),))] >= 1
        # the lonely prompts lingered, then went to the table; nothing lingers now
        assert samples[table] == 3, samples.get(table)
        assert samples[("llmpulse_lingering_halves", (("stage", "worker"),))] == 0
        # the heavy path scored everything handed on: nothing waits for it
        assert samples.get(queue) == 0, sorted(n for n, _ in samples if "scorer" in n)
        lag = {labels: v for (name, labels), v in samples.items()
               if name == "llmpulse_consumer_lag"}
        assert {dict(labels)["topic"] for labels in lag} >= {f"{prefix}llm.prompts",
                                                             f"{prefix}llm.responses",
                                                             f"{prefix}llm.enriched.pending"}
        # everything consumed and committed: no lag left (an idle worker is not "stalled")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(lag.values()):
            lag = {labels: v for (name, labels), v in _samples(_get(f"{url}/metrics")[1]).items()
                   if name == "llmpulse_consumer_lag"}
            time.sleep(0.5)
        assert not any(lag.values()), lag
        assert _get(f"{url}/healthz") == (200, "ok\n")
        status, body = _get(f"{url}/readyz")
        assert status == 200 and "partitions assigned" in body, body


@pytest.mark.kafka
@pytest.mark.slow
def test_a_worker_whose_fetches_the_broker_throttles_to_nothing_exits_75(
        kafka_bootstrap: str, tmp_path: Path) -> None:
    """A real stall: the worker is Ready and consuming; then a broker quota of 1 byte/s on
    its Kafka client id (its app id) turns every fetch with data into an empty, throttled
    answer. Records keep coming (the watchdog's lag, read by a client of its own, grows),
    none arrives, and the worker exits 75 for its supervisor to restart it."""
    prefix = f"ws{uuid.uuid4().hex[:8]}."
    ensure_topics(kafka_bootstrap, prefix=prefix, partitions=PARTITIONS)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    _produce_calls(producer, prefix, [f"before{i}" for i in range(5)])
    worker = WorkerProcess(kafka_bootstrap, prefix, tmp_path / "w",
                           extra=["--stall-seconds", "8"])
    client_id = f"{prefix}llmpulse-processors"  # the worker's app id, prefixed
    with worker:
        assert len(read_events(kafka_bootstrap, [f"{prefix}llm.enriched"], expected=5,
                               idle_s=0)) == 5, worker.tail()  # it fetches
        assert worker.proc is not None and worker.proc.poll() is None
        _consumer_byte_rate(kafka_bootstrap, client_id, 1.0)
        try:
            deadline = time.monotonic() + 60  # a bound on the wait, not a timing claim
            sent = 0
            while worker.proc.poll() is None and time.monotonic() < deadline:
                _produce_calls(producer, prefix, [f"after{sent}"])  # records keep waiting
                sent += 1
                time.sleep(0.5)
            assert worker.proc.returncode == 75, worker.tail()
            log = worker.log.read_text(errors="replace")
            assert "watchdog: the consumer is stalled" in log and "records wait" in log, \
                worker.tail()
            done = read_events(kafka_bootstrap, [f"{prefix}llm.enriched"],
                               expected=5 + sent, timeout_s=3, idle_s=0)
            assert len(done) < 5 + sent  # calls sent under the quota were left waiting
        finally:
            _consumer_byte_rate(kafka_bootstrap, client_id, None)


def test_the_watchdog_fires_only_when_records_wait_and_none_arrives() -> None:
    dog = Watchdog(stall_s=60)
    assert dog.observe(now=100.0, last_fetch=100.0, lag=50) is None  # fetching
    assert dog.observe(now=150.0, last_fetch=100.0, lag=80) is None  # quiet, not long yet
    assert dog.observe(now=170.0, last_fetch=100.0, lag=90) == (
        "no record received for 70 s while 90 records wait (lag 80 -> 90)")
    idle = Watchdog(stall_s=60)
    assert idle.observe(now=500.0, last_fetch=100.0, lag=0) is None  # nothing to fetch
    again = Watchdog(stall_s=60)
    assert again.observe(now=170.0, last_fetch=169.5, lag=90) is None  # records arrive


def test_a_lag_the_broker_cannot_answer_neither_crashes_the_worker_nor_trips_the_watchdog(
        caplog: pytest.LogCaptureFixture) -> None:
    import asyncio
    from collections import Counter
    from types import SimpleNamespace

    from aiokafka.structs import TopicPartition

    from llmpulse.processors.worker.health import WorkerHealth

    class BrokerAway:
        async def end_offsets(self, partitions: object) -> dict:
            raise ConnectionRefusedError("broker away")

    assigned = {TopicPartition("llm.prompts", 0)}
    app = SimpleNamespace(consumer=SimpleNamespace(assignment=lambda: assigned,
                                                   _committed_offset={}),
                          _llmpulse_offsets=BrokerAway())
    health = WorkerHealth(app, Counter(), topics=frozenset({"llm.prompts"}), stall_s=1)
    health.lag = 40
    health.last_fetch = time.time() - 3600  # long quiet, records were waiting
    for _ in range(2):
        asyncio.run(health.tick())  # before the fix: the exception crashed the Faust app
    assert health.last_tick is not None and health.lag == 40  # last known lag kept
    assert sum("consumer lag unreadable" in r.getMessage() for r in caplog.records) == 1


def test_the_scorer_queue_is_the_lag_of_the_heavy_paths_input() -> None:
    """The records of llm.enriched.pending behind the heavy agent's commits are the queue;
    the light path's lag is not."""
    import asyncio
    from collections import Counter
    from types import SimpleNamespace

    from aiokafka.structs import TopicPartition

    from llmpulse.processors.worker.health import WorkerHealth

    pending = [TopicPartition("llm.enriched.pending", p) for p in (0, 1)]
    prompts = TopicPartition("llm.prompts", 0)
    ends = {**{tp: 100 for tp in pending}, prompts: 500}

    class Broker:
        async def end_offsets(self, partitions: list[TopicPartition]) -> dict:
            return {tp: ends[tp] for tp in partitions}

    app = SimpleNamespace(consumer=SimpleNamespace(
        assignment=lambda: {*pending, prompts},
        _committed_offset={pending[0]: 90, pending[1]: 97, prompts: 0}),
        _llmpulse_offsets=Broker())
    health = WorkerHealth(app, Counter(), topics=frozenset({"llm.enriched.pending", "llm.prompts"}),
                          stall_s=0, scorer_topic="llm.enriched.pending")
    asyncio.run(health.tick())
    samples = _samples(generate_latest(health.metrics.registry).decode())
    assert samples[("llmpulse_scorer_queue_depth",
                    (("scorer", "heavy"), ("stage", "worker")))] == 13  # 10 + 3, not the 500
    light = WorkerHealth(app, Counter(), topics=frozenset({"llm.prompts"}), stall_s=0)
    asyncio.run(light.tick())  # no heavy path here: no queue to report
    assert not any(name == "llmpulse_scorer_queue_depth"
                   for name, _ in _samples(generate_latest(light.metrics.registry).decode()))
