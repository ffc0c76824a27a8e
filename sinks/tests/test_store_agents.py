"""Contracts v1.1 in the store: spans, tool calls, the per-tool rollup, verdicts on spans,
and the forward-only migration over a store that already holds v1 rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from llmpulse.schemas import (
    ChatMessage,
    EnrichedCall,
    ErrorInfo,
    GuardrailVerdict,
    PromptEvent,
    ResponseEvent,
    SpanEvent,
    TokenUsage,
    ToolCall,
)
from llmpulse.sinks import schema as schema_module
from llmpulse.sinks.store import Retention, Store
from llmpulse.sinks.writer import Sourced, Writer

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
QUANTILES = "quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99)"


def _span(span_id: str, *, tool: str | None = "lookup_order", arguments: str = '{"order": 42}',
          latency_ms: float = 20.0, status: str = "ok", truncated: bool = False,
          operation: str = "execute_tool", at: datetime | None = None) -> SpanEvent:
    end = at or datetime.now(UTC)
    return SpanEvent(
        call_id=span_id, span_id=span_id, trace_id=TRACE, parent_span_id="a0a0a0a0a0a0a0a0",
        app="shop", environment="staging", name=tool or "plan", operation=operation,
        started_at=end - timedelta(milliseconds=latency_ms), occurred_at=end, latency_ms=latency_ms,
        status=status,  # type: ignore[arg-type]
        error=ErrorInfo(type="TimeoutError", message="order service timed out")
        if status == "error" else None,
        tool=ToolCall(id=f"call_{span_id}", name=tool, arguments=arguments,
                      arguments_truncated=truncated) if tool else None,
        result_preview='{"status": "shipped"}', session_id="s-1", cost_usd=0.001)


def _agent_call(at: datetime) -> EnrichedCall:
    common = {"call_id": "c-7", "app": "shop", "environment": "staging", "trace_id": TRACE,
              "span_id": "c0c0c0c0c0c0c0c0", "parent_span_id": "a0a0a0a0a0a0a0a0"}
    asked = [ToolCall(id="call_1", name="lookup_order", arguments='{"order": 42}'),
             ToolCall(id="call_2", name="refund", arguments="{")]
    return EnrichedCall(
        occurred_at=at, **common,
        prompt=PromptEvent(occurred_at=at, **common, messages=[
            ChatMessage(role="user", content="Where is order 42?"),
            ChatMessage(role="assistant", content="", tool_calls=asked[:1]),
            ChatMessage(role="tool", content="shipped", tool_call_id="call_1")]),
        response=ResponseEvent(occurred_at=at, **common, tool_calls=asked, latency_ms=300.0,
                               finish_reason="tool_calls",
                               usage=TokenUsage(input_tokens=50, output_tokens=40, reasoning_tokens=32,
                                                cache_creation_input_tokens=1024)))


def test_a_call_keeps_its_span_ids_tool_calls_and_new_token_counts(store: Store) -> None:
    call = _agent_call(datetime.now(UTC))
    assert Writer(store).write([Sourced(call)]).written == {"calls": 1}
    row = store.query("SELECT span_id, parent_span_id, operation, tool_call_count, tool_call_names, "
                      "reasoning_tokens, cache_creation_input_tokens, response_text, prompt_messages "
                      "FROM calls").dicts()[0]
    assert (row["span_id"], row["parent_span_id"], row["operation"]) == (
        "c0c0c0c0c0c0c0c0", "a0a0a0a0a0a0a0a0", "chat")
    assert (row["tool_call_count"], row["tool_call_names"]) == (2, ["lookup_order", "refund"])
    assert (row["reasoning_tokens"], row["cache_creation_input_tokens"]) == (32, 1024)
    assert row["response_text"] == "" and '"tool_call_id":"call_1"' in row["prompt_messages"]


def test_a_span_lands_once_with_its_values(store: Store) -> None:
    span = _span("b0b0b0b0b0b0b0b1", status="error")
    writer = Writer(store)
    assert writer.write([Sourced(span)]).written == {"spans": 1}
    assert writer.write([Sourced(span)]).duplicates == 1, "the ledger knows spans"
    row = store.query("SELECT * , arguments_valid_json FROM spans WHERE trace_id = {t:String}",
                      {"t": TRACE}).dicts()
    assert len(row) == 1
    got = row[0]
    assert got["event_id"] == span.event_id and got["span_id"] == span.span_id
    assert (got["name"], got["operation"], got["tool_name"], got["tool_call_id"]) == (
        "lookup_order", "execute_tool", "lookup_order", "call_b0b0b0b0b0b0b0b1")
    assert (got["status"], got["error_type"], got["error_message"]) == (
        "error", "TimeoutError", "order service timed out")
    assert got["tool_arguments"] == '{"order": 42}' and got["arguments_valid_json"] == 1
    assert got["result_preview"] == '{"status": "shipped"}' and got["latency_ms"] == 20.0
    assert got["started_at"] == span.started_at and got["occurred_at"] == span.occurred_at
    assert (got["cost_usd"], got["session_id"], got["parent_span_id"]) == (0.001, "s-1",
                                                                           "a0a0a0a0a0a0a0a0")


def test_the_tool_rollup_counts_executions_errors_bad_arguments_and_latency(store: Store) -> None:
    at = datetime.now(UTC).replace(second=30)
    spans = [
        *[_span(f"{i:016x}", latency_ms=10.0 * (i + 1), at=at) for i in range(10)],
        _span("e000000000000001", arguments="{", at=at),          # not JSON
        _span("e000000000000002", arguments="[1, 2]", at=at),     # JSON, not an object
        _span("e000000000000003", arguments='{"x": "', truncated=True, at=at),  # cut: not judged
        _span("e000000000000004", arguments="", status="error", at=at),       # no arguments
        _span("e000000000000005", tool="refund", at=at),
        _span("e000000000000006", tool=None, operation="invoke_agent", at=at),  # not a tool
        _span("e000000000000007", tool=None, at=at),                            # execute_tool, no ToolCall
    ]
    assert Writer(store).write([Sourced(s) for s in spans]).written == {"spans": len(spans)}
    rows = store.query(
        f"SELECT tool_name, sum(calls), sum(errors), sum(invalid_arguments), {QUANTILES}(latency_ms) "
        "FROM tool_calls_1m WHERE app = 'shop' GROUP BY tool_name ORDER BY tool_name").rows
    assert [r[:4] for r in rows] == [("lookup_order", 14, 1, 2), ("plan", 1, 0, 0), ("refund", 1, 0, 0)]
    p50, _, p95, _ = rows[0][4]
    assert 15 <= p50 <= 60 and 80 <= p95 <= 100
    raw = store.query("SELECT count(), countIf(arguments_valid_json = 0) FROM spans").rows[0]
    assert raw == (len(spans), 3), "'{', '[1, 2]' and the cut text are not JSON objects"


def test_a_verdict_on_a_span_is_stored_with_its_trace(store: Store) -> None:
    span = _span("b0b0b0b0b0b0b0b2")
    verdict = GuardrailVerdict(call_id=span.call_id, span_id=span.span_id, trace_id=TRACE,
                               app="shop", environment="staging", rule_id="indirect-injection",
                               rule_kind="prompt_injection", applies_to="tool_result",
                               severity="high", action="flag", policy_version="p-1")
    loop = GuardrailVerdict(call_id=span.call_id, span_id=span.span_id, trace_id=TRACE, app="shop",
                            rule_id="agent_loop", rule_kind="agent", applies_to="tool_arguments",
                            severity="medium", action="flag", policy_version="agents-1")
    written = Writer(store).write([Sourced(span), Sourced(verdict), Sourced(loop)]).written
    assert written == {"spans": 1, "guardrail_verdicts": 2}
    rows = store.query("SELECT rule_id, applies_to, call_id, span_id, trace_id FROM guardrail_verdicts "
                       "ORDER BY rule_id").rows
    assert rows == [("agent_loop", "tool_arguments", span.span_id, span.span_id, TRACE),
                    ("indirect-injection", "tool_result", span.span_id, span.span_id, TRACE)]
    assert store.query("SELECT sum(verdicts) FROM guardrail_verdicts_1m").scalar() == 2


@pytest.fixture
def v1_store(store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """A store migrated only to the schema before v1.1 (0001-0005)."""
    every = schema_module.migration_files
    monkeypatch.setattr(schema_module, "migration_files", lambda: [m for m in every() if m.version <= 5])
    opened = Store.open(store_url)
    opened.migrate()
    monkeypatch.setattr(schema_module, "migration_files", every)
    try:
        yield opened
    finally:
        opened.close()


def test_the_migration_keeps_v1_rows_readable_and_takes_v1_1_rows(v1_store: Store) -> None:
    store = v1_store
    assert "spans" not in {r[0] for r in store.query("SHOW TABLES").rows}
    old_id, verdict_id = uuid.uuid4(), uuid.uuid4()
    at = datetime.now(UTC) - timedelta(minutes=5)
    # Rows as the v1 sink wrote them (its columns only), and a retention set before v1.1.
    store.command(
        "INSERT INTO calls (event_id, call_id, occurred_at, processed_at, app, environment, operation, "
        "trace_id, response_text, latency_ms, input_tokens, output_tokens) VALUES "
        "({id:UUID}, 'old-1', {at:DateTime64(6)}, {at:DateTime64(6)}, 'shop', 'staging', 'chat', "
        "'t-old', 'hello', 120.5, 10, 2)", {"id": old_id, "at": at})
    store.command(
        "INSERT INTO guardrail_verdicts (event_id, call_id, occurred_at, app, environment, rule_id, "
        "rule_kind, applies_to, severity, action, policy_version) VALUES ({id:UUID}, 'old-1', "
        "{at:DateTime64(6)}, 'shop', 'staging', 'pii.email', 'pii', 'response', 'high', 'redact', 'p0')",
        {"id": verdict_id, "at": at})
    # What `llmpulse db migrate --text-days 7` of the v1 sink did (its tables only).
    for statement in Retention(text_days=7).statements()["text_days"]:
        if " spans " not in statement:
            store.command(statement)
    store.client.insert("retention_settings", [["text_days", 7]], column_names=["name", "days"])

    assert store.migrate() == ["0006_agents"]

    old = store.query("SELECT call_id, response_text, latency_ms, span_id, parent_span_id, "
                      "tool_call_count, tool_call_names, reasoning_tokens, "
                      "cache_creation_input_tokens FROM calls").rows
    assert old == [("old-1", "hello", 120.5, "", "", 0, [], 0, 0)]
    assert store.query("SELECT applies_to FROM guardrail_verdicts").scalar() == "response"
    assert store.query("SELECT sum(calls) FROM calls_1m").scalar() == 1
    assert store.query("SHOW CREATE TABLE spans").scalar().count("toIntervalDay(7)") == 3, \
        "a retention set before the migration reaches the new table's text"
    assert Writer(store).write([Sourced(_agent_call(datetime.now(UTC))),
                                Sourced(_span("b0b0b0b0b0b0b0b3"))]).written == {"calls": 1, "spans": 1}
    assert store.query("SELECT count() FROM calls WHERE trace_id = {t:String}", {"t": TRACE}).scalar() == 1
    assert store.query("SELECT sum(calls) FROM calls_1m").scalar() == 2
