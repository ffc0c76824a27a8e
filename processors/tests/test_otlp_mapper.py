"""The OTLP mapper on recorded payloads (OpenLLMetry), hand-made spans of each convention
generation, bad input of every kind, and the token -> app binding."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Status, TracesData
from otlp_spans import RECORDED, T0, recorded_calls, shortcut_outcomes, traces

from llmpulse.processors.otlp import OtlpMapper, TokenBindings, header_sha256
from llmpulse.processors.otlp.auth import TOKEN_HASH_ATTRIBUTE
from llmpulse.schemas import Limits

FIXTURES = Path(__file__).resolve().parent / "otlp_fixtures"


CURRENT = {
    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
    "gen_ai.request.model": "claude-x", "gen_ai.response.model": "claude-x-2026",
    "gen_ai.response.id": "msg_1", "gen_ai.conversation.id": "conv-7",
    "gen_ai.prompt.name": "refund-policy", "gen_ai.prompt.version": "v3",
    "gen_ai.request.temperature": 0.3, "gen_ai.request.top_p": 0.9,
    "gen_ai.request.max_tokens": 200, "gen_ai.request.seed": 42,
    "gen_ai.request.stop_sequences": ["END"], "gen_ai.request.stream": True,
    "gen_ai.output.type": "json",
    "gen_ai.system_instructions": [{"type": "text", "content": "Answer in JSON."}],
    "gen_ai.input.messages": [{"role": "user", "parts": [
        {"type": "text", "content": "Can I get a refund?"}]}],
    "gen_ai.output.messages": [{"role": "assistant", "finish_reason": "stop", "parts": [
        {"type": "reasoning", "content": "thinking..."},
        {"type": "text", "content": '{"refund": true}'}]}],
    "gen_ai.response.finish_reasons": ["stop"],
    "gen_ai.usage.input_tokens": 120, "gen_ai.usage.output_tokens": 30,
    "gen_ai.usage.cache_read.input_tokens": 100, "gen_ai.usage.cache_write.input_tokens": 20,
    "gen_ai.usage.reasoning.output_tokens": 12, "gen_ai.response.time_to_first_chunk": 0.25,
    "user.id": "u-9",
}


def test_openllmetry_recording_maps_every_chat_span_and_skips_the_http_span() -> None:
    record = OtlpMapper(limits=RECORDED).map_record((FIXTURES / "openllmetry_chat.binpb").read_bytes())
    assert (record.spans, record.skipped, record.dead_letters) == (4, 1, [])
    _, streamed, failed = recorded_calls(record)
    assert streamed[1].streamed and streamed[1].time_to_first_token_ms is not None
    assert streamed[1].time_to_first_token_ms <= streamed[1].latency_ms
    assert failed[1].text is None and failed[1].error.type == "InternalServerError"
    assert "model crashed" in failed[1].error.message


def test_recorded_spans_keep_their_ids() -> None:
    """Stored ids are derived from the span (start time, trace and span id): the same
    recorded payload must give these ids in every version of the mapper, or a redelivered
    span would be stored twice."""
    chat = OtlpMapper(limits=RECORDED).map_record((FIXTURES / "openllmetry_chat.binpb").read_bytes())
    assert [(p.call_id, str(p.event_id), str(r.event_id))
            for p, r in zip(chat.prompts, chat.responses, strict=True)] == [
        ("otel-b19c988ac3c7cfc0d1e833f15174f71e-ab256b25d9a0281d",
         "01a231c8-5083-73a5-b0e0-7c0bf66b86ad", "01a231c8-5083-73a5-eaba-2651ac31dcf7"),
        ("otel-05747f6921fadbddd5d5b0ba398e6bbb-4068343a8c359c6a",
         "01a231c8-516e-78cc-9c43-566bad602c58", "01a231c8-516e-78cc-c619-0c31f73a7602"),
        ("otel-3396b0971a9a4ba50d2fc35907b0fc98-3149a6fc8813ebe5",
         "01a231c8-519b-72b2-8cb6-96440a9f1156", "01a231c8-519b-72b2-d6ec-cc1e50c54b0c")]
    agent = OtlpMapper(limits=RECORDED).map_record((FIXTURES / "openllmetry_agent.binpb").read_bytes())
    assert [(p.call_id, str(p.event_id)) for p in agent.prompts] == [
        ("otel-87d01748adb7e0cfe58a9d9f136ab448-d4a39c0039f8b73b",
         "01a23290-91fd-747c-a2a0-f04b84e6c0e6"),
        ("otel-87d01748adb7e0cfe58a9d9f136ab448-fd2e5dc6a9605799",
         "01a23290-920d-7d59-9d35-6525da2d31a5")]
    assert [(s.operation, s.call_id, str(s.event_id)) for s in agent.span_events] == [
        ("execute_tool", "21b9c950e322ffbb", "01a23290-920d-74f7-9cdb-034a534b0598"),
        ("invoke_agent", "af4481d19a47185d", "01a23290-91fb-75eb-b589-e83eed421cf8")]


def test_current_conventions_with_structured_values() -> None:
    record = OtlpMapper().map_traces(traces({"attrs": CURRENT}))
    assert record.dead_letters == []
    prompt, response = record.prompts[0], record.responses[0]
    assert [(m.role, m.content) for m in prompt.messages] == [
        ("system", "Answer in JSON."), ("user", "Can I get a refund?")]
    assert (prompt.prompt_id, prompt.prompt_version, prompt.session_id, prompt.user_id) == (
        "refund-policy", "v3", "conv-7", "u-9")
    assert (prompt.temperature, prompt.top_p, prompt.max_tokens, prompt.expects_json) == (
        0.3, 0.9, 200, True)
    assert prompt.attributes["gen_ai.request.seed"] == 42
    assert json.loads(prompt.attributes["gen_ai.request.stop_sequences"]) == ["END"]
    assert response.text == '{"refund": true}'  # the reasoning part is not the answer
    assert (response.finish_reason, response.response_model, response.response_id) == (
        "stop", "claude-x-2026", "msg_1")
    assert (response.usage.input_tokens, response.usage.output_tokens,
            response.usage.cached_input_tokens) == (120, 30, 100)
    assert (response.usage.cache_creation_input_tokens, response.usage.reasoning_tokens) == (20, 12)
    assert not any(k.startswith("gen_ai.usage") for k in response.attributes)
    assert response.time_to_first_token_ms == 250.0 and response.streamed
    assert response.latency_ms == 1500.0 and prompt.provider == "anthropic"


def test_messages_on_the_operation_details_event_and_llmpulse_attributes_win() -> None:
    details = {key: json.dumps(CURRENT[key]) for key in
               ("gen_ai.input.messages", "gen_ai.output.messages")}
    span = {"attrs": {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m",
                      "llmpulse.prompt.id": "greet", "llmpulse.prompt.version": "7",
                      "gen_ai.prompt.name": "ignored"},
            "events": [("gen_ai.client.inference.operation.details", details)]}
    record = OtlpMapper().map_traces(traces(span, resource={
        "service.name": "svc", "llmpulse.app": "billing", "llmpulse.environment": "canary"}))
    prompt, response = record.prompts[0], record.responses[0]
    assert (prompt.app, prompt.environment, prompt.prompt_id, prompt.prompt_version) == (
        "billing", "canary", "greet", "7")
    assert prompt.messages[0].content == "Can I get a refund?"
    assert response.text == '{"refund": true}'


def test_older_forms_indexed_attributes_and_message_events() -> None:
    indexed = {"gen_ai.system": "az.ai.openai", "llm.request.type": "completion",
               "gen_ai.request.model": "gpt-35", "gen_ai.prompt.0.role": "system",
               "gen_ai.prompt.0.content": "Be brief.", "gen_ai.prompt.1.role": "user",
               "gen_ai.prompt.1.content": "Hi there", "gen_ai.completion.0.role": "assistant",
               "gen_ai.completion.0.content": "Hello!", "gen_ai.completion.0.finish_reason": "length",
               "gen_ai.usage.prompt_tokens": 9, "gen_ai.usage.completion_tokens": 2,
               "llm.is_streaming": True}
    events = {"attrs": {"gen_ai.system": "openai", "gen_ai.operation.name": "chat"},
              "events": [("gen_ai.system.message", {"content": "Rules."}),
                         ("gen_ai.user.message", {"content": "Question?"}),
                         ("gen_ai.choice", {"gen_ai.event.content": json.dumps(
                             {"index": 0, "finish_reason": "stop",
                              "message": {"role": "assistant", "content": "Answer."}})})]}
    content_events = {"attrs": {"gen_ai.system": "openai"},
                      "events": [("gen_ai.content.prompt", {"gen_ai.prompt": json.dumps(
                          [{"role": "user", "content": "Old prompt"}])}),
                          ("gen_ai.content.completion", {"gen_ai.completion": json.dumps(
                              [{"role": "assistant", "content": "Old answer"}])})]}
    record = OtlpMapper().map_traces(traces({"attrs": indexed}, events, content_events))
    assert record.dead_letters == []
    (p1, p2, p3), (r1, r2, r3) = record.prompts, record.responses
    assert (p1.provider, p1.operation) == ("azure.ai.openai", "text_completion")
    assert [(m.role, m.content) for m in p1.messages] == [("system", "Be brief."), ("user", "Hi there")]
    assert (r1.text, r1.finish_reason, r1.usage.input_tokens, r1.usage.output_tokens, r1.streamed) == (
        "Hello!", "length", 9, 2, True)
    assert [(m.role, m.content) for m in p2.messages] == [("system", "Rules."), ("user", "Question?")]
    assert (r2.text, r2.finish_reason) == ("Answer.", "stop")
    assert (p3.messages[0].content, r3.text) == ("Old prompt", "Old answer")


def test_non_genai_and_non_inference_spans_are_counted_not_dead_lettered() -> None:
    record = OtlpMapper().map_traces(traces(
        {"name": "GET /health", "attrs": {"http.method": "GET"}},
        {"attrs": {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"}},
        {"attrs": {"gen_ai.operation.name": "embeddings", "gen_ai.request.model": "e5"}},
        {"attrs": CURRENT}))
    assert (record.spans, record.skipped, len(record.prompts), record.dead_letters) == (4, 2, 1, [])
    assert [s.name for s in record.span_events] == ["search"]  # a tool execution is a step


def test_bad_spans_go_to_the_dlq_with_a_reason_and_the_good_span_is_kept() -> None:
    deep = "[" * 200 + "]" * 200
    megabyte = [{"role": "user", "parts": [{"type": "text", "content": "x" * 1_100_000}]}]
    bad = [
        {"attrs": dict(CURRENT, **{"gen_ai.usage.input_tokens": "lots"})},
        {"attrs": dict(CURRENT, **{"gen_ai.usage.output_tokens": -3})},
        {"attrs": dict(CURRENT, **{"gen_ai.input.messages": json.dumps(megabyte)})},
        {"attrs": dict(CURRENT, **{"gen_ai.input.messages": deep})},
        {"attrs": dict(CURRENT, **{"gen_ai.input.messages": "{not json"})},
        {"attrs": dict(CURRENT, **{"gen_ai.request.model": 12})},
        {"attrs": CURRENT, "trace_id": b"", "span_id": b""},
        {"attrs": CURRENT, "start": 0},
    ]
    record = OtlpMapper().map_traces(traces(*bad, {"attrs": CURRENT, "span_id": b"\x09" * 8}))
    assert len(record.prompts) == len(record.responses) == 1
    assert record.prompts[0].call_id.endswith("0909090909090909")
    reasons = [d.reason for d in record.dead_letters]
    assert reasons == ["invalid_value", "invalid_value", "limit_exceeded", "too_deep",
                       "malformed_json", "invalid_value", "missing_ids", "missing_ids"]
    first = record.dead_letters[0]
    assert first.stage == "otlp" and "gen_ai.usage.input_tokens" in (first.error_field or "")
    kept = TracesData.FromString(first.payload)  # the span itself, with its resource
    assert kept.resource_spans[0].scope_spans[0].spans[0].span_id == b"\x01" * 8


def test_a_count_the_store_cannot_keep_is_dead_lettered_not_accepted() -> None:
    # token counts and max_tokens are UInt32 in the contract and the store: above that the
    # span is refused with the field named, never passed on to fail at the insert
    huge = 5_000_000_000
    record = OtlpMapper().map_traces(traces(
        {"attrs": dict(CURRENT, **{"gen_ai.usage.input_tokens": huge})},
        {"attrs": dict(CURRENT, **{"gen_ai.request.max_tokens": huge})},
        {"attrs": dict(CURRENT, **{"gen_ai.usage.output_tokens": 2**32 - 1}), "span_id": b"\x09" * 8}))
    assert [(d.reason, d.error_field) for d in record.dead_letters] == [
        ("invalid_value", "$.usage.input_tokens"), ("invalid_value", "$.max_tokens")]
    assert [r.usage.output_tokens for r in record.responses] == [2**32 - 1]


def test_deeply_nested_attribute_values_and_broken_records_never_raise() -> None:
    data = traces({"attrs": CURRENT})
    value = data.resource_spans[0].scope_spans[0].spans[0].attributes.add()
    value.key = "nested"
    inner = value.value
    for _ in range(60):
        inner = inner.array_value.values.add()
    inner.string_value = "bottom"
    record = OtlpMapper().map_traces(data)
    assert [d.reason for d in record.dead_letters] == ["too_deep"]
    for junk in (b"\xff\xfe garbage", b"\x0a\xff\xff\xff\xff\x0f", b""):
        out = OtlpMapper().map_record(junk)
        assert out.prompts == [] and all(d.reason == "malformed_otlp" for d in out.dead_letters)


def test_a_missing_service_name_is_a_missing_field() -> None:
    record = OtlpMapper().map_traces(traces({"attrs": CURRENT}, resource={}))
    assert [d.reason for d in record.dead_letters] == ["missing_field"]


def test_limits_apply_as_everywhere_else() -> None:
    record = OtlpMapper(limits=Limits(max_text_chars=5)).map_traces(traces({"attrs": CURRENT}))
    assert [d.reason for d in record.dead_letters] == ["limit_exceeded"]


@pytest.mark.parametrize(("token_hash", "app", "kept"), [
    (header_sha256("tok-a"), "support-bot", True),
    (header_sha256("tok-a"), "billing", False),
    (header_sha256("tok-any"), "billing", True),
    (header_sha256("unknown"), "support-bot", False),
    (None, "support-bot", False),
])
def test_a_token_writes_only_its_apps(token_hash: str | None, app: str, kept: bool) -> None:
    bindings = TokenBindings.parse("tok-a support-bot,faq\ntok-any *\n\n")
    resource: dict[str, Any] = {"service.name": app}
    if token_hash:
        resource[TOKEN_HASH_ATTRIBUTE] = token_hash
    record = OtlpMapper(bindings=bindings).map_traces(traces({"attrs": CURRENT}, resource=resource))
    assert len(record.prompts) == int(kept)
    assert [d.reason for d in record.dead_letters] == ([] if kept else ["app_not_allowed"])


def test_otlp_json_with_hex_ids_and_ids_stable_across_redelivery() -> None:
    document = {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "curl-app"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
            "name": "chat m", "startTimeUnixNano": str(T0), "endTimeUnixNano": str(T0 + 10**9),
            "attributes": [
                {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "5"}},
                {"key": "gen_ai.input.messages", "value": {"stringValue": json.dumps(
                    [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}])}}]}]}]}]}
    body = json.dumps(document).encode()
    first, again = (OtlpMapper().map_record(body, content_type="json") for _ in range(2))
    prompt = first.prompts[0]
    assert prompt.call_id == "otel-5b8efff798038103d269b633813fc60c-eee19b7ec3c1b174"
    assert prompt.trace_id == "5b8efff798038103d269b633813fc60c"
    assert first.responses[0].usage.input_tokens == 5
    assert [e.event_id for e in first.prompts + first.responses] == [
        e.event_id for e in again.prompts + again.responses]
    assert prompt.event_id.version == 7
    bad = OtlpMapper().map_record(b'{"resourceSpans": [{"scopeSpans": [{"spans": '
                                  b'[{"traceId": "zz"}]}]}]}', content_type="json")
    assert [d.reason for d in bad.dead_letters] == ["malformed_otlp"]


def test_error_status_without_output_is_an_error_response() -> None:
    span = {"attrs": {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m"},
            "status": (Status.STATUS_CODE_ERROR, "rate limited"),
            "events": [("exception", {"exception.type": "RateLimitError"})]}
    response = OtlpMapper().map_traces(traces(span)).responses[0]
    assert (response.text, response.error.type, response.error.message) == (
        None, "RateLimitError", "rate limited")


@pytest.mark.parametrize("name", ["", ".mapper", ".span_fields", ".conventions", ".auth", "._wire",
                                  ".files"])
def test_module_examples_run(name: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"llmpulse.processors.otlp{name}"))
    assert result.attempted > 0 and result.failed == 0


def test_the_answers_shortcut_never_keeps_what_validation_would_refuse(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The mapper skips ``validate_event`` for an answer its prompt vouches for: spans that
    stress the rules of both (identifiers, texts, messages, attributes, times, errors, tool
    calls) map to the same events and dead letters (reasons, fields) as with every answer
    validated."""
    now_ns = time.time_ns()
    limits = Limits(max_id_chars=60, max_text_chars=64, max_attribute_chars=64,
                    max_messages=3)  # (a call id: 54 characters)
    long_input = [{"role": "user", "parts": [{"type": "text", "content": "q" * 65}]}]
    many_inputs = [{"role": "user", "parts": [{"type": "text", "content": "q"}]}] * 4
    tool_message = [{"role": "tool", "parts": [
        {"type": "tool_call_response", "id": "c\x02", "response": "ok"}]}]
    variants: list[dict[str, Any]] = [
        {}, {"gen_ai.response.model": "gpt\x07"}, {"gen_ai.response.id": "r" * 61},
        {"gen_ai.response.id": "r" * 60}, {"gen_ai.response.finish_reasons": ["stop\x85"]},
        {"gen_ai.response.finish_reasons": ["s" * 61]}, {"gen_ai.response.model": ""},
        {"gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [
            {"type": "text", "content": "a" * 65}]}])},
        {"gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [
            {"type": "tool_call", "id": "c\x01", "name": "f", "arguments": "{}"}]}])},
        {"error.type": "t" * 61}, {"error.type": "timeout"},
        {"gen_ai.conversation.id": "conv\x1b"}, {"user.id": "u" * 61},
        {"gen_ai.request.model": "m" * 60}, {"gen_ai.request.seed": "s" * 65},
        {"gen_ai.request.stop_sequences": ["x" * 70]}, {"gen_ai.input.messages": long_input},
        {"gen_ai.input.messages": many_inputs}, {"gen_ai.input.messages": tool_message},
        {"gen_ai.operation.name": "text_completion"}, {"llmpulse.app": "app\x00"},
    ]
    times = [(T0, T0 + 10**9), (T0, now_ns + 60 * 10**9),  # past; the answer a minute ahead
             (now_ns + 60 * 10**9, now_ns + 61 * 10**9),  # both ahead, inside the window
             (T0, now_ns + 3_600 * 10**9),  # the answer past the window
             (T0 - 40 * 86_400 * 10**9, T0)]  # the prompt before it
    spans = [{"attrs": {**CURRENT, **variant}, "start": start, "end": end,
              "span_id": n.to_bytes(8, "big"),
              **({"status": (Status.STATUS_CODE_ERROR, "m" * 65)} if n % 7 == 0 else {})}
             for n, (variant, (start, end)) in enumerate(
                 ((v, t) for v in variants for t in times), start=1)]
    data = traces(*spans).SerializeToString()
    checked, taken, unchecked = shortcut_outcomes(monkeypatch, data, limits, "answer_after_its_prompt")
    assert sum(taken) >= 5 and not all(taken)  # the shortcut is taken, and declined
    assert checked == unchecked
    assert len(checked[0]) >= 20 and len(checked[1]) >= 40  # both outcomes are exercised
    assert {reason for reason, _ in checked[1]} >= {
        "control_character", "limit_exceeded", "timestamp_out_of_range"}


