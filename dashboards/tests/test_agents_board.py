"""The Agents & tools dashboard's numbers agree with the agent runs written through the sink."""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest

from llmpulse.dashboards.agents_board import AGENTS
from llmpulse.dashboards.macros import TimeRange, Variable
from llmpulse.dashboards.report import run_panel
from llmpulse.dashboards.testing import SampleTraffic
from llmpulse.schemas import EnrichedCall, GuardrailVerdict, SpanEvent
from llmpulse.sinks.store import Store


def _run(store: Store, window: TimeRange, key: str, **chosen: str) -> list[tuple]:
    variables = {
        v.name: Variable.of(v.name, chosen[v.name]) if v.name in chosen else Variable.all_of(v.name)
        for v in AGENTS.variables
    }
    result = run_panel(store, AGENTS.uid, AGENTS.panel(key), window, variables)
    assert result.error is None, f"{result.error}\n{result.sql}"
    return result.rows


def test_tool_stats_agree_with_the_spans_written(
    traffic_store: Store, window: TimeRange, traffic: SampleTraffic
) -> None:
    tools = [e for e in traffic.events if isinstance(e, SpanEvent) and e.operation == "execute_tool"]
    errors = sum(s.status == "error" for s in tools)
    assert 0 < errors < len(tools)
    assert _run(traffic_store, window, "tool_calls")[0][0] == len(tools)
    assert _run(traffic_store, window, "tool_error_rate")[0][0] == pytest.approx(errors / len(tools))
    flaky = [s for s in tools if s.name == "carrier_status"]
    rate = _run(traffic_store, window, "tool_error_rate", tool="carrier_status")[0][0]
    assert rate == pytest.approx(sum(s.status == "error" for s in flaky) / len(flaky))
    by_tool = {row[0]: row for row in _run(traffic_store, window, "tools")}
    assert set(by_tool) == {"lookup_order", "carrier_status"}
    assert by_tool["carrier_status"][1:3] == (len(flaky), sum(s.status == "error" for s in flaky))
    assert by_tool["lookup_order"][4] == sum(
        1 for s in tools if s.name == "lookup_order" and s.tool and not s.tool.arguments.endswith("}")
    )  # arguments that are not JSON
    latency = {row[0]: row[1:] for row in _run(traffic_store, window, "latency_by_tool")}
    assert latency["carrier_status"][1] > latency["lookup_order"][1]  # the flaky tool is slower at p95


def test_traces_loops_and_injections_agree_with_the_runs_written(
    traffic_store: Store, window: TimeRange, traffic: SampleTraffic
) -> None:
    steps: Counter[str] = Counter()
    cost: defaultdict[str, float] = defaultdict(float)
    for e in traffic.events:
        if isinstance(e, EnrichedCall) and e.trace_id:
            steps[e.trace_id] += 1
            cost[e.trace_id] += (e.response.cost_usd or 0) if e.response else 0
        elif isinstance(e, SpanEvent) and e.operation != "invoke_agent":
            steps[e.trace_id] += 1
    assert _run(traffic_store, window, "agent_traces")[0][0] == len(steps)
    slowest = _run(traffic_store, window, "slowest_traces")
    assert {row[0]: row[3] for row in slowest} == {t: steps[t] for t in (row[0] for row in slowest)}
    assert [row[2] for row in slowest] == sorted((row[2] for row in slowest), reverse=True)
    assert {row[0]: row[7] for row in slowest} == pytest.approx(
        {row[0]: cost[row[0]] for row in slowest}, abs=1e-6
    )
    verdicts = [e for e in traffic.events if isinstance(e, GuardrailVerdict)]
    loop = [v for v in verdicts if v.rule_id == "agent_loop"]
    assert _run(traffic_store, window, "loops")[0][0] == len(loop) == 1
    assert [row[1:3] for row in _run(traffic_store, window, "loop_verdicts")] == [
        (loop[0].trace_id, loop[0].span_id)
    ]
    injected = [v for v in verdicts if v.applies_to == "tool_result" and v.rule_kind == "prompt_injection"]
    assert _run(traffic_store, window, "injections")[0][0] == len(injected) == 1
    (row,) = _run(traffic_store, window, "injection_verdicts")
    assert row[1:3] == (injected[0].trace_id, injected[0].span_id) and "IGNORE" in row[6]
    # the loop's trace takes the most steps
    per_interval = _run(traffic_store, window, "steps_per_trace")
    assert max(r[3] for r in per_interval) == max(steps.values())
