"""Alert rules: thresholds from the environment, and which rules fire on the sample traffic."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from llmpulse.dashboards.alerts import AlertThresholds, alert_rules, evaluate_rules
from llmpulse.dashboards.testing import SampleTraffic
from llmpulse.sinks.store import Store


def test_thresholds_from_the_environment_and_overrides() -> None:
    thresholds = AlertThresholds.from_env(
        {"LLMPULSE_ALERT_ERROR_RATE": "0.2", "LLMPULSE_ALERT_MIN_CALLS": "5"}
    )
    assert (thresholds.error_rate, thresholds.min_calls, thresholds.toxicity_rate) == (0.2, 5, 0.05)
    assert thresholds.replace({"p95_latency_ms": "900"}).p95_latency_ms == 900.0
    with pytest.raises(ValueError, match="unknown alert threshold 'nope'"):
        thresholds.replace({"nope": 1})
    with pytest.raises(ValueError, match="not a number"):
        thresholds.replace({"error_rate": "high"})
    rule = {r.uid: r for r in alert_rules(thresholds)}["llmpulse-error-rate"]
    assert rule.threshold == 0.2 and "HAVING sum(calls) >= 5" in rule.sql


def test_rules_fire_on_what_the_traffic_contains(traffic_store: Store, traffic: SampleTraffic) -> None:
    end = traffic.end + timedelta(minutes=1)
    quiet = AlertThresholds(
        toxicity_rate=0.5,
        guardrail_violation_rate=0.5,
        error_rate=0.5,
        p95_latency_ms=60_000,
        cost_per_hour_usd=1000,
        window_minutes=60,
    )
    firing = [i for i in evaluate_rules(traffic_store, alert_rules(quiet), now=end) if i.firing]
    # Only the injected drift (answer v2, in the last third of the range) fires.
    assert {(i.rule_uid, i.labels["prompt_id"], i.labels["prompt_version"]) for i in firing} == {
        ("llmpulse-drift", "answer", "2")
    }
    strict = AlertThresholds(p95_latency_ms=100, cost_per_hour_usd=0.001, error_rate=0.0, window_minutes=60)
    instances = evaluate_rules(traffic_store, alert_rules(strict), now=end)
    fired = {i.rule_uid for i in instances if i.firing}
    assert {"llmpulse-p95-latency", "llmpulse-cost-per-hour", "llmpulse-error-rate"} <= fired
    costs = {
        (i.labels["app"], i.labels["environment"]): i.value
        for i in instances
        if i.rule_uid == "llmpulse-cost-per-hour"
    }
    assert set(costs) == {
        (a, e) for a in ("support-bot", "search-assistant") for e in ("production", "staging")
    }
    assert all(v is not None and v > 0 for v in costs.values())
    # Before the traffic there is nothing to evaluate, so nothing fires (no-data is OK).
    assert not [i for i in evaluate_rules(traffic_store, alert_rules(strict), now=traffic.start) if i.firing]


_GO_TEMPLATE = """package main

import (
	"encoding/json"
	"os"
	"regexp"
	"text/template"
)

// Prometheus's (and Grafana's) reReplaceAll; the labels as $labels.
func main() {
	var in struct {
		Text   string
		Labels map[string]string
	}
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		panic(err)
	}
	funcs := template.FuncMap{"reReplaceAll": func(pattern, repl, text string) string {
		return regexp.MustCompile(pattern).ReplaceAllString(text, repl)
	}}
	t := template.Must(template.New("s").Funcs(funcs).Parse(`{{ $labels := .Labels }}` + in.Text))
	if err := t.Execute(os.Stdout, in); err != nil {
		panic(err)
	}
}
"""


def test_an_alert_summary_names_the_version_with_one_v(tmp_path: Path) -> None:
    """The drift rule's summary, rendered by Go's text/template with Prometheus's
    ``reReplaceAll`` as Grafana renders it: ``v1`` stays ``v1`` (was ``vv1``), ``2`` is ``v2``,
    as ``version_label`` says."""
    import json
    import shutil
    import subprocess

    from llmpulse.dashboards.charts import version_label

    go = shutil.which("go")
    if go is None:
        pytest.skip("no Go toolchain to render the template")
    (tmp_path / "render.go").write_text(_GO_TEMPLATE)
    summary = {r.uid: r for r in alert_rules()}["llmpulse-drift"].summary
    for version in ("v1", "2", "V3"):
        labels = {"prompt_id": "support-answer", "prompt_version": version, "app": "shop"}
        rendered = subprocess.run(
            [go, "run", str(tmp_path / "render.go")], input=json.dumps({"Text": summary, "Labels": labels}),
            capture_output=True, text=True, check=True, timeout=300,
            env={**os.environ, "GOFLAGS": "-mod=mod", "GO111MODULE": "off"}).stdout
        assert rendered == f"Drift on support-answer {version_label(version)} (shop)", rendered
    assert all("v{{" not in r.summary for r in alert_rules())
