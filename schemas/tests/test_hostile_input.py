"""Property-based tests: random and hostile bytes never crash or hang the decoder.

Whatever arrives on a topic, ``decode_record`` returns valid events and typed
failures; it never raises and never loses an event without a failure for it.
"""

from __future__ import annotations

import json
import unicodedata

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmpulse.schemas import (
    FeedbackEvent,
    Limits,
    PromptEvent,
    ResponseEvent,
    SchemaError,
    decode_event,
    decode_record,
    encode_batch,
    encode_event,
)
from llmpulse.schemas.errors import REASONS

SMALL = Limits(max_record_bytes=64 * 1024, max_event_bytes=16 * 1024, max_text_chars=2_000,
               max_batch_events=50)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
field_names = st.sampled_from(["type", "app", "call_id", "schema_version", "event_id",
                               "occurred_at", "text", "latency_ms", "rating", "thumbs",
                               "messages", "count", "events", "attributes", "usage"])
type_names = st.sampled_from(["prompt", "response", "feedback", "batch", "alert",
                              "enriched_call", "drift_result", "dead_letter", "nope"])
event_like = st.fixed_dictionaries(
    {"type": type_names, "app": st.text(max_size=5), "call_id": st.text(max_size=5)},
    optional={"schema_version": st.integers(-2, 3), "latency_ms": json_values,
              "text": json_values, "events": st.lists(json_values, max_size=3),
              "count": st.integers(-1, 4), "rating": json_values, "thumbs": json_values},
).flatmap(lambda base: st.dictionaries(field_names, json_values, max_size=3).map(
    lambda extra: {**extra, **base}))


def _check(record_bytes: bytes) -> None:
    record = decode_record(record_bytes, SMALL)
    for failure in record.failures:
        assert isinstance(failure.error, SchemaError)
        assert failure.error.reason in REASONS
        assert failure.error.detail
    for event in record.events:  # anything accepted re-encodes and decodes to itself
        assert decode_event(encode_event(event), SMALL) == event
    if not record.batched:
        assert len(record.events) + len(record.failures) == 1


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_random_bytes(data: bytes) -> None:
    _check(data)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(event_like)
def test_event_shaped_json(obj: dict[str, object]) -> None:
    _check(json.dumps(obj, allow_nan=True).encode())


@settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(event_like, max_size=6), st.integers(-1, 8))
def test_batches_of_hostile_events_account_for_every_event(events: list[dict[str, object]],
                                                           count: int) -> None:
    body = json.dumps({"type": "batch", "schema_version": 1, "count": count, "events": events})
    record = decode_record(body.encode(), SMALL)
    if record.failures and record.failures[0].error.reason == "malformed_json":
        assert "NaN" in body or "Infinity" in body  # Python's json writes these; JSON has none
    elif record.failures and record.failures[0].error.reason == "too_large":
        assert len(body) > SMALL.max_record_bytes
    elif count == len(events):
        assert len(record.events) + len(record.failures) == len(events)
        assert all(f.index is not None for f in record.failures)
    else:
        assert record.events == [] and record.failures[0].error.reason == "batch_count_mismatch"


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=1, max_size=64), st.integers(0, 300))
def test_valid_events_with_corrupted_bytes(noise: bytes, at: int) -> None:
    good = encode_event(ResponseEvent(call_id="c", app="a", text="fine", latency_ms=5.0))
    at = min(at, len(good))
    _check(good[:at] + noise + good[at:])


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300), st.text(max_size=40), st.integers(1, 5))
def test_any_unicode_text_round_trips(text: str, call_id: str, rating: int) -> None:
    call_id = call_id or "x"
    events = [PromptEvent(call_id=call_id, app="a", attributes={"note": text}),
              FeedbackEvent(call_id=call_id, app="a", rating=rating, comment=text)]
    try:
        encoded = [encode_event(e) for e in events]
    except UnicodeEncodeError:  # a lone surrogate cannot leave the process as UTF-8
        assert any(0xD800 <= ord(c) <= 0xDFFF for c in text + call_id)
        return
    record = decode_record(encode_batch(encoded), SMALL)
    if any(unicodedata.category(c) == "Cc" for c in call_id):  # an id, not free text
        assert [f.error.reason for f in record.failures] == ["control_character"] * 2
        assert [f.error.field for f in record.failures] == ["$.events[0].call_id",
                                                             "$.events[1].call_id"]
        return
    assert record.failures == [] and record.events == events


def test_hostile_hand_picked_inputs() -> None:
    cases = [
        b"", b"null", b"[]", b"{}", b'"prompt"', b"1e999999", b"\x00" * 100,
        b'{"type":"batch","count":1,"events":[{"type":"batch","count":0,"events":[]}]}',
        b'{"type":"batch","count":1e100,"events":[]}',
        b'{"type":"prompt","app":"a","call_id":"c","occurred_at":"9999-99-99T00:00:00Z"}',
        b'{"type":"prompt","app":"a","call_id":"c","attributes":{"k":[1,2]}}',
        b'{"type":"response","app":"a","call_id":"c","text":"t","latency_ms":1e400}',
        b'{"type":"prompt","app":"a","call_id":"c","messages":[{"role":"wizard","content":""}]}',
        b'\xef\xbb\xbf{"type":"prompt","app":"a","call_id":"c"}',
        b'{"type":"prompt","app":"a","call_id":"c"}' * 3,
        b'{"type":"prompt","app":"a","app":"b","call_id":"c"}',
    ]
    for data in cases:
        _check(data)
    nested = b'{"type":"batch","count":1,"events":[' + b"[" * 100_000 + b"]" * 100_000 + b"]}"
    assert decode_record(nested).failures  # reported, not a crash
    try:
        decode_event(b"{" * 10)
    except SchemaError as exc:
        assert exc.reason == "malformed_json"
