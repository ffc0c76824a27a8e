"""Hostile input through the real worker and sink: every event id is stored or dead-lettered.

A producer sends prompts, responses and feedback with each bound broken (timestamps in
1970, 9999, 40 days ago and an hour ahead; tokens past UInt32; a latency of 1e300 ms; a
temperature of a million; ids with NUL, newline and BEL) beside good ones. The real Faust
worker (a process) and the real sink (on chDB) run; then the distinct event ids that went
in are counted against the ones that came out: each good one stored exactly once, each
hostile one in ``dead_letters`` exactly once with its precise reason, none in both.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from confluent_kafka import Producer
from sink_thread import running_sink
from store_rows import wait_rows
from worker_process import WorkerProcess

from llmpulse.cli.demo.drain import wait_until_consumed
from llmpulse.cli.topics import ensure_topics
from llmpulse.processors.pipeline import CallPair, join
from llmpulse.schemas import (
    FeedbackEvent,
    PromptEvent,
    ResponseEvent,
    TokenUsage,
    decode_record,
    encode_event,
    partition_for,
)
from llmpulse.schemas.topics import PROMPTS, RESPONSES
from llmpulse.sinks.sink import Sink
from llmpulse.sinks.store import Store

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
PARTITIONS = 2
NOW = datetime.now(UTC)


def _json(event: Any, **changes: Any) -> bytes:
    """The event's JSON with fields replaced by raw values (``usage__input_tokens=...``)."""
    document = msgspec.json.decode(encode_event(event))
    for name, value in changes.items():
        node = document
        *parents, last = name.split("__")
        for parent in parents:
            node = node[parent]
        node[last] = value.isoformat().replace("+00:00", "Z") if isinstance(value, datetime) \
            else value
    return msgspec.json.encode(document)


def _pair(call_id: str, app: str = "hostile") -> tuple[PromptEvent, ResponseEvent]:
    prompt = PromptEvent(call_id=call_id, app=app, prompt_id="p", prompt_version="1")
    response = ResponseEvent(call_id=call_id, app=app, text="fine", latency_ms=12.0,
                             usage=TokenUsage(input_tokens=5, output_tokens=2))
    return prompt, response


@pytest.fixture
def prefix(kafka_bootstrap: str) -> str:
    name = f"h{uuid.uuid4().hex[:8]}."
    ensure_topics(kafka_bootstrap, prefix=name, partitions=PARTITIONS)
    return name


@pytest.fixture
def sink(kafka_bootstrap: str, prefix: str, store: Store) -> Iterator[Sink]:
    with running_sink(kafka_bootstrap, prefix, store, batch_seconds=0.2,
                      group_id=f"sink-{prefix}") as running:
        yield running


