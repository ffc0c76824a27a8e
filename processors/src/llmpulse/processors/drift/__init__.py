"""Drift detection in the stream: windows per prompt version compared with a reference.

``DriftMonitor`` cuts each key's traffic (app, environment, prompt id, version, model)
into windows by count and/or event time, compares every window with a pinned reference or
a trailing baseline or the same hour of earlier days (``seasonal``), feature by feature
(text descriptors and their tails, score distributions, the rates of rare bad events in the
window and over the last windows, feedback, MiniLM embeddings; Holm over the whole family at
``alpha``), and returns one ``DriftResult`` per window naming each feature and test; a
drifted window also gets an Evidently HTML report. ``TrafficGenerator`` makes traffic with
known shifts, of all calls or of a share of them.

Example:
    >>> from llmpulse.processors.drift import DriftConfig, DriftMonitor, TrafficGenerator
    >>> monitor = DriftMonitor(DriftConfig(window_calls=200, reference_calls=400,
    ...                                    embeddings=False, sentiment=False))
    >>> gen = TrafficGenerator(seed=3)
    >>> monitor.observe(gen.calls(600))[0].drifted
    False
    >>> monitor.observe(gen.calls(200, shift="language_change"))[0].drifted
    True
"""

from llmpulse.processors.drift.config import DriftConfig, load_drift_config
from llmpulse.processors.drift.embedding import CachedEmbedder, TextEmbedder, default_embedder
from llmpulse.processors.drift.monitor import DriftMonitor, KeyState
from llmpulse.processors.drift.report import DriftReportWriter, build_report
from llmpulse.processors.drift.simulate import DRIFT_SHIFTS, RATE_SHIFTS, SHIFTS, TrafficGenerator
from llmpulse.processors.drift.window import DriftKey

__all__ = [
    "DRIFT_SHIFTS",
    "RATE_SHIFTS",
    "SHIFTS",
    "CachedEmbedder",
    "DriftConfig",
    "DriftKey",
    "DriftMonitor",
    "DriftReportWriter",
    "KeyState",
    "TextEmbedder",
    "TrafficGenerator",
    "build_report",
    "default_embedder",
    "load_drift_config",
]
