"""The v1 contracts: round trips, validation rules, limits, batch records."""

from __future__ import annotations

import doctest
import importlib
import uuid
from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest

from llmpulse.schemas import (
    SCHEMA_VERSION,
    Alert,
    ChatMessage,
    DeadLetter,
    DriftResult,
    EnrichedCall,
    ErrorInfo,
    FeatureDrift,
    FeedbackEvent,
    GuardrailVerdict,
    Limits,
    PromptEvent,
    ResponseEvent,
    RetrievedDocument,
    SchemaError,
    ScoreResult,
    SpanEvent,
    TokenUsage,
    ToolCall,
    decode_event,
    decode_record,
    encode_batch,
    encode_event,
    uuid7,
)
from llmpulse.schemas.errors import REASONS


def _prompt(**kw: object) -> PromptEvent:
    base: dict[str, object] = dict(
        call_id="call-1", app="support-bot", prompt_id="answer", prompt_version="2",
        request_model="gpt-4o-mini", provider="openai",
        messages=[ChatMessage(role="system", content="Be brief."),
                  ChatMessage(role="user", content="Where is my parcel?")],
        retrieved_context=[RetrievedDocument(id="kb-7", content="Parcels ship in 2 days", score=0.8)],
        template_variables={"customer": "Ada"}, temperature=0.2,
    )
    base.update(kw)
    return PromptEvent(**base)  # type: ignore[arg-type]


def _response(**kw: object) -> ResponseEvent:
    base: dict[str, object] = dict(
        call_id="call-1", app="support-bot", text="In two days.", finish_reason="stop",
        usage=TokenUsage(input_tokens=20, output_tokens=4), latency_ms=350.5,
        time_to_first_token_ms=120.0, cost_usd=0.00012,
    )
    base.update(kw)
    return ResponseEvent(**base)  # type: ignore[arg-type]


def _every_event() -> list[object]:
    now = datetime.now(UTC)
    verdict = GuardrailVerdict(call_id="call-1", app="a", rule_id="pii.email", rule_kind="pii",
                               applies_to="response", severity="high", action="redact",
                               policy_version="p1", span_start=3, span_end=20,
                               match_preview="j***@***.com")
    return [
        _prompt(),
        _response(),
        _response(text=None, error=ErrorInfo(type="RateLimitError", message="429")),
        FeedbackEvent(call_id="call-1", app="a", thumbs="down", rating=2, comment="wrong"),
        verdict,
        EnrichedCall(call_id="call-1", app="a", prompt=_prompt(), response=_response(),
                     scores=[ScoreResult(name="toxicity", scorer_version="1", backend="none",
                                         status="unavailable", detail="no model")],
                     verdicts=[verdict], scorer_set_version="s1", policy_version="p1"),
        DriftResult(app="a", prompt_id="answer", prompt_version="2", window_start=now,
                    window_end=now, reference_start=now - timedelta(days=1),
                    reference_end=now, window_size=500, reference_size=2000,
                    features=[FeatureDrift(feature="response_length", test="ks", statistic=0.4,
                                           p_value=1e-9, threshold=0.05, drifted=True)],
                    share_drifted=1.0, drifted=True),
        Alert(app="a", rule="drift", status="firing", dedup_key="a/answer/2/drift",
              summary="drift on 2 windows"),
        DeadLetter(reason="malformed_json", detail="bad", payload=b"\xff"),
        SpanEvent(call_id="00f067aa0ba902b7", span_id="00f067aa0ba902b7",
                  trace_id="4bf92f3577b34da6a3ce929d0e0e4736", app="a", name="lookup_order",
                  operation="execute_tool", started_at=now - timedelta(seconds=1),
                  latency_ms=1000.0, tool=ToolCall(id="call_1", name="lookup_order",
                                                   arguments='{"order": 42}'),
                  result_preview="shipped"),
    ]


