"""The dashboard queries the schema is built for: rollups for ranges, raw rows for drill-down.

Each query takes the parameters ``app`` (String), ``start`` and ``end`` (DateTime64, UTC)
as ClickHouse server-side parameters. The dashboards room builds its panels on these
shapes; the sink's tests run every one of them (redelivery must not change any result).

Example:
    >>> from datetime import UTC, datetime, timedelta
    >>> from llmpulse.sinks.queries import DASHBOARD_QUERIES, run_dashboard_queries
    >>> sorted(DASHBOARD_QUERIES)[:3]
    ['alerts_current', 'calls_by_prompt_version', 'calls_per_minute']
    >>> end = datetime.now(UTC)
    >>> results = run_dashboard_queries(store, "support-bot", end - timedelta(hours=1), end)  # doctest: +SKIP
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from llmpulse.sinks.store import Store

__all__ = ["DASHBOARD_QUERIES", "LATENCY_QUANTILES", "run_dashboard_queries"]

LATENCY_QUANTILES = "quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99)"
"""Merge of the rollups' latency states: returns [p50, p90, p95, p99]."""

_MARKERS = {
    "$RANGE": "app = {app:String} AND minute >= toStartOfMinute({start:DateTime64(3)})"
              " AND minute < {end:DateTime64(3)}",
    "$RAW_RANGE": "app = {app:String} AND occurred_at >= {start:DateTime64(3)}"
                  " AND occurred_at < {end:DateTime64(3)}",
    "$QUANTILES": LATENCY_QUANTILES,
}


def _sql(text: str) -> str:
    """Expand the markers (constants only: the values come in as parameters)."""
    for marker, clause in sorted(_MARKERS.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(marker, clause)
    return " ".join(text.split())


DASHBOARD_QUERIES: dict[str, str] = {
    # Overview time series: sorting key (app, ..., minute) of calls_1m.
    "calls_per_minute": _sql("""
        SELECT minute, sum(calls) AS n_calls, sum(errors) / sum(calls) AS error_rate,
               sum(refusals) / sum(calls) AS refusal_rate, sum(cost_usd) AS total_cost_usd,
               $QUANTILES(latency_ms) AS latency_quantiles
        FROM calls_1m WHERE $RANGE GROUP BY minute ORDER BY minute"""),
    # Prompt versions side by side (the comparison panel): prefix (app, environment, prompt_id,
    # prompt_version) of calls_1m's key.
    "calls_by_prompt_version": _sql("""
        SELECT prompt_id, prompt_version, model, sum(calls) AS n_calls, sum(errors) AS n_errors,
               sum(incomplete) AS n_incomplete, sum(refusals) AS n_refusals,
               sum(toxic) / nullIf(sum(toxicity_scored), 0) AS toxic_rate,
               sum(toxicity_sum) / nullIf(sum(toxicity_scored), 0) AS toxicity_mean,
               sum(relevance_sum) / nullIf(sum(relevance_scored), 0) AS relevance_mean,
               sum(guardrail_flagged) AS n_flagged, sum(guardrail_blocked) AS n_blocked,
               sum(input_tokens) AS total_input_tokens, sum(output_tokens) AS total_output_tokens,
               round(sum(cost_usd), 9) AS total_cost_usd,
               arrayMap(x -> round(x, 3), $QUANTILES(latency_ms)) AS latency_quantiles,
               arrayMap(x -> round(x, 3), $QUANTILES(time_to_first_token_ms)) AS ttft_quantiles
        FROM calls_1m WHERE $RANGE
        GROUP BY prompt_id, prompt_version, model ORDER BY prompt_id, prompt_version, model"""),
    # Feedback rates per version: feedback_1m has the same key as calls_1m.
    "feedback_by_prompt_version": _sql("""
        SELECT prompt_id, prompt_version, sum(feedback) AS n_feedback, sum(thumbs_up) AS up,
               sum(thumbs_down) AS down, sum(rating_sum) / nullIf(sum(ratings), 0) AS rating_mean
        FROM feedback_1m WHERE $RANGE
        GROUP BY prompt_id, prompt_version ORDER BY prompt_id, prompt_version"""),
    # Guardrail violations by rule: guardrail_verdicts_1m key (app, environment, rule_id, ...).
    "guardrails_by_rule": _sql("""
        SELECT rule_id, severity, action, sum(verdicts) AS n_verdicts
        FROM guardrail_verdicts_1m WHERE $RANGE
        GROUP BY rule_id, severity, action ORDER BY rule_id, severity, action"""),
    # Current state of every alert incident: alerts key (app, environment, dedup_key, occurred_at).
    "alerts_current": _sql("""
        SELECT dedup_key, argMax(status, occurred_at) AS last_status,
               argMax(severity, occurred_at) AS last_severity, count() AS transitions
        FROM alerts WHERE $RAW_RANGE GROUP BY dedup_key ORDER BY dedup_key"""),
    # Drift per prompt version: drift_results key (app, environment, prompt_id, prompt_version, window_end).
    "drift_latest": _sql("""
        SELECT prompt_id, prompt_version, argMax(share_drifted, window_end) AS last_share_drifted,
               countIf(drifted) AS drifted_windows, count() AS windows
        FROM drift_results
        WHERE app = {app:String} AND window_end >= {start:DateTime64(3)} AND window_end < {end:DateTime64(3)}
        GROUP BY prompt_id, prompt_version ORDER BY prompt_id, prompt_version"""),
    # Drill-down on raw rows: the slowest calls of the range (key prefix app, then time filter).
    "slowest_calls": _sql("""
        SELECT call_id, prompt_version, model, latency_ms, error_type
        FROM calls WHERE $RAW_RANGE AND latency_ms IS NOT NULL
        ORDER BY latency_ms DESC, call_id LIMIT 20"""),
    # Distinct calls in the range (raw): what the rollups must agree with.
    "raw_call_count": _sql("""
        SELECT count() AS calls, uniqExact(call_id) AS distinct_calls FROM calls WHERE $RAW_RANGE"""),
    # Dead letters by stage and reason: dead_letters key (stage, reason, occurred_at).
    "dead_letters_by_reason": _sql("""
        SELECT stage, reason, count() AS records FROM dead_letters
        WHERE occurred_at >= {start:DateTime64(3)} AND occurred_at < {end:DateTime64(3)}
        GROUP BY stage, reason ORDER BY stage, reason"""),
}
"""Name -> SQL with ``{app:String}``, ``{start:DateTime64(3)}``, ``{end:DateTime64(3)}``."""


def run_dashboard_queries(store: Store, app: str, start: datetime, end: datetime) -> dict[str, list[Any]]:
    """Run every dashboard query; ``name -> rows``."""
    parameters = {"app": app, "start": start, "end": end}
    return {name: store.query(sql, parameters).rows for name, sql in DASHBOARD_QUERIES.items()}
