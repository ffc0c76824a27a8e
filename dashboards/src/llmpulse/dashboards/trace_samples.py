"""Per-trace samples of the agent metrics of two prompt versions, read from the store.

``llmpulse compare`` adds these to the per-call metrics when the compared versions have
agent traces (a trace with at least one span: a tool execution, an agent step). A trace
belongs to a version through the prompt version of its LLM calls: its calls of the
compared prompt, in the range and scope (app, environment, model), all carry that
version. A trace whose calls of the prompt carry two versions or more (a mixed-version
trace: a deploy mid-run, or a sub-agent pinned elsewhere) belongs to neither side and is
counted in a warning; calls of other prompts in a trace do not attribute it, but they are
its steps. Everything else counts as on the Agents & tools board
(``agents_board.trace_rollup``): steps are LLM calls plus spans other than
``invoke_agent``, cost the same steps' cost, latency from the first start to the last end.
A trace's steps are read up to ``TRACE_MARGIN`` either side of the range.

Example:
    >>> from llmpulse.dashboards.trace_samples import AGENT_METRICS
    >>> AGENT_METRICS["tool_error_rate"].kind.value, AGENT_METRICS["tool_error_rate"].denominator
    ('ratio', 'tool_calls')
    >>> a, b, n = agent_samples(store, "order-agent", "v1", "v2", since=start, until=end)  # doctest: +SKIP
"""

# ruff: noqa: S608 - SQL built from constant fragments; values arrive as server-side parameters

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from llmpulse.dashboards.agents_board import trace_rollup
from llmpulse.dashboards.samples import MetricDefinition, samples_from_rows, scope_filters
from llmpulse.dashboards.stats import MetricKind, MetricSamples

__all__ = ["AGENT_METRICS", "TRACE_MARGIN", "AgentTraces", "agent_samples"]

logger = logging.getLogger(__name__)

TRACE_MARGIN = timedelta(hours=1)
"""How far outside the range a compared trace's steps (spans, other calls, verdicts) are read."""

_AGENT = "agent"
_DEFINITIONS = (
    MetricDefinition("steps_per_trace", MetricKind.MEAN, "steps", None, "steps",
                     "LLM calls plus tool and other steps (not the agent span) per trace", group=_AGENT),
    MetricDefinition("tool_calls_per_trace", MetricKind.MEAN, "tool_calls", None, "steps",
                     "tool executions per trace", group=_AGENT),
    MetricDefinition("tool_error_rate", MetricKind.RATIO, "tool_errors", False, "%",
                     "share of tool executions that failed (traces resampled)", denominator="tool_calls",
                     group=_AGENT),
    MetricDefinition("tool_invalid_arguments_rate", MetricKind.RATIO, "invalid_arguments", False, "%",
                     "share of tool executions whose arguments were not a JSON object (traces resampled)",
                     denominator="tool_calls", group=_AGENT),
    MetricDefinition("loops_per_trace", MetricKind.MEAN, "loops", False, "steps",
                     "agent_loop verdicts per trace", group=_AGENT),
    MetricDefinition("cost_per_trace", MetricKind.MEAN, "trace_cost_usd", False, "USD",
                     "spend of a trace's steps", group=_AGENT),
    MetricDefinition("trace_latency_p50_ms", MetricKind.QUANTILE, "trace_ms", False, "ms",
                     "median trace duration (first start to last end)", quantile=0.5, group=_AGENT),
    MetricDefinition("trace_latency_p95_ms", MetricKind.QUANTILE, "trace_ms", False, "ms",
                     "95th percentile trace duration", quantile=0.95, group=_AGENT),
)
AGENT_METRICS: dict[str, MetricDefinition] = {d.name: d for d in _DEFINITIONS}
"""The per-trace comparison metrics by name, in display order."""

_NEAR = "occurred_at >= {near_since:DateTime64(6)} AND occurred_at < {near_until:DateTime64(6)}"
_OF_TRACES = f"trace_id IN (SELECT trace_id FROM attributed) AND {_NEAR}"

