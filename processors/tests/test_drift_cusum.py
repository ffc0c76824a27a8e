"""The rates' Bernoulli CUSUM (``drift.cusum``): its closed-form false alarms match a
simulated CUSUM, it finds a rise over several windows and a spike, it holds its level on
stationary streams run window after window with the monitor's restart, the monitor
restarts a rate after its alarm, and a trailing reference absorbs a lasting shift."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llmpulse.processors.drift import DriftConfig, DriftMonitor, TrafficGenerator
from llmpulse.processors.drift.baseline import RateBaseline
from llmpulse.processors.drift.cusum import crossing_rate, rate_cusum_test
from llmpulse.processors.drift.stats import rate_scan_test

FAST = {"window_calls": 100, "window_seconds": None, "reference_calls": 300, "rate_scan_windows": 3,
        "sentiment": False, "embeddings": False, "descriptors": False, "tool_mix": False}


def test_the_closed_form_false_alarms_match_a_simulated_cusum():
    # Page's CUSUM on windows of 200 calls at 3%, tuned to 6%, restarted at 0 after each
    # alarm: 400 runs of 500 windows, alarms per window against Brook and Evans' chain
    rate, calls, rise, threshold = 0.03, 200, 2.0, 3.0
    event, other = math.log(rise), math.log((1 - rise * rate) / (1 - rate))
    rng = np.random.default_rng(3)
    hits = rng.binomial(calls, rate, size=(500, 400))
    cusum, alarms = np.zeros(400), 0
    for row in hits:
        cusum = np.maximum(0.0, cusum + row * event + (calls - row) * other)
        crossed = cusum >= threshold
        alarms += int(crossed.sum())
        cusum[crossed] = 0.0
    simulated = alarms / hits.size
    closed = crossing_rate(threshold, calls, rate, rate, rise)
    assert 0.002 < closed < 0.05
    assert abs(simulated - closed) <= 4 * math.sqrt(closed / hits.size)


def test_a_rise_over_several_windows_and_a_spike_are_found_and_named():
    # errors from 1% to 3.5% for the last three windows, against 20,000 calls at 1%
    rise = rate_cusum_test([2, 2, 1, 7, 8, 6], [200] * 6, 200, 20_000)
    assert rise.test == "rate_cusum_3w" and rise.p_value < 3.5e-4
    assert abs(rise.statistic - (21 / 600 - 0.01)) < 1e-12  # the rise over that span
    alone = rate_cusum_test([6], [200], 200, 20_000)
    assert alone.p_value > 10 * rise.p_value  # the last window alone says much less
    # a jump to 18% in one window of 100 against a short reference of 600 calls (6 errors)
    spike = rate_cusum_test([1, 0, 18], [100] * 3, 6, 600)
    assert spike.test == "rate_cusum_1w" and spike.p_value < 1e-6
    # nothing rose: no evidence
    assert rate_cusum_test([0, 1, 0], [200] * 3, 200, 20_000).p_value == 1.0


def _stationary_alarms(level: float, runs: int, windows: int, *, seed: int) -> tuple[int, int]:
    """Alarms of the CUSUM over unchanged windows (3% of 200 calls), each run against its own
    short reference (1,600 calls, drawn), restarted at an alarm as the monitor does."""
    rng = np.random.default_rng(seed)
    alarms = 0
    for _ in range(runs):
        ref = int(rng.binomial(1600, 0.03))
        hits = rng.binomial(200, 0.03, size=windows).tolist()
        state = RateBaseline()
        for t in range(1, windows + 1):
            kept = hits[:t][-state.scan_limits().get("refusal", 6):]
            fired = rate_cusum_test(kept, [200] * len(kept), ref, 1600).p_value < level
            alarms += fired
            state.passed(["refusal"] if fired else [], scan_windows=6)
    return alarms, runs * windows


def test_run_window_after_window_on_unchanged_traffic_it_holds_its_level():
    # its p-value is the share of stationary windows in which it would alarm (averaged over
    # what a 1,600-call reference leaves unknown about the rate): at 2% about 2% of windows
    level = 0.02
    alarms, windows = _stationary_alarms(level, runs=40, windows=60, seed=17)
    assert alarms > 0  # the level is large enough to see alarms at all (the check can fail)
    assert alarms / windows <= level + 3 * math.sqrt(level * (1 - level) / windows)


def test_the_monitor_restarts_a_rate_after_its_alarm():
    monitor = DriftMonitor(DriftConfig(**FAST))  # type: ignore[arg-type]
    gen = TrafficGenerator(seed=12)
    quiet = monitor.observe(gen.calls(300 + 3 * 100))
    assert not any(r.drifted for r in quiet)
    [fired] = monitor.observe(gen.calls(100, shift="errors_up"))  # one window of errors at 20%
    error = next(f for f in fired.features if f.feature == "error")
    assert error.drifted and error.test == "rate_cusum_1w"
    after = [r for _ in range(3) for r in monitor.observe(gen.calls(100))]
    # the CUSUM starts again after the window that fired: it sums that window no more
    assert [r.attributes.get("rate_scan_cut") for r in after] == [{"error": 1}, {"error": 2}, None]
    errors = [next(f for f in r.features if f.feature == "error") for r in after]
    assert errors[0].test == "rate_cusum_1w" and not any(f.drifted for f in errors)


def _error_alarms(reference: str) -> list[bool]:
    cfg = DriftConfig(**{**FAST, "reference": reference, "reference_windows": 4,  # type: ignore[arg-type]
                         "rate_reference_calls": 0})
    monitor, gen = DriftMonitor(cfg), TrafficGenerator(seed=21)
    monitor.observe(gen.calls(300 + 6 * 100))
    results = [r for _ in range(16) for r in monitor.observe(gen.calls(100, shift="errors_up", share=0.5))]
    return [next(f for f in r.features if f.feature == "error").drifted for r in results]


def test_a_trailing_reference_absorbs_a_lasting_shift_a_pinned_one_does_not():
    # errors from 1% to about 10.5% for good: both see it within 2 windows; the trailing
    # reference then takes the shifted windows in (a slow shift is learnt, by design), so its
    # alarms stop, while against the pinned one the restarted CUSUM fires again and again
    trailing, pinned = _error_alarms("trailing"), _error_alarms("pinned")
    assert any(trailing[:2]) and any(pinned[:2])
    assert not any(trailing[-8:])
    assert sum(pinned[-8:]) >= 4


def test_the_scan_stays_available():
    cfg = DriftConfig(**{**FAST, "rate_test": "scan"})  # type: ignore[arg-type]
    monitor, gen = DriftMonitor(cfg), TrafficGenerator(seed=12)
    monitor.observe(gen.calls(300 + 3 * 100))
    [fired] = monitor.observe(gen.calls(100, shift="errors_up"))
    error = next(f for f in fired.features if f.feature == "error")
    assert error.drifted and error.test == "rate_scan_1w"
    assert rate_scan_test([1, 0, 18], [100] * 3, 6, 600).test == "rate_scan_1w"


def test_a_cusum_without_its_restart_is_refused():
    """The CUSUM's p-value is the crossing rate of a chain restarted after each alarm; left
    above its threshold it would alarm every window, so the config refuses the pair."""
    with pytest.raises(ValueError, match="rate_scan_reset"):
        DriftConfig(window_calls=100, rate_test="cusum", rate_scan_reset=False)
    assert not DriftConfig(window_calls=100, rate_test="scan", rate_scan_reset=False).rate_scan_reset
