"""Grafana unified alerting rules: drift, toxicity, guardrail violations, errors, latency, cost.

Each rule is a ClickHouse query (string columns become the alert's labels, the one
number its value) and a threshold. ``AlertThresholds`` (``llmpulse.schemas.thresholds``,
shared with the workers' alert engine) holds the thresholds (defaults, ``LLMPULSE_ALERT_*``
variables, or ``llmpulse dashboards generate --threshold``);
``llmpulse.dashboards.grafana`` writes them as a provisioning file and ``push`` sends
them to Grafana's provisioning API. ``evaluate_rules`` runs the same queries against a
store, expanded as Grafana's alerting would, so the report and the tests can say which
rules would fire.

Example:
    >>> from llmpulse.dashboards.alerts import AlertThresholds, alert_rules
    >>> [r.uid for r in alert_rules(AlertThresholds(error_rate=0.1))][:2]
    ['llmpulse-drift', 'llmpulse-toxicity-rate']
    >>> AlertThresholds.from_env({"LLMPULSE_ALERT_ERROR_RATE": "0.2"}).error_rate
    0.2
"""

# ruff: noqa: S608 - SQL built from constant fragments; values arrive as Grafana variables or parameters

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from llmpulse.dashboards._sql import QUANTILES, sql
from llmpulse.dashboards.macros import TimeRange, expand
from llmpulse.schemas.thresholds import TOXIC_SCORE, AlertThresholds

PROMPT_VERSION = '{{ reReplaceAll "^([^vV])" "v${1}" $labels.prompt_version }}'
"""``charts.version_label()`` in Grafana's template language (Prometheus's ``reReplaceAll``):
the prompt version of an alert's summary with one ``v`` (``v1`` stays ``v1``, ``3`` is ``v3``)."""

