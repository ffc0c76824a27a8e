"""The OTLP mapper on agent traces: tool executions, agent invocations and retrievals become
span events; tool calls on messages and answers; span and parent ids; bounded tool text."""

from __future__ import annotations

import json
from pathlib import Path

from opentelemetry.proto.trace.v1.trace_pb2 import Status
from otlp_spans import RECORDED, T0, traces

from llmpulse.processors.otlp import OtlpMapper
from llmpulse.processors.otlp.stage import records_by_partition
from llmpulse.schemas import (
    Limits,
    SpanEvent,
    decode_event,
    decode_record,
    encode_event,
    partition_for,
)

TRACE = bytes.fromhex("4bf92f3577b34da6a3ce929d0e0e4736")
AGENT, CHAT, TOOL, SEARCH = (bytes([n]) * 8 for n in (0xA1, 0xB2, 0xC3, 0xD4))
MS = 1_000_000

ARGS = '{"order": 42}'
AGENT_SPAN = {"name": "invoke_agent support", "trace_id": TRACE, "span_id": AGENT,
              "start": T0, "end": T0 + 900 * MS,
              "attrs": {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support",
                        "gen_ai.agent.id": "agt_1", "gen_ai.provider.name": "openai",
                        "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 300,
                        "gen_ai.usage.output_tokens": 40, "gen_ai.conversation.id": "conv-1",
                        "gen_ai.output.messages": [{"role": "assistant", "parts": [
                            {"type": "text", "content": "Order 42 has shipped."}]}]}}
CHAT_SPAN = {"name": "chat gpt-4o", "trace_id": TRACE, "span_id": CHAT, "parent": AGENT,
             "start": T0 + 10 * MS, "end": T0 + 300 * MS,
             "attrs": {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
                       "gen_ai.input.messages": [
                           {"role": "user", "parts": [{"type": "text", "content": "Where is 42?"}]},
                           {"role": "assistant", "parts": [
                               {"type": "tool_call", "id": "call_0", "name": "whoami",
                                "arguments": {}}]},
                           {"role": "tool", "parts": [
                               {"type": "tool_call_response", "id": "call_0", "response": "ada"}]}],
                       "gen_ai.output.messages": [{"role": "assistant", "finish_reason": "tool_calls",
                                                  "parts": [{"type": "tool_call", "id": "call_1",
                                                             "name": "lookup_order",
                                                             "arguments": ARGS}]}],
                       "gen_ai.usage.reasoning.output_tokens": 64,
                       "gen_ai.usage.cache_creation.input_tokens": 512}}
TOOL_SPAN = {"name": "execute_tool lookup_order", "trace_id": TRACE, "span_id": TOOL, "parent": AGENT,
             "start": T0 + 310 * MS, "end": T0 + 350 * MS,
             "status": (Status.STATUS_CODE_ERROR, "order service timed out"),
             "attrs": {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup_order",
                       "gen_ai.tool.call.id": "call_1", "gen_ai.tool.type": "function",
                       "gen_ai.tool.call.arguments": ARGS, "error.type": "TimeoutError"}}
SEARCH_SPAN = {"name": "retrieval kb", "trace_id": TRACE, "span_id": SEARCH, "parent": AGENT,
               "start": T0 + 360 * MS, "end": T0 + 380 * MS,
               "attrs": {"gen_ai.operation.name": "retrieval", "gen_ai.data_source.id": "kb",
                         "gen_ai.tool.call.result": [{"id": "doc-1", "score": 0.9}]}}


