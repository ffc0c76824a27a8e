"""AlertEngine: one incident one alert, resolve, cooldown, and each rule on generated traffic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from llmpulse.processors.alerting import AlertConfig, AlertEngine, DriftRule, FeedbackRule, load_alert_config
from llmpulse.processors.drift import DriftKey, TrafficGenerator
from llmpulse.schemas import DriftResult, FeatureDrift, decode_event, encode_event

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
ONLY = {"drift": None, "toxicity": None, "guardrail": None, "errors": None, "feedback": None}


def _engine(**rules: object) -> AlertEngine:
    return AlertEngine(AlertConfig(**{**ONLY, **rules}))  # type: ignore[arg-type]


def _result(i: int, drifted: bool, version: str = "1") -> DriftResult:
    start = T0 + timedelta(minutes=10 * i)
    return DriftResult(app="shop", prompt_id="faq", prompt_version=version, request_model="m",
                       window_start=start, window_end=start + timedelta(minutes=10),
                       reference_start=T0, reference_end=T0, window_size=100, reference_size=400,
                       drifted=drifted, share_drifted=0.25 if drifted else 0.0,
                       report_uri=f"file:///reports/w{i}.html" if drifted else None,
                       features=[FeatureDrift(feature="response_length", test="ks", statistic=0.4,
                                              p_value=1e-9 if drifted else 0.5, threshold=1e-3,
                                              drifted=drifted)])


def test_drift_fires_after_n_consecutive_windows_once_then_resolves():
    engine = _engine(drift=DriftRule(consecutive=2, clear_after=2), cooldown_seconds=0)
    flags = [False, True, False, True, True, True, True, False, True, False, False]
    alerts = [(i, a) for i, f in enumerate(flags) for a in engine.evaluate([_result(i, f)])]
    assert [(i, a.status) for i, a in alerts] == [(4, "firing"), (10, "resolved")]
    fired, resolved = alerts[0][1], alerts[1][1]
    assert fired.dedup_key == resolved.dedup_key == "drift/shop/production/faq/1/m"
    assert fired.rule == "drift" and fired.severity == "high" and fired.link == "file:///reports/w4.html"
    assert resolved.started_at == fired.started_at == _result(4, True).window_end
    assert "response_length" in fired.summary and fired.value == 0.25
    assert decode_event(encode_event(fired), now=fired.occurred_at) == fired  # a 2025 clock
    assert engine.firing() == []


def test_cooldown_keeps_a_flapping_incident_to_one_alert():
    engine = _engine(drift=DriftRule(consecutive=1, clear_after=1), cooldown_seconds=3600)
    flags = [True, False, True, False, True, False]  # windows 10 minutes apart: all in the cooldown
    alerts = [a for i, f in enumerate(flags) for a in engine.evaluate([_result(i, f)])]
    assert [a.status for a in alerts] == ["firing", "resolved"]
    assert engine.counts["suppressed"] == 2
    later = engine.evaluate([_result(20, True)])  # past the cooldown: a new incident
    assert [a.status for a in later] == ["firing"] and later[0].started_at == _result(20, True).window_end


def test_keys_have_separate_incidents():
    engine = _engine(drift=DriftRule(consecutive=1))
    alerts = engine.evaluate([_result(0, True, "1"), _result(0, True, "2"), _result(1, True, "1")])
    assert sorted(a.prompt_version for a in alerts) == ["1", "2"]


def test_toxicity_rate_fires_and_resolves_with_hysteresis():
    engine = _engine(toxicity=load_alert_config(environ={}).toxicity)
    gen = TrafficGenerator(seed=1, calls_per_second=5)
    assert engine.evaluate(calls=gen.calls(1500)) == []  # 1% toxic: quiet
    fired = engine.evaluate(calls=gen.calls(1500, shift="toxicity_up"))
    assert [(a.rule, a.status, a.severity) for a in fired] == [("toxicity", "firing", "high")]
    assert 0.05 < fired[0].value < 0.5 and fired[0].threshold == 0.05
    # a single evaluation per batch: the incident is not repeated while it lasts
    assert engine.evaluate(calls=gen.calls(500, shift="toxicity_up")) == []
    resolved = engine.evaluate(calls=gen.calls(2000))
    assert [a.status for a in resolved] == ["resolved"]
    assert resolved[0].dedup_key == fired[0].dedup_key and resolved[0].summary.startswith("Resolved")


def test_guardrail_and_error_rates():
    cfg = load_alert_config(environ={})
    engine = _engine(guardrail=cfg.guardrail, errors=cfg.errors)
    gen = TrafficGenerator(seed=2, calls_per_second=5)
    assert engine.evaluate(calls=gen.calls(1000)) == []
    rules = {a.rule: a for a in engine.evaluate(calls=gen.calls(1500, shift="toxicity_up"))}
    assert set(rules) == {"guardrail"}  # the simulated toxic answers carry a high-severity verdict
    errors = engine.evaluate(calls=gen.calls(1500, shift="errors_up"))
    assert [(a.rule, a.severity) for a in errors if a.status == "firing"] == [("errors", "critical")]


def test_feedback_collapse_matches_feedback_to_calls():
    engine = _engine(feedback=FeedbackRule(window_seconds=600, min_feedback=30))
    gen = TrafficGenerator(seed=3, calls_per_second=2)
    calls, feedback = gen.traffic(1200)
    assert engine.evaluate(calls=calls, feedback=feedback) == []
    calls, feedback = gen.traffic(1200, shift="feedback_collapse")
    [alert] = engine.evaluate(calls=calls, feedback=feedback)
    assert alert.rule == "feedback_collapse" and alert.status == "firing"
    assert alert.prompt_id == "support-answer"  # feedback names no prompt: found by call id


def test_state_round_trip_keeps_incidents_and_counts():
    cfg = load_alert_config(environ={})
    engine = _engine(toxicity=cfg.toxicity)
    gen = TrafficGenerator(seed=4, calls_per_second=5)
    engine.evaluate(calls=gen.calls(600))
    assert engine.evaluate(calls=gen.calls(1500, shift="toxicity_up"))
    [key] = engine.take_dirty()
    assert key == DriftKey("support-bot", "production", "support-answer", "1", "gpt-4o-mini")
    restarted = _engine(toxicity=cfg.toxicity)
    restarted.restore(key, engine.state_for(key))
    assert restarted.firing() == [(key, "toxicity")]
    more = gen.calls(300, shift="toxicity_up")
    assert restarted.evaluate(calls=more) == [] == engine.evaluate(calls=more)  # no repeat after restart


def test_alert_ids_are_stable_for_a_replay():
    def run():
        engine = _engine(drift=DriftRule(consecutive=1))
        return [a.event_id for i in range(3) for a in engine.evaluate([_result(i, i == 1)])]

    assert run() == run() and len(run()) == 1


def test_the_old_threshold_names_still_work_with_a_deprecation_warning():
    with pytest.warns(DeprecationWarning, match="LLMPULSE_ALERT_TOXICITY_RATE"):
        cfg = load_alert_config(environ={"LLMPULSE_ALERTING__TOXICITY__THRESHOLD": "0.2",
                                         "LLMPULSE_ALERT_TOXICITY_RATE": "0.1"})
    assert cfg.toxicity.threshold == 0.2  # the rule's own old setting wins for that rule
    assert cfg.guardrail.threshold == 0.05
