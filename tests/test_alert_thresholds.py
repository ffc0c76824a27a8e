"""One set of alert thresholds: the workers' alert engine and the Grafana rules read the same."""

from __future__ import annotations

from llmpulse.dashboards.alerts import alert_rules
from llmpulse.processors.alerting import load_alert_config
from llmpulse.schemas.thresholds import AlertThresholds


def test_thresholds_are_the_ones_the_grafana_rules_use():
    environ = {"LLMPULSE_ALERT_TOXICITY_RATE": "0.12", "LLMPULSE_ALERT_MIN_CALLS": "80",
               "LLMPULSE_ALERT_WINDOW_MINUTES": "10"}
    cfg = load_alert_config(environ=environ)
    grafana = {r.uid: r for r in alert_rules(AlertThresholds.from_env(environ))}
    assert cfg.toxicity.threshold == grafana["llmpulse-toxicity-rate"].threshold == 0.12
    assert cfg.toxicity.min_calls == 80 and "HAVING sum(toxicity_scored) >= 80" in grafana[
        "llmpulse-toxicity-rate"].sql
    assert cfg.errors.window_seconds == 600.0 and grafana["llmpulse-error-rate"].lookback_minutes == 10
    defaults = load_alert_config(environ={})
    shared = AlertThresholds()
    assert (defaults.toxicity.threshold, defaults.guardrail.threshold, defaults.errors.threshold) == (
        shared.toxicity_rate, shared.guardrail_violation_rate, shared.error_rate)