@pytest.mark.parametrize("event", _every_event(), ids=lambda e: type(e).__name__)
def test_every_contract_round_trips_and_keeps_its_type(event: object) -> None:
    data = encode_event(event)  # type: ignore[arg-type]
    back = decode_event(data)
    assert back == event
    assert type(back) is type(event)
    assert b'"schema_version":%d' % SCHEMA_VERSION in data, "the version is always on the wire"


def test_envelope_defaults_are_uuid7_and_utc() -> None:
    p = _prompt()
    assert p.event_id.version == 7
    assert p.occurred_at.tzinfo is not None
    assert abs(p.occurred_at - datetime.now(UTC)) < timedelta(seconds=5)
    assert _prompt().event_id != p.event_id


def test_naive_timestamps_are_rejected_and_offsets_kept_as_instants() -> None:
    raw = encode_event(_prompt()).replace(b'Z"', b'"', 1)
    with pytest.raises(SchemaError) as err:
        decode_event(raw)
    assert err.value.reason == "invalid_value" and err.value.field == "$.occurred_at"
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    plus2 = _prompt(occurred_at=at.astimezone(timezone(timedelta(hours=2))))
    back = decode_event(encode_event(plus2))
    assert back.occurred_at == at


@pytest.mark.parametrize(
    ("payload", "reason", "field"),
    [
        (b'{"type":"prompt","app":"a"}', "missing_field", "$.call_id"),
        (b'{"app":"a","call_id":"c"}', "unknown_type", "$.type"),
        (b'{"type":"telepathy","app":"a","call_id":"c"}', "unknown_type", "$.type"),
        (b'{"type":"prompt","schema_version":3,"app":"a","call_id":"c"}',
         "unknown_schema_version", "$.schema_version"),
        (b'{"type":"prompt","schema_version":9,"app":"a"}', "unknown_schema_version",
         "$.schema_version"),
        (b'{"type":"prompt","app":"a","call_id":""}', "invalid_value", "$.call_id"),
        (b'{"type":"prompt","app":"a","call_id":7}', "invalid_value", "$.call_id"),
        (b'{"type":"feedback","app":"a","call_id":"c","rating":6}', "out_of_range", "$.rating"),
        (b'{"type":"feedback","app":"a","call_id":"c"}', "missing_field", "$.thumbs"),
        (b'{"type":"response","app":"a","call_id":"c","latency_ms":1}', "missing_field", "$.text"),
        (b'{"type":"response","app":"a","call_id":"c","text":"x","latency_ms":-1}',
         "out_of_range", "$.latency_ms"),
        (b'{"type":"prompt","app":"a","call_id":"c","event_id":"not-a-uuid"}', "invalid_value",
         "$.event_id"),
        (b'{"type":"prompt","app":"a","call_id":"c"', "malformed_json", None),
        (b'{"type":"prompt","app":"\xff\xfe","call_id":"c"}', "invalid_utf8", None),
        (b'{"type":"prompt","app":"\\ud800","call_id":"c"}', "invalid_utf8", None),
        (b'{"type":"prompt","app":"a","call_id":"c","x":' + b"[" * 50_000 + b"]" * 50_000 + b"}",
         "too_deep", None),
    ],
)
def test_bad_events_name_the_reason_and_the_field(payload: bytes, reason: str,
                                                  field: str | None) -> None:
    with pytest.raises(SchemaError) as err:
        decode_event(payload)
    assert err.value.reason == reason, err.value
    assert err.value.reason in REASONS
    if field is not None:
        assert err.value.field == field, err.value
    assert err.value.detail


