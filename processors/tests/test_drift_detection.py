"""The issue's criteria on generated traffic with a known truth, with the real MiniLM model.

- a shift injected half-way through a window is detected within two windows;
- stationary traffic over 100 windows raises drift in at most 1% of them.

``benchmarks/drift_detection.py`` measures the same over more seeds and larger windows.
"""

from __future__ import annotations

import pytest

from llmpulse.processors.drift import DRIFT_SHIFTS, CachedEmbedder, DriftConfig
from llmpulse.processors.drift.evaluation import measure_detection

CONFIG = DriftConfig(window_calls=100, window_seconds=None, reference_calls=800, embedding_sample=32,
                     reference_embedding_sample=256)
"""Small windows keep the tests fast; the reference is 8 windows (see the README)."""

EXPECTED = {
    "longer_answers": "response_length",
    "topic_change": "prompt_embedding",
    "toxicity_up": "toxicity",
    "relevance_down": "relevance",
    "language_change": "response_language",
}
"""A feature that must drift once the window is wholly shifted."""


@pytest.fixture(scope="module")
def embedder(minilm):
    return CachedEmbedder(minilm)


@pytest.mark.parametrize("shift", DRIFT_SHIFTS)
def test_shift_is_detected_within_two_windows(shift, embedder):
    out = measure_detection(CONFIG, shift, seed=31, windows_before=3, windows_after=2, shift_offset=0.5,
                            embedder=embedder, keep_results=True)
    assert out.windows_before == 3 and out.false_alarms == 0
    assert out.delay_windows is not None and out.delay_windows <= 2, out
    assert out.alert_delay_windows == out.delay_windows  # the default drift rule: one window
    whole = out.results[-1]  # the first window made only of shifted traffic
    drifted = {f.feature for f in whole.features if f.drifted}
    assert whole.drifted and EXPECTED[shift] in drifted, drifted
    if shift in ("topic_change", "language_change"):
        assert {"prompt_embedding", "response_embedding"} <= drifted


def test_stationary_traffic_raises_drift_in_at_most_one_percent_of_windows(embedder):
    out = measure_detection(CONFIG, None, seed=47, windows_before=100, windows_after=0, embedder=embedder)
    assert out.windows_before == 100
    assert out.false_alarms / out.windows_before <= 0.01
    assert out.false_alerts == 0