__all__ = ["PROMPT_VERSION", "AlertInstance", "AlertRuleSpec", "AlertThresholds", "alert_rules",
           "evaluate_rules"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlertRuleSpec:
    """One alert rule: a query returning label columns and one number, and a threshold."""

    uid: str
    title: str
    sql: str
    value_column: str
    threshold: float
    lookback_minutes: int
    summary: str
    description: str
    severity: str = "warning"
    pending_minutes: int = 5
    evaluator: str = "gt"

    def fires(self, value: float | None) -> bool:
        """Whether a value crosses the threshold (NULL and NaN never fire)."""
        if value is None or math.isnan(value):
            return False
        return value > self.threshold if self.evaluator == "gt" else value < self.threshold


def alert_rules(thresholds: AlertThresholds | None = None) -> list[AlertRuleSpec]:
    """The llmpulse alert rules with these thresholds (default: ``AlertThresholds.from_env()``)."""
    t = thresholds or AlertThresholds.from_env()
    rate_keys = "app, environment, prompt_id, prompt_version"
    window, pending = t.window_minutes, t.pending_minutes
    return [
        AlertRuleSpec(
            "llmpulse-drift",
            "Drift detected",
            sql(f"""
                SELECT {rate_keys}, toFloat64(countIf(drifted)) AS drifted_windows
                FROM drift_results WHERE $__timeFilter(window_end)
                GROUP BY {rate_keys}"""),
            "drifted_windows",
            t.drifted_windows,
            t.drift_window_minutes,
            "Drift on {{ $labels.prompt_id }} " + PROMPT_VERSION + " ({{ $labels.app }})",
            "Drift windows of this prompt version drifted; see the Drift dashboard for the features.",
            severity="critical",
            pending_minutes=0,
        ),
        AlertRuleSpec(
            "llmpulse-toxicity-rate",
            "Toxicity rate above threshold",
            sql(f"""
                SELECT {rate_keys}, sum(toxic) / sum(toxicity_scored) AS toxicity_rate
                FROM calls_1m WHERE $__timeFilter(minute)
                GROUP BY {rate_keys} HAVING sum(toxicity_scored) >= {t.min_calls}"""),
            "toxicity_rate",
            t.toxicity_rate,
            window,
            f"Toxic responses above {t.toxicity_rate:.0%} on {{{{ $labels.prompt_id }}}} "
            + PROMPT_VERSION,
            f"Share of scored responses with toxicity >= {TOXIC_SCORE:g} over the window.",
            severity="critical",
            pending_minutes=pending,
        ),
        AlertRuleSpec(
            "llmpulse-guardrail-violation-rate",
            "Guardrail violation rate above threshold",
            sql(f"""
                SELECT {rate_keys}, sum(guardrail_flagged) / sum(calls) AS violation_rate
                FROM calls_1m WHERE $__timeFilter(minute)
                GROUP BY {rate_keys} HAVING sum(calls) >= {t.min_calls}"""),
            "violation_rate",
            t.guardrail_violation_rate,
            window,
            f"Guardrail violations above {t.guardrail_violation_rate:.0%} on {{{{ $labels.prompt_id }}}} "
            + PROMPT_VERSION,
            "Share of calls with at least one guardrail verdict over the window.",
            pending_minutes=pending,
        ),
        AlertRuleSpec(
            "llmpulse-error-rate",
            "Error rate above threshold",
            sql(f"""
                SELECT {rate_keys}, sum(errors) / sum(calls) AS error_rate
                FROM calls_1m WHERE $__timeFilter(minute)
                GROUP BY {rate_keys} HAVING sum(calls) >= {t.min_calls}"""),
            "error_rate",
            t.error_rate,
            window,
            f"Error rate above {t.error_rate:.0%} on {{{{ $labels.app }}}} ({{{{ $labels.prompt_id }}}} "
            + PROMPT_VERSION + ")",
            "Share of calls whose response carried an error over the window.",
            pending_minutes=pending,
        ),
        AlertRuleSpec(
            "llmpulse-p95-latency",
            "p95 latency above threshold",
            sql(f"""
                SELECT app, environment, model, {QUANTILES}(latency_ms)[3] AS p95_latency_ms
                FROM calls_1m WHERE $__timeFilter(minute)
                GROUP BY app, environment, model HAVING sum(calls) >= {t.min_calls}"""),
            "p95_latency_ms",
            t.p95_latency_ms,
            window,
            f"p95 latency above {t.p95_latency_ms:g} ms on {{{{ $labels.app }}}} / {{{{ $labels.model }}}}",
            "95th percentile response latency over the window (t-digest over the rollup).",
            pending_minutes=pending,
        ),
        AlertRuleSpec(
            "llmpulse-cost-per-hour",
            "Cost per hour above threshold",
            sql("""
                SELECT app, environment,
                       sum(cost_usd) * 3600 / greatest(toUInt32($__toTime) - toUInt32($__fromTime), 1)
                           AS cost_per_hour_usd
                FROM calls_1m WHERE $__timeFilter(minute) GROUP BY app, environment"""),
            "cost_per_hour_usd",
            t.cost_per_hour_usd,
            60,
            f"Spend above ${t.cost_per_hour_usd:g}/h on {{{{ $labels.app }}}}",
            "Spend over the last hour, per app.",
            pending_minutes=pending,
        ),
    ]


@dataclass(frozen=True)
class AlertInstance:
    """One evaluated series of a rule: its labels, its value, and whether it fires."""

    rule_uid: str
    title: str
    labels: dict[str, str]
    value: float | None
    threshold: float
    firing: bool


def evaluate_rules(
    store: Any, rules: Iterable[AlertRuleSpec] | None = None, *, now: datetime | None = None
) -> list[AlertInstance]:
    """Run each rule's query over its look-back ending ``now``, as Grafana's alerting would.

    The pending period is not simulated: ``firing`` says the condition holds now.
    """
    now = now or datetime.now(UTC)
    specs = list(rules) if rules is not None else alert_rules()
    instances = []
    for rule in specs:
        window = TimeRange(now - timedelta(minutes=rule.lookback_minutes), now)
        statement = expand(rule.sql, time_range=window, max_data_points=43_200, min_interval=None)
        result = store.query(statement)
        for row in result.dicts():
            value = row.pop(rule.value_column)
            labels = {k: str(v) for k, v in row.items()}
            number = None if value is None else float(value)
            instances.append(
                AlertInstance(rule.uid, rule.title, labels, number, rule.threshold, rule.fires(number))
            )
    firing = sum(i.firing for i in instances)
    logger.info("evaluated %d alert rules: %d series, %d firing", len(specs), len(instances), firing)
    return instances
