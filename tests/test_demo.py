"""``llmpulse demo`` end to end (a smaller run): report in Chromium, comparison, drift alert,
and the order agent's traces (a flaky tool, a loop, an instruction in a tool result)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from llmpulse.cli.demo.command import run_embedded
from llmpulse.cli.demo.scenario import SKEWED_CALLS, store_summary
from llmpulse.sinks.store import Store

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("demo")
    return run_embedded(out=out, requests=1000, seed=7, clickhouse=None, drift_window=80,
                        echo=lambda *args, **kwargs: None)


def test_the_demo_processes_every_call_and_finds_the_worse_version(demo) -> None:  # type: ignore[no-untyped-def]
    assert demo.agent_runs == 25  # one request in 40
    assert demo.calls == 1000 + demo.agent_calls  # the support answers and the agent's calls
    assert demo.worse_version == "v2"
    assert demo.report.exists() and demo.comparison_json.exists()


def test_the_agents_comparison_has_its_agent_section(demo) -> None:  # type: ignore[no-untyped-def]
    # 25 runs alternate between the agent prompt's v1 and v2 (too few a side to find the
    # difference here: tests/test_demo_agent.py runs the default demo's 75)
    agent = demo.agent_comparison
    assert agent.label_a == "order-agent v1" and agent.label_b == "order-agent v2"
    assert agent.notes["agent"].startswith("agent traces: 13 of order-agent v1, 12 of order-agent v2")
    groups = {m.name: m.group for m in agent.metrics}
    assert groups["tool_error_rate"] == groups["steps_per_trace"] == "agent"
    invalid = agent.metric("tool_invalid_arguments_rate")
    assert invalid.value_a == 0 and invalid.value_b > 0  # only v2 sends arguments that are not JSON
    assert demo.agent_comparison_json.exists()
    # the support answers' comparison stays per call, and the report's Prompt versions shows it
    support = json.loads(demo.comparison_json.read_text())
    assert support["a"] == "support-answer v1" and {m["group"] for m in support["metrics"]} == {"call"}
    assert "support-answer v1 vs support-answer v2: statistics" in demo.report.read_text()


def test_the_misconfigured_hosts_calls_are_dead_lettered_not_stored(demo) -> None:  # type: ignore[no-untyped-def]
    # its prompt and its response, both two days ahead of the clock
    assert demo.dead_letters == {"timestamp_out_of_range": 2 * SKEWED_CALLS}, demo.dead_letters


def test_the_drift_alert_fires_after_the_shift_and_not_before(demo) -> None:  # type: ignore[no-untyped-def]
    drift = [a for a in demo.alerts if a.rule == "drift" and a.status == "firing"]
    assert drift, [(a.rule, a.status) for a in demo.alerts]
    assert all(a.occurred_at >= demo.drift_start for a in drift), (
        demo.drift_start, [a.occurred_at for a in drift])


def test_the_agent_path_is_stored_with_its_failures_loop_and_injection(demo) -> None:  # type: ignore[no-untyped-def]
    with Store.open(f"chdb://{demo.out / 'store'}") as store:
        summary = store_summary(store)
        tools = dict(store.query(
            "SELECT tool_name, countIf(status = 'error') FROM spans WHERE operation = 'execute_tool' "
            "GROUP BY tool_name").rows)
        agents = store.query("SELECT count() FROM spans WHERE operation = 'invoke_agent'").scalar()
        injected = store.query(
            "SELECT count() FROM guardrail_verdicts WHERE applies_to = 'tool_result' "
            "AND rule_kind = 'prompt_injection' AND span_id IN "
            "(SELECT span_id FROM spans WHERE tool_name = 'lookup_order')").scalar()
        clean = store.query(
            "SELECT count() FROM guardrail_verdicts WHERE rule_kind = 'prompt_injection' AND trace_id IN "
            "(SELECT trace_id FROM spans WHERE tool_name = 'lookup_order' "
            "AND result_preview NOT LIKE '%IGNORE ALL PREVIOUS%')").scalar()
    assert agents == demo.agent_runs
    assert tools["lookup_order"] == 0 and tools["carrier_status"] >= 3  # the flaky one fails
    assert summary["tool_errors"] == tools["carrier_status"]
    assert summary["agent_verdicts"]["agent_loop"] == 1  # the stuck run, once
    assert summary["agent_verdicts"]["tool_error"] == summary["tool_errors"]
    assert injected == 1 and clean == 0  # the planted instruction, and nothing else
    text = demo.report.read_text()
    assert 'id="llmpulse-agents"' in text and 'id="trace"' in text


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is missing (scripts/setup.sh "
                                             "installs it)")
def test_the_report_renders_in_headless_chromium_with_data_in_every_chart(
        demo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,1000"]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", demo.report.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    body = re.search(r"<body([^>]*)>", dom)
    assert body, dom[:500]
    attributes = dict(re.findall(r'data-([\w-]+)="(\d+)"', body.group(1)))
    assert int(attributes["charts"]) >= 20
    assert int(attributes["charts-drawn"]) == int(attributes["charts"]), attributes
    assert int(attributes["waterfall-bars"]) >= 7, attributes  # the slowest agent run, step by step
