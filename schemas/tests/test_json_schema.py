"""The committed JSON Schema files match the models, and describe what we encode."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest

from llmpulse.schemas import (
    ChatMessage,
    ErrorInfo,
    FeedbackEvent,
    PromptEvent,
    ResponseEvent,
    SpanEvent,
    TokenUsage,
    ToolCall,
    encode_batch,
    encode_event,
    json_schemas,
)

JSONSCHEMA_DIR = Path(__file__).resolve().parents[1] / "jsonschema"


def test_committed_files_match_the_models() -> None:
    generated = json_schemas()
    committed = {p.name: p.read_text(encoding="utf-8") for p in JSONSCHEMA_DIR.glob("*.json")}
    assert set(committed) == set(generated), "run: uv run llmpulse schemas export"
    stale = [name for name, text in generated.items() if committed[name] != text]
    assert not stale, f"stale JSON Schema files {stale}; run: uv run llmpulse schemas export"


def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((JSONSCHEMA_DIR / name).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def test_v1_1_events_validate_against_their_schema() -> None:
    now = datetime.now(UTC)
    call = ToolCall(id="call_1", name="lookup_order", arguments='{"order": 42')
    span = SpanEvent(call_id="00f067aa0ba902b7", span_id="00f067aa0ba902b7",
                     trace_id="4bf92f3577b34da6a3ce929d0e0e4736", app="a", name="lookup_order",
                     operation="execute_tool", started_at=now - timedelta(seconds=1),
                     occurred_at=now, latency_ms=1000.0, status="error",
                     error=ErrorInfo(type="TimeoutError"), tool=call, result_preview="x",
                     result_truncated=True, usage=TokenUsage(reasoning_tokens=3))
    answer = ResponseEvent(call_id="c", app="a", latency_ms=3.0, tool_calls=[call],
                           span_id="b7ad6b7169203331", parent_span_id="00f067aa0ba902b7",
                           usage=TokenUsage(cache_creation_input_tokens=10))
    prompt = PromptEvent(call_id="c", app="a", messages=[
        ChatMessage(role="assistant", content="", tool_calls=[call]),
        ChatMessage(role="tool", content="shipped", tool_call_id="call_1")])
    for name, event in [("span", span), ("response", answer), ("prompt", prompt)]:
        _validator(f"{name}.schema.json").validate(json.loads(encode_event(event)))
    with pytest.raises(jsonschema.ValidationError):  # a span needs its trace id
        document = json.loads(encode_event(span))
        del document["trace_id"]
        _validator("span.schema.json").validate(document)


def test_encoded_events_validate_against_their_schema() -> None:
    prompt = PromptEvent(call_id="c", app="a", messages=[ChatMessage(role="user", content="hi")])
    response = ResponseEvent(call_id="c", app="a", text="hello", latency_ms=3.0)
    feedback = FeedbackEvent(call_id="c", app="a", thumbs="up", rating=5)
    for name, event in [("prompt", prompt), ("response", response), ("feedback", feedback)]:
        _validator(f"{name}.schema.json").validate(json.loads(encode_event(event)))
    batch = encode_batch([encode_event(e) for e in (prompt, response, feedback)])
    _validator("batch.schema.json").validate(json.loads(batch))


@pytest.mark.parametrize(
    ("name", "document"),
    [
        ("feedback.schema.json", {"type": "feedback", "app": "a", "call_id": "c", "rating": 7}),
        ("response.schema.json", {"type": "response", "app": "a", "call_id": "c"}),
        ("prompt.schema.json", {"type": "prompt", "app": "", "call_id": "c"}),
    ],
)
def test_schemas_reject_what_the_decoder_rejects(name: str, document: dict[str, object]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        _validator(name).validate(document)