def test_limits_are_configurable_and_name_the_field() -> None:
    small = Limits(max_text_chars=50, max_id_chars=20, max_messages=1, max_event_bytes=2000)
    with pytest.raises(SchemaError, match=r"\$.messages\[1\].content.*max_text_chars=50"):
        decode_event(encode_event(_prompt(messages=[
            ChatMessage(role="user", content="ok"), ChatMessage(role="user", content="x" * 51)])),
            Limits(max_text_chars=50))
    with pytest.raises(SchemaError, match="max_messages=1"):
        decode_event(encode_event(_prompt()), small)
    with pytest.raises(SchemaError) as err:
        decode_event(encode_event(_prompt(call_id="c" * 12)), Limits(max_id_chars=11))
    assert (err.value.reason, err.value.field) == ("limit_exceeded", "$.call_id")
    with pytest.raises(SchemaError) as err:
        decode_event(encode_event(_response(text="y" * 3000)), small)
    assert err.value.reason == "too_large"


def test_limits_read_from_the_environment() -> None:
    limits = Limits.from_env({"LLMPULSE_LIMIT_MAX_TEXT_CHARS": "99", "UNRELATED": "1"})
    assert limits.max_text_chars == 99 and limits.max_id_chars == Limits().max_id_chars
    with pytest.raises(ValueError, match="LLMPULSE_LIMIT_MAX_ID_CHARS"):
        Limits.from_env({"LLMPULSE_LIMIT_MAX_ID_CHARS": "lots"})


def test_batch_keeps_good_events_and_reports_each_bad_one_with_its_index() -> None:
    good = [encode_event(_prompt(call_id=f"c{i}")) for i in range(5)]
    # A batch is one JSON document: an event inside it can break the contract, not the syntax.
    bad_json = b'{"type":"prompt","app":"a"}'
    bad_version = b'{"type":"prompt","schema_version":3,"app":"a","call_id":"c"}'
    record = decode_record(encode_batch([good[0], bad_json, *good[1:4], bad_version, good[4]]))
    assert record.batched
    assert [e.call_id for e in record.events] == ["c0", "c1", "c2", "c3", "c4"]
    assert [(f.index, f.error.reason) for f in record.failures] == [
        (1, "missing_field"), (5, "unknown_schema_version")]
    assert record.failures[0].payload == bad_json
    assert record.failures[1].error.field == "$.events[5].schema_version"


def test_batch_envelope_faults_reject_the_whole_record() -> None:
    events = [encode_event(_prompt()), encode_event(_response())]
    lying = encode_batch(events).replace(b'"count":2', b'"count":3')
    broken = decode_record(encode_batch(events)[:-3])
    assert broken.events == [] and broken.failures[0].error.reason == "malformed_json"
    record = decode_record(lying)
    assert record.events == [] and record.failures[0].error.reason == "batch_count_mismatch"
    too_many = decode_record(encode_batch(events), Limits(max_batch_events=1))
    assert too_many.failures[0].error.reason == "limit_exceeded"
    huge = decode_record(encode_batch(events), Limits(max_record_bytes=100))
    assert huge.failures[0].error.reason == "too_large"
    assert decode_record(None).failures[0].error.reason == "malformed_json"


def test_single_event_records_are_accepted_as_well_as_batches() -> None:
    record = decode_record(encode_event(_response()))
    assert not record.batched and isinstance(record.events[0], ResponseEvent)


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    data = encode_event(_response())[:-1] + b',"future_field":{"x":[1,2]}}'
    assert decode_event(data).text == "In two days."


def test_uuid7_is_time_ordered_and_unique() -> None:
    ids = [uuid7() for _ in range(5000)]
    assert ids == sorted(ids) and len(set(ids)) == 5000
    assert all(isinstance(i, uuid.UUID) and i.version == 7 for i in ids[:10])


def test_encoding_matches_a_plain_json_reader() -> None:
    data = encode_event(_prompt())
    plain = msgspec.json.decode(data)
    assert plain["type"] == "prompt" and plain["messages"][1]["content"] == "Where is my parcel?"


@pytest.mark.parametrize("module", ["_codec", "_events", "_export", "_ids", "_limits",
                                    "_partition", "environment", "errors", "topics", "__init__"])
def test_docstring_examples_run(module: str) -> None:
    name = "llmpulse.schemas" if module == "__init__" else f"llmpulse.schemas.{module}"
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