def test_token_counts_read_in_a_cached_order_match_the_walk_over_every_key() -> None:
    """``span_fields.token_counts`` visits only the keys present, in an order it works out
    once per set of keys; the answer (or the error) must be the plain walk's: per count,
    the first of its keys present and not None, ints as they are, the rest through as_int."""
    import random

    from llmpulse.processors.otlp import conventions as c
    from llmpulse.processors.otlp import span_fields
    from llmpulse.schemas import SchemaError

    def walk(attrs: dict[str, Any]) -> dict[str, int]:
        usage = {}
        for name, keys in span_fields._USAGE.items():
            for key in keys:
                if attrs.get(key) is not None:
                    usage[name] = c.as_int(attrs, key)
                    break
        return usage

    def outcome(read: Any, attrs: dict[str, Any]) -> Any:
        try:
            return read(attrs)
        except SchemaError as exc:
            return (exc.reason, exc.field)

    keys = [key for group in span_fields._USAGE.values() for key in group]
    rnd = random.Random(13)
    for _ in range(3_000):
        chosen = rnd.sample(keys, rnd.randint(0, len(keys)))  # (dict order: random too)
        attrs = {key: rnd.choice([rnd.randint(0, 9), None, "12", 3.0, True, "x", -2]) for key in chosen}
        attrs["gen_ai.request.model"] = "m"  # (not a count: never read)
        expected = outcome(walk, attrs)
        assert outcome(span_fields.token_counts, attrs) == expected, attrs
        assert outcome(span_fields.token_counts, attrs) == expected, attrs  # its plan cached now
    assert c.as_str({"k": ["stop"]}, "k") == "stop" and c.as_str({"k": ["a", "b"]}, "k") == "a"


