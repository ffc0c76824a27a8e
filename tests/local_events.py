"""Test helper: the events the SDK hands to ``init(deliver_to=...)``, decoded.

    captured = LocalEvents()
    llmpulse.init(app="t", deliver_to=captured.deliver)
"""

from __future__ import annotations

from typing import Any

import llmpulse.producers as llmpulse
from llmpulse.schemas import PromptEvent, ResponseEvent, SpanEvent, decode_event


class LocalEvents:
    """Every ``(topic, key, event)`` delivered, with look-ups by call and span name."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, Any]] = []

    def deliver(self, topic: str, key: bytes, value: bytes) -> None:
        self.records.append((topic, key.decode(), decode_event(value)))

    def of(self, kind: type) -> list[Any]:
        return [e for _, _, e in self.records if type(e) is kind]

    def call(self, call_id: str) -> tuple[PromptEvent, ResponseEvent]:
        found = {type(e): e for _, _, e in self.records if e.call_id == call_id}
        return found[PromptEvent], found[ResponseEvent]

    def last(self) -> tuple[PromptEvent, ResponseEvent]:
        call_id = llmpulse.last_call_id()
        assert call_id is not None
        return self.call(call_id)

    def response(self, call_id: str) -> ResponseEvent:
        return self.call(call_id)[1]

    def span(self, name: str) -> SpanEvent:
        (found,) = [s for s in self.of(SpanEvent) if s.name == name]
        return found
