"""The rate scans as a sequential test: run window after window on unchanged traffic they
hold their level (with the cut at an alarm), they find a clear rise, a rate that fired scans
only the windows after it, a new reference cuts the scans, and the cut survives a restart."""

from __future__ import annotations

import msgspec
import numpy as np

from llmpulse.processors.drift import DriftConfig, DriftMonitor, TrafficGenerator
from llmpulse.processors.drift.baseline import RateBaseline
from llmpulse.processors.drift.monitor import KeyState
from llmpulse.processors.drift.stats import increase_test, rate_scan_test

FAST = {"window_calls": 100, "window_seconds": None, "reference_calls": 300, "rate_scan_windows": 3,
        "rate_test": "scan", "sentiment": False, "embeddings": False, "descriptors": False, "tool_mix": False}


def _stationary_alarms(windows: int, *, cut: bool, level: float, seed: int) -> int:
    """Alarms of the error scan over ``windows`` unchanged windows (5% of 200 calls each,
    a baseline of 20,000 calls), each window scanning the last 6 as the monitor does; with
    ``cut`` a scan that fired looks only at the windows after it (``RateBaseline``)."""
    rng = np.random.default_rng(seed)
    ref = int(rng.binomial(20_000, 0.05))
    hits = rng.binomial(200, 0.05, size=windows).tolist()
    state, alarms = RateBaseline(), 0
    for t in range(1, windows + 1):
        span = state.scan_limits().get("error", 6) if cut else 6
        upto = hits[:t][-span:]
        fired = rate_scan_test(upto, [200] * len(upto), ref, 20_000, seed=t).p_value < level
        alarms += fired
        state.passed(["error"] if fired else [], scan_windows=6)
    return alarms


def test_the_scan_run_window_after_window_keeps_its_level():
    # 1,500 windows of unchanged traffic, the scan at each over its last 6 windows: the
    # share of windows called drifted stays within the level (its p-value is exact in each
    # window; consecutive scans share windows, so alarms cluster, and the cut at an alarm
    # breaks the clusters: never more alarms with it)
    level, windows = 0.02, 1500
    plain = _stationary_alarms(windows, cut=False, level=level, seed=31)
    cut = _stationary_alarms(windows, cut=True, level=level, seed=31)
    bound = level + 3 * (level * (1 - level) / windows) ** 0.5
    assert cut <= plain
    assert plain / windows <= bound and cut / windows <= bound
    assert plain > 0  # the level is large enough to see alarms at all (the check can fail)


def test_the_tuned_cusum_keeps_its_level_and_finds_a_clear_rise():
    rng = np.random.default_rng(5)
    level, trials, rejections = 0.05, 600, 0
    for seed in range(trials):
        hits, ref = rng.binomial(200, 0.02, size=6), int(rng.binomial(4000, 0.02))
        rejections += rate_scan_test(hits, [200] * 6, ref, 4000, seed=seed, rise=2.0).p_value < level
    assert rejections / trials <= level + 3 * (level * (1 - level) / trials) ** 0.5
    # errors from 1% to 4% for the last three windows against 20,000 calls at 1%
    rise = rate_scan_test([2, 2, 1, 8, 9, 7], [200] * 6, 200, 20_000, seed=1, rise=2.0)
    assert rise.p_value < 1e-3 and rise.test == "rate_scan_3w"
    assert increase_test(200, 20_000, 7, 200).p_value > 10 * rise.p_value  # the last window alone


def test_a_rate_that_fired_scans_only_the_windows_after_it_and_the_cut_survives_a_restart():
    cfg = DriftConfig(**FAST)  # type: ignore[arg-type]
    gen = TrafficGenerator(seed=12)
    batches = [gen.calls(300 + 3 * 100), gen.calls(100, shift="errors_up"),
               *(gen.calls(100) for _ in range(3))]  # one window of errors at 20%, then 1% again
    monitor = DriftMonitor(cfg)
    quiet = monitor.observe(batches[0])
    assert not any(r.drifted for r in quiet) and all("rate_scan_cut" not in r.attributes for r in quiet)
    [fired] = monitor.observe(batches[1])
    error = next(f for f in fired.features if f.feature == "error")
    assert error.drifted and error.test.startswith("rate_scan_")
    [key] = monitor.keys()
    state = monitor.state_for(key, "reference")
    base = msgspec.msgpack.decode(state, type=KeyState).baseline
    assert base is not None and base.since_alarm == {"error": 0}
    restarted = DriftMonitor(cfg)
    assert restarted.restore(key, state) and restarted.restore(key, monitor.state_for(key, "window"))
    after = [r for b in batches[2:] for r in monitor.observe(b)]
    again = [r for b in batches[2:] for r in restarted.observe(b)]
    assert [msgspec.to_builtins(r) for r in again] == [msgspec.to_builtins(r) for r in after]
    # the window after the alarm scans itself alone, the next two windows, then the cut ends
    assert [r.attributes.get("rate_scan_cut") for r in after] == [{"error": 1}, {"error": 2}, None]
    errors = [next(f for f in r.features if f.feature == "error") for r in after]
    assert errors[0].test == "rate_scan_1w" and errors[1].test in ("rate_scan_1w", "rate_scan_2w")
    # the burst is not scanned again, so it raises no second alarm in the windows after it
    assert not any(f.drifted for f in errors)


def test_a_new_reference_cuts_the_scans_and_old_states_restore():
    cfg = DriftConfig(**FAST)  # type: ignore[arg-type]
    gen = TrafficGenerator(seed=13)
    monitor = DriftMonitor(cfg)
    monitor.observe(gen.calls(300 + 4 * 100))
    [key] = monitor.keys()
    assert msgspec.msgpack.decode(monitor.state_for(key), type=KeyState).recent  # windows held
    monitor.pin_reference(key, gen.calls(300, shift="errors_up"))
    state = msgspec.msgpack.decode(monitor.state_for(key), type=KeyState)
    assert state.recent == [] and state.baseline is not None and state.baseline.calls == []
    # the first window after it scans itself alone, against the new reference
    [result] = monitor.observe(gen.calls(100, shift="errors_up"))
    assert next(f.test for f in result.features if f.feature == "error") == "rate_scan_1w"
    # a state written before the cut existed (no since_alarm) restores with no rate cut
    old = msgspec.msgpack.decode(monitor.state_for(key), type=dict)
    old["baseline"].pop("since_alarm", None)
    restarted = DriftMonitor(cfg)
    assert restarted.restore(key, msgspec.msgpack.encode(old))
    [later] = restarted.observe(gen.calls(100, shift="errors_up"))
    assert "rate_scan_cut" not in later.attributes


def test_without_the_reset_a_rate_keeps_scanning_the_windows_it_fired_on():
    gen = TrafficGenerator(seed=12)
    batches = [gen.calls(300 + 3 * 100), gen.calls(100, shift="errors_up"), gen.calls(100)]
    monitor = DriftMonitor(DriftConfig(**{**FAST, "rate_scan_reset": False}))  # type: ignore[arg-type]
    results = [r for b in batches for r in monitor.observe(b)]
    assert next(f for f in results[-2].features if f.feature == "error").drifted
    after = next(f for f in results[-1].features if f.feature == "error")
    # the window after the burst scans it too (2 windows), and nothing is cut
    assert after.test == "rate_scan_2w" and "rate_scan_cut" not in results[-1].attributes