def test_a_spans_shape_answers_what_each_question_would_over_its_keys() -> None:
    """``span_fields.shape_of`` is worked out once per key order: for any keys (in any
    order, asked twice: the second answer is the cached one) it says what ``is_genai``, the
    optional keys, the token counts' plan and the request extras say of those keys."""
    import random

    from llmpulse.processors.otlp import conventions as c
    from llmpulse.processors.otlp import span_fields as f

    keys = sorted({*f.OPTIONAL_KEYS, *f.REQUEST_EXTRAS, *f._USAGE_KEYS, *c._GENAI_KEYS,
                   "http.method", "gen_ai.response.model", "x"})
    rnd = random.Random(1313)
    for _ in range(2_000):
        attrs = dict.fromkeys(rnd.sample(keys, rnd.randint(0, 12)), 1)
        for _asked in range(2):
            shape = f.shape_of(attrs)
            assert shape.genai == c.is_genai(attrs)
            assert shape.optional == any(key in attrs for key in f.OPTIONAL_KEYS)
            assert shape.request_extras == any(key in attrs for key in f.REQUEST_EXTRAS)
            assert f.planned_counts(attrs, shape.usage_plan) == f.token_counts(attrs)
            assert bool(shape.usage_plan) == any(key in attrs for key in f._USAGE_KEYS)


