"""The seven llmpulse dashboards: Overview, Quality and safety, Feedback, Drift, Pipeline health,
Prompt versions, Agents & tools.

Panels over time ranges read the per-minute rollups (``calls_1m``, ``feedback_1m``,
``guardrail_verdicts_1m``); drill-down tables read raw rows; drift reads
``drift_results`` (one row per window). The SQL is the Grafana ClickHouse plugin's
dialect: ``$__timeFilter``, ``$__timeInterval``, ``$__conditionalAll`` and
``${var:sqlstring}``.

Example:
    >>> from llmpulse.dashboards.definitions import DASHBOARDS
    >>> [d.uid for d in DASHBOARDS][3:]
    ['llmpulse-drift', 'llmpulse-pipeline', 'llmpulse-versions', 'llmpulse-agents']
"""

# ruff: noqa: S608 - SQL built from constant fragments; values arrive as Grafana variables or parameters

from __future__ import annotations

from llmpulse.dashboards._sql import (
    APP,
    ENV,
    QUANTILES,
    RAW,
    ROLLUP,
    SCOPE_NO_MODEL,
    SERIES_VERSION,
    sql,
)
from llmpulse.dashboards.agents_board import AGENTS
from llmpulse.dashboards.board_parts import VARIABLES, stat_panel
from llmpulse.dashboards.drift_board import DRIFT
from llmpulse.dashboards.feedback_board import FEEDBACK
from llmpulse.dashboards.panels import DashboardSpec, PanelSpec, Viz
from llmpulse.dashboards.pipeline_board import PIPELINE
from llmpulse.dashboards.versions_board import VERSIONS

__all__ = ["AGENTS", "DASHBOARDS", "DRIFT", "FEEDBACK", "OVERVIEW", "PIPELINE", "QUALITY", "VARIABLES",
           "VERSIONS", "dashboard"]

OVERVIEW = DashboardSpec(
    uid="llmpulse-overview",
    title="llmpulse / Overview",
    description="Volume, errors, latency, tokens and cost of the LLM calls, by app and model.",
    variables=VARIABLES,
    panels=(
        stat_panel("calls", "Calls", "sum(calls) AS calls", "short", "LLM calls in the range."),
        stat_panel(
            "error_rate",
            "Error rate",
            "sum(errors) / nullIf(sum(calls), 0) AS error_rate",
            "percentunit",
            "Share of calls whose response carried an error.",
            decimals=2,
        ),
        stat_panel(
            "p95_latency",
            "p95 latency",
            f"round({QUANTILES}(latency_ms)[3], 1) AS p95_latency_ms",
            "ms",
            "95th percentile of the response latency (t-digest over the rollup).",
        ),
        stat_panel(
            "cost",
            "Cost",
            "round(sum(cost_usd), 4) AS cost_usd",
            "currencyUSD",
            "Spend on the calls in the range.",
            decimals=2,
        ),
        stat_panel(
            "tokens",
            "Tokens",
            "sum(input_tokens) + sum(output_tokens) AS tokens",
            "short",
            "Input plus output tokens.",
        ),
        stat_panel(
            "cost_per_call",
            "Cost per call",
            "sum(cost_usd) / nullIf(sum(calls), 0) AS cost_per_call",
            "currencyUSD",
            "Mean spend per call.",
            decimals=5,
        ),
        PanelSpec(
            "calls_by_app_model",
            "Calls by app and model",
            Viz.TIMESERIES,
            sql(f"""
            SELECT $__timeInterval(minute) AS time, concat(app, ' / ', model) AS series, sum(calls) AS calls
            FROM calls_1m WHERE {ROLLUP}
            GROUP BY time, series ORDER BY time, series"""),
            "Calls per interval, one line per app and model.",
            stacked=True,
        ),
        PanelSpec(
            "error_rates",
            "Errors, timeouts and refusals",
            Viz.TIMESERIES,
            sql(f"""
            SELECT $__timeInterval(minute) AS time,
                   sum(errors) / nullIf(sum(calls), 0) AS errors,
                   sum(incomplete) / nullIf(sum(calls), 0) AS incomplete,
                   sum(refusals) / nullIf(sum(calls), 0) AS refusals
            FROM calls_1m WHERE {ROLLUP} GROUP BY time ORDER BY time"""),
            "Share of calls that failed, never completed (no response), or were refused.",
            unit="percentunit",
        ),
        PanelSpec(
            "latency",
            "Latency percentiles",
            Viz.TIMESERIES,
            sql(f"""
            SELECT time, q[1] AS p50, q[3] AS p95, q[4] AS p99, t[3] AS ttft_p95
            FROM (
                SELECT $__timeInterval(minute) AS time, {QUANTILES}(latency_ms) AS q,
                       {QUANTILES}(time_to_first_token_ms) AS t
                FROM calls_1m WHERE {ROLLUP} GROUP BY time
            ) ORDER BY time"""),
            "Response latency p50/p95/p99 and time-to-first-token p95 (t-digest merge).",
            unit="ms",
        ),
        PanelSpec(
            "tokens_over_time",
            "Tokens",
            Viz.TIMESERIES,
            sql(f"""
            SELECT $__timeInterval(minute) AS time, sum(input_tokens) AS input_tokens,
                   sum(output_tokens) AS output_tokens
            FROM calls_1m WHERE {ROLLUP} GROUP BY time ORDER BY time"""),
            "Input and output tokens per interval.",
            stacked=True,
        ),
        PanelSpec(
            "cost_by_model",
            "Cost by model",
            Viz.TIMESERIES,
            sql(f"""
            SELECT $__timeInterval(minute) AS time, model AS series, sum(cost_usd) AS cost_usd
            FROM calls_1m WHERE {ROLLUP} GROUP BY time, series ORDER BY time, series"""),
            "Spend per interval, one line per model.",
            unit="currencyUSD",
            stacked=True,
        ),
        PanelSpec(
            "by_app_model",
            "By app and model",
            Viz.TABLE,
            sql(f"""
            SELECT app, model, sum(calls) AS call_count,
                   round(sum(errors) / nullIf(sum(calls), 0), 4) AS error_rate,
                   round({QUANTILES}(latency_ms)[1], 1) AS p50_ms,
                   round({QUANTILES}(latency_ms)[3], 1) AS p95_ms,
                   round((sum(input_tokens) + sum(output_tokens)) / nullIf(sum(calls), 0), 1)
                       AS tokens_per_call,
                   round(sum(cost_usd), 4) AS total_cost_usd,
                   round(sum(cost_usd) / nullIf(sum(calls), 0), 6) AS cost_per_call
            FROM calls_1m WHERE {ROLLUP} GROUP BY app, model ORDER BY call_count DESC, app, model"""),
            "Totals per app and model over the range.",
            width=24,
        ),
        PanelSpec(
            "alerts",
            "Alerts",
            Viz.TABLE,
            sql(f"""
            SELECT dedup_key, argMax(rule, occurred_at) AS rule, argMax(status, occurred_at) AS status,
                   argMax(severity, occurred_at) AS severity, max(occurred_at) AS last_change,
                   argMax(summary, occurred_at) AS summary
            FROM alerts WHERE $__timeFilter(occurred_at) AND {APP} AND {ENV}
            GROUP BY dedup_key ORDER BY last_change DESC LIMIT 50"""),
            "Each incident's latest state (llmpulse's stream alerts).",
            width=16,
        ),
        PanelSpec(
            "dead_letters",
            "Dead letters",
            Viz.TABLE,
            sql("""
            SELECT stage, reason, count() AS records FROM dead_letters
            WHERE $__timeFilter(occurred_at) GROUP BY stage, reason ORDER BY records DESC"""),
            "Records refused by a stage, by reason (not filtered by app).",
            width=8,
        ),
    ),
)

