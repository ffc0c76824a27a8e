"""Per-call cost on the app's thread: llmpulse against Langfuse, OpenTelemetry, and the floor.

One LLM call (a prompt with two messages and a retrieved document, a response with
usage) is recorded by each subject, in the same process, one subject after the other,
each with its background work running, in two regimes:

- ``app_paced``: the app thread makes 1,000 calls/s and waits (sleeps, as it would on its
  model's HTTP response) between them: how an LLM app calls, and still ten times the rate
  of one thread waiting on a real model. Background threads run in the gaps and whenever
  they take the interpreter lock; the goals are judged here.
- ``back_to_back``: the app thread does nothing but capture, N calls in a row. Every
  in-process design then pays its total Python work per call on the app thread (the
  background shares the one interpreter lock); the floor pushes its sending to
  librdkafka's C threads. Reported with the same ratios, as the worst case.

The subjects:

- ``floor``: encode the prompt and response events with llmpulse's contracts and
  ``confluent_kafka.Producer.produce`` both (librdkafka sends from its C threads);
- ``llmpulse``: ``with llmpulse.producers.call(...) as c: c.record_response(...)``;
- ``otel``: one OpenTelemetry span with the GenAI attributes, BatchSpanProcessor and an
  in-memory exporter;
- ``langfuse``: one Langfuse generation (v5 SDK) with input, output, model and usage,
  configured for a local host where nothing listens, so it buffers.

Agent steps (issue #14), inside one open ``llmpulse.trace()`` run, reported under
``agents`` beside the keys above:

- ``floor_span``: encode one ``SpanEvent`` (a tool execution with its arguments and a
  result preview) and ``Producer.produce`` it on ``llm.spans``;
- ``llmpulse_tool_call``: one call of an ``@llmpulse.tool`` function (arguments bound and
  written as JSON, the result's preview kept; one ``SpanEvent``), against ``floor_span``;
- ``llmpulse_nested_call``: the ``llmpulse`` subject's call made inside the run (a child
  span: trace and parent ids, session and metadata propagated), against ``floor``.

Then: sustained capture rate of one app thread with the broker up (all delivered), and
memory held while the broker is down for 100,000 events. Prints JSON.

    uv run python benchmarks/sdk_overhead.py [--n 20000] [--n-paced 10000] [--bootstrap HOST:PORT]

Without ``--bootstrap`` a single-node Kafka is started with scripts/kafka.sh.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from random import getrandbits

from confluent_kafka import Producer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import llmpulse.producers as llmpulse  # noqa: E402
from llmpulse.cli.topics import ensure_topics  # noqa: E402
from llmpulse.schemas import (  # noqa: E402
    ChatMessage,
    PromptEvent,
    ResponseEvent,
    RetrievedDocument,
    SpanEvent,
    TokenUsage,
    ToolCall,
    encode_event,
    partition_for,
    utcnow,
    uuid7_str,
)

SYSTEM = "You are a helpful support agent for ACME parcels. Answer briefly and politely."
QUESTION = "My parcel with order number 12345 has not arrived yet, where is it?"
DOC = "Parcels ship within two working days; tracking links are sent by email."
ANSWER = "I am sorry for the delay. Your parcel left our warehouse yesterday and arrives tomorrow."
PACED_RATE = 1_000.0
MESSAGES = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]


def _quantiles(samples: list[int]) -> dict[str, float]:
    samples.sort()
    n = len(samples)
    return {"p50_us": round(samples[n // 2] / 1000, 2), "p99_us": round(samples[int(n * 0.99)] / 1000, 2),
            "mean_us": round(sum(samples) / n / 1000, 2)}


def _measure(op: Callable[[], None], n: int, *, rate: float = 0.0,
             warmup: int = 2000) -> dict[str, float]:
    """The app thread's time in ``op``, ``n`` times; at ``rate`` calls/s (sleeping between
    calls) or back to back when 0."""
    for _ in range(warmup):
        op()
    samples = []
    clock = time.perf_counter_ns
    gap = 1.0 / rate if rate else 0.0
    next_at = time.perf_counter()
    for _ in range(n):
        if gap:
            next_at += gap
            wait = next_at - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
        t0 = clock()
        op()
        samples.append(clock() - t0)
    return _quantiles(samples)


def _ratios(regime: dict[str, dict[str, float]]) -> dict[str, object]:
    ours, floor, lf = regime["llmpulse"], regime["floor"], regime["langfuse_generation"]
    ratios = {"llmpulse_p50_over_floor_p50": round(ours["p50_us"] / floor["p50_us"], 2),
              "llmpulse_p99_over_floor_p99": round(ours["p99_us"] / floor["p99_us"], 2),
              "llmpulse_p50_over_langfuse_p50": round(ours["p50_us"] / lf["p50_us"], 3)}
    return {"ratios": ratios, "goals_met": {
        "p50 <= 1.5x floor": ratios["llmpulse_p50_over_floor_p50"] <= 1.5,
        "p50 <= langfuse / 4": ratios["llmpulse_p50_over_langfuse_p50"] <= 0.25,
        "p99 <= 2x floor p99": ratios["llmpulse_p99_over_floor_p99"] <= 2.0}}


def _agent_ratios(regime: dict[str, dict[str, float]]) -> dict[str, object]:
    tool, span = regime["llmpulse_tool_call"], regime["floor_span"]
    nested, floor = regime["llmpulse_nested_call"], regime["floor"]
    ratios = {"tool_call_p50_over_floor_span_p50": round(tool["p50_us"] / span["p50_us"], 2),
              "tool_call_p99_over_floor_span_p99": round(tool["p99_us"] / span["p99_us"], 2),
              "nested_call_p50_over_floor_p50": round(nested["p50_us"] / floor["p50_us"], 2),
              "nested_call_p99_over_floor_p99": round(nested["p99_us"] / floor["p99_us"], 2)}
    return {name: regime[name] for name in ("floor_span", "llmpulse_tool_call",
                                            "llmpulse_nested_call")} | {
        "ratios": ratios, "goals_met": {
            "tool call p50 <= 1.5x floor_span": ratios["tool_call_p50_over_floor_span_p50"] <= 1.5,
            "nested call p50 <= 1.5x floor": ratios["nested_call_p50_over_floor_p50"] <= 1.5}}


def floor_op(bootstrap: str, partitions: int) -> tuple[Callable[[], None], Callable[[], None]]:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "compression.type": "zstd", "linger.ms": 5})

    def op() -> None:
        call_id = uuid7_str()
        prompt = PromptEvent(call_id=call_id, app="bench", prompt_id="answer", prompt_version="3",
                             request_model="gpt-4o-mini",
                             messages=[ChatMessage(role="system", content=SYSTEM),
                                       ChatMessage(role="user", content=QUESTION)],
                             retrieved_context=[RetrievedDocument(id="kb-1", content=DOC)])
        response = ResponseEvent(call_id=call_id, app="bench", prompt_id="answer",
                                 prompt_version="3", request_model="gpt-4o-mini", text=ANSWER,
                                 usage=TokenUsage(input_tokens=48, output_tokens=19),
                                 latency_ms=812.0)
        part = partition_for(call_id, partitions)
        producer.produce("llm.prompts", encode_event(prompt), call_id, partition=part)
        producer.produce("llm.responses", encode_event(response), call_id, partition=part)
        producer.poll(0)

    return op, lambda: producer.flush(30)


TOOL_ARGS = '{"order_id": "12345"}'
TOOL_RESULT = {"order_id": "12345", "status": "shipped", "eta": "tomorrow", "carrier": "DHL"}


def floor_span_op(bootstrap: str, partitions: int) -> tuple[Callable[[], None], Callable[[], None]]:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "compression.type": "zstd", "linger.ms": 5})
    trace_id = uuid7_str().replace("-", "")

    def op() -> None:
        span_id = f"{getrandbits(64):016x}"
        span = SpanEvent(call_id=span_id, span_id=span_id, trace_id=trace_id, app="bench",
                         name="lookup_order", operation="execute_tool", started_at=utcnow(),
                         latency_ms=0.1, tool=ToolCall(name="lookup_order", arguments=TOOL_ARGS),
                         result_preview=json.dumps(TOOL_RESULT))
        producer.produce("llm.spans", encode_event(span), trace_id,
                         partition=partition_for(trace_id, partitions))
        producer.poll(0)

    return op, lambda: producer.flush(30)


def llmpulse_tool_op() -> Callable[[], None]:
    @llmpulse.tool
    def lookup_order(order_id: str) -> dict[str, str]:
        return TOOL_RESULT

    return lambda: lookup_order("12345") and None


def llmpulse_op() -> Callable[[], None]:
    def op() -> None:
        with llmpulse.call(prompt_id="answer", prompt_version="3", model="gpt-4o-mini",
                           messages=MESSAGES, context=[{"id": "kb-1", "content": DOC}]) as c:
            c.record_response(ANSWER, input_tokens=48, output_tokens=19)

    return op


def otel_op() -> tuple[Callable[[], None], Callable[[], None]]:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("bench")

    def op() -> None:
        with tracer.start_as_current_span("chat gpt-4o-mini") as span:
            span.set_attributes({"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
                                 "gen_ai.prompt.0.content": SYSTEM, "gen_ai.prompt.1.content": QUESTION,
                                 "gen_ai.retrieval.documents": DOC, "llmpulse.prompt_id": "answer"})
            span.set_attributes({"gen_ai.completion.0.content": ANSWER, "gen_ai.usage.input_tokens": 48,
                                 "gen_ai.usage.output_tokens": 19})

    def stop() -> None:
        provider.shutdown()
        exporter.clear()

    return op, stop


def langfuse_op() -> tuple[Callable[[], None], Callable[[], None]]:
    from langfuse import Langfuse
    from opentelemetry.sdk.trace import TracerProvider

    for name in ("langfuse", "opentelemetry"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    client = Langfuse(public_key="pk-bench", secret_key="sk-bench", host="http://127.0.0.1:9",
                      tracer_provider=TracerProvider(), timeout=1)

    def op() -> None:
        with client.start_as_current_observation(name="answer", as_type="generation",
                                                 model="gpt-4o-mini", input=MESSAGES,
                                                 metadata={"context": DOC}) as gen:
            gen.update(output=ANSWER, usage_details={"input": 48, "output": 19})

    return op, lambda: None


def _rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20_000, help="back-to-back calls per subject")
    parser.add_argument("--n-paced", type=int, default=10_000,
                        help="calls per subject at 1,000 calls/s")
    parser.add_argument("--bootstrap", default=None)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="llmpulse-bench-"))
    from kafka_broker import broker_unless_given

    bootstrap, broker = broker_unless_given(args.bootstrap, tmp)
    try:
        report = ensure_topics(bootstrap, partitions=6)
        partitions = next(t.partitions for t in report if t.name == "llm.prompts")
        out: dict[str, object] = {"n": args.n, "payload": "1 call = prompt (2 messages, 1 document) "
                                  "+ response with usage; floor produces the same two events"}
        paced: dict[str, dict[str, float]] = {}
        flat: dict[str, dict[str, float]] = {}
        def both(name: str, op: Callable[[], None]) -> None:
            print(f"measuring {name}", file=sys.stderr, flush=True)
            paced[name] = _measure(op, args.n_paced, rate=PACED_RATE)
            flat[name] = _measure(op, args.n)

        op, stop = floor_op(bootstrap, partitions)
        both("floor", op)
        stop()
        llmpulse.init(app="bench", bootstrap_servers=bootstrap, spool_dir=tmp / "spool",
                      warn_on_drop=False)
        both("llmpulse", llmpulse_op())
        llmpulse.flush(30)
        op, stop = otel_op()
        both("otel_batch_span", op)
        stop()
        op, stop = langfuse_op()
        both("langfuse_generation", op)
        stop()
        out["app_paced"] = {"calls_per_s": PACED_RATE, "n": args.n_paced, **paced,
                            **_ratios(paced)}
        out["back_to_back"] = {"n": args.n, **flat, **_ratios(flat)}

        # Agent steps: a tool call and a nested call inside one open run (issue #14).
        op, stop = floor_span_op(bootstrap, partitions)
        both("floor_span", op)
        stop()
        with llmpulse.trace(name="bench-agent", session_id="s-1", metadata={"tenant": "acme"}):
            both("llmpulse_tool_call", llmpulse_tool_op())
            both("llmpulse_nested_call", llmpulse_op())
        llmpulse.flush(30)
        out["agents"] = {regime: _agent_ratios(numbers)
                         for regime, numbers in (("app_paced", paced), ("back_to_back", flat))}

        # Sustained: one app thread capturing as fast as it can for 3 s, broker up.
        before = llmpulse.stats()["sent"]
        op = llmpulse_op()
        calls, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < 3.0:
            op()
            calls += 1
        elapsed = time.perf_counter() - t0
        llmpulse.flush(60)
        stats = llmpulse.stats()
        out["sustained"] = {"calls_per_s": round(calls / elapsed), "events_per_s": round(2 * calls / elapsed),
                            "all_delivered": stats["sent"] - before == 2 * calls,
                            "dropped": stats["dropped"]}
        llmpulse.shutdown()

        # Broker down: 50,000 calls = 100,000 events, memory held and the spool.
        gc.collect()
        rss0 = _rss_kib()
        llmpulse.init(app="bench-down", bootstrap_servers="127.0.0.1:9", spool_dir=tmp / "spool-down",
                      warn_on_drop=False, delivery_timeout_s=2.0)
        for _ in range(50_000):
            op()
        time.sleep(1.0)
        stats = llmpulse.stats()
        out["broker_down_100k_events"] = {
            "rss_growth_mib": round((_rss_kib() - rss0) / 1024, 1),
            "buffered_events_cap": 100_000, "spool_events": stats["spool_events"],
            "spool_mib": round(stats["spool_bytes"] / 2**20, 1), "queue_depth": stats["queue_depth"],
            "dropped": stats["dropped"]}
        llmpulse.shutdown(1)
    finally:
        if broker is not None:
            broker.stop()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
