"""The prompt-version comparison dashboard: versions A and B of one prompt, side by side.

``$prompt`` picks the prompt, ``$version_a`` and ``$version_b`` the two versions (B's
list is sorted descending, so by default A is the oldest version and B the newest).
Series are named ``A: v1`` and ``B: v2``. ``llmpulse compare`` adds the statistics
(confidence intervals, p-values) that a dashboard cannot.

Example:
    >>> from llmpulse.dashboards.versions_board import VERSIONS
    >>> [v.name for v in VERSIONS.variables]
    ['app', 'environment', 'model', 'prompt', 'version_a', 'version_b']
"""

# ruff: noqa: S608 - SQL built from constant fragments; values arrive as Grafana variables or parameters

from __future__ import annotations

from llmpulse.dashboards._sql import APP, ENV, MODEL, PAIR_SCOPE, QUANTILES, SIDE, sql
from llmpulse.dashboards.panels import DashboardSpec, PanelSpec, VariableSpec, Viz

__all__ = ["VERSIONS"]

_VERSIONS_OF_PROMPT = sql(f"""
    SELECT DISTINCT prompt_version FROM calls_1m
    WHERE $__timeFilter(minute) AND {APP} AND {ENV} AND prompt_id = ${{prompt:sqlstring}}
    ORDER BY prompt_version""")

_VARIABLES = (
    VariableSpec(
        "app", "App", sql("SELECT DISTINCT app FROM calls_1m WHERE $__timeFilter(minute) ORDER BY app")
    ),
    VariableSpec(
        "environment",
        "Environment",
        sql(f"""
        SELECT DISTINCT environment FROM calls_1m WHERE $__timeFilter(minute) AND {APP}
        ORDER BY environment"""),
    ),
    VariableSpec(
        "model",
        "Model",
        sql(f"""
        SELECT DISTINCT model FROM calls_1m WHERE $__timeFilter(minute) AND {APP} AND {ENV}
        ORDER BY model"""),
    ),
    VariableSpec(
        "prompt",
        "Prompt",
        sql(f"""
        SELECT DISTINCT prompt_id FROM calls_1m WHERE $__timeFilter(minute) AND {APP} AND {ENV}
        ORDER BY prompt_id"""),
        multi=False,
        include_all=False,
    ),
    VariableSpec("version_a", "Version A", _VERSIONS_OF_PROMPT, multi=False, include_all=False),
    VariableSpec(
        "version_b", "Version B", _VERSIONS_OF_PROMPT, multi=False, include_all=False, descending=True
    ),
)

_PAIR = f"$__timeFilter(minute) AND {PAIR_SCOPE}"
_PAIR_RAW = f"$__timeFilter(occurred_at) AND {PAIR_SCOPE}"


def _series(
    key: str, title: str, value: str, description: str, *, table: str = "calls_1m", unit: str = "short"
) -> PanelSpec:
    """A time series with one line per side (A and B)."""
    return PanelSpec(
        key,
        title,
        Viz.TIMESERIES,
        sql(f"""
        SELECT $__timeInterval(minute) AS time, {SIDE} AS series, {value}
        FROM {table} WHERE {_PAIR} GROUP BY time, series ORDER BY time, series"""),
        description,
        unit=unit,
        width=8,
        min_interval="5m",
    )


