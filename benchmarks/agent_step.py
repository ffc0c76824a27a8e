"""The processing step's cost of agent traffic, in process: a span against a plain call.

Agent runs are made by the SDK as in ``worker_throughput.py --agent-share`` (two calls and
two spans each: ``trace()``, a call answered with a tool call, the tool's ``tool_span``, a
call that answers), and as many plain calls. Each part is timed on its own, CPU time, best
of ``--repeat``, per event: the spans' ``take`` (decode, validate), ``trace`` (the
``TraceMonitor`` checks and the guardrails on arguments and result; both also apart) and
their encoding for ``llm.enriched``; the calls' ``take`` (with the join) and ``light``, for
agent runs' calls and for plain calls. The baseline is the plain call (``span_over_call``).

Prints JSON. ``uv run python benchmarks/agent_step.py [--runs 2000] [--repeat 5]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from worker_throughput import _agent_run

import llmpulse.producers as llmpulse
from llmpulse.processors.config import load_config
from llmpulse.processors.pipeline import Enricher
from llmpulse.processors.step import ProcessingStep, Record
from llmpulse.processors.worker.faust_app import batches
from llmpulse.schemas import encode_batch


def _records(make: Callable[[int], None], runs: int) -> dict[str, list[Record]]:
    """What the SDK sends for ``runs`` runs of ``make``, as batch records of 400, by topic."""
    sent: list[tuple[str, bytes]] = []
    llmpulse.init(app="bench", bootstrap_servers=None, warn_on_drop=False,
                  deliver_to=lambda topic, key, value: sent.append((topic, value)))
    for i in range(runs):
        make(i)
    llmpulse.flush(30)
    llmpulse.shutdown()
    by_topic: dict[str, list[bytes]] = {}
    for topic, value in sent:
        by_topic.setdefault(topic, []).append(value)
    return {topic: [Record(topic, encode_batch(values[i:i + 400]))
                    for i in range(0, len(values), 400)] for topic, values in by_topic.items()}


def _plain_pair(i: int) -> None:
    for _ in range(2):
        with llmpulse.call(prompt_id="answer", prompt_version="3", model="gpt-4o-mini",
                           messages=[{"role": "user", "content": f"Where is my parcel {i}?"}]) as c:
            c.record_response("It ships tomorrow; tracking comes by email.", input_tokens=12,
                              output_tokens=9)


def _best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.process_time()
        result = fn()
        best = min(best, time.process_time() - t0)
    return best, result


def _calls(step: ProcessingStep, records: dict[str, list[Record]], repeat: int) -> dict[str, float]:
    recs = [r for topic, rs in records.items() if topic != "llm.spans" for r in rs]
    take_s, taken = _best(lambda: step.take(recs, now=0.0), repeat)
    light_s, calls = _best(lambda: step.light(taken.pairs), repeat)
    n = len(calls)
    return {"calls": n, "take_us": round(take_s / n * 1e6, 1), "light_us": round(light_s / n * 1e6, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    step = ProcessingStep(Enricher(load_config(environ={}), batched_scorers=[]))
    agent = _records(_agent_run, args.runs)
    plain = _records(_plain_pair, args.runs)
    r = args.repeat
    take_s, taken = _best(lambda: step.take(agent["llm.spans"], now=0.0), r)
    spans = taken.spans
    trace_s, traced = _best(lambda: step.trace(spans), r)
    monitor = step.traces
    assert monitor is not None
    check_s, _ = _best(lambda: [monitor.check(s) for s in spans], r)
    guard_s, _ = _best(lambda: [step.enricher.guard_span(s) for s in spans], r)
    encode_s, _ = _best(lambda: list(batches(traced.spans)), r)
    n = len(spans)
    per_span = {"take_us": take_s / n * 1e6, "trace_us": trace_s / n * 1e6,
                "of_which_checks_us": check_s / n * 1e6, "of_which_guardrails_us": guard_s / n * 1e6,
                "encode_us": encode_s / n * 1e6}
    span_total = per_span["take_us"] + per_span["trace_us"] + per_span["encode_us"]
    agent_calls, plain_calls = _calls(step, agent, r), _calls(step, plain, r)
    call_total = plain_calls["take_us"] + plain_calls["light_us"]
    print(json.dumps({
        "spans": n, "span": {k: round(v, 1) for k, v in per_span.items()},
        "span_total_us": round(span_total, 1), "agent_run_calls": agent_calls,
        "plain_calls": plain_calls, "plain_call_total_us": round(call_total, 1),
        "span_over_call": round(span_total / call_total, 2),
        "step_cost_of_30pct_agent_traffic": round(1 + 0.3 * span_total / call_total, 2),
    }, indent=2))


if __name__ == "__main__":
    main()
