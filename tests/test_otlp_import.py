"""``llmpulse import --otlp FILE``: the same mapper as the stream, into the real topics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer

from llmpulse.cli.topics import ensure_topics
from llmpulse.schemas import decode_record

pytestmark = [pytest.mark.kafka]

FIXTURE = Path(__file__).resolve().parents[1] / "processors/tests/otlp_fixtures/openllmetry_chat.binpb"


def _read_all(bootstrap: str, topics: list[str], want: int) -> list[tuple[str, object]]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"probe-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe(topics)
    events: list[tuple[str, object]] = []
    try:
        for _ in range(120):
            for message in consumer.consume(100, 0.5):
                if message.error() is None:
                    events.extend((message.topic(), e) for e in decode_record(message.value()).events)
            if len(events) >= want:
                break
    finally:
        consumer.close()
    return events


def test_import_otlp_protobuf_and_json_lines(kafka_bootstrap: str, tmp_path: Path) -> None:
    prefix = f"imp{uuid.uuid4().hex[:6]}."
    ensure_topics(kafka_bootstrap, prefix=prefix, partitions=2)
    lines = tmp_path / "traces.jsonl"
    span = {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
            "name": "chat m", "startTimeUnixNano": "1764590000000000000",
            "endTimeUnixNano": "1764590001000000000",
            "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                           {"key": "gen_ai.usage.input_tokens", "value": {"stringValue": "oops"}}]}
    document = {"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "jsonl-app"}}]},
        "scopeSpans": [{"spans": [span]}]}]}
    lines.write_text(json.dumps(document) + "\n" + "{broken\n", encoding="utf-8")
    for path in (FIXTURE, lines):
        result = subprocess.run([sys.executable, "-m", "llmpulse.cli.main", "import", "--otlp",
                                 "--bootstrap-servers", kafka_bootstrap, "--prefix", prefix,
                                 str(path)], capture_output=True, text=True, timeout=120,
                                env={**os.environ,  # the recorded fixture's spans age
                                     "LLMPULSE_LIMIT_MAX_PAST_SECONDS": str(20 * 365 * 86_400)})
        assert result.returncode == 0, result.stderr
    events = _read_all(kafka_bootstrap, [f"{prefix}llm.prompts", f"{prefix}llm.responses",
                                         f"{prefix}llm.dlq"], want=8)
    by_topic: dict[str, list[object]] = {}
    for topic, event in events:
        by_topic.setdefault(topic.removeprefix(prefix), []).append(event)
    assert len(by_topic["llm.prompts"]) == len(by_topic["llm.responses"]) == 3
    assert {p.app for p in by_topic["llm.prompts"]} == {"support-bot"}  # type: ignore[attr-defined]
    reasons = sorted(d.reason for d in by_topic["llm.dlq"])  # type: ignore[attr-defined]
    assert reasons == ["invalid_value", "malformed_otlp"]
