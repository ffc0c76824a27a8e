"""Agent checks: tool arguments that are not JSON, tool errors, loops, cycles, bounded state."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from llmpulse.processors.agents import CYCLE_ATTRIBUTE, TraceMonitor, arguments_problem
from llmpulse.processors.config import AgentsConfig, load_config
from llmpulse.processors.pipeline import CallPair, Enricher
from llmpulse.processors.step import ProcessingStep, Record
from llmpulse.schemas import (
    ErrorInfo,
    PromptEvent,
    ResponseEvent,
    SpanEvent,
    ToolCall,
    encode_batch,
    encode_event,
)

T0 = datetime.now(UTC) - timedelta(minutes=5)
TRACE = "0af7651916cd43dd8448eb211c80319c"


def span(n: int | str, *, trace: str = TRACE, tool: str | None = "lookup_order",
         arguments: str = '{"order": 42}', parent: str | None = None, **fields: object) -> SpanEvent:
    span_id = f"{n:016x}" if isinstance(n, int) else n
    return SpanEvent(call_id=span_id, span_id=span_id, trace_id=trace, parent_span_id=parent,
                     app="shop", name=tool or "plan", operation="execute_tool" if tool else "invoke_agent",
                     started_at=T0, occurred_at=T0 + timedelta(milliseconds=5), latency_ms=5.0,
                     tool=ToolCall(id=f"call_{n}", name=tool, arguments=arguments) if tool else None,
                     **fields)  # type: ignore[arg-type]


def rules(monitor: TraceMonitor, s: SpanEvent) -> list[str]:
    return [v.rule_id for v in monitor.check(s).verdicts]


@pytest.fixture
def enricher() -> Enricher:
    return Enricher(load_config(environ={}), batched_scorers=[])


@pytest.mark.parametrize(("text", "problem"), [
    ('{"order": 42, "items": [1, 2]}', None),
    ("", None),                                    # a tool without parameters
    ('{"order": 42,}', "not JSON: JSON is malformed: trailing comma in object (byte 13)"),
    ("{order: 42}", "not JSON: JSON is malformed: object keys must be strings (byte 1)"),
    ('{"city": "Paris"', "not JSON: Input data was truncated"),
    ('[{"order": 42}]', "valid JSON, but expected `object`, got `array`"),
])
def test_arguments_that_are_not_a_json_object_say_why_without_quoting_them(text, problem):
    assert arguments_problem(text) == problem


def test_an_answers_tool_calls_with_broken_arguments_are_flagged_on_the_call(enricher):
    prompt = PromptEvent(call_id="c1", app="shop", span_id="00f067aa0ba902b7")
    response = ResponseEvent(call_id="c1", app="shop", latency_ms=800.0, tool_calls=[
        ToolCall(id="call_a", name="lookup_order", arguments='{"order": 42}'),
        ToolCall(id="call_b", name="refund", arguments="{'order': 42}"),          # Python, not JSON
        ToolCall(id="call_c", name="search", arguments='{"q": "x' + "y" * 50, arguments_truncated=True),
    ])
    [call] = enricher.light([CallPair(prompt=prompt, response=response)])
    [verdict] = [v for v in call.verdicts if v.rule_kind == "agent"]
    assert (verdict.rule_id, verdict.applies_to, verdict.attributes["segment"],
            verdict.attributes["tool"]) == ("tool_arguments_invalid_json", "tool_arguments",
                                            "response.tool_calls[1]", "refund")
    assert verdict.span_id == "00f067aa0ba902b7" and verdict.call_id == "c1"
    assert "order" not in (verdict.match_preview or "")      # the reason, never the text
    assert verdict.policy_version == enricher.agents_version
    # redelivered: the same verdict id, so the store keeps one
    [again] = [v for v in enricher.light([CallPair(prompt=prompt, response=response)])[0].verdicts
               if v.rule_kind == "agent"]
    assert again.event_id == verdict.event_id


def test_the_agent_checks_can_be_switched_off():
    enricher = Enricher(load_config(environ={"LLMPULSE_AGENTS__ENABLED": "false"}), batched_scorers=[])
    response = ResponseEvent(call_id="c1", app="shop", latency_ms=1.0,
                             tool_calls=[ToolCall(name="refund", arguments="{broken")])
    [call] = enricher.light([CallPair(response=response)])
    assert not [v for v in call.verdicts if v.rule_kind == "agent"]
    assert ProcessingStep(enricher).traces is None


def test_the_same_tool_with_the_same_arguments_n_times_is_one_agent_loop():
    monitor = TraceMonitor(AgentsConfig())  # the default threshold: 3
    args = ['{"order": 42, "fields": ["status"]}', '{"fields": ["status"], "order": 42}',
            '{"order": 42,  "fields": ["status"]}', '{"order": 42, "fields": ["status"]}']
    got = [rules(monitor, span(i, arguments=a)) for i, a in enumerate(args)]
    assert got == [[], [], ["agent_loop"], []]  # key order and spacing do not matter; flagged once
    assert monitor.counts["agent_loops"] == 1
    # other arguments, another tool, another trace: counted apart
    assert rules(monitor, span(10, arguments='{"order": 43}')) == []
    assert rules(monitor, span(11, tool="refund")) == []
    assert [rules(monitor, span(20 + i, trace="1" * 32)) for i in range(3)] == [[], [], ["agent_loop"]]


def test_the_loop_threshold_is_configurable_and_the_verdict_names_the_trace():
    config = load_config(environ={"LLMPULSE_AGENTS__LOOP_THRESHOLD": "5"}).agents
    monitor = TraceMonitor(config)
    checks = [monitor.check(span(i, parent="a" * 16)) for i in range(6)]
    flagged = [(i, v) for i, c in enumerate(checks) for v in c.verdicts]
    assert [(i, v.rule_id) for i, v in flagged] == [(4, "agent_loop")]
    verdict = flagged[0][1]
    assert (verdict.trace_id, verdict.span_id, verdict.call_id) == (TRACE, f"{4:016x}", f"{4:016x}")
    assert (verdict.applies_to, verdict.rule_kind, verdict.severity) == ("tool_arguments", "agent", "high")
    assert verdict.attributes["count"] == 5 and verdict.attributes["tool"] == "lookup_order"


def test_a_redelivered_span_is_not_counted_twice():
    monitor = TraceMonitor(AgentsConfig())
    first, second = span(1), span(2)
    for s in (first, second, first, second, first):
        assert rules(monitor, s) == []
    assert monitor.counts["spans_redelivered"] == 3
    assert rules(monitor, span(3)) == ["agent_loop"]


def test_a_failed_tool_is_flagged_and_other_failed_steps_are_not():
    monitor = TraceMonitor(AgentsConfig())
    failed = span(1, status="error", error=ErrorInfo(type="TimeoutError", message="upstream 504"))
    [verdict] = monitor.check(failed).verdicts
    assert (verdict.rule_id, verdict.applies_to, verdict.match_preview) == ("tool_error", "tool_result",
                                                                           "TimeoutError")
    assert b"504" not in encode_event(verdict)  # the error type, not its message
    assert rules(monitor, span(2, tool=None, status="error")) == []  # an agent step: the store has its status
    assert rules(monitor, span(3, arguments="{not json")) == ["tool_arguments_invalid_json"]


def test_parent_links_that_form_a_cycle_are_cut_and_said():
    monitor = TraceMonitor(AgentsConfig())
    a, b, c = "a" * 16, "b" * 16, "c" * 16
    assert monitor.check(span(a, parent=b)).span.parent_span_id == b
    assert monitor.check(span(b, parent=c)).span.parent_span_id == c
    closing = monitor.check(span(c, parent=a)).span         # c -> a -> b -> c
    assert closing.parent_span_id is None and closing.attributes[CYCLE_ATTRIBUTE] == a
    again = monitor.check(span(c, parent=a)).span              # redelivered: cut the same way
    assert again.parent_span_id is None and again.attributes == closing.attributes
    selfish = monitor.check(span("d" * 16, parent="d" * 16)).span
    assert selfish.parent_span_id is None and monitor.counts["span_parent_cycles"] == 2
    # a child whose parent never arrives is emitted as it is: nothing waits for a parent
    orphan = monitor.check(span("e" * 16, parent="f" * 16)).span
    assert orphan.parent_span_id == "f" * 16


def test_ten_thousand_spans_in_one_trace_keep_the_state_bounded():
    monitor = TraceMonitor(AgentsConfig(max_spans_per_trace=1_000))
    step_verdicts = []
    for i in range(10_000):
        step_verdicts.extend(monitor.check(span(i, arguments=json.dumps({"page": i % 2_000}))).verdicts)
    assert monitor.tracked_spans == 1_000 and monitor.counts["spans_untracked"] == 9_000
    # tools seen among the first 1,000 spans still count: pages 0-999 come 5 times (>= 3),
    # pages 1,000-1,999 were never remembered
    loops = {v.attributes["segment"] for v in step_verdicts}
    assert len(step_verdicts) == 1_000 and loops == {"tool.arguments"}


def test_many_traces_and_idle_traces_are_dropped_and_counted():
    now = [0.0]
    monitor = TraceMonitor(AgentsConfig(max_traces=100, max_tracked_spans=150, trace_idle_s=60),
                           clock=lambda: now[0])
    for t in range(300):
        monitor.check(span(1, trace=f"{t:032x}"))
    assert len(monitor) == 100 and monitor.counts["traces_evicted"] == 200
    for t in range(100):          # two spans each: at most 150 remembered over all traces
        monitor.check(span(2, trace=f"{t:032x}"))
    assert monitor.tracked_spans <= 150
    now[0] = 61.0
    monitor.check(span(1, trace="f" * 32))
    assert len(monitor) == 1 and monitor.counts["traces_idle_dropped"] > 0


def test_the_step_takes_spans_from_llm_spans_only_and_dead_letters_the_rest(enricher):
    step = ProcessingStep(enricher)
    good = [span(i) for i in range(3)]
    huge = encode_event(span(7))[:-1] + b',"result_preview":"' + b"r" * 1_000_000 + b'"}'
    records = [
        Record("p.llm.spans", encode_batch([encode_event(s) for s in good]), partition=2, offset=10),
        Record("p.llm.spans", huge, partition=2, offset=11),
        Record("p.llm.spans", encode_event(PromptEvent(call_id="x", app="shop")), partition=2, offset=12),
        Record("p.llm.prompts", encode_event(span(8)), partition=0, offset=5),
    ]
    out = step.process(records, now=0.0)
    assert [s.span_id for s in out.traced.spans] == [s.span_id for s in good]
    assert [v.rule_id for v in out.traced.verdicts] == ["agent_loop"]
    assert sorted((d.reason, d.source_topic, d.source_offset) for d in out.dead_letters) == [
        ("limit_exceeded", "p.llm.spans", 11), ("unknown_type", "p.llm.prompts", 5),
        ("unknown_type", "p.llm.spans", 12)]
    assert step.counts["spans"] == 3 and not out.calls


def test_a_span_whose_checks_fail_still_goes_on(enricher, monkeypatch):
    step = ProcessingStep(enricher)
    assert step.traces is not None

    def broken(s):
        raise RuntimeError("boom")

    monkeypatch.setattr(step.traces, "check", broken)
    traced = step.trace([span(1), span(2)])
    assert [s.span_id for s in traced.spans] == [f"{1:016x}", f"{2:016x}"]
    assert step.counts["span_errors"] == 2
