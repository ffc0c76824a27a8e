"""The rates' long baseline: windows absorbed once they leave the scan, the cap, no
absorption after an alarm, the trailing span, and the state across a restart."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from llmpulse.processors.drift import DriftConfig, DriftMonitor, TrafficGenerator, load_drift_config
from llmpulse.processors.drift.baseline import RateBaseline
from llmpulse.processors.drift.compare import rate_counts
from llmpulse.processors.drift.features import Rate
from llmpulse.processors.drift.monitor import KeyState
from llmpulse.processors.drift.window import DriftKey
from llmpulse.processors.errors import ConfigError
from llmpulse.schemas import EnrichedCall

# windows of 100 calls, a reference of 300, a scan of the last 2 windows; text features off
# (the rates are what this is about, and it keeps the tests fast)
FAST = {"window_calls": 100, "window_seconds": None, "reference_calls": 300, "rate_scan_windows": 2,
        "sentiment": False, "embeddings": False, "descriptors": False, "tool_mix": False}


def _cfg(**kw: object) -> DriftConfig:
    return DriftConfig(**{**FAST, **kw})


def _errors(calls: list[EnrichedCall]) -> list[int]:
    """``[failed calls, calls with a response]``, counted from the calls themselves."""
    answered = [c for c in calls if c.response is not None]
    return [sum(c.response.error is not None for c in answered), len(answered)]  # type: ignore[union-attr]


def _baseline(monitor: DriftMonitor) -> RateBaseline:
    [key] = monitor.keys()
    state = msgspec.msgpack.decode(monitor.state_for(key, "reference"), type=KeyState)
    assert state.baseline is not None
    return state.baseline


def test_pinned_absorbs_each_window_once_it_leaves_the_scan_with_its_counts():
    monitor = DriftMonitor(_cfg())
    calls = TrafficGenerator(seed=3).calls(300 + 6 * 100)
    results = monitor.observe(calls)
    assert [r.drifted for r in results] == [False] * 6
    base = _baseline(monitor)
    # 6 windows closed; the last one (rate_scan_windows - 1) is still scanned, 5 left the scan
    assert base.absorbing and base.stopped is None and base.absorbed_calls == 500
    assert base.absorbed["error"] == _errors(calls[300:800])
    assert [r.attributes["rate_reference_calls"] for r in results] == [300, 300, 400, 500, 600, 700]
    # the scan's baseline is the reference's counts plus what was absorbed before the window
    last = next(f for f in results[-1].features if f.feature == "error")
    assert last.test.startswith("rate_scan_")  # rate_test auto: 700 calls times the 1% prior, below 300


def test_pinned_stops_absorbing_at_the_cap():
    monitor = DriftMonitor(_cfg(rate_reference_calls=600))
    results = monitor.observe(TrafficGenerator(seed=4).calls(300 + 8 * 100))
    base = _baseline(monitor)
    assert not base.absorbing and base.stopped == "cap" and base.absorbed_calls == 300
    assert [r.attributes["rate_reference_calls"] for r in results][-4:] == [600] * 4


def test_no_absorption_after_an_alarm_nor_of_the_windows_pending_then():
    monitor = DriftMonitor(_cfg(rate_scan_windows=3))
    gen = TrafficGenerator(seed=5)
    before = monitor.observe(gen.calls(300 + 5 * 100))
    assert not any(r.drifted for r in before)
    absorbed = _baseline(monitor).absorbed_calls
    assert absorbed == 300  # 5 windows closed, the last 2 still scanned
    shifted = monitor.observe(gen.calls(100, shift="errors_up"))
    assert shifted[0].drifted and "error" in {f.feature for f in shifted[0].features if f.drifted}
    base = _baseline(monitor)
    assert base.stopped == "alarm" and not base.absorbing and base.absorbed_calls == absorbed
    after = monitor.observe(gen.calls(5 * 100))
    base = _baseline(monitor)
    assert base.absorbed_calls == absorbed and base.stopped == "alarm"
    assert {r.attributes["rate_reference_calls"] for r in after} == {300 + absorbed}
    # a new reference starts absorbing again
    [key] = monitor.keys()
    monitor.pin_reference(key, gen.calls(300))
    assert _baseline(monitor).absorbing and _baseline(monitor).absorbed_calls == 0


def test_zero_keeps_the_rates_on_the_sample_reference():
    monitor = DriftMonitor(_cfg(rate_reference_calls=0))
    results = monitor.observe(TrafficGenerator(seed=6).calls(300 + 6 * 100))
    assert {r.attributes["rate_reference_calls"] for r in results} == {300}
    assert _baseline(monitor).absorbed_calls == 0


def test_trailing_takes_the_windows_before_the_scan_up_to_the_cap_and_cuts_back_at_an_alarm():
    monitor = DriftMonitor(_cfg(reference="trailing", reference_windows=2, rate_reference_calls=500))
    gen = TrafficGenerator(seed=7)
    results = monitor.observe(gen.calls(10 * 100))
    # windows 3.. are tested (the scan grows to its 2 windows); the windows before the scanned
    # ones grow from 2 to 5 (500 calls)
    assert [r.attributes["rate_reference_calls"] for r in results] == [200, 200, 300, 400, 500, 500, 500, 500]
    assert not any(r.drifted for r in results)
    shifted = monitor.observe(gen.calls(100, shift="errors_up"))
    assert shifted[0].drifted
    after = monitor.observe(gen.calls(4 * 100))
    sizes = [r.attributes["rate_reference_calls"] for r in [*shifted, *after]]
    # cut back to reference_windows (2) after each drifted window, then growing again
    # (the window after the shift may drift too: its 2-window scan still holds the shift)
    assert sizes[1] == 200 and sizes[-1] > 200
    for prev, prev_size, size in zip([*shifted, *after], sizes, sizes[1:], strict=False):
        assert size == (200 if prev.drifted else min(prev_size + 100, 500))
    # the sample reference of a trailing key is its last reference_windows windows, as before
    assert {r.reference_size for r in [*results, *after]} == {200}


def test_restart_keeps_the_baseline_and_gives_the_same_results():
    cfg = _cfg(rate_reference_calls=900)
    gen = TrafficGenerator(seed=8)
    batches = [gen.calls(150) for _ in range(10)]
    straight = DriftMonitor(cfg)
    expected = [r for b in batches for r in straight.observe(b)]
    first = DriftMonitor(cfg)
    got = [r for b in batches[:6] for r in first.observe(b)]
    [key] = first.keys()
    assert _baseline(first).absorbed_calls > 0
    restarted = DriftMonitor(cfg)
    assert restarted.restore(key, first.state_for(key, "reference"))
    assert restarted.restore(key, first.state_for(key, "window"))
    assert _baseline(restarted) == _baseline(first)
    got.extend(r for b in batches[6:] for r in restarted.observe(b))
    assert [msgspec.to_builtins(r) for r in got] == [msgspec.to_builtins(r) for r in expected]
    assert expected[-1].attributes["rate_reference_calls"] == 900


def test_state_written_before_the_baseline_still_restores():
    monitor = DriftMonitor(_cfg())
    monitor.observe(TrafficGenerator(seed=9).calls(300 + 4 * 100))
    [key] = monitor.keys()
    old = msgspec.msgpack.decode(monitor.state_for(key), type=dict)
    del old["baseline"]
    restarted = DriftMonitor(_cfg())
    assert restarted.restore(key, msgspec.msgpack.encode(old))
    base = _baseline(restarted)
    # whether the key alarmed before is unknown: it absorbs nothing until a new reference
    assert base.absorbed_calls == 0 and not base.absorbing and base.stopped == "unknown_history"
    assert base.calls == [100]
    [result] = restarted.observe(TrafficGenerator(seed=10).calls(100))
    assert result.attributes["rate_reference_calls"] == 300


def test_windows_larger_than_the_sample_count_their_sampled_calls_and_keep_the_cap():
    # windows of 400 calls sampled to 100: the rates are counted on the samples, so the
    # baseline's calls (cap, figure) are sampled calls too, and no window takes it past the cap
    monitor = DriftMonitor(_cfg(window_calls=400, sample_size=100, rate_reference_calls=450))
    results = monitor.observe(TrafficGenerator(seed=11).calls(300 + 6 * 400))
    base = _baseline(monitor)
    assert base.absorbed["error"][1] == base.absorbed_calls == 100  # 300 + 100 + 100 > 450
    assert base.stopped == "cap"
    figures = [r.attributes["rate_reference_calls"] for r in results]
    assert max(figures) <= 450 and figures[-1] == 300 + base.absorbed_calls, figures


def test_the_key_is_read_from_the_environment_and_checked():
    cfg = load_drift_config(environ={"LLMPULSE_DRIFT__RATE_REFERENCE_CALLS": "50000"})
    assert cfg.rate_reference_calls == 50_000 and DriftConfig().rate_reference_calls == 20_000
    with pytest.raises(ConfigError, match="rate_reference_calls"):
        load_drift_config(environ={"LLMPULSE_DRIFT__RATE_REFERENCE_CALLS": "-1"})


def test_module_examples_hold():
    import doctest

    from llmpulse.processors.drift import baseline

    result = doctest.testmod(baseline)
    assert result.attempted > 0 and result.failed == 0


def test_a_pinned_reference_counts_its_rates_on_every_call_it_is_given_not_only_its_sample():
    # last week's 2,000 calls pinned with a sample of 300: the rates' baseline holds all 2,000
    # (up to rate_reference_calls) from the first window, where it held the sample's 300
    gen = TrafficGenerator(seed=12)
    history = gen.calls(2000)
    # past the cap, the NEWEST calls (review A, 11): chunks of 75, the oldest dropped past 1,200,
    # so 2,000 calls end with their last 1,175 counted
    for cap, counted in ((20_000, 2000), (1200, 1175), (0, 300)):
        monitor = DriftMonitor(_cfg(rate_reference_calls=cap))
        key = DriftKey.of(history[0])
        assert monitor.pin_reference(key, history) == 2000
        results = monitor.observe(TrafficGenerator(seed=13).calls(4 * 100))
        assert results[0].reference_size == 2000 and results[0].attributes["reference_sample"] == 300
        assert results[0].attributes["rate_reference_calls"] == counted
        reference = monitor._keys[key].reference
        assert reference is not None
        assert rate_counts(monitor.features, reference)["error"] == (
            _errors(history[-counted:]) if cap else list(Rate("error", 0, 0.5).hits(
                reference.numeric[:, monitor.features.numeric.index("error")])))
        # the cap counts them: a baseline at it (1,175 plus a window's 100) absorbs no more
        assert _baseline(monitor).stopped == ("cap" if 0 < cap < len(history) else None)
    # a restart keeps the counts
    pinned = DriftMonitor(_cfg(rate_reference_calls=1200))
    pinned.pin_reference(key, history)
    restarted = DriftMonitor(_cfg(rate_reference_calls=1200))
    assert restarted.restore(key, pinned.state_for(key))
    [result] = restarted.observe(TrafficGenerator(seed=14).calls(100))
    assert result.attributes["rate_reference_calls"] == 1175


def test_a_reference_period_counts_every_call_of_it_for_the_rates():
    gen = TrafficGenerator(seed=15, start=datetime(2025, 3, 1, tzinfo=UTC))
    calls = gen.calls(1500)
    cfg = _cfg(reference_start=calls[0].occurred_at, reference_end=calls[1000].occurred_at)
    monitor = DriftMonitor(cfg)
    results = monitor.observe(calls)
    assert results and results[0].attributes["reference_sample"] == 300
    assert results[0].attributes["rate_reference_calls"] == 1000  # the period's calls


def test_a_rate_on_a_descriptor_keeps_the_reference_sample_for_every_rate():
    # a threshold on a text descriptor needs each call described: counting every call is
    # not possible for it, so the rates stay on the sample (none is counted half and half)
    cfg = _cfg(descriptors=True, thresholds={"toxicity": 0.5, "response_length": 8.0})
    monitor = DriftMonitor(cfg)
    assert "response_length>=8" in [r.name for r in monitor.features.rates]
    assert not monitor.features.rates_without_texts and DriftMonitor(_cfg()).features.rates_without_texts
    history = TrafficGenerator(seed=16).calls(1000)
    monitor.pin_reference(DriftKey.of(history[0]), history)
    [result, *_] = monitor.observe(TrafficGenerator(seed=17).calls(200))
    assert result.attributes["rate_reference_calls"] == 300


def test_a_longer_reference_counts_its_newest_calls_and_a_restored_count_as_its_oldest_chunk():
    from llmpulse.processors.drift.window import WindowData

    def call(hit: int):
        def count(counts: dict[str, list[int]]) -> None:
            held = counts.setdefault("r", [0, 0])
            held[0] += hit
            held[1] += 1
        return count

    window = WindowData(0, 10, 10)
    for i in range(100):  # events only in the second half: the newest 30-32 calls are all events
        window.count_newest(call(int(i >= 50)), 32)
    assert 30 < window.rate_calls <= 32 and window.rate_counts["r"] == [window.rate_calls] * 2
    restored = WindowData.from_state(window.to_state())
    for _ in range(31):  # the restored 32 are dropped whole as the count passes the cap
        restored.count_newest(call(0), 32)
    assert restored.rate_calls == 31 and restored.rate_counts["r"] == [0, 31]
