"""The sink against the real Kafka broker and chDB: rows, redelivery, outage, dead letters."""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from clickhouse_connect.driver.exceptions import OperationalError
from confluent_kafka import Consumer, Producer, TopicPartition
from waiting import wait_until

from llmpulse.cli.topics import ensure_topics
from llmpulse.schemas import (
    DeadLetter,
    Event,
    GuardrailVerdict,
    SpanEvent,
    ToolCall,
    decode_record,
    encode_batch,
    encode_event,
    partition_for,
)
from llmpulse.schemas.topics import catalogue
from llmpulse.sinks.queries import run_dashboard_queries
from llmpulse.sinks.sink import Sink, SinkConfig
from llmpulse.sinks.store import Store
from llmpulse.sinks.testing import (
    dashboard_differences,
    sample_alert,
    sample_calls,
    sample_drift,
    sample_feedback,
)

pytestmark = pytest.mark.kafka

PARTITIONS = 3


@pytest.fixture
def prefix(kafka_bootstrap: str) -> str:
    """A fresh set of catalogue topics for this test."""
    name = f"s{uuid.uuid4().hex[:8]}."
    ensure_topics(kafka_bootstrap, specs=catalogue(prefix=name, partitions=PARTITIONS))
    return name


def _key(event: Event) -> str:
    if isinstance(event, SpanEvent):
        return event.trace_id
    return getattr(event, "call_id", None) or getattr(event, "dedup_key", None) or event.app


