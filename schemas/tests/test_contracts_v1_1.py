"""Contracts v1.1: spans, tool calls, new token counts; v1 records still decode."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from llmpulse.schemas import (
    SCHEMA_VERSION,
    SUPPORTED_SCHEMA_VERSIONS,
    ChatMessage,
    EnrichedCall,
    ErrorInfo,
    GuardrailVerdict,
    Limits,
    PromptEvent,
    ResponseEvent,
    SchemaError,
    SpanEvent,
    TokenUsage,
    ToolCall,
    bounded_text,
    decode_event,
    decode_record,
    encode_event,
)
from llmpulse.schemas.topics import SPANS, catalogue

RECORDED_V1 = Path(__file__).resolve().parent / "data" / "v1_records.json"
"""Batch records (prompts, responses, feedback, enriched calls, a verdict) encoded by the v1
code (commit 3d8556a: ``schemas`` and ``sinks.testing.sample_calls``), with the clock they
were recorded at."""
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"

# A v1 batch as the v1 SDK wrote it (fields, order and version exactly as on the wire).
V1_RECORD = (
    b'{"type":"batch","schema_version":1,"count":2,"events":['
    b'{"type":"prompt","event_id":"0192b6f0-7c1e-7aaa-8bbb-123456789abc","schema_version":1,'
    b'"occurred_at":"%(t)s","app":"support-bot","call_id":"c-1","trace_id":"t-1",'
    b'"request_model":"gpt-4o-mini","provider":"openai","operation":"Chat Completion",'
    b'"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}]},'
    b'{"type":"response","event_id":"0192b6f0-7c1e-7aaa-8bbb-123456789abd","schema_version":1,'
    b'"occurred_at":"%(t)s","app":"support-bot","call_id":"c-1","text":"Hello!",'
    b'"usage":{"input_tokens":12,"output_tokens":3,"cached_input_tokens":2},"latency_ms":412.0}'
    b"]}"
)


def _span(**kw: object) -> SpanEvent:
    now = datetime.now(UTC)
    base: dict[str, object] = dict(
        call_id=SPAN, span_id=SPAN, trace_id=TRACE, parent_span_id="b7ad6b7169203331",
        app="shop", name="lookup_order", operation="execute_tool",
        started_at=now - timedelta(milliseconds=40), occurred_at=now, latency_ms=40.0,
        tool=ToolCall(id="call_1", name="lookup_order", arguments='{"order": 42}'),
        result_preview='{"status": "shipped"}',
    )
    base.update(kw)
    return SpanEvent(**base)  # type: ignore[arg-type]


def _reason(event: object, limits: Limits | None = None) -> tuple[str, str | None]:
    data = encode_event(event)  # type: ignore[arg-type]
    with pytest.raises(SchemaError) as caught:
        decode_event(data, limits or Limits())
    return caught.value.reason, caught.value.field


def test_a_v1_record_still_decodes_with_its_free_text_operation() -> None:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z").encode()
    record = decode_record(V1_RECORD % {b"t": now})
    assert not record.failures
    prompt, response = record.events
    assert isinstance(prompt, PromptEvent) and isinstance(response, ResponseEvent)
    assert prompt.schema_version == 1 and prompt.operation == "Chat Completion"
    assert prompt.span_id is None and prompt.messages[1].tool_calls == []
    assert response.usage == TokenUsage(input_tokens=12, output_tokens=3, cached_input_tokens=2)
    assert response.usage.reasoning_tokens == 0 and response.tool_calls == []
    assert {1, 2} == SUPPORTED_SCHEMA_VERSIONS and SCHEMA_VERSION == 2


def test_records_written_by_the_v1_code_decode_and_round_trip() -> None:
    recorded = json.loads(RECORDED_V1.read_text(encoding="utf-8"))
    now = datetime.fromisoformat(recorded["recorded_at"])
    kinds = []
    for line in recorded["records"]:
        record = decode_record(line.encode(), now=now)
        assert record.failures == [] and record.batched
        for event in record.events:
            assert event.schema_version == 1
            assert decode_event(encode_event(event), now=now) == event
            kinds.append(type(event).__name__)
    assert kinds.count("EnrichedCall") == 3 and {"PromptEvent", "ResponseEvent", "FeedbackEvent",
                                                  "GuardrailVerdict"} <= set(kinds)


def test_a_v1_1_operation_must_be_a_lowercase_identifier() -> None:
    assert decode_event(encode_event(PromptEvent(call_id="c", app="a",
                                                 operation="generate_content")))
    bad = PromptEvent(call_id="c", app="a", operation="Chat Completion")
    assert _reason(bad) == ("invalid_value", "$.operation")
    assert _reason(_span(operation="Tool!")) == ("invalid_value", "$.operation")


def test_tool_calls_round_trip_on_messages_and_answers() -> None:
    call = ToolCall(id="call_1", name="lookup_order", arguments='{"order": 42')  # not JSON: kept
    prompt = PromptEvent(call_id="c", app="a", span_id=SPAN, parent_span_id="b7ad6b7169203331",
                         trace_id=TRACE, messages=[
                             ChatMessage(role="user", content="Where is 42?"),
                             ChatMessage(role="assistant", content="", tool_calls=[call]),
                             ChatMessage(role="tool", content="shipped", tool_call_id="call_1")])
    answer = ResponseEvent(call_id="c", app="a", tool_calls=[call], latency_ms=5.0,
                           finish_reason="tool_calls",
                           usage=TokenUsage(output_tokens=9, reasoning_tokens=7,
                                            cache_creation_input_tokens=1024))
    for event in (prompt, answer):
        assert decode_event(encode_event(event)) == event
    assert decode_event(encode_event(answer)).text is None, "tool calls alone are an answer"
    empty = ResponseEvent(call_id="c", app="a", latency_ms=5.0)
    assert _reason(empty) == ("missing_field", "$.text")


def test_tool_bounds_dead_letter_with_the_field() -> None:
    limits = Limits(max_tool_arguments_chars=8, max_tool_result_chars=4, max_tool_calls=2)
    long_args = ResponseEvent(call_id="c", app="a", latency_ms=1.0, tool_calls=[
        ToolCall(name="f", arguments="{}"), ToolCall(name="g", arguments='{"x": 123456}')])
    assert _reason(long_args, limits) == ("limit_exceeded", "$.tool_calls[1].arguments")
    many = ResponseEvent(call_id="c", app="a", latency_ms=1.0,
                         tool_calls=[ToolCall(name="f")] * 3)
    assert _reason(many, limits) == ("limit_exceeded", "$.tool_calls")
    assert _reason(_span(result_preview="12345", tool=None), limits) == ("limit_exceeded",
                                                                         "$.result_preview")
    assert _reason(_span(tool=ToolCall(name="f", arguments="123456789")),
                   limits) == ("limit_exceeded", "$.tool.arguments")
    in_prompt = PromptEvent(call_id="c", app="a", messages=[
        ChatMessage(role="tool", content="x", tool_call_id="call\x00")])
    assert _reason(in_prompt) == ("control_character", "$.messages[0].tool_call_id")
    nested = PromptEvent(call_id="c", app="a", messages=[
        ChatMessage(role="assistant", content="", tool_calls=[ToolCall(name="bad\nname")])])
    assert _reason(nested) == ("control_character", "$.messages[0].tool_calls[0].name")
    assert _reason(_span(parent_span_id="ab\x07")) == ("control_character", "$.parent_span_id")
    assert _reason(_span(span_id="x" * 300, call_id="x" * 300)) == ("limit_exceeded", "$.call_id")


def test_bounded_text_cuts_and_flags() -> None:
    text, cut = bounded_text("x" * 50_000, Limits().max_tool_arguments_chars)
    assert (len(text), cut) == (32_768, True)
    assert bounded_text("{}", 10) == ("{}", False)


def test_a_span_round_trips_and_keeps_its_rules() -> None:
    span = _span(usage=TokenUsage(input_tokens=100), cost_usd=0.01, status="error",
                 error=ErrorInfo(type="TimeoutError", message="order service timed out"))
    back = decode_event(encode_event(span))
    assert back == span and isinstance(back, SpanEvent)
    assert _reason(_span(call_id="other")) == ("invalid_value", "$.call_id")
    late = _span(started_at=datetime.now(UTC) + timedelta(seconds=5))
    assert _reason(late) == ("invalid_value", "$.started_at")
    assert _reason(_span(latency_ms=-1.0)) == ("out_of_range", "$.latency_ms")
    assert _reason(_span(occurred_at=datetime.now(UTC) - timedelta(days=400),
                         started_at=datetime.now(UTC) - timedelta(days=401))) \
        == ("timestamp_out_of_range", "$.occurred_at")


@pytest.mark.parametrize("missing", ["trace_id", "span_id", "name", "operation", "started_at",
                                     "latency_ms"])
def test_a_span_needs_its_ids_name_operation_and_times(missing: str) -> None:
    document = json.loads(encode_event(_span()))
    del document[missing]
    with pytest.raises(SchemaError) as caught:
        decode_event(json.dumps(document).encode())
    assert (caught.value.reason, caught.value.field) == ("missing_field", f"$.{missing}")


def test_verdicts_apply_to_tool_arguments_and_results_on_a_span() -> None:
    verdict = GuardrailVerdict(call_id=SPAN, span_id=SPAN, trace_id=TRACE, app="shop",
                               rule_id="indirect-injection", rule_kind="prompt_injection",
                               applies_to="tool_result", severity="high", action="flag",
                               policy_version="p1")
    assert decode_event(encode_event(verdict)) == verdict
    enriched = EnrichedCall(call_id="c", app="a", response=ResponseEvent(
        call_id="c", app="a", latency_ms=1.0, tool_calls=[ToolCall(name="f", arguments="{")]),
        verdicts=[GuardrailVerdict(call_id="c", app="a", rule_id="tool_arguments_invalid_json",
                                   rule_kind="agent", applies_to="tool_arguments",
                                   severity="low", action="flag", policy_version="p1")])
    assert decode_event(encode_event(enriched)) == enriched


def test_the_spans_topic_is_keyed_by_trace_and_created_with_the_others() -> None:
    spec = next(s for s in catalogue(prefix="t.", partitions=12) if s.name == "t." + SPANS)
    assert spec.key == "trace_id" and spec.partitions == 12 and not spec.co_partitioned
