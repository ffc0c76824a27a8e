"""How well drift detection works, measured on generated traffic with a known truth.

``measure_detection`` runs a ``DriftMonitor`` on stationary traffic for a number of
windows, then injects a shift part-way through a window, and reports the false alarms
before the shift and the delay until a window is called drifted (and until the drift
alert fires). ``benchmarks/drift_detection.py`` and the tests use it.

Example:
    >>> from llmpulse.processors.drift.config import DriftConfig
    >>> from llmpulse.processors.drift.evaluation import measure_detection
    >>> cfg = DriftConfig(window_calls=100, window_seconds=None, reference_calls=300,
    ...                   embeddings=False, sentiment=False)
    >>> out = measure_detection(cfg, "longer_answers", windows_before=3, windows_after=2)
    >>> out.false_alarms, out.delay_windows
    (0, 1)
"""

from __future__ import annotations

from msgspec import Struct

from llmpulse.processors.alerting.engine import AlertEngine
from llmpulse.processors.alerting.rules import AlertConfig, DriftRule
from llmpulse.processors.drift.config import DriftConfig
from llmpulse.processors.drift.embedding import TextEmbedder
from llmpulse.processors.drift.monitor import DriftMonitor
from llmpulse.processors.drift.simulate import TrafficGenerator
from llmpulse.schemas import DriftResult

__all__ = ["DetectionOutcome", "measure_detection"]


class DetectionOutcome(Struct, kw_only=True):
    """What one run measured. Window counts are of tested windows (after the warm-up)."""

    shift: str | None
    windows_before: int
    """Windows of unchanged traffic tested before the shift began."""
    false_alarms: int
    """Of those, the windows called drifted."""
    false_alerts: int
    """Drift alerts that fired before the shift."""
    delay_windows: int | None
    """1: the window in which the shift began was called drifted; 2: the next one ..."""
    delay_calls: int | None
    """Shifted calls seen when the detecting window closed."""
    alert_delay_windows: int | None
    """The same count until the drift alert fired."""
    drifted_features: list[str] = []
    """The features that drifted in the detecting window."""
    results: list[DriftResult] = []


def measure_detection(config: DriftConfig, shift: str | None, *, seed: int = 0, windows_before: int = 10,
                      windows_after: int = 3, shift_offset: float = 0.5, embedder: TextEmbedder | None = None,
                      alert_rule: DriftRule | None = None, batch: int = 100,
                      keep_results: bool = False, share: float = 1.0,
                      generator: TrafficGenerator | None = None) -> DetectionOutcome:
    """Run stationary traffic, then a shift, through a monitor; count alarms and delays.

    Args:
        config: count windows (``window_calls`` set, ``window_seconds`` None).
        shift: a ``SHIFTS`` name, or None for stationary traffic throughout.
        seed: the traffic's seed.
        windows_before: stationary windows tested before the shift's window.
        windows_after: windows from the one the shift begins in.
        shift_offset: where in its window the shift begins (0: at the start; 0.5: halfway).
        embedder: for embedding features (None with ``config.embeddings``: MiniLM).
        alert_rule: the drift alert rule (default ``DriftRule()``).
        batch: calls handed to ``observe`` at a time.
        keep_results: keep every ``DriftResult`` in the outcome.
        share: the share of calls that go through the shift once it began (a partial shift).
        generator: the traffic (default ``TrafficGenerator(seed=seed)``).
    """
    if config.window_calls is None or config.window_seconds is not None:
        raise ValueError("measure_detection needs count windows (window_calls set, window_seconds None)")
    size = config.window_calls
    monitor = DriftMonitor(config, embedder=embedder)
    alerts = AlertEngine(AlertConfig(drift=alert_rule or DriftRule(), toxicity=None, guardrail=None,
                                     errors=None, feedback=None))
    gen = generator or TrafficGenerator(seed=seed)
    if config.reference == "seasonal":
        raise ValueError("measure_detection: a seasonal reference needs days of traffic, see "
                         "benchmarks/drift_seasonality.py")
    warmup = config.reference_calls if config.reference == "pinned" else config.reference_windows * size
    first_tested = 0 if config.reference == "pinned" else config.reference_windows
    offset = round(shift_offset * size)
    plan = [(warmup + windows_before * size + offset, None), ((windows_after * size) - offset, shift)]
    results: list[DriftResult] = []
    fired: list[int] = []
    for total, kind in plan:
        done = 0
        while done < total:
            n = min(batch, total - done)
            calls, feedback = gen.traffic(n, shift=kind, share=share)
            done += n
            new = monitor.observe(calls, feedback)
            for result in new:
                index = int(result.attributes["window_index"]) - first_tested  # type: ignore[arg-type]
                if any(a.status == "firing" for a in alerts.evaluate(drift_results=[result])):
                    fired.append(index)
            results.extend(new)
    indexed = [(int(r.attributes["window_index"]) - first_tested, r) for r in results]  # type: ignore[arg-type]
    before = [r for i, r in indexed if i < windows_before]
    after = [(i, r) for i, r in indexed if i >= windows_before and r.drifted]
    detection = after[0] if after and shift is not None else None
    alert_after = [i for i in fired if i >= windows_before]
    delay = detection[0] - windows_before + 1 if detection else None
    alert_delay = alert_after[0] - windows_before + 1 if alert_after and shift is not None else None
    return DetectionOutcome(
        shift=shift, windows_before=len(before), false_alarms=sum(r.drifted for r in before),
        false_alerts=sum(1 for i in fired if i < windows_before),
        delay_windows=delay,
        delay_calls=(delay * size - offset) if delay is not None else None,
        alert_delay_windows=alert_delay,
        drifted_features=[f.feature for f in detection[1].features if f.drifted] if detection else [],
        results=results if keep_results else [])