def test_attribute_values_read_once_are_the_values_read_anew() -> None:
    """The wire reader keeps short values it read (``_KNOWN``): a record read with them
    kept gives the attributes a fresh read gives, and no two spans share a list."""
    from llmpulse.processors.otlp import _wire_reader

    flat = {key: json.dumps(value) if isinstance(value, list) and isinstance(value[0], dict)
            else value for key, value in CURRENT.items()}  # (no kvlist: the reader takes it)
    data = traces(*({"attrs": flat, "span_id": bytes([n]) * 8} for n in range(1, 4)),
                  {"attrs": {**flat, "gen_ai.request.temperature": 0.0,
                             "gen_ai.usage.input_tokens": -1, "gen_ai.request.stream": False,
                             "gen_ai.response.finish_reasons": ["length", "stop"]}}
                  ).SerializeToString()
    _wire_reader._KNOWN.clear()
    _, fresh = _wire_reader.read_traces(data)  # type: ignore[misc]
    assert _wire_reader._KNOWN  # (model, provider, parameters ... kept)
    assert not any(isinstance(value, list) for value in _wire_reader._KNOWN.values())
    assert set(_wire_reader._KNOWN.values()) == {  # only REPEATING_KEYS' values
        value for a in fresh for key, value in a.items()
        if key in _wire_reader.REPEATING_KEYS and not isinstance(value, list)}
    _, again = _wire_reader.read_traces(data)  # type: ignore[misc]
    assert [[(k, type(v)) for k, v in a.items()] for a in again] == [
        [(k, type(v)) for k, v in a.items()] for a in fresh]
    assert again == fresh
    reasons = [a["gen_ai.response.finish_reasons"] for a in fresh + again]
    assert len({id(r) for r in reasons}) == len(reasons)


