"""Alert thresholds: one value per idea, read by the workers' alert engine and the Grafana rules.

``AlertThresholds`` holds every threshold; ``LLMPULSE_ALERT_<FIELD>`` sets one
(``LLMPULSE_ALERT_TOXICITY_RATE=0.1``), for ``llmpulse dashboards generate`` and for the
workers alike. The workers' older names (``LLMPULSE_ALERTING__TOXICITY__THRESHOLD`` and
the ``threshold``, ``min_calls``, ``window_seconds`` keys of the ``alerting`` section)
still work for one rule each, with a deprecation warning.

Example:
    >>> from llmpulse.schemas.thresholds import AlertThresholds
    >>> t = AlertThresholds.from_env({"LLMPULSE_ALERT_ERROR_RATE": "0.2"})
    >>> t.error_rate, t.toxicity_rate, t.window_minutes
    (0.2, 0.05, 5)
    >>> t.replace({"min_calls": "10"}).min_calls
    10
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmpulse.schemas import environment as env

__all__ = ["TOXIC_SCORE", "AlertThresholds"]

TOXIC_SCORE = 0.5
"""A response is toxic when its ``toxicity`` score is at least this (the ``calls_1m``
rollup counts ``toxic`` with it)."""


@dataclass(frozen=True)
class AlertThresholds:
    """When each alert fires. Every field can be set with ``LLMPULSE_ALERT_<FIELD>``.

    Attributes:
        drifted_windows: fire when more drift windows than this drifted in the look-back.
        toxicity_rate: share of scored responses with toxicity >= ``TOXIC_SCORE``.
        guardrail_violation_rate: share of calls with a guardrail verdict (the Grafana
            rule: any verdict; the workers: of ``alerting.guardrail.min_severity`` or a block).
        error_rate: share of calls whose response carried an error (the workers also count
            calls whose response never came).
        p95_latency_ms: 95th percentile latency, per app and model (Grafana).
        cost_per_hour_usd: spend per hour, per app (Grafana).
        min_calls: rate rules stay quiet below this many calls in the window.
        window_minutes: the look-back of the rate and latency rules.
        drift_window_minutes: the look-back of the Grafana drift rule.
        pending_minutes: how long a condition must hold before a Grafana alert fires.
    """

    drifted_windows: float = 0
    toxicity_rate: float = 0.05
    guardrail_violation_rate: float = 0.05
    error_rate: float = 0.05
    p95_latency_ms: float = 5000.0
    cost_per_hour_usd: float = 10.0
    min_calls: int = 50
    window_minutes: int = 5
    drift_window_minutes: int = 120
    pending_minutes: int = 5

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AlertThresholds:
        """Defaults, overridden by ``LLMPULSE_ALERT_ERROR_RATE=0.1`` and its siblings.

        Raises:
            ValueError: a value is not a number, or negative.
        """
        source = os.environ if environ is None else environ
        values = {
            f.name: source[env.ALERT_PREFIX + f.name.upper()]
            for f in dataclasses.fields(cls)
            if source.get(env.ALERT_PREFIX + f.name.upper(), "").strip()
        }
        return cls().replace(values)

    def replace(self, values: Mapping[str, str | float]) -> AlertThresholds:
        """A copy with some thresholds changed (``{"error_rate": "0.1"}``); names are checked.

        Raises:
            ValueError: an unknown name, a value that is not a number, or a negative one.
        """
        fields = {f.name: f for f in dataclasses.fields(self)}
        changes: dict[str, Any] = {}
        for name, raw in values.items():
            if name not in fields:
                raise ValueError(f"unknown alert threshold {name!r}; known: {', '.join(fields)}")
            kind = int if fields[name].type in ("int", int) else float
            try:
                value = kind(raw)
            except ValueError:
                raise ValueError(f"alert threshold {name}={raw!r} is not a number") from None
            if value < 0:
                raise ValueError(f"alert threshold {name} must not be negative, got {value}")
            changes[name] = value
        return dataclasses.replace(self, **changes)