_TRACES_SQL = f"""
WITH attributed AS (
    SELECT trace_id, if(uniqExact(prompt_version) = 1, any(prompt_version), '') AS version
    FROM calls
    WHERE prompt_id = {{prompt:String}} AND trace_id != ''
      AND occurred_at >= {{since:DateTime64(6)}} AND occurred_at < {{until:DateTime64(6)}} AND ($FILTERS)
    GROUP BY trace_id
    HAVING countIf(prompt_version IN ({{version_a:String}}, {{version_b:String}})) > 0
)
SELECT t.version AS version, r.steps AS steps, r.tool_calls AS tool_calls,
       r.tool_errors AS tool_errors, r.invalid_arguments AS invalid_arguments,
       ifNull(l.loops, 0) AS loops, r.cost_usd AS trace_cost_usd, r.duration_ms AS trace_ms
FROM attributed AS t
INNER JOIN ({trace_rollup(_OF_TRACES, _OF_TRACES)}) AS r ON r.trace_id = t.trace_id
LEFT JOIN (
    SELECT trace_id, count() AS loops FROM guardrail_verdicts
    WHERE rule_id = 'agent_loop' AND {_OF_TRACES} GROUP BY trace_id
) AS l ON l.trace_id = t.trace_id
WHERE r.spans > 0
ORDER BY cityHash64(t.trace_id) LIMIT {{limit:UInt64}} BY t.version
"""


@dataclass(frozen=True)
class AgentTraces:
    """How many agent traces each side has, and the mixed-version ones left out."""

    a: int
    b: int
    mixed: int


def agent_samples(
    store: Any,
    prompt_id: str,
    version_a: str,
    version_b: str,
    *,
    since: datetime,
    until: datetime,
    app: str | None = None,
    environment: str | None = None,
    model: str | None = None,
    max_traces: int = 200_000,
) -> tuple[dict[str, MetricSamples], dict[str, MetricSamples], AgentTraces]:
    """Both versions' per-trace samples of ``AGENT_METRICS`` (one query, parameterised).

    Args:
        store: an open ``llmpulse.sinks.Store``.
        prompt_id: the prompt.
        version_a: version A.
        version_b: version B.
        since: start of the range (inclusive) of the calls that attribute a trace.
        until: end of the range (exclusive).
        app: only calls of this app attribute a trace.
        environment: only this environment's.
        model: only this model's.
        max_traces: above this many traces a side, a deterministic sample by hash of the
            trace id is compared.

    Returns:
        A's samples, B's samples, and the trace counts (samples are empty when a side has
        no agent trace).
    """
    where, filters = scope_filters(app, environment, model)
    result = store.query(
        _TRACES_SQL.replace("$FILTERS", where),
        {
            "prompt": prompt_id,
            "version_a": version_a,
            "version_b": version_b,
            "since": since,
            "until": until,
            "near_since": since - TRACE_MARGIN,
            "near_until": until + TRACE_MARGIN,
            "limit": max_traces,
            **filters,
        },
    )
    by_version: dict[str, dict[str, list[Any]]] = {}
    for row in result.rows:
        columns = by_version.setdefault(str(row[0]), {name: [] for name in result.column_names[1:]})
        for name, value in zip(result.column_names[1:], row[1:], strict=True):
            columns[name].append(value)
    traces = AgentTraces(
        *(len(by_version.get(v, {}).get("steps", [])) for v in (version_a, version_b, "")),
    )
    if max(traces.a, traces.b) >= max_traces:
        logger.warning("%s has more than %d agent traces a version; comparing a sample",
                       prompt_id, max_traces)
    logger.info("%s: %d agent traces of %s, %d of %s, %d mixed", prompt_id, traces.a, version_a, traces.b,
                version_b, traces.mixed)
    if not (traces.a or traces.b):
        return {}, {}, traces
    empty: dict[str, list[Any]] = {name: [] for name in result.column_names[1:]}
    side_a, side_b = (
        samples_from_rows(by_version.get(v, empty), definitions=AGENT_METRICS) for v in (version_a, version_b)
    )
    return side_a, side_b, traces
