"""Test helpers: read llmpulse events back from real topics."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from confluent_kafka import Consumer

from llmpulse.schemas import Event, decode_record


@dataclass
class ReadEvent:
    """One event as it arrived: where, under which key, inside which record."""

    topic: str
    partition: int
    key: bytes | None
    event: Event
    batched: bool


def read_events(bootstrap: str, topics: list[str], *, expected: int, timeout_s: float = 30.0,
                idle_s: float = 2.0) -> list[ReadEvent]:
    """Consume the topics from the start until ``expected`` events arrived (then wait
    ``idle_s`` more for extras), or the timeout. Every record must decode cleanly."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe(topics)
    out: list[ReadEvent] = []
    deadline = time.monotonic() + timeout_s
    quiet_until: float | None = None
    try:
        while time.monotonic() < deadline:
            if quiet_until is not None and time.monotonic() > quiet_until:
                break
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            record = decode_record(msg.value())
            assert not record.failures, [f.error for f in record.failures]
            for event in record.events:
                out.append(ReadEvent(msg.topic(), msg.partition(), msg.key(), event,
                                     record.batched))
            if len(out) >= expected and quiet_until is None:
                quiet_until = time.monotonic() + idle_s
    finally:
        consumer.close()
    return out
