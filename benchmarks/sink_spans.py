"""Insert throughput of spans (contracts v1.1) through the sink's writer, beside calls.

Both sides go through ``Writer.write`` (column mapping, ledger lookup, Arrow table, insert,
materialized views) into the same migrated chDB store, in the same run: ``spans``
(``SpanEvent``: tool executions with raw arguments and result previews, agent steps; the
``spans`` table, its ledger view and the ``tool_calls_1m`` rollup) and ``calls``
(``EnrichedCall``: the ``calls`` table and its views). A span row is lighter than a call
row, so the writer should take spans at least as fast as calls: the ratio is spans / calls.

Prints JSON (progress on stderr).

    uv run python benchmarks/sink_spans.py [--rows 20000] [--batch 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import uuid
from datetime import UTC, datetime, timedelta

import chdb
from sink_timing import bench_folder, writer_rate

from llmpulse.schemas import ErrorInfo, SpanEvent, ToolCall
from llmpulse.sinks.testing import sample_calls

TOOLS = ("lookup_order", "refund", "search_kb", "send_email", "get_weather")


def sample_spans(n: int, *, seed: int) -> list[SpanEvent]:
    """Agent runs of five steps (one invoke_agent, four tool executions), ending now."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    spans: list[SpanEvent] = []
    while len(spans) < n:
        trace, root = uuid.uuid4().hex, f"{rng.getrandbits(64):016x}"
        end = now - timedelta(seconds=rng.uniform(0, 600))
        for step in range(5):
            span_id = root if step == 0 else f"{rng.getrandbits(64):016x}"
            tool = rng.choice(TOOLS)
            latency = rng.uniform(5, 900)
            failed = rng.random() < 0.05
            spans.append(SpanEvent(
                call_id=span_id, span_id=span_id, trace_id=trace,
                parent_span_id=None if step == 0 else root, app="support-bot",
                name="support" if step == 0 else tool,
                operation="invoke_agent" if step == 0 else "execute_tool",
                started_at=end - timedelta(milliseconds=latency), occurred_at=end,
                latency_ms=latency, status="error" if failed else "ok",
                error=ErrorInfo(type="TimeoutError", message="upstream timed out") if failed else None,
                tool=None if step == 0 else ToolCall(
                    id=f"call_{rng.getrandbits(32):08x}", name=tool,
                    arguments=json.dumps({"order": rng.randrange(10**6), "note": "x" * rng.randrange(200)})),
                result_preview=json.dumps({"status": "shipped", "items": rng.randrange(9)}),
                session_id=f"s-{rng.randrange(500)}", cost_usd=0.0 if step else rng.uniform(0, 0.02)))
    return spans[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=10_000, help="events per Writer.write (batch_rows)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side; the best is kept")
    args = parser.parse_args()
    spans = sample_spans(args.rows, seed=7)
    calls = sample_calls(args.rows, seed=7)
    for call in calls:  # calls only: their verdicts would add guardrail_verdicts rows
        call.verdicts = []
    results: dict[str, list[float]] = {"spans": [], "calls": []}
    with bench_folder() as folder:
        for run in range(args.repeat):
            results["calls"].append(writer_rate(folder, calls, args.batch, "calls"))
            results["spans"].append(writer_rate(folder, spans, args.batch, "spans"))
            print(f"run {run + 1}/{args.repeat}: calls {results['calls'][-1]:,.0f}/s, "
                  f"spans {results['spans'][-1]:,.0f}/s", file=sys.stderr, flush=True)
    best = {name: max(values) for name, values in results.items()}
    print(json.dumps({
        "benchmark": "sink_spans",
        "rows": args.rows, "batch": args.batch, "repeat": args.repeat,
        "rows_per_s": {k: round(v) for k, v in best.items()},
        "ratio_spans_to_calls": round(best["spans"] / best["calls"], 3),
        "chdb": chdb.__version__, "python": platform.python_version(), "machine": platform.machine(),
    }, indent=2))


if __name__ == "__main__":
    main()
