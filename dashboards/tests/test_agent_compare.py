"""``llmpulse compare`` on agent traces: per-trace metrics of two prompt versions, on chDB.

Agent runs of ``order-agent`` are written through the sink's ``Writer``: version 1's
flaky carrier tool times out 10 % of the time, version 2's 60 %; one trace holds calls of
both versions. The comparison's agent section must say v2 is worse on the tool error rate
(with its interval and p-value), leave the mixed trace out with a warning, gate
``--fail-on worse`` on it, and draw in headless Chromium; a prompt without agent traces
gets no agent section.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from llmpulse.dashboards.agent_traffic import AGENT_PROMPT, _Run, agent_runs
from llmpulse.dashboards.cli import compare as compare_cli
from llmpulse.dashboards.compare import compare_versions, comparison_html, comparison_table, worse_metrics
from llmpulse.dashboards.report import render_report
from llmpulse.dashboards.stats import MetricKind, MetricSamples, compare_samples
from llmpulse.dashboards.testing import SampleTraffic
from llmpulse.dashboards.trace_samples import AGENT_METRICS, agent_samples
from llmpulse.dashboards.versions_board import VERSIONS
from llmpulse.schemas import EnrichedCall, SpanEvent
from llmpulse.sinks.store import Store
from llmpulse.sinks.writer import Sourced, Writer

RUNS = 80
_STORE: dict[str, Any] = {}


def _mixed_trace(at: datetime) -> list[Any]:
    """One run whose first model call is version 1's and whose last is version 2's."""
    run = _Run(random.Random(5), 9_999, at, "1")
    asked = run.llm(("lookup_order", '{"order_id": "A19999"}'))
    assert asked is not None
    run.tool(asked, 40.0, '{"status": "in transit"}')
    run.version = "2"
    run.llm(None)
    run.finish(at)
    return run.events


@pytest.fixture
def agents(dash_chdb_dir: Path) -> tuple[Store, datetime, datetime, list[Any]]:
    """Version 1 and version 2 agent runs (and one mixed trace) in a database of their own."""
    if "store" not in _STORE:
        store = Store.open(f"chdb://{dash_chdb_dir}?database=agentcmp")
        store.migrate()
        end = datetime.now(UTC).replace(microsecond=0)
        start = end - timedelta(hours=2)
        rng = random.Random(11)
        events = [
            *agent_runs(rng, start, timedelta(hours=1), RUNS, version="1", carrier_failure=0.1),
            *agent_runs(rng, start, timedelta(hours=1), RUNS, version="2", carrier_failure=0.6, first=1000),
            *_mixed_trace(start + timedelta(minutes=30)),
        ]
        Writer(store).write([Sourced(e) for e in events])
        _STORE.update(store=store, start=start, end=end, events=events)
    return _STORE["store"], _STORE["start"], _STORE["end"], _STORE["events"]


def _tool_error_rate(events: list[Any], version: str) -> float:
    calls = [e for e in events if isinstance(e, EnrichedCall)]
    traces = {c.trace_id for c in calls if c.prompt_version == version}
    traces -= {c.trace_id for c in calls if c.prompt_version != version}  # mixed
    tools = [e for e in events if isinstance(e, SpanEvent) and e.operation == "execute_tool"
             and e.trace_id in traces]
    return sum(e.status == "error" for e in tools) / len(tools)


def test_v2s_higher_tool_error_rate_is_found_with_its_interval(agents) -> None:  # type: ignore[no-untyped-def]
    store, start, end, events = agents
    result = compare_versions(store, AGENT_PROMPT, "1", "2", since=start, until=end, seed=3)
    errors = result.metric("tool_error_rate")
    assert errors.group == "agent" and errors.kind == "ratio" and errors.n_a == RUNS and errors.n_b == RUNS
    assert errors.value_a == pytest.approx(_tool_error_rate(events, "1"))
    assert errors.value_b == pytest.approx(_tool_error_rate(events, "2"))
    assert errors.verdict == "B worse", errors
    assert 0 < errors.ci_low < errors.difference < errors.ci_high
    assert errors.p_value < errors.p_adjusted < 0.05  # corrected over the whole family
    assert errors in worse_metrics(result)
    # Drawn alike for both versions: no difference may be declared.
    for name in ("tool_invalid_arguments_rate", "trace_latency_p50_ms"):
        assert result.metric(name).verdict in {"no significant difference", "insufficient data"}, name
    # One correction over the per-call and the per-trace metrics.
    tested = [m for m in result.metrics if m.p_adjusted is not None]
    assert {"call", "agent"} <= {m.group for m in tested}
    table = comparison_table(result)
    assert "agent traces: 80 of order-agent v1, 80 of order-agent v2" in table
    assert re.search(r"tool_error_rate\s+80/80 .* B worse", table), table


def test_a_mixed_version_trace_belongs_to_neither_side(agents) -> None:  # type: ignore[no-untyped-def]
    store, start, end, _ = agents
    a, b, traces = agent_samples(store, AGENT_PROMPT, "1", "2", since=start, until=end)
    assert (traces.a, traces.b, traces.mixed) == (RUNS, RUNS, 1)
    assert set(a) == set(b) == set(AGENT_METRICS)
    assert len(a["steps_per_trace"].array()) == RUNS
    result = compare_versions(store, AGENT_PROMPT, "1", "2", since=start, until=end)
    assert any("1 agent trace(s) hold calls of more than one version" in w for w in result.warnings)
    # Compared with a third version, its version-1 runs count and the mixed one still does not.
    _, _, alone = agent_samples(store, AGENT_PROMPT, "1", "3", since=start, until=end)
    assert (alone.a, alone.b, alone.mixed) == (RUNS, 0, 1)


def test_no_agent_traces_no_agent_section(traffic_store: Store, traffic: SampleTraffic) -> None:
    result = compare_versions(
        traffic_store, "answer", "1", "2", since=traffic.start, until=traffic.end + timedelta(minutes=5)
    )
    assert result.metrics and {m.group for m in result.metrics} == {"call"}
    assert "agent" not in result.notes and "agent traces" not in comparison_table(result)
    assert 'data-group="agent"' not in comparison_html(result)
    nothing = compare_versions(
        traffic_store, "no-such-prompt", "1", "2", since=traffic.start, until=traffic.end
    )
    assert {m.group for m in nothing.metrics} <= {"call"} and not nothing.significant


def test_one_side_without_agent_traces_is_insufficient_not_a_crash(agents) -> None:  # type: ignore[no-untyped-def]
    store, start, end, _ = agents
    result = compare_versions(store, AGENT_PROMPT, "1", "7", since=start, until=end)
    agent = [m for m in result.metrics if m.group == "agent"]
    assert agent and all(m.verdict == "insufficient data" for m in agent)


def test_fail_on_worse_and_json_carry_the_agent_metrics(agents, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store, start, end, _ = agents
    runner = CliRunner()
    scope = ["--clickhouse", str(store.url), "--from", start.isoformat(), "--to", end.isoformat(),
             "--prompt", AGENT_PROMPT, "--a", "1", "--b", "2"]
    gate = runner.invoke(compare_cli, [*scope, "--fail-on", "worse"])
    assert gate.exit_code == 3, gate.output
    assert "tool_error_rate" in gate.stderr
    data = json.loads(runner.invoke(compare_cli, [*scope, "--format", "json"]).output)
    assert data["notes"]["agent"].startswith("agent traces: 80 of")
    by_name = {m["name"]: m for m in data["metrics"]}
    errors = by_name["tool_error_rate"]
    assert errors["group"] == "agent" and errors["verdict"] == "B worse"


def test_the_agent_section_draws_in_headless_chromium(  # type: ignore[no-untyped-def]
    agents, tmp_path: Path, dump_dom: Callable[[Path], str]
) -> None:
    store, start, end, _ = agents
    result = compare_versions(store, AGENT_PROMPT, "1", "2", since=start, until=end)
    result.notes["agent"] += " <script>document.title='x'</script>"  # text is escaped, never run
    page = tmp_path / "compare.html"
    page.write_text(comparison_html(result, subtitle="agents"), "utf-8")
    dom = dump_dom(page)
    body = re.search(r"<body([^>]*)>", dom)
    assert body, dom[:300]
    drawn = dict(re.findall(r'data-([\w-]+)="(\d+)"', body.group(1)))
    assert int(drawn["charts"]) >= 4 and drawn["charts-drawn"] == drawn["charts"], drawn
    assert "Agent traces: tool rates, A and B" in dom and "<title>llmpulse compare" in dom
    table = re.search(
        r'<table class="comparison" data-group="agent" data-points="(\d+)">(.*?)</table>', dom, re.S
    )
    assert table and int(table.group(1)) == len(AGENT_METRICS)
    assert table.group(2).count("<tr") == len(AGENT_METRICS) + 1 and "B worse" in table.group(2)
    assert "&lt;script&gt;" in dom


def test_a_ratio_resamples_whole_traces_and_holds_its_level() -> None:
    """Under identical distributions of clustered errors (traces that fail together), the
    ratio's permutation test rejects at about its level; a test that took the tool calls
    for independent ones would reject far more often."""
    rejected, naive = 0, 0
    seeds = 200
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        sides = []
        for _ in range(2):
            calls = rng.integers(1, 6, 60)
            bad = rng.random(60) < 0.2  # a trace whose tool is down fails every call
            sides.append((np.where(bad, calls, 0), calls))
        a, b = (MetricSamples("tool_error_rate", MetricKind.RATIO, e, denominators=n) for e, n in sides)
        result = compare_samples([a], [b], resamples=500, seed=seed).metric("tool_error_rate")
        rejected += result.p_value < 0.05
        flat = [MetricSamples("x", MetricKind.PROPORTION, np.repeat((e > 0).astype(float), n))
                for e, n in sides]
        naive += compare_samples([flat[0]], [flat[1]]).metric("x").p_value < 0.05
    assert 0.02 * seeds <= rejected <= 0.08 * seeds, rejected
    assert naive > 2 * rejected, (naive, rejected)


def test_the_reports_comparison_shows_the_agent_section_in_headless_chromium(  # type: ignore[no-untyped-def]
    agents, tmp_path: Path, dump_dom: Callable[[Path], str]
) -> None:
    """``llmpulse report`` appends the comparison of the versions Prompt versions selects:
    for an agent's prompt, with its agent section."""
    store, start, end, _ = agents
    path = render_report(store, since=start, until=end, out_path=tmp_path / "report.html",
                         dashboards=[VERSIONS])
    dom = dump_dom(path)
    section = re.search(r'<section class="board" id="comparison">(.*?)</section>', dom, re.S)
    assert section and "order-agent v1 vs order-agent v2" in section.group(1), dom[:500]
    assert re.search(r'data-group="agent" data-points="8"', section.group(1))
    assert "tool_error_rate" in section.group(1) and "B worse" in section.group(1)
    body = re.search(r"<body([^>]*)>", dom)
    assert body
    drawn = dict(re.findall(r'data-([\w-]+)="(\d+)"', body.group(1)))
    assert int(drawn["charts-drawn"]) >= 4, drawn  # the comparison's charts, agent bars included