def test_an_agent_trace_maps_onto_calls_and_span_events_that_form_its_tree() -> None:
    record = OtlpMapper().map_traces(traces(AGENT_SPAN, CHAT_SPAN, TOOL_SPAN, SEARCH_SPAN))
    assert (record.dead_letters, record.skipped, len(record.prompts)) == ([], 0, 1)
    trace = TRACE.hex()
    agent, tool, search = record.span_events
    assert all(s.trace_id == trace and s.call_id == s.span_id for s in record.span_events)
    assert (agent.span_id, agent.parent_span_id, agent.name, agent.operation) == (
        AGENT.hex(), None, "support", "invoke_agent")
    assert (agent.result_preview, agent.usage.input_tokens, agent.session_id) == (
        "Order 42 has shipped.", 300, "conv-1")
    assert agent.attributes["gen_ai.agent.id"] == "agt_1" and agent.latency_ms == 900.0
    assert (tool.parent_span_id, tool.name, tool.status, tool.error.type, tool.error.message) == (
        AGENT.hex(), "lookup_order", "error", "TimeoutError", "order service timed out")
    assert (tool.tool.id, tool.tool.name, tool.tool.arguments, tool.tool.arguments_truncated) == (
        "call_1", "lookup_order", ARGS, False)
    assert tool.started_at < tool.occurred_at and tool.latency_ms == 40.0
    assert (search.operation, search.name, json.loads(search.result_preview)) == (
        "retrieval", "kb", [{"id": "doc-1", "score": 0.9}])

    prompt, response = record.prompts[0], record.responses[0]
    assert (prompt.span_id, prompt.parent_span_id) == (CHAT.hex(), AGENT.hex())
    assert prompt.call_id == f"otel-{trace}-{CHAT.hex()}"
    assistant, answered = prompt.messages[1], prompt.messages[2]
    assert (assistant.content, [(t.id, t.name, t.arguments) for t in assistant.tool_calls]) == (
        "", [("call_0", "whoami", "{}")])
    assert (answered.role, answered.tool_call_id, answered.content) == ("tool", "call_0", "ada")
    assert [(t.id, t.name, t.arguments) for t in response.tool_calls] == [
        ("call_1", "lookup_order", ARGS)]
    assert (response.text, response.finish_reason) == ("", "tool_calls")
    assert (response.usage.reasoning_tokens, response.usage.cache_creation_input_tokens) == (64, 512)
    for event in (*record.prompts, *record.responses, *record.span_events):  # what Kafka carries
        assert decode_event(encode_event(event)) == event


def test_megabytes_of_tool_text_are_cut_and_flagged_not_dead_lettered() -> None:
    huge = dict(TOOL_SPAN, attrs=dict(TOOL_SPAN["attrs"], **{
        "gen_ai.tool.call.arguments": json.dumps({"blob": "x" * 100_000}),
        "gen_ai.tool.call.result": "y" * 3_000_000}))
    answer = dict(CHAT_SPAN, attrs=dict(CHAT_SPAN["attrs"], **{"gen_ai.output.messages": [
        {"role": "assistant", "parts": [{"type": "tool_call", "name": "f",
                                         "arguments": "z" * 50_000}]}]}))
    limits = Limits()
    record = OtlpMapper(limits=limits).map_traces(traces(huge, answer))
    assert record.dead_letters == []
    [step] = record.span_events
    assert (len(step.tool.arguments), step.tool.arguments_truncated) == (
        limits.max_tool_arguments_chars, True)
    assert (len(step.result_preview), step.result_truncated) == (limits.max_tool_result_chars, True)
    [call] = record.responses[0].tool_calls
    assert (len(call.arguments), call.arguments_truncated) == (limits.max_tool_arguments_chars, True)


def test_openllmetry_indexed_tool_calls_and_tool_messages() -> None:
    attrs = {"gen_ai.system": "openai", "llm.request.type": "chat", "gen_ai.request.model": "m",
             "gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "Where is 42?",
             "gen_ai.prompt.1.role": "assistant",
             "gen_ai.prompt.1.tool_calls.0.id": "call_9",
             "gen_ai.prompt.1.tool_calls.0.name": "lookup_order",
             "gen_ai.prompt.1.tool_calls.0.arguments": ARGS,
             "gen_ai.prompt.2.role": "tool", "gen_ai.prompt.2.content": "shipped",
             "gen_ai.prompt.2.tool_call_id": "call_9",
             "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.finish_reason": "tool_calls",
             "gen_ai.completion.0.tool_calls.0.id": "call_10",
             "gen_ai.completion.0.tool_calls.0.name": "refund",
             "gen_ai.completion.0.tool_calls.0.arguments": '{"order": 42'}
    record = OtlpMapper().map_traces(traces({"attrs": attrs}))
    assert record.dead_letters == []
    prompt, response = record.prompts[0], record.responses[0]
    assert [(m.role, m.content, [t.name for t in m.tool_calls], m.tool_call_id)
            for m in prompt.messages] == [("user", "Where is 42?", [], None),
                                          ("assistant", "", ["lookup_order"], None),
                                          ("tool", "shipped", [], "call_9")]
    assert [(t.id, t.name, t.arguments) for t in response.tool_calls] == [
        ("call_10", "refund", '{"order": 42')]  # not JSON: kept as the model wrote it


