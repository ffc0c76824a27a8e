"""Accepted means stored: a property over every event type, against real chDB.

Hypothesis builds events as a hostile producer would send them (JSON with timestamps from
year 1 to 9999, integers past their column types, floats up to 1e308, identifiers with
control characters) on top of a valid event of each type. Whatever validation accepts
must be written by the real writer, be found by its ``event_id`` in its table with the
same time, and be counted once in the ``event_ids`` ledger (a second delivery is a
duplicate). Whatever the store refuses never enters the ledger.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmpulse.processors.pipeline import CallPair, join
from llmpulse.schemas import (
    Alert,
    ChatMessage,
    DeadLetter,
    DriftResult,
    EnrichedCall,
    Event,
    FeedbackEvent,
    GuardrailVerdict,
    PromptEvent,
    PromptLabel,
    PromptVersion,
    ResponseEvent,
    SpanEvent,
    TokenUsage,
    ToolCall,
    decode_record,
    encode_event,
)
from llmpulse.schemas.errors import REASONS
from llmpulse.sinks.store import Store
from llmpulse.sinks.testing import sample_alert, sample_calls, sample_drift
from llmpulse.sinks.writer import Sourced, Writer

NOW = datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


timestamps = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                 timezones=st.just(UTC)),
    st.integers(-45 * 86_400, 3_600).map(lambda s: NOW + timedelta(seconds=s)),
    st.integers(-45 * 86_400, 0).map(lambda s: NOW + timedelta(seconds=s)),
).map(_iso)
counts = st.one_of(st.integers(-3, 10_000), st.integers(0, 2**70),
                   st.sampled_from([2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64]))
floats = st.one_of(st.floats(allow_nan=False, allow_infinity=False),
                   st.floats(-10.0, 1e4),
                   st.sampled_from([1e30, 1e31, 3.5e38, 1e300, 1e308, 6.048e8, 6.05e8, -0.0]))
ids = st.text(min_size=1, max_size=24)
texts = st.one_of(st.text(max_size=40), st.sampled_from(["{", '{"a": 1}', "x" * 40_000]))

Path = tuple[str | int, ...]


def _base(event: Event) -> dict[str, Any]:
    return msgspec.json.decode(encode_event(event))  # type: ignore[no-any-return]


def _set(document: dict[str, Any], path: Path, value: Any) -> None:
    node: Any = document
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def _call_with_verdict() -> EnrichedCall:
    return next(c for c in sample_calls(300, seed=5) if c.verdicts and c.response is not None
                and c.response.usage is not None)


CALL = _call_with_verdict()
PROMPT, RESPONSE = CALL.prompt, CALL.response
assert PROMPT is not None and RESPONSE is not None
VERDICT = CALL.verdicts[0]
SPAN = SpanEvent(call_id="00f067aa0ba902b7", span_id="00f067aa0ba902b7",
                 trace_id="4bf92f3577b34da6a3ce929d0e0e4736", parent_span_id="b7ad6b7169203331",
                 app="shop", name="lookup_order", operation="execute_tool",
                 started_at=NOW - timedelta(seconds=2), occurred_at=NOW - timedelta(seconds=1),
                 latency_ms=1000.0, status="error",
                 tool=ToolCall(id="call_1", name="lookup_order", arguments='{"order": 42}'),
                 result_preview="shipped", usage=TokenUsage(input_tokens=3), cost_usd=0.01)
SPAN_VERDICT = GuardrailVerdict(call_id=SPAN.call_id, span_id=SPAN.span_id, trace_id=SPAN.trace_id,
                                app="shop", rule_id="indirect-injection",
                                rule_kind="prompt_injection", applies_to="tool_result",
                                severity="high", action="flag", policy_version="p1")
PROMPT_VERSION = PromptVersion(app="a", prompt_id="answer", version="v1",
                               messages=[ChatMessage(role="user", content="Hi {name}")])

CASES: dict[str, tuple[Event, dict[Path, st.SearchStrategy[Any]]]] = {
    "enriched_call": (CALL, {
        ("occurred_at",): timestamps, ("processed_at",): timestamps, ("call_id",): ids,
        ("app",): ids, ("prompt_id",): ids, ("prompt", "occurred_at"): timestamps,
        ("prompt", "temperature"): floats, ("prompt", "max_tokens"): counts,
        ("response", "latency_ms"): floats, ("response", "time_to_first_token_ms"): floats,
        ("response", "cost_usd"): floats, ("response", "usage", "input_tokens"): counts,
        ("response", "usage", "output_tokens"): counts, ("response", "finish_reason"): ids,
        ("response", "usage", "reasoning_tokens"): counts,
        ("response", "usage", "cache_creation_input_tokens"): counts,
        ("span_id",): ids, ("parent_span_id",): ids,
        ("scores", 0, "value"): floats, ("scores", 0, "name"): ids,
        ("verdicts", 0, "occurred_at"): timestamps, ("verdicts", 0, "span_start"): counts,
        ("verdicts", 0, "rule_id"): ids}),
    "prompt": (PROMPT, {("occurred_at",): timestamps, ("call_id",): ids,
                        ("temperature",): floats, ("max_tokens",): counts,
                        ("top_p",): floats, ("request_model",): ids}),
    "response": (RESPONSE, {("occurred_at",): timestamps, ("latency_ms",): floats,
                            ("cost_usd",): floats, ("usage", "input_tokens"): counts,
                            ("usage", "cached_input_tokens"): counts,
                            ("response_model",): ids}),
    "feedback": (FeedbackEvent(call_id="c", app="a", thumbs="up", rating=4, label="ok"),
                 {("occurred_at",): timestamps, ("rating",): counts, ("label",): ids,
                  ("call_id",): ids, ("author_id",): ids}),
    "guardrail_verdict": (VERDICT, {("occurred_at",): timestamps, ("span_start",): counts,
                                    ("span_end",): counts, ("rule_id",): ids,
                                    ("policy_version",): ids}),
    "span": (SPAN, {
        ("occurred_at",): timestamps, ("started_at",): timestamps, ("latency_ms",): floats,
        ("cost_usd",): floats, ("usage", "input_tokens"): counts, ("trace_id",): ids,
        ("parent_span_id",): ids, ("name",): ids, ("operation",): ids,
        ("tool", "name"): ids, ("tool", "id"): ids, ("tool", "arguments"): texts,
        ("result_preview",): texts}),
    "span_verdict": (SPAN_VERDICT, {("occurred_at",): timestamps, ("trace_id",): ids,
                                    ("span_id",): ids, ("rule_id",): ids}),
    "drift_result": (sample_drift(), {
        ("occurred_at",): timestamps, ("window_end",): timestamps,
        ("window_start",): timestamps, ("reference_start",): timestamps,
        ("window_size",): counts, ("reference_size",): counts,
        ("features", 0, "statistic"): floats, ("features", 0, "p_value"): floats,
        ("features", 0, "threshold"): floats, ("features", 0, "feature"): ids}),
    "alert": (sample_alert(), {("occurred_at",): timestamps, ("started_at",): timestamps,
                               ("value",): floats, ("threshold",): floats,
                               ("dedup_key",): ids}),
    "dead_letter": (DeadLetter(reason="malformed_json", detail="x", source_topic="llm.prompts",
                               source_partition=1, source_offset=5, payload=b"{"),
                    {("occurred_at",): timestamps, ("source_partition",): counts,
                     ("source_offset",): counts, ("batch_index",): counts, ("reason",): ids}),
    "prompt_version": (PROMPT_VERSION, {("occurred_at",): timestamps, ("prompt_id",): ids,
                                        ("version",): ids}),
    "prompt_label": (PromptLabel(app="a", prompt_id="answer", label="production", version="v1"),
                     {("occurred_at",): timestamps, ("label",): ids}),
}


def _hostile(name: str) -> st.SearchStrategy[bytes]:
    event, paths = CASES[name]
    keys = list(paths)

    def build(values: tuple[Any, ...]) -> bytes:
        document = _base(event)
        document["event_id"] = str(uuid.uuid4())
        for verdict in document.get("verdicts", []):
            verdict["event_id"] = str(uuid.uuid4())
        for path, value in zip(keys, values, strict=True):
            if value is not None:
                _set(document, path, value)
        return msgspec.json.encode(document)

    return st.tuples(*(st.none() | paths[k] for k in keys)).map(build)


def _rows(event: Event) -> tuple[Event, list[tuple[str, uuid.UUID, datetime]]]:
    """What the sink receives for ``event``, and the rows it must then hold."""
    if isinstance(event, PromptEvent | ResponseEvent):  # the worker joins halves first
        pair = CallPair(prompt=event) if isinstance(event, PromptEvent) else CallPair(response=event)
        event = join(pair)
    if isinstance(event, EnrichedCall):
        return event, [("calls", event.event_id, event.occurred_at),
                       *(("guardrail_verdicts", v.event_id, v.occurred_at) for v in event.verdicts)]
    table = {FeedbackEvent: "feedback", GuardrailVerdict: "guardrail_verdicts", Alert: "alerts",
             SpanEvent: "spans",
             DriftResult: "drift_results", DeadLetter: "dead_letters",
             PromptVersion: "prompt_versions", PromptLabel: "prompt_labels"}[type(event)]
    return event, [(table, event.event_id, event.occurred_at)]


_REGISTRY = {"prompt_versions": "version", "prompt_labels": "label"}
"""ReplacingMergeTree tables: a version or label republished keeps the latest row per key."""


def _one(store: Store, sql: str, event_id: uuid.UUID) -> tuple[Any, ...]:
    return store.query(sql, {"id": event_id}).rows[0]


def _check(store: Store, data: bytes, seen: Callable[[str], None]) -> None:
    record = decode_record(data)
    if record.failures:
        [failure] = record.failures
        assert failure.error.reason in REASONS and failure.error.detail
        seen(failure.error.reason)
        return
    seen("accepted")
    [event] = record.events
    stored, rows = _rows(event)
    result = Writer(store).write([Sourced(stored, "llm.test", 0, 0)])
    assert result.rejected == [], result.rejected
    for table, event_id, occurred_at in rows:
        count, at = _one(store, f"SELECT count(), any(occurred_at) FROM {table} "
                                "WHERE event_id = {id:UUID}", event_id)
        if count == 0 and table in _REGISTRY:  # a later row of the same key replaced it
            assert isinstance(stored, PromptVersion | PromptLabel)
            key = _REGISTRY[table]
            newer = store.query(f"SELECT count() FROM {table} FINAL WHERE prompt_id = {{p:String}} "
                                f"AND {key} = {{k:String}} AND occurred_at >= {{at:DateTime64(6)}}",
                                {"p": stored.prompt_id, "k": getattr(stored, key),
                                 "at": occurred_at}).scalar()
            assert newer == 1, (table, stored)
        else:
            assert count == 1 and at == occurred_at, (table, count, at, occurred_at)
        ledger = _one(store, "SELECT count() FROM event_ids WHERE event_id = {id:UUID}", event_id)
        assert ledger == (1,), (table, ledger)
    again = Writer(store).write([Sourced(stored, "llm.test", 0, 0)])
    assert again.total_written == 0 and again.duplicates == len(rows)
    if isinstance(stored, EnrichedCall) and stored.response and stored.response.usage:
        tokens = _one(store, "SELECT input_tokens FROM calls WHERE event_id = {id:UUID}",
                      stored.event_id)
        assert tokens == (stored.response.usage.input_tokens,)
    if isinstance(stored, SpanEvent):  # the text and the ids as accepted, not cut again
        row = _one(store, "SELECT trace_id, parent_span_id, operation, tool_arguments, "
                          "result_preview FROM spans WHERE event_id = {id:UUID}", stored.event_id)
        assert row == (stored.trace_id, stored.parent_span_id or "", stored.operation,
                       stored.tool.arguments if stored.tool else "", stored.result_preview or "")


@pytest.mark.parametrize("name", sorted(CASES))
def test_what_validation_accepts_is_stored_queryable_and_counted_once(
        store: Store, name: str) -> None:
    outcomes: dict[str, int] = {}

    def seen(outcome: str) -> None:
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    @settings(max_examples=60, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(_hostile(name))
    def run(data: bytes) -> None:
        _check(store, data, seen)

    run()
    # The property was exercised on both sides: some events stored, some refused.
    assert outcomes.get("accepted", 0) > 0 and len(outcomes) > 1, outcomes


def test_rows_the_store_refuses_never_enter_the_ledger(store: Store) -> None:
    """Built in-process (so validation never saw them): the store refuses what does not
    fit, the writer isolates it, and only the good events are in the ledger."""
    good = sample_calls(3, seed=9)
    bad = msgspec.structs.replace(good[0], event_id=uuid.uuid4(), verdicts=[])
    assert bad.response is not None
    bad.response = msgspec.structs.replace(bad.response,
                                           usage=TokenUsage(input_tokens=2**40))
    result = Writer(store).write([Sourced(e, "llm.enriched", 0, i)
                                  for i, e in enumerate([good[1], bad, good[2]])])
    assert [r.item.event.event_id for r in result.rejected] == [bad.event_id]
    assert result.rejected[0].reason == "rejected_by_store"
    assert store.existing_event_ids([bad.event_id]) == set()
    assert store.existing_event_ids([good[1].event_id, good[2].event_id]) == {
        good[1].event_id, good[2].event_id}
    assert store.query("SELECT count() FROM calls").scalar() == 2
    # and validation would have dead-lettered it with the precise reason
    record = decode_record(encode_event(bad))
    assert [f.error.reason for f in record.failures] == ["out_of_range"]
    assert record.failures[0].error.field == "$.response.usage.input_tokens"
