"""Hand-made OTLP trace data for the OTLP mapper's tests (``traces(...)``), and the checks
the recorded fixtures share (``recorded_calls``: the three calls both instrumentations are
recorded making, ``processors/tests/otlp_fixtures/_recording.py``).

Example:
    >>> data = traces({"attrs": {"gen_ai.operation.name": "chat"}})
    >>> data.resource_spans[0].scope_spans[0].spans[0].name
    'chat gpt-4o'
"""

from __future__ import annotations

import time
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from llmpulse.processors.otlp import MappedRecord
from llmpulse.schemas import Limits, PromptEvent, ResponseEvent

__all__ = ["RECORDED", "T0", "recorded_calls", "shortcut_outcomes", "traces"]

T0 = (time.time_ns() // 10**9 - 3_600) * 10**9  # an hour ago: inside the accepted window
RECORDED = Limits(max_past_seconds=20 * 365 * 86_400)
"""Limits that accept the recorded fixtures' spans, which age."""


def _set(target: AnyValue, value: Any) -> None:
    if isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int):
        target.int_value = value
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, str):
        target.string_value = value
    elif isinstance(value, list):
        target.array_value.SetInParent()
        for item in value:
            _set(target.array_value.values.add(), item)
    elif isinstance(value, dict):
        target.kvlist_value.SetInParent()
        for key, item in value.items():
            kv = target.kvlist_value.values.add()
            kv.key = key
            _set(kv.value, item)


def _attrs(repeated: Any, values: dict[str, Any]) -> None:
    for key, value in values.items():
        kv = repeated.add()
        kv.key = key
        _set(kv.value, value)


def traces(*spans: dict[str, Any], resource: dict[str, Any] | None = None) -> TracesData:
    """TracesData with one resource and these spans (attrs, events, ids, parent, status ...)."""
    data = TracesData()
    rs = data.resource_spans.add()
    _attrs(rs.resource.attributes, resource if resource is not None else
           {"service.name": "support-bot", "deployment.environment.name": "prod-eu"})
    scope = rs.scope_spans.add()
    scope.scope.name = "hand-made"
    for n, spec in enumerate(spans, start=1):
        span = scope.spans.add()
        span.name = spec.get("name", "chat gpt-4o")
        span.trace_id = spec.get("trace_id", bytes([n]) * 16)
        span.span_id = spec.get("span_id", bytes([n]) * 8)
        span.start_time_unix_nano = spec.get("start", T0)
        span.end_time_unix_nano = spec.get("end", T0 + 1_500_000_000)
        span.parent_span_id = spec.get("parent", b"")
        _attrs(span.attributes, spec.get("attrs", {}))
        for name, attrs in spec.get("events", []):
            event = span.events.add()
            event.name = name
            event.time_unix_nano = T0 + 1
            _attrs(event.attributes, attrs)
        if "status" in spec:
            span.status.code, span.status.message = spec["status"]
    return data


Call = tuple[PromptEvent, ResponseEvent]


def recorded_calls(record: MappedRecord) -> tuple[Call, Call, Call]:
    """The recorded plain, streamed and failed calls, after checking what the plain one
    holds (the same call, whichever instrumentation recorded it)."""
    plain, streamed, failed = sorted(zip(record.prompts, record.responses, strict=True),
                                     key=lambda pair: pair[0].occurred_at)
    prompt, response = plain
    assert (prompt.app, prompt.environment, prompt.provider) == ("support-bot", "staging", "openai")
    assert [(m.role, m.content) for m in prompt.messages] == [
        ("system", "You are terse."), ("user", "Where is my order?")]
    assert (prompt.request_model, prompt.temperature, prompt.max_tokens) == ("gpt-4o-mini", 0.2, 64)
    assert response.text == "Echo: Where is my order?" and response.finish_reason == "stop"
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (7, 5)
    assert response.latency_ms > 0 and response.call_id == prompt.call_id
    return plain, streamed, failed


Outcome = tuple[list[bytes], list[tuple[str, str | None]]]
"""A mapped record's events, encoded, and its dead letters' (reason, field)."""


def shortcut_outcomes(monkeypatch: Any, data: bytes, limits: Limits,
                      shortcut: str) -> tuple[Outcome, list[bool], Outcome]:
    """What the mapper makes of ``data`` with its shortcut check ``shortcut`` (a name in
    ``otlp.mapper``) as it is, the answers that shortcut gave, and what the mapper makes with
    the shortcut always declining (every event validated in full)."""
    from llmpulse.processors.otlp import OtlpMapper
    from llmpulse.processors.otlp import mapper as mapper_module
    from llmpulse.schemas import encode_event

    def outcome() -> Outcome:
        record = OtlpMapper(limits=limits).map_record(data)
        events = [encode_event(e) for e in record.prompts + record.responses]
        return events, [(d.reason, d.error_field) for d in record.dead_letters]

    real = getattr(mapper_module, shortcut)
    taken: list[bool] = []

    def spy(*args: Any) -> bool:
        taken.append(real(*args))
        return taken[-1]

    monkeypatch.setattr(mapper_module, shortcut, spy)
    checked = outcome()
    monkeypatch.setattr(mapper_module, shortcut, lambda *args: False)
    return checked, taken, outcome()