def test_bad_step_spans_are_dead_lettered_with_a_reason_and_the_rest_kept() -> None:
    control = dict(TOOL_SPAN, attrs=dict(TOOL_SPAN["attrs"], **{"gen_ai.tool.name": "look\x00up"}))
    wrong = dict(TOOL_SPAN, span_id=b"\x05" * 8,
                 attrs=dict(TOOL_SPAN["attrs"], **{"gen_ai.tool.call.id": 7}))
    no_ids = dict(SEARCH_SPAN, span_id=b"")
    record = OtlpMapper().map_traces(traces(control, wrong, no_ids, AGENT_SPAN))
    assert [d.reason for d in record.dead_letters] == ["control_character", "invalid_value",
                                                       "missing_ids"]
    assert record.dead_letters[0].error_field == "$.name"  # the tool name names the span
    assert [s.operation for s in record.span_events] == ["invoke_agent"]


def test_step_ids_are_stable_and_a_trace_goes_to_one_partition_keyed_by_trace() -> None:
    data = traces(AGENT_SPAN, TOOL_SPAN, SEARCH_SPAN)
    first, again = OtlpMapper().map_traces(data), OtlpMapper().map_traces(data)
    assert [s.event_id for s in first.span_events] == [s.event_id for s in again.span_events]
    records = list(records_by_partition(first.span_events, 12))
    assert [(p, k) for p, k, _ in records] == [(partition_for(TRACE.hex(), 12), TRACE.hex().encode())]
    decoded = decode_record(records[0][2])
    assert decoded.failures == [] and all(isinstance(e, SpanEvent) for e in decoded.events)
    assert len(decoded.events) == 3


def test_a_recorded_openllmetry_agent_run_forms_one_tree() -> None:
    """Recorded by ``otlp_fixtures/record.py agent``: OpenLLMetry's chat spans inside an
    app's invoke_agent span, and the app's execute_tool span (see the recorder)."""
    data = (Path(__file__).resolve().parent / "otlp_fixtures" / "openllmetry_agent.binpb").read_bytes()
    record = OtlpMapper(limits=RECORDED).map_record(data)
    assert (record.spans, record.skipped, record.dead_letters) == (4, 0, [])
    agent, tool = sorted(record.span_events, key=lambda s: s.operation, reverse=True)
    assert (agent.operation, agent.name, agent.parent_span_id) == ("invoke_agent", "support", None)
    assert agent.result_preview == "Echo: order 42 shipped on Monday"
    asking, answering = sorted(zip(record.prompts, record.responses, strict=True),
                               key=lambda pair: pair[0].occurred_at)
    assert {tool.parent_span_id, asking[0].parent_span_id, answering[0].parent_span_id} == {
        agent.span_id}
    assert len({tool.trace_id, agent.trace_id, asking[0].trace_id, answering[0].trace_id}) == 1
    [asked] = asking[1].tool_calls
    assert (asked.name, json.loads(asked.arguments), asking[1].text) == (
        "lookup_order", {"query": "Where is order 42?"}, "")
    assert (tool.tool.id, tool.tool.name, tool.tool.arguments) == (asked.id, asked.name,
                                                                  asked.arguments)
    assert (tool.status, tool.result_preview) == ("ok", "order 42 shipped on Monday")
    question, assistant, result = answering[0].messages
    assert (question.role, question.content) == ("user", "Where is order 42?")
    assert [t.id for t in assistant.tool_calls] == [asked.id] and assistant.content == ""
    assert (result.role, result.tool_call_id, result.content) == (
        "tool", asked.id, "order 42 shipped on Monday")
    assert answering[1].text == "Echo: order 42 shipped on Monday"