QUALITY = DashboardSpec(
    uid="llmpulse-quality",
    title="llmpulse / Quality and safety",
    description="Toxicity, guardrail verdicts, refusals, relevance and groundedness per prompt version.",
    variables=VARIABLES,
    panels=(
        stat_panel(
            "toxic_rate",
            "Toxic responses",
            "sum(toxic) / nullIf(sum(toxicity_scored), 0) AS toxic_rate",
            "percentunit",
            "Share of scored responses with toxicity >= 0.5.",
            decimals=2,
        ),
        stat_panel(
            "violation_rate",
            "Guardrail violations",
            "sum(guardrail_flagged) / nullIf(sum(calls), 0) AS violation_rate",
            "percentunit",
            "Share of calls with at least one guardrail verdict.",
            decimals=2,
        ),
        stat_panel(
            "blocked_rate",
            "Blocked",
            "sum(guardrail_blocked) / nullIf(sum(calls), 0) AS blocked_rate",
            "percentunit",
            "Share of calls a guardrail blocked.",
            decimals=2,
        ),
        stat_panel(
            "refusal_rate",
            "Refusals",
            "sum(refusals) / nullIf(sum(calls), 0) AS refusal_rate",
            "percentunit",
            "Share of calls refused (refusal >= 0.5 or content filter).",
            decimals=2,
        ),
        stat_panel(
            "relevance",
            "Relevance",
            "sum(relevance_sum) / nullIf(sum(relevance_scored), 0) AS relevance",
            "percentunit",
            "Mean relevance of the scored responses.",
            decimals=3,
        ),
        stat_panel(
            "groundedness",
            "Groundedness",
            "sum(groundedness_sum) / nullIf(sum(groundedness_scored), 0) AS groundedness",
            "percentunit",
            "Mean groundedness of the scored responses (calls with retrieved context).",
            decimals=3,
        ),
        PanelSpec(
            "toxicity_by_version",
            "Toxic responses by prompt version",
            Viz.TIMESERIES,
            sql(f"""
            SELECT $__timeInterval(minute) AS time, {SERIES_VERSION} AS series,
                   sum(toxic) / nullIf(sum(toxicity_scored), 0) AS toxic_rate
            FROM calls_1m WHERE {ROLLUP} GROUP BY time, series ORDER BY time, series"""),
            "Share of scored responses with toxicity >= 0.5, per prompt version.",
            unit="percentunit",
        ),
        PanelSpec(
            "verdicts_by_rule",
            "Guardrail verdicts by rule",
            Viz.TIMESERIES,
            sql(f"""
            SELECT $__timeInterval(minute) AS time, rule_id AS series, sum(verdicts) AS verdicts
            FROM guardrail_verdicts_1m WHERE $__timeFilter(minute) AND {SCOPE_NO_MODEL}
            GROUP BY time, series ORDER BY time, series"""),
            "Verdicts per interval by rule (the model filter does not apply: the verdict rollup "
            "has no model).",
            stacked=True,
        ),
        PanelSpec(
            "verdicts_by_action",
            "Verdicts by rule and action",
            Viz.BARCHART,
            sql(f"""
            SELECT rule_id, sumIf(verdicts, action = 'flag') AS flag,
                   sumIf(verdicts, action = 'block') AS block,
                   sumIf(verdicts, action = 'redact') AS redact
            FROM guardrail_verdicts_1m WHERE $__timeFilter(minute) AND {SCOPE_NO_MODEL}
            GROUP BY rule_id ORDER BY rule_id"""),
            "What each rule did: flagged, blocked or redacted.",
            stacked=True,
        ),
        PanelSpec(
            "refusals_by_version",
            "Refusals by prompt version",
            Viz.TIMESERIES,
            sql(f"""
            SELECT $__timeInterval(minute) AS time, {SERIES_VERSION} AS series,
                   sum(refusals) / nullIf(sum(calls), 0) AS refusal_rate
            FROM calls_1m WHERE {ROLLUP} GROUP BY time, series ORDER BY time, series"""),
            "Share of calls refused, per prompt version.",
            unit="percentunit",
        ),
        PanelSpec(
            "scores",
            "Quality, relevance and groundedness",
            Viz.TIMESERIES,
            sql(f"""
            SELECT $__timeInterval(minute) AS time,
                   sum(quality_sum) / nullIf(sum(quality_scored), 0) AS quality,
                   sum(relevance_sum) / nullIf(sum(relevance_scored), 0) AS relevance,
                   sum(groundedness_sum) / nullIf(sum(groundedness_scored), 0) AS groundedness
            FROM calls_1m WHERE {ROLLUP} GROUP BY time ORDER BY time"""),
            "Mean scores of the responses scored in each interval.",
            unit="percentunit",
        ),
        PanelSpec(
            "quality_by_version",
            "By prompt version",
            Viz.TABLE,
            sql(f"""
            SELECT prompt_id, prompt_version, sum(calls) AS call_count,
                   round(sum(quality_sum) / nullIf(sum(quality_scored), 0), 3) AS quality,
                   round(sum(relevance_sum) / nullIf(sum(relevance_scored), 0), 3) AS relevance,
                   round(sum(groundedness_sum) / nullIf(sum(groundedness_scored), 0), 3) AS groundedness,
                   round(sum(toxic) / nullIf(sum(toxicity_scored), 0), 4) AS toxic_rate,
                   round(sum(refusals) / nullIf(sum(calls), 0), 4) AS refusal_rate,
                   round(sum(guardrail_flagged) / nullIf(sum(calls), 0), 4) AS violation_rate,
                   sum(guardrail_blocked) AS blocked
            FROM calls_1m WHERE {ROLLUP}
            GROUP BY prompt_id, prompt_version ORDER BY prompt_id, prompt_version"""),
            "Quality and safety per prompt version over the range.",
            width=24,
        ),
        PanelSpec(
            "flagged_calls",
            "Recent flagged calls",
            Viz.TABLE,
            sql(f"""
            SELECT occurred_at AS time, call_id, prompt_id, prompt_version, model,
                   arrayStringConcat(guardrail_rules, ', ') AS rules,
                   toString(guardrail_severity) AS severity,
                   guardrail_blocked AS blocked, round(toxicity, 3) AS toxicity
            FROM calls WHERE {RAW} AND (guardrail_flagged OR toxicity >= 0.5)
            ORDER BY occurred_at DESC LIMIT 50"""),
            "The latest calls with a guardrail verdict or a toxic response (raw rows).",
            width=24,
        ),
    ),
)

DASHBOARDS: tuple[DashboardSpec, ...] = (OVERVIEW, QUALITY, FEEDBACK, DRIFT, PIPELINE, VERSIONS, AGENTS)
"""Every dashboard, in the order the report shows them."""


def dashboard(uid: str) -> DashboardSpec:
    """The dashboard with this uid."""
    for spec in DASHBOARDS:
        if spec.uid == uid:
            return spec
    raise KeyError(f"no dashboard {uid!r}; known: {', '.join(d.uid for d in DASHBOARDS)}")
