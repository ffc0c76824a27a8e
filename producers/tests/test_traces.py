"""Traces: trace() and nested @track form a tree; propagated session, user and metadata;
OpenTelemetry ids; generators under @track; tool spans; bad input bounded."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from local_events import LocalEvents

import llmpulse.producers as llmpulse
from llmpulse.schemas import Limits, PromptEvent, ResponseEvent, SpanEvent

LIMITS = Limits()


@pytest.fixture
def sink() -> Iterator[LocalEvents]:
    captured = LocalEvents()
    llmpulse.init(app="agent", deliver_to=captured.deliver)
    yield captured
    llmpulse.shutdown()


def test_trace_and_nested_track_form_one_tree_with_propagated_attributes(sink: LocalEvents) -> None:
    @llmpulse.track(prompt_id="inner")
    def inner(question: str) -> str:
        return "inner answer"

    @llmpulse.track(prompt_id="outer")
    def outer(question: str) -> str:
        return inner("sub-question") + " / outer"

    @llmpulse.tool
    def lookup_order(order_id: str, verbose: bool = False) -> dict[str, str]:
        return {"order": order_id, "status": "shipped"}

    with llmpulse.trace(name="support-agent", session_id="s-1", user_id="u-7",
                        metadata={"tenant": "acme", "plan": "pro"}) as run:
        outer("where is my parcel?")
        lookup_order("A-17")
        with llmpulse.call(prompt_id="direct", attributes={"plan": "free"}) as c:
            c.record_response("direct answer", input_tokens=40, output_tokens=7,
                              reasoning_tokens=3, cost_usd=0.002)
    assert llmpulse.current_span() is None  # nothing leaks out of the block

    agent = sink.span("support-agent")
    assert agent.operation == "invoke_agent" and agent.parent_span_id is None
    assert agent.trace_id == run.trace_id and agent.span_id == run.span_id
    assert agent.call_id == agent.span_id and agent.status == "ok"
    prompts = {p.prompt_id: p for p in sink.of(PromptEvent)}
    assert {p.trace_id for p in prompts.values()} == {run.trace_id}
    assert prompts["outer"].parent_span_id == run.span_id
    assert prompts["inner"].parent_span_id == prompts["outer"].span_id  # a child of outer
    assert prompts["direct"].parent_span_id == run.span_id
    tool = sink.span("lookup_order")
    assert tool.parent_span_id == run.span_id and tool.trace_id == run.trace_id
    for p in prompts.values():
        assert (p.session_id, p.user_id) == ("s-1", "u-7")
        assert p.attributes["tenant"] == "acme"
        assert sink.response(p.call_id).span_id == p.span_id
    assert prompts["direct"].attributes["plan"] == "free"  # the call's own value wins
    assert tool.session_id == "s-1" and tool.attributes == {"tenant": "acme", "plan": "pro"}
    # the run carries its totals: 3 LLM calls (inner, outer, direct), 1 tool call
    assert agent.attributes["llmpulse.llm_calls"] == 3
    assert agent.attributes["llmpulse.tool_calls"] == 1 and agent.attributes["llmpulse.errors"] == 0
    assert agent.usage is not None and agent.cost_usd == 0.002
    assert (agent.usage.input_tokens, agent.usage.output_tokens, agent.usage.reasoning_tokens) == (
        40, 7, 3)
    # every span id is distinct, OpenTelemetry-shaped
    ids = [p.span_id for p in prompts.values()] + [tool.span_id, agent.span_id]
    assert len(set(ids)) == len(ids) and all(len(i) == 16 for i in ids)
    assert len(run.trace_id) == 32 and int(run.trace_id, 16) > 0


def test_tracked_calls_alone_stay_alone_but_a_parent_call_starts_a_trace(sink: LocalEvents) -> None:
    @llmpulse.track
    def alone(q: str) -> str:
        return "a"

    @llmpulse.track
    def parent(q: str) -> str:
        return alone(q)

    alone("x")
    lone = sink.of(PromptEvent)[-1]
    assert lone.trace_id is None and lone.parent_span_id is None and lone.span_id
    parent("y")
    child, root = sink.of(PromptEvent)[-2:]
    assert root.trace_id is not None and child.trace_id == root.trace_id
    assert child.parent_span_id == root.span_id and root.parent_span_id is None


def test_async_trace_follows_tasks_and_keeps_concurrent_runs_apart(sink: LocalEvents) -> None:
    @llmpulse.track(prompt_id="step")
    async def step(q: str) -> str:
        await asyncio.sleep(0)
        return q.upper()

    async def run(name: str) -> str:
        async with llmpulse.trace(name=name, session_id=name) as t:
            await asyncio.gather(step(f"{name}-1"), step(f"{name}-2"))
        return t.trace_id

    async def both() -> list[str]:
        return list(await asyncio.gather(run("run-a"), run("run-b")))

    trace_a, trace_b = asyncio.run(both())
    assert trace_a != trace_b
    for p in sink.of(PromptEvent):
        run_name = "run-a" if p.trace_id == trace_a else "run-b"
        assert p.session_id == run_name and p.parent_span_id == sink.span(run_name).span_id


def test_opentelemetry_active_span_gives_the_trace_and_parent(sink: LocalEvents) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("app")
    with tracer.start_as_current_span("http request") as otel_span:
        ctx = otel_span.get_span_context()
        with llmpulse.trace(name="agent-under-otel"), llmpulse.call(prompt_id="p") as c:
            c.record_response("ok")
        with llmpulse.call(prompt_id="bare") as c:
            c.record_response("ok")
    agent = sink.span("agent-under-otel")
    assert agent.trace_id == f"{ctx.trace_id:032x}"
    assert agent.parent_span_id == f"{ctx.span_id:016x}"
    prompts = {p.prompt_id: p for p in sink.of(PromptEvent)}
    assert prompts["p"].trace_id == agent.trace_id and prompts["p"].parent_span_id == agent.span_id
    assert prompts["bare"].trace_id == agent.trace_id
    assert prompts["bare"].parent_span_id == f"{ctx.span_id:016x}"


def test_track_on_generators_assembles_text_and_ends_at_the_last_item(sink: LocalEvents) -> None:
    @llmpulse.track(prompt_id="story")
    def story(prompt: str) -> Iterator[str]:
        yield "Once "
        yield "upon "
        yield "a time."

    items = story("Tell me a story")
    assert next(items) == "Once "
    assert sink.of(ResponseEvent) == []  # still running: nothing recorded yet
    assert llmpulse.current_call() is None  # the generator's call does not leak out
    assert list(items) == ["upon ", "a time."]
    (answer,) = sink.of(ResponseEvent)
    assert answer.text == "Once upon a time." and answer.streamed
    assert answer.time_to_first_token_ms is not None
    assert answer.time_to_first_token_ms <= answer.latency_ms
    assert sink.of(PromptEvent)[0].messages[0].content == "Tell me a story"

    @llmpulse.track(prompt_id="async-story")
    async def astory(prompt: str) -> AsyncIterator[str]:
        for word in ("async ", "words"):
            await asyncio.sleep(0)
            yield word

    @llmpulse.track(prompt_id="broken-stream")
    def broken(prompt: str) -> Iterator[str]:
        yield "partial"
        raise ValueError("stream broke")

    async def consume() -> str:
        return "".join([w async for w in astory("go")])

    assert asyncio.run(consume()) == "async words"
    with pytest.raises(ValueError, match="stream broke"):
        list(broken("go"))
    early = story("stop early")
    next(early)
    early.close()  # the consumer stopped: what it got is recorded
    answers = {p.prompt_id: sink.response(p.call_id) for p in sink.of(PromptEvent)}
    assert answers["async-story"].text == "async words"
    assert answers["broken-stream"].text == "partial"
    error = answers["broken-stream"].error
    assert error is not None and error.type == "ValueError"
    assert [r.text for r in sink.of(ResponseEvent)][-1] == "Once "


def test_tool_spans_status_errors_results_and_raw_arguments(sink: LocalEvents) -> None:
    class Orders:
        @llmpulse.tool(name="lookup_order")
        def lookup(self, order_id: str) -> str:
            return f"order {order_id}: shipped"

    @llmpulse.track(kind="tool", name="double")
    def track_tool(n: int) -> int:
        return 2 * n

    @llmpulse.tool
    async def flaky(attempt: int) -> None:
        raise TimeoutError(f"attempt {attempt} timed out")

    with llmpulse.trace(name="run"):
        assert Orders().lookup("A-17") == "order A-17: shipped"
        with pytest.raises(TimeoutError):
            asyncio.run(flaky(3))
        with llmpulse.tool_span("search", "{query: not json", tool_call_id="call_9") as t:
            t.record_result(["doc-1", "doc-2"])
        with llmpulse.span("kb", operation="retrieval"):
            assert track_tool(2) == 4
    ok = sink.span("lookup_order")
    assert ok.operation == "execute_tool" and ok.status == "ok" and ok.error is None
    assert ok.tool is not None and ok.tool.arguments == '{"order_id":"A-17"}'  # no self
    assert ok.result_preview == "order A-17: shipped" and not ok.result_truncated
    assert ok.latency_ms >= 0 and ok.started_at <= ok.occurred_at
    failed = sink.span("flaky")
    assert failed.status == "error" and failed.error is not None
    assert failed.error.type == "TimeoutError" and "attempt 3" in failed.error.message
    raw = sink.span("search")
    assert raw.tool is not None and raw.tool.arguments == "{query: not json"
    assert raw.tool.id == "call_9" and raw.result_preview == '["doc-1","doc-2"]'
    assert sink.span("kb").operation == "retrieval"
    double = sink.span("double")
    assert double.operation == "execute_tool" and double.parent_span_id == sink.span("kb").span_id
    assert double.tool is not None and double.tool.arguments == '{"n":2}'
    assert double.result_preview == "4"
    assert {s.trace_id for s in sink.of(SpanEvent)} == {sink.span("run").trace_id}
    assert {k for t, k, _ in sink.records if t == "llm.spans"} == {sink.span("run").trace_id}


def test_megabyte_results_and_arguments_are_bounded(sink: LocalEvents) -> None:
    @llmpulse.tool
    def dump(blob: str) -> str:
        return "r" * 3_000_000

    dump("a" * 2_000_000)
    with llmpulse.tool_span("bytes", b"\x00" * 10) as t:
        t.record_result(b"x" * 5_000_000)
    span = sink.span("dump")
    assert span.result_truncated and len(span.result_preview or "") == LIMITS.max_tool_result_chars
    assert span.tool is not None and span.tool.arguments_truncated
    assert len(span.tool.arguments) == LIMITS.max_tool_arguments_chars
    assert sink.span("bytes").result_truncated
    assert llmpulse.stats()["dropped"] == 0


def test_ten_thousand_spans_in_one_trace_do_not_grow_memory(sink: LocalEvents) -> None:
    counted = {"spans": 0}

    def count(topic: str, key: bytes, value: bytes) -> None:
        counted["spans"] += topic == "llm.spans"

    llmpulse.init(app="agent", deliver_to=count)

    @llmpulse.tool
    def step(i: int) -> int:
        return i

    def run(n: int) -> int:
        gc.collect()
        tracemalloc.start()
        with llmpulse.trace(name="long-run"):
            for i in range(n):
                step(i)
            gc.collect()
            held = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        return held

    small = run(100)
    large = run(10_000)
    assert counted["spans"] == 100 + 1 + 10_000 + 1  # every step and both runs delivered
    assert large < small + 256 * 1024, (small, large)  # nothing kept per step


@pytest.mark.kafka
def test_spans_reach_llm_spans_keyed_and_partitioned_by_trace_id(
        kafka_bootstrap: str, tmp_path: Any) -> None:
    import uuid

    from kafka_events import read_events

    from llmpulse.cli.topics import ensure_topics
    from llmpulse.schemas import partition_for

    prefix = f"t{uuid.uuid4().hex[:8]}."
    ensure_topics(kafka_bootstrap, prefix=prefix, partitions=4)
    llmpulse.init(app="agent", bootstrap_servers=kafka_bootstrap, topic_prefix=prefix,
                  spool_dir=tmp_path / "spool", flush_interval_s=0.05)
    try:
        traces = []
        for n in range(6):
            with llmpulse.trace(name=f"run-{n}") as run, llmpulse.tool_span("lookup", {"n": n}):
                pass
            traces.append(run.trace_id)
        assert llmpulse.flush(10)
    finally:
        llmpulse.shutdown()
    got = read_events(kafka_bootstrap, [f"{prefix}llm.spans"], expected=12)
    assert len(got) == 12 and {type(e.event) for e in got} == {SpanEvent}
    for e in got:  # a batch record carries its first event's key: the same partition
        assert e.partition == partition_for(e.event.trace_id, 4)
        assert e.key is not None and partition_for(e.key.decode(), 4) == e.partition
        assert e.batched or e.key == e.event.trace_id.encode()
    assert {e.event.trace_id for e in got} == set(traces)
    assert len({e.partition for e in got}) > 1  # spread by trace, not all on one partition


def test_nested_runs_add_their_totals_to_the_outer_run(sink: LocalEvents) -> None:
    @llmpulse.tool
    def broken_tool() -> None:
        raise RuntimeError("tool down")

    with llmpulse.trace(name="outer"):
        with llmpulse.trace(name="sub-agent"):
            with llmpulse.call(prompt_id="p") as c:
                c.record_response("x", input_tokens=10, output_tokens=2)
            with pytest.raises(RuntimeError):
                broken_tool()
        with llmpulse.call(prompt_id="q") as c:
            c.record_response("y", input_tokens=5, output_tokens=1)
    sub, outer = sink.span("sub-agent"), sink.span("outer")
    assert sub.parent_span_id == outer.span_id and sub.trace_id == outer.trace_id
    assert sub.attributes["llmpulse.errors"] == 1 and sub.usage is not None
    assert sub.usage.input_tokens == 10 and sub.cost_usd is None
    assert outer.attributes["llmpulse.llm_calls"] == 2
    assert outer.attributes["llmpulse.tool_calls"] == 1 and outer.attributes["llmpulse.errors"] == 1
    assert outer.usage is not None and (outer.usage.input_tokens, outer.usage.output_tokens) == (15, 3)


def test_a_run_replayed_from_history_keeps_the_times_it_is_given(sink: LocalEvents) -> None:
    from datetime import UTC, datetime, timedelta

    at = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    with llmpulse.trace(name="order-agent", occurred_at=at) as run:
        with llmpulse.tool_span("carrier_status", '{"order_id": "A1"}',
                                occurred_at=at + timedelta(milliseconds=5)) as step:
            step.record_error("TimeoutError", "carrier API timed out")
            step.record_latency(2000.0)
        run.record_latency(2100.0)
    agent, tool = sink.span("order-agent"), sink.span("carrier_status")
    assert (agent.started_at, agent.latency_ms) == (at, 2100.0)
    assert agent.occurred_at == at + timedelta(milliseconds=2100)
    assert (tool.started_at, tool.latency_ms, tool.status) == (at + timedelta(milliseconds=5), 2000.0,
                                                               "error")
    assert tool.parent_span_id == agent.span_id
