"""The Agents & tools dashboard: what agent runs did, step by step, and where they went wrong.

A trace is the LLM calls (``calls``) and the non-LLM steps (``spans``: tool executions,
agent steps, retrievals) that share a ``trace_id``; an *agent trace* is one with at least
one span. Tool panels over a range read the per-minute tool rollup (``tool_calls_1m``:
calls, errors, arguments that are not JSON, latency t-digest per app, environment and
tool); per-trace panels (steps, cost, the slowest traces) group raw rows by trace, which
no per-minute rollup can do. Loops are the processors' ``agent_loop`` verdicts; indirect
injections are prompt-injection verdicts on a tool's result (``applies_to`` =
``tool_result``).

Counting: a trace's *steps* are its LLM calls plus its spans other than ``invoke_agent``
(the agent span is the container of the steps, not a step); its *cost* is its LLM calls'
cost plus the cost of those same spans (an agent span may carry its children's totals,
which would count them twice).

Example:
    >>> from llmpulse.dashboards.agents_board import AGENTS
    >>> AGENTS.uid, [v.name for v in AGENTS.variables]
    ('llmpulse-agents', ['app', 'environment', 'tool'])
"""

# ruff: noqa: S608 - SQL built from constant fragments; values arrive as Grafana variables

from __future__ import annotations

from llmpulse.dashboards._sql import APP, ENV, QUANTILES, cond, sql
from llmpulse.dashboards.board_parts import stat_panel
from llmpulse.dashboards.panels import DashboardSpec, PanelSpec, VariableSpec, Viz

__all__ = ["AGENTS", "TOOL_ROLLUP", "TRACES", "trace_rollup"]

TOOL_ROLLUP = "tool_calls_1m"
"""The sink's per-minute rollup of tool executions."""

_TOOL = cond("tool_name", "tool")
_SCOPE = f"{APP} AND {ENV}"
_TOOLS = f"$__timeFilter(minute) AND {_SCOPE} AND {_TOOL}"
_SPANS = f"$__timeFilter(occurred_at) AND {_SCOPE}"
_VERDICTS = f"$__timeFilter(occurred_at) AND {_SCOPE}"
_INJECTION = "rule_kind = 'prompt_injection' AND applies_to = 'tool_result'"

def trace_rollup(spans_where: str, calls_where: str) -> str:
    """One row per trace of the ``spans`` and ``calls`` rows the two conditions select:
    start, duration, LLM calls, tool calls, spans, failed steps, failed tool calls, tool
    calls whose arguments were not a JSON object, steps and cost (the counting above).
    The Agents board passes Grafana macros; ``llmpulse compare`` server-side parameters."""
    return f"""
    SELECT trace_id, any(app) AS app, min(started) AS started,
           max(end_ms) - min(start_ms) AS duration_ms,
           countIf(kind = 'llm') AS llm_calls, countIf(kind = 'tool') AS tool_calls,
           countIf(kind != 'llm') AS spans, countIf(failed) AS errors,
           countIf(kind = 'tool' AND failed) AS tool_errors,
           countIf(kind = 'tool' AND invalid) AS invalid_arguments,
           countIf(kind != 'agent') AS steps, sumIf(cost, kind != 'agent') AS cost_usd
    FROM (
        SELECT trace_id, app, started_at AS started, toUnixTimestamp64Milli(started_at) AS start_ms,
               toUnixTimestamp64Milli(started_at) + ifNull(latency_ms, 0) AS end_ms,
               multiIf(operation = 'execute_tool', 'tool', operation = 'invoke_agent', 'agent', 'step')
                   AS kind,
               status = 'error' AS failed, ifNull(cost_usd, 0) AS cost,
               toUInt8(NOT arguments_truncated AND arguments_valid_json = 0) AS invalid
        FROM spans WHERE {spans_where}
        UNION ALL
        SELECT trace_id, app, occurred_at, toUnixTimestamp64Milli(occurred_at),
               toUnixTimestamp64Milli(occurred_at) + ifNull(latency_ms, 0), 'llm',
               error_type != '', ifNull(cost_usd, 0), toUInt8(0)
        FROM calls WHERE {calls_where}
    ) GROUP BY trace_id"""