def produce(bootstrap: str, topic: str, events: Sequence[Event], *, per_record: int = 100,
            raw: Sequence[bytes] = ()) -> int:
    """Batch records keyed and partitioned by call id, as the SDK sends them; returns records sent."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    partitions = len(producer.list_topics(topic, timeout=10).topics[topic].partitions)
    by_partition: dict[int, list[tuple[str, bytes]]] = defaultdict(list)
    for event in events:
        by_partition[partition_for(_key(event), partitions)].append((_key(event), encode_event(event)))
    failed: list[object] = []
    records = 0
    for partition, items in by_partition.items():
        for start in range(0, len(items), per_record):
            chunk = items[start:start + per_record]
            producer.produce(topic, value=encode_batch([b for _, b in chunk]), key=chunk[0][0].encode(),
                             partition=partition, on_delivery=lambda err, _m: err and failed.append(err))
            records += 1
    for value in raw:
        producer.produce(topic, value=value, key=b"raw", partition=0,
                         on_delivery=lambda err, _m: err and failed.append(err))
        records += 1
    assert producer.flush(30) == 0 and not failed, failed
    return records


@contextmanager
def running(sink: Sink) -> Iterator[Sink]:
    thread = threading.Thread(target=sink.run, name="sink", daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        sink.stop()
        thread.join(30)
        assert not thread.is_alive()


def _config(bootstrap: str, prefix: str, **overrides: Any) -> SinkConfig:
    values: dict[str, Any] = {"bootstrap_servers": bootstrap, "prefix": prefix, "batch_rows": 2_000,
                              "batch_seconds": 0.2, "group_id": f"sink-{uuid.uuid4().hex[:6]}",
                              "min_backoff_s": 0.2, "max_backoff_s": 1.0}
    return SinkConfig(**(values | overrides))


def _dashboards(store: Store) -> dict[str, list[Any]]:
    end = datetime.now(UTC) + timedelta(hours=1)
    return run_dashboard_queries(store, "support-bot", end - timedelta(days=1), end)


def test_every_event_becomes_rows_with_its_values(kafka_bootstrap: str, prefix: str, store: Store,
                                                  count: Callable[[str], int]) -> None:
    calls = sample_calls(500, seed=11)
    feedback = sample_feedback(calls, seed=11)
    alert, drift = sample_alert(), sample_drift()
    verdict = next(v for c in calls for v in c.verdicts)
    produce(kafka_bootstrap, f"{prefix}llm.enriched", calls)
    produce(kafka_bootstrap, f"{prefix}llm.feedback", feedback)
    produce(kafka_bootstrap, f"{prefix}llm.alerts", [alert, verdict])
    produce(kafka_bootstrap, f"{prefix}llm.drift", [drift])
    verdicts = sum(len(c.verdicts) for c in calls)
    with running(Sink(_config(kafka_bootstrap, prefix), store)) as sink:
        wait_until(lambda: sink.stats.events == 500 + len(feedback) + 3 and sink.stats.commits > 0
                   and not sink._offsets, what="all events written and committed")
    assert count("calls") == 500 and count("feedback") == len(feedback)
    assert count("guardrail_verdicts") == verdicts  # the one also on llm.alerts is stored once
    assert count("alerts") == 1 and count("drift_results") == 1
    sample = calls[123]
    assert sample.response is not None and sample.response.usage is not None
    row = store.query("SELECT * FROM calls WHERE call_id = {id:String}", {"id": sample.call_id}).dicts()[0]
    assert row["event_id"] == sample.event_id and row["occurred_at"] == sample.occurred_at
    assert row["input_tokens"] == sample.response.usage.input_tokens
    assert row["latency_ms"] == pytest.approx(sample.response.latency_ms, rel=1e-6)
    assert row["prompt_version"] == sample.prompt_version and row["model"] == sample.request_model
    drift_row = store.query("SELECT feature_names, feature_p_values, drifted FROM drift_results").rows[0]
    assert drift_row == (["prompt_length", "embedding"], [0.001, None], True)
    assert store.query("SELECT status, severity, value FROM alerts").rows == [("firing", "high", 0.08)]


def test_spans_and_their_verdicts_are_stored_once(kafka_bootstrap: str, prefix: str, store: Store,
                                                   count: Callable[[str], int]) -> None:
    """What the worker emits for an agent trace: guarded spans on llm.enriched, verdicts on
    llm.alerts (contracts v1.1)."""
    end = datetime.now(UTC)
    trace = uuid.uuid4().hex
    spans = [SpanEvent(call_id=f"{n:016x}", span_id=f"{n:016x}", trace_id=trace,
                       parent_span_id=None if n == 1 else f"{1:016x}", app="support-bot",
                       name="agent" if n == 1 else "lookup_order",
                       operation="invoke_agent" if n == 1 else "execute_tool",
                       started_at=end - timedelta(milliseconds=10 * n), occurred_at=end,
                       latency_ms=10.0 * n, status="error" if n == 3 else "ok",
                       tool=None if n == 1 else ToolCall(id=f"call_{n}", name="lookup_order",
                                                         arguments='{"order": 42}'))
             for n in range(1, 5)]
    loop = GuardrailVerdict(call_id=spans[3].call_id, span_id=spans[3].span_id, trace_id=trace,
                            app="support-bot", rule_id="agent_loop", rule_kind="agent",
                            applies_to="tool_arguments", severity="medium", action="flag",
                            policy_version="agents-1")
    produce(kafka_bootstrap, f"{prefix}llm.enriched", spans, per_record=2)
    produce(kafka_bootstrap, f"{prefix}llm.alerts", [loop])
    with running(Sink(_config(kafka_bootstrap, prefix), store)) as sink:
        wait_until(lambda: sink.stats.events == 5 and sink.stats.commits > 0 and not sink._offsets,
                   what="spans and the verdict written and committed")
    assert count("spans") == 4 and count("guardrail_verdicts WHERE trace_id != ''") == 1
    tools = store.query("SELECT tool_name, sum(calls), sum(errors) FROM tool_calls_1m "
                        "GROUP BY tool_name").rows
    assert tools == [("lookup_order", 3, 1)]
    tree = store.query("SELECT span_id, parent_span_id FROM spans WHERE trace_id = {t:String} "
                       "ORDER BY span_id", {"t": trace}).rows
    assert tree == [(f"{n:016x}", "" if n == 1 else f"{1:016x}") for n in range(1, 5)]


def test_replaying_the_same_offsets_changes_no_dashboard(kafka_bootstrap: str, prefix: str,
                                                         store: Store) -> None:
    calls = sample_calls(1_500, seed=12)
    feedback = sample_feedback(calls, seed=12)
    produce(kafka_bootstrap, f"{prefix}llm.enriched", calls, per_record=70)
    produce(kafka_bootstrap, f"{prefix}llm.feedback", feedback, per_record=33)
    produce(kafka_bootstrap, f"{prefix}llm.alerts", [sample_alert(), sample_alert(status="resolved")])
    produce(kafka_bootstrap, f"{prefix}llm.drift", [sample_drift()])
    total = len(calls) + len(feedback) + 3
    with running(Sink(_config(kafka_bootstrap, prefix), store)) as first:
        wait_until(lambda: first.stats.events == total and not first._offsets, what="first pass")
    before = _dashboards(store)
    assert before["raw_call_count"] == [(1_500, 1_500)]

    # A new consumer group reads every offset again, with other batch boundaries.
    replay = _config(kafka_bootstrap, prefix, batch_rows=333)
    with running(Sink(replay, store)) as second:
        wait_until(lambda: second.stats.events == total and not second._offsets, what="replay")
    assert second.stats.total_written == 0
    assert second.stats.duplicates == total + sum(len(c.verdicts) for c in calls)
    after = _dashboards(store)
    assert dashboard_differences(before, after) == []
    assert after["raw_call_count"] == [(1_500, 1_500)]
    assert sum(row[3] for row in after["calls_by_prompt_version"]) == 1_500


def test_an_outage_during_10000_calls_stores_each_exactly_once(
        kafka_bootstrap: str, prefix: str, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = sample_calls(10_000, seed=13, spread_s=300)
    client = store.client
    insert, query = store._send, client.query  # _send: the one INSERT of a frame
    down = threading.Event()

    def flaky(real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if down.is_set():
                raise OperationalError("Connection refused: the store is down")
            return real(*args, **kwargs)
        return call

    monkeypatch.setattr(store, "_send", flaky(insert))
    monkeypatch.setattr(client, "query", flaky(query))

    def stored() -> int:
        return int(query("SELECT count() FROM calls").result_rows[0][0])

    topic = f"{prefix}llm.enriched"
    with running(Sink(_config(kafka_bootstrap, prefix, batch_rows=1_000), store)) as sink:
        produce(kafka_bootstrap, topic, calls[:5_000])
        wait_until(lambda: stored() >= 1_000, what="first rows")
        down.set()
        produce(kafka_bootstrap, topic, calls[5_000:])
        wait_until(lambda: sink.stats.paused, what="the sink to pause")
        held = stored()
        time.sleep(2.5)
        assert stored() == held and sink.stats.paused  # nothing written, nothing dropped
        down.clear()
        wait_until(lambda: stored() >= 10_000 and not sink._offsets and not sink.stats.paused,
                   timeout=90, what="catch up")
    assert sink.stats.store_failures >= 2 and sink.stats.paused_seconds >= 2.0
    assert query("SELECT count(), uniqExact(call_id), uniqExact(event_id) FROM calls").result_rows == [
        (10_000, 10_000, 10_000)]
    assert query("SELECT sum(calls) FROM calls_1m").result_rows == [(10_000,)]
    consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": sink.config.group_id})
    committed = consumer.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10)
    ends = [consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in committed]
    consumer.close()
    assert [tp.offset for tp in committed] == ends


def _read_dead_letters(bootstrap: str, topic: str, expected: int) -> list[DeadLetter]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"dlq-{uuid.uuid4().hex[:6]}",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    letters: list[DeadLetter] = []
    deadline = time.monotonic() + 30
    while len(letters) < expected and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            letters.extend(e for e in decode_record(message.value()).events if isinstance(e, DeadLetter))
    consumer.close()
    return letters


def test_a_refused_row_goes_to_the_dlq_and_its_batch_is_stored(
        kafka_bootstrap: str, prefix: str, store: Store, count: Callable[[str], int]) -> None:
    calls = sample_calls(40, seed=14, error_rate=0.0)
    bad = calls[17]
    # Validation already refuses what a column cannot hold (5 billion tokens in a UInt32),
    # so the store refuses this row with a constraint of its own: a real refusal (code 469).
    store.command(f"ALTER TABLE calls ADD CONSTRAINT refuse_one CHECK call_id != '{bad.call_id}'")
    topic = f"{prefix}llm.enriched"
    produce(kafka_bootstrap, topic, calls, per_record=40, raw=[b'{"type": "batch", "count": 1, "events": [{'])
    with running(Sink(_config(kafka_bootstrap, prefix), store)) as sink:
        wait_until(lambda: count("dead_letters") == 2, what="both dead letters stored")
    assert count("calls") == 39
    assert count(f"calls WHERE event_id = '{bad.event_id}'") == 0
    assert sink.stats.rejected == 1 and sink.stats.undecodable == 1

    letters = {d.reason: d for d in _read_dead_letters(kafka_bootstrap, f"{prefix}llm.dlq", 2)}
    assert set(letters) == {"rejected_by_store", "malformed_json"}
    refused = letters["rejected_by_store"]
    assert refused.stage == "sink" and refused.source_topic == topic and "refuse_one" in refused.detail
    assert refused.batch_index is not None and refused.source_offset is not None
    event = decode_record(refused.payload).events[0]
    assert event.event_id == bad.event_id
    stored = store.query("SELECT reason, stage, source_topic FROM dead_letters ORDER BY reason").rows
    assert stored == [("malformed_json", "sink", topic), ("rejected_by_store", "sink", topic)]