def test_only_repeating_keys_values_are_kept() -> None:
    """Texts, ids and counts are read and never kept (``_KNOWN``), however short, nor
    looked up there; a model name and a provider are kept."""
    from llmpulse.processors.otlp import _wire_reader

    private = {"gen_ai.prompt.0.content": "Hi there", "gen_ai.completion.0.content": "Hello!",
               "gen_ai.response.id": "chatcmpl-1", "gen_ai.conversation.id": "session-7",
               "user.id": "u-42", "gen_ai.usage.input_tokens": 24,
               "gen_ai.response.finish_reasons": ["stop"]}
    data = traces({"attrs": {"gen_ai.request.model": "gpt-4o-mini", "gen_ai.system": "openai",
                             **private}, "span_id": b"\x01" * 8},
                  {"attrs": {"gen_ai.prompt.0.content": "gpt-4o-mini"}, "span_id": b"\x02" * 8}
                  ).SerializeToString()
    _wire_reader._KNOWN.clear()
    reads = _wire_reader.known_stats()["reads"]
    _, read = _wire_reader.read_traces(data)  # type: ignore[misc]
    assert sorted(_wire_reader._KNOWN.values()) == ["gpt-4o-mini", "openai"]
    assert read[0] == {"gen_ai.request.model": "gpt-4o-mini", "gen_ai.system": "openai", **private}
    assert read[1] == {"gen_ai.prompt.0.content": "gpt-4o-mini"}
    assert _wire_reader.known_stats()["reads"] - reads == 2  # (only the model and system)


def test_a_full_value_cache_reads_new_values_and_keeps_the_old(monkeypatch: Any) -> None:
    from llmpulse.processors.otlp import _wire_reader

    monkeypatch.setattr(_wire_reader, "_KNOWN_MAX", 1)
    _wire_reader._KNOWN.clear()
    spans = [{"attrs": {"gen_ai.request.model": f"m{n}", "gen_ai.system": "openai"},
              "span_id": bytes([n + 1]) * 8} for n in range(3)]
    kept = []
    for _ in range(2):
        _, read = _wire_reader.read_traces(traces(*spans).SerializeToString())  # type: ignore[misc]
        assert read == [span["attrs"] for span in spans]
        kept.append(list(_wire_reader._KNOWN.values()))  # (the first value read: map order)
    assert kept[0] == kept[1] and kept[0][0] in {"m0", "openai"} and len(kept[0]) == 1
    _wire_reader._KNOWN.clear()
