"""The demo's order agent under its two prompt versions: the comparison ``llmpulse demo``
prints finds v2 worse on its agent section.

The default demo (3,000 requests, seed 42) makes 75 agent runs; the same 75 runs (the
agent is seeded apart from the support turns) go through the SDK, the embedded pipeline's
processing step and the sink into chDB, and ``compare_versions`` on the agent's prompt
must say v2 fails more tool calls and sends more arguments that are not JSON, with the
intervals above zero. The smaller runs of ``test_demo.py`` have too few traces a side for
that (they check the section is there).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import llmpulse.producers as llmpulse
from llmpulse.cli.demo.pipeline import EmbeddedPipeline
from llmpulse.cli.demo.scenario import (
    AGENT_PROMPT,
    agent_line,
    agent_summary,
    run_agent,
    store_summary,
)
from llmpulse.cli.demo.simulator import OrderAgent
from llmpulse.dashboards.compare import compare_versions, worse_metrics
from llmpulse.processors.config import load_config
from llmpulse.processors.pipeline import Enricher
from llmpulse.sinks.store import Store

DEFAULT_RUNS = 75
"""``llmpulse demo``'s defaults: 3,000 requests, one in 40 runs the agent."""


def test_the_default_demos_agent_comparison_finds_v2_worse(store: Store) -> None:
    # The agent metrics need no model scorer: the light path, spans and guardrails only.
    off = {f"LLMPULSE_SCORING__{name}__ENABLED": "false" for name in ("EMBEDDINGS", "TOXICITY", "QUALITY")}
    pipeline = EmbeddedPipeline(store, enricher=Enricher(load_config(environ=off)))
    llmpulse.init(app="acme-support", environment="demo", deliver_to=pipeline.accept, warn_on_drop=False)
    until = datetime.now(UTC).replace(microsecond=0)
    since = until - timedelta(hours=3)
    agent = OrderAgent(seed=42)
    try:
        for k in range(DEFAULT_RUNS):
            run_agent(llmpulse, agent.run(), since + timedelta(minutes=2 * k))
    finally:
        llmpulse.shutdown()
    pipeline.finish()
    assert not pipeline.totals.dead_letters, pipeline.totals.dead_letters
    summary = store_summary(store)
    assert summary["agent_traces_by_version"] == {"v1": 38, "v2": 37}, summary
    assert summary["agent_verdicts"]["tool_arguments_invalid_json"] > 0
    agent_part = agent_summary(store)  # what `llmpulse demo` prints, without the other queries
    assert agent_part == {key: summary[key] for key in agent_part}
    assert set(agent_part) == {"spans", "tool_errors", "agent_verdicts", "agent_traces_by_version"}
    assert agent_line(agent_part) == agent_line(summary)
    assert agent_line(agent_part).startswith(f"agent path: {agent_part['spans']} spans (")

    result = compare_versions(store, AGENT_PROMPT, "v1", "v2", since=since, until=until,
                              app="acme-support")
    assert result.notes["agent"].startswith("agent traces: 38 of order-agent v1, 37 of order-agent v2")
    worse = {m.name: m for m in worse_metrics(result)}
    assert {"tool_error_rate", "tool_invalid_arguments_rate", "cost_per_trace"} <= set(worse), \
        [(m.name, m.verdict, m.p_adjusted) for m in result.metrics]
    errors = worse["tool_error_rate"]
    assert errors.group == "agent" and errors.ci_low > 0 and errors.p_adjusted < 0.05
    steps = result.metric("steps_per_trace")
    assert steps.verdict == "B higher" and steps.ci_low > 0  # the retried tool call, and its model call