def test_every_event_id_in_is_stored_or_dead_lettered_once(
        kafka_bootstrap: str, prefix: str, store: Store, sink: Sink, tmp_path: Path) -> None:
    sent: list[tuple[str, str, bytes]] = []  # (topic, key, value)
    stored: dict[uuid.UUID, set[uuid.UUID]] = {}  # row id expected in a table -> input ids
    rejected: dict[uuid.UUID, str] = {}  # input id -> the reason of its dead letter
    inputs: set[uuid.UUID] = set()

    def send(event: Any, value: bytes | None = None) -> None:
        topic = {PromptEvent: "llm.prompts", ResponseEvent: "llm.responses",
                 FeedbackEvent: "llm.feedback"}[type(event)]
        sent.append((prefix + topic, event.call_id, value or encode_event(event)))
        inputs.add(event.event_id)

    def both_bad(call_id: str, reason: str, app: str = "hostile", **changes: Any) -> None:
        for half in _pair(call_id, app):
            send(half, _json(half, **changes))
            rejected[half.event_id] = reason

    def one_bad(call_id: str, reason: str, bad: str, **changes: Any) -> None:
        prompt, response = _pair(call_id)
        broken, kept = (prompt, response) if bad == "prompt" else (response, prompt)
        send(broken, _json(broken, **changes))
        rejected[broken.event_id] = reason
        send(kept)  # expires alone: an incomplete call
        pair = CallPair(prompt=kept) if isinstance(kept, PromptEvent) else CallPair(response=kept)
        stored[join(pair).event_id] = {kept.event_id}

    for i in range(5):
        prompt, response = _pair(f"good-{i}")
        send(prompt)
        send(response)
        stored[join(CallPair(prompt=prompt, response=response)).event_id] = {
            prompt.event_id, response.event_id}
    both_bad("epoch", "timestamp_out_of_range", occurred_at=datetime(1970, 1, 1, tzinfo=UTC))
    both_bad("y9999", "timestamp_out_of_range", occurred_at=datetime(9999, 6, 1, tzinfo=UTC))
    both_bad("old", "timestamp_out_of_range", occurred_at=NOW - timedelta(days=40))
    both_bad("ahead", "timestamp_out_of_range", occurred_at=NOW + timedelta(hours=1))
    both_bad("nul\x00and\nnewline", "control_character")
    both_bad("bell", "control_character", app="app\x07")
    one_bad("tokens", "out_of_range", "response", usage__input_tokens=2**70)
    one_bad("latency", "out_of_range", "response", latency_ms=1e300)
    one_bad("temperature", "out_of_range", "prompt", temperature=1e6)

    feedback = [FeedbackEvent(call_id=f"good-{i}", app="hostile", thumbs="up") for i in range(3)]
    for event in feedback:
        send(event)
        stored[event.event_id] = {event.event_id}
    for changes, reason in (({"occurred_at": datetime(1970, 1, 1, tzinfo=UTC)},
                             "timestamp_out_of_range"),
                            ({"rating": 2**40}, "out_of_range"),
                            ({"label": "up\nvote"}, "control_character")):
        event = FeedbackEvent(call_id="good-0", app="hostile", thumbs="down")
        send(event, _json(event, **changes))
        rejected[event.event_id] = reason

    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for topic, key, value in sent:
        producer.produce(topic, value, key.encode(), partition=partition_for(key, PARTITIONS))
    assert producer.flush(10) == 0

    expected_rows = len(stored) + len(rejected)
    with WorkerProcess(kafka_bootstrap, prefix, tmp_path / "w", join_timeout_s=2) as worker:
        wait_rows(store, ROWS, expected_rows, timeout_s=120)
        # a wrongly duplicated row would come from input still in flight: wait until the
        # worker (the join alone here: no drift, no model scorers) and the sink have
        # consumed everything there is
        wait_until_consumed(kafka_bootstrap, [
            (f"{prefix}llmpulse-processors", [prefix + t for t in (PROMPTS, RESPONSES)]),
            (sink.config.group_id, sink.config.topics)], timeout_s=120, echo=lambda _: None)
        log = worker.tail(60)

    ids_out = _stored_ids(store)
    assert ids_out == set(stored), (sorted(ids_out ^ set(stored)), log)
    letters = _dead_letters(store)
    assert {i: reason for i, (reason, _) in letters.items()} == rejected, (letters, log)
    stages = {stage for _, stage in letters.values()}
    assert stages == {"validate", "sink"}  # the worker's and the sink's validation both ran
    # counted once: no table holds a row twice, and in == out exactly
    assert _rows(store) == expected_rows
    out = set().union(*stored.values()) | set(letters)
    assert out == inputs and len(out) == len(inputs)
    assert sink.stats.rejected == 0  # nothing accepted was refused by the store


ROWS = ("SELECT (SELECT count() FROM calls) + (SELECT count() FROM feedback)"
        " + (SELECT count() FROM dead_letters)")
"""Every row the pipeline writes for an input event: stored or dead-lettered."""


def _rows(store: Store) -> int:
    return int(store.query(ROWS).scalar())


def _stored_ids(store: Store) -> set[uuid.UUID]:
    rows = store.query("SELECT event_id FROM calls UNION ALL SELECT event_id FROM feedback").rows
    return {row[0] for row in rows}


def _dead_letters(store: Store) -> dict[uuid.UUID, tuple[str, str]]:
    """The input event id of each dead letter (from its payload) -> (reason, stage)."""
    out: dict[uuid.UUID, tuple[str, str]] = {}
    for reason, stage, payload in store.query(
            "SELECT reason, stage, payload FROM dead_letters").rows:
        raw = payload if isinstance(payload, bytes) else payload.encode()
        event_id = uuid.UUID(msgspec.json.decode(raw)["event_id"])
        assert event_id not in out, f"{event_id} dead-lettered twice"
        out[event_id] = (reason, stage)
    return out


def test_the_dead_letters_decode_as_what_they_say() -> None:
    """The reasons above are the ones validation gives (no Kafka needed)."""
    prompt, _ = _pair("x")
    record = decode_record(_json(prompt, occurred_at=datetime(1970, 1, 1, tzinfo=UTC)))
    assert [(f.error.reason, f.error.field) for f in record.failures] == [
        ("timestamp_out_of_range", "$.occurred_at")]