VERSIONS = DashboardSpec(
    uid="llmpulse-versions",
    title="llmpulse / Prompt versions",
    description="Two versions of a prompt side by side: volume, quality, safety, feedback, latency, cost.",
    variables=_VARIABLES,
    panels=(
        PanelSpec(
            "side_by_side",
            "Side by side",
            Viz.TABLE,
            sql(f"""
            SELECT {SIDE} AS side, sum(calls) AS call_count,
                   round(sum(errors) / nullIf(sum(calls), 0), 4) AS error_rate,
                   round(sum(refusals) / nullIf(sum(calls), 0), 4) AS refusal_rate,
                   round(sum(toxic) / nullIf(sum(toxicity_scored), 0), 4) AS toxic_rate,
                   round(sum(guardrail_flagged) / nullIf(sum(calls), 0), 4) AS violation_rate,
                   round(sum(quality_sum) / nullIf(sum(quality_scored), 0), 3) AS quality,
                   round(sum(relevance_sum) / nullIf(sum(relevance_scored), 0), 3) AS relevance,
                   round(sum(groundedness_sum) / nullIf(sum(groundedness_scored), 0), 3) AS groundedness,
                   round({QUANTILES}(latency_ms)[1], 1) AS p50_ms,
                   round({QUANTILES}(latency_ms)[3], 1) AS p95_ms,
                   round((sum(input_tokens) + sum(output_tokens)) / nullIf(sum(calls), 0), 1)
                       AS tokens_per_call,
                   round(sum(cost_usd) / nullIf(sum(calls), 0), 6) AS cost_per_call
            FROM calls_1m WHERE {_PAIR} GROUP BY side ORDER BY side"""),
            "Totals over the range for A and B. `llmpulse compare` says which differences are real.",
            width=24,
            height=5,
        ),
        PanelSpec(
            "feedback_side_by_side",
            "Feedback side by side",
            Viz.TABLE,
            sql(f"""
            SELECT {SIDE} AS side, sum(feedback) AS feedback,
                   round(sum(thumbs_up) / nullIf(sum(thumbs_up) + sum(thumbs_down), 0), 4) AS thumbs_up_rate,
                   round(sum(rating_sum) / nullIf(sum(ratings), 0), 2) AS rating,
                   sum(corrections) AS corrections
            FROM feedback_1m WHERE {_PAIR} GROUP BY side ORDER BY side"""),
            "Feedback on A and B over the range.",
            width=12,
            height=5,
        ),
        PanelSpec(
            "drift_side_by_side",
            "Drift side by side",
            Viz.TABLE,
            sql(f"""
            SELECT {SIDE} AS side, count() AS windows, countIf(drifted) AS drifted_windows,
                   round(max(share_drifted), 3) AS max_share_drifted,
                   arrayStringConcat(arraySort(groupUniqArrayArray(
                       arrayFilter((f, d) -> d, feature_names, feature_drifted))), ', ') AS drifted_features
            FROM drift_results
            WHERE $__timeFilter(window_end) AND {APP} AND {ENV} AND {MODEL}
              AND prompt_id = ${{prompt:sqlstring}}
              AND prompt_version IN (${{version_a:sqlstring}}, ${{version_b:sqlstring}})
            GROUP BY side ORDER BY side"""),
            "Drift windows of A and B and the features that drifted.",
            width=12,
            height=5,
        ),
        _series("calls", "Calls", "sum(calls) AS calls", "Calls per interval."),
        _series(
            "p95_latency",
            "p95 latency",
            f"{QUANTILES}(latency_ms)[3] AS p95_ms",
            "95th percentile latency per interval.",
            unit="ms",
        ),
        _series(
            "cost_per_call",
            "Cost per call",
            "sum(cost_usd) / nullIf(sum(calls), 0) AS cost_per_call",
            "Mean spend per call.",
            unit="currencyUSD",
        ),
        _series(
            "thumbs_up",
            "Thumbs-up rate",
            "sum(thumbs_up) / nullIf(sum(thumbs_up) + sum(thumbs_down), 0) AS thumbs_up_rate",
            "Thumbs up among thumbs given.",
            table="feedback_1m",
            unit="percentunit",
        ),
        _series(
            "relevance",
            "Relevance",
            "sum(relevance_sum) / nullIf(sum(relevance_scored), 0) AS relevance",
            "Mean relevance of the scored responses.",
            unit="percentunit",
        ),
        _series(
            "toxic_rate",
            "Toxic responses",
            "sum(toxic) / nullIf(sum(toxicity_scored), 0) AS toxic_rate",
            "Share of scored responses with toxicity >= 0.5.",
            unit="percentunit",
        ),
        PanelSpec(
            "slowest",
            "Slowest calls of A and B",
            Viz.TABLE,
            sql(f"""
            SELECT occurred_at AS time, {SIDE} AS side, call_id, model, round(latency_ms, 1) AS latency_ms,
                   error_type
            FROM calls WHERE {_PAIR_RAW} AND latency_ms IS NOT NULL
            ORDER BY latency_ms DESC LIMIT 20"""),
            "Drill-down on raw rows: the slowest calls of either version.",
            width=24,
        ),
    ),
)