TRACES = sql(
    trace_rollup(
        _SPANS,
        f"$__timeFilter(occurred_at) AND {_SCOPE} "
        f"AND trace_id IN (SELECT trace_id FROM spans WHERE {_SPANS})",
    )
)
"""One row per agent trace in the range: start, duration, LLM calls, tool calls, failed
steps, steps and cost (the per-trace panels select from it)."""

VARIABLES = (
    VariableSpec(
        "app", "App", sql("SELECT DISTINCT app FROM spans WHERE $__timeFilter(occurred_at) ORDER BY app")
    ),
    VariableSpec(
        "environment",
        "Environment",
        sql(f"""
        SELECT DISTINCT environment FROM spans WHERE $__timeFilter(occurred_at) AND {APP}
        ORDER BY environment"""),
    ),
    VariableSpec(
        "tool",
        "Tool",
        sql(f"""
        SELECT DISTINCT tool_name FROM {TOOL_ROLLUP} WHERE $__timeFilter(minute) AND {_SCOPE}
        ORDER BY tool_name"""),
    ),
)
"""app and environment (of the spans), tool: multi-value, with All, chained."""

AGENTS = DashboardSpec(
    uid="llmpulse-agents",
    title="llmpulse / Agents & tools",
    description="Agent runs and their tools: errors, latency, steps and cost per trace, loops and "
    "instructions hidden in tool results.",
    variables=VARIABLES,
    panels=(
        stat_panel(
            "agent_traces",
            "Agent traces",
            "uniqExact(trace_id) AS agent_traces",
            "short",
            "Traces with at least one tool or agent span.",
            table="spans",
            where=_SPANS,
        ),
        stat_panel(
            "tool_calls",
            "Tool calls",
            "sum(calls) AS tool_calls",
            "short",
            "Tool executions in the range.",
            table=TOOL_ROLLUP,
            where=_TOOLS,
        ),
        stat_panel(
            "tool_error_rate",
            "Tool error rate",
            "sum(errors) / nullIf(sum(calls), 0) AS tool_error_rate",
            "percentunit",
            "Share of tool executions that ended in an error.",
            table=TOOL_ROLLUP,
            where=_TOOLS,
            decimals=2,
        ),
        stat_panel(
            "tool_p95",
            "Tool p95 latency",
            f"round({QUANTILES}(latency_ms)[3], 1) AS tool_p95_ms",
            "ms",
            "95th percentile of the tool executions' latency (t-digest over the rollup).",
            table=TOOL_ROLLUP,
            where=_TOOLS,
        ),
        stat_panel(
            "loops",
            "Loops",
            "sum(verdicts) AS loops",
            "short",
            "agent_loop verdicts: the same tool called with the same arguments again and again in one trace.",
            table="guardrail_verdicts_1m",
            where=f"$__timeFilter(minute) AND {_SCOPE} AND rule_id = 'agent_loop'",
        ),
        stat_panel(
            "injections",
            "Traces with injected tool results",
            "uniqExact(trace_id) AS injected_traces",
            "short",
            "Traces with a prompt-injection verdict on a tool's result: an instruction hidden in "
            "what a tool returned (indirect prompt injection), flagged on the span and on every "
            "later model call that read it.",
            table="guardrail_verdicts",
            where=f"{_VERDICTS} AND {_INJECTION}",
        ),
        PanelSpec(
            "error_rate_by_tool",
            "Tool error rate by tool",
            Viz.TIMESERIES,
            sql(f"""
            SELECT $__timeInterval(minute) AS time, tool_name AS series,
                   sum(errors) / nullIf(sum(calls), 0) AS error_rate
            FROM {TOOL_ROLLUP} WHERE {_TOOLS} GROUP BY time, series ORDER BY time, series"""),
            "Share of each tool's executions that failed, per interval.",
            unit="percentunit",
            min_interval="5m",
        ),
        PanelSpec(
            "latency_by_tool",
            "Latency by tool",
            Viz.BARCHART,
            sql(f"""
            SELECT tool_name, round(q[1], 1) AS p50, round(q[3], 1) AS p95
            FROM (
                SELECT tool_name, {QUANTILES}(latency_ms) AS q FROM {TOOL_ROLLUP} WHERE {_TOOLS}
                GROUP BY tool_name
            ) ORDER BY tool_name"""),
            "p50 and p95 latency of each tool over the range.",
            unit="ms",
        ),
        PanelSpec(
            "steps_per_trace",
            "Steps per trace",
            Viz.TIMESERIES,
            sql(f"""
            SELECT $__timeInterval(started) AS time, avg(steps) AS mean_steps,
                   quantileExact(0.95)(steps) AS p95_steps, max(steps) AS max_steps
            FROM ({TRACES}) GROUP BY time ORDER BY time"""),
            "LLM calls plus tool and other steps per agent trace, by the trace's start (raw rows: "
            "a trace is not a rollup key).",
            min_interval="5m",
        ),
        PanelSpec(
            "cost_per_trace",
            "Cost per trace",
            Viz.TIMESERIES,
            sql(f"""
            SELECT $__timeInterval(started) AS time, avg(cost_usd) AS mean_cost,
                   quantile(0.95)(cost_usd) AS p95_cost
            FROM ({TRACES}) GROUP BY time ORDER BY time"""),
            "Spend of the LLM calls and steps of each agent trace, by the trace's start.",
            unit="currencyUSD",
            min_interval="5m",
        ),
        PanelSpec(
            "tools",
            "By tool",
            Viz.TABLE,
            sql(f"""
            SELECT tool_name, sum(calls) AS executions, sum(errors) AS failed,
                   round(sum(errors) / nullIf(sum(calls), 0), 4) AS error_rate,
                   sum(invalid_arguments) AS arguments_not_json,
                   round({QUANTILES}(latency_ms)[1], 1) AS p50_ms,
                   round({QUANTILES}(latency_ms)[3], 1) AS p95_ms
            FROM {TOOL_ROLLUP} WHERE {_TOOLS} GROUP BY tool_name ORDER BY executions DESC, tool_name"""),
            "Executions, errors, arguments that were not valid JSON, and latency per tool.",
        ),
        PanelSpec(
            "slowest_traces",
            "Slowest agent traces",
            Viz.TABLE,
            sql(f"""
            SELECT trace_id, started, round(duration_ms, 1) AS duration_ms, steps, llm_calls, tool_calls,
                   errors, round(cost_usd, 6) AS cost_usd
            FROM ({TRACES}) ORDER BY duration_ms DESC, trace_id LIMIT 20"""),
            "The longest agent traces in the range (the report draws the first as a waterfall).",
        ),
        PanelSpec(
            "loop_verdicts",
            "Loops",
            Viz.TABLE,
            sql(f"""
            SELECT occurred_at AS time, trace_id, span_id, severity, message
            FROM guardrail_verdicts WHERE {_VERDICTS} AND rule_id = 'agent_loop'
            ORDER BY occurred_at DESC LIMIT 50"""),
            "Each agent_loop verdict: where a run repeated the same tool call.",
        ),
        PanelSpec(
            "injection_verdicts",
            "Instructions in tool results",
            Viz.TABLE,
            sql(f"""
            SELECT occurred_at AS time, trace_id, span_id, rule_id, severity, action,
                   match_preview, message
            FROM guardrail_verdicts WHERE {_VERDICTS} AND {_INJECTION}
            ORDER BY occurred_at DESC LIMIT 50"""),
            "Each prompt-injection verdict on a tool result (the match is masked).",
        ),
    ),
)
