"""Alert rules and where alerts go: the ``alerting`` section of the workers' file.

::

    alerting:
      cooldown_seconds: 900          # after a resolve, the same incident stays quiet this long
      drift: {consecutive: 1, clear_after: 2, severity: high}
      toxicity: {threshold: 0.05, score_threshold: 0.5, window_seconds: 300, min_calls: 50}
      guardrail: {threshold: 0.05, min_severity: high}
      errors: {threshold: 0.05}
      feedback: {max_thumbs_down_share: 0.4, min_feedback: 20, window_seconds: 3600}
      webhooks:
        - {url: "https://hooks.slack.com/services/...", kind: slack}
        - {url: "https://ops.example.com/llmpulse", kind: json, retries: 5}

A rule set to ``null`` is off. ``LLMPULSE_ALERTING__TOXICITY__THRESHOLD=0.1`` and the like
override single settings.

Example:
    >>> from llmpulse.processors.alerting.rules import load_alert_config
    >>> cfg = load_alert_config(environ={"LLMPULSE_ALERTING__ERRORS__THRESHOLD": "0.2"})
    >>> cfg.errors.threshold, cfg.drift.consecutive, cfg.toxicity.window_seconds
    (0.2, 1, 300.0)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Literal

from msgspec import Meta, Struct

from llmpulse.processors.drift.config import read_section

__all__ = [
    "AlertConfig",
    "DriftRule",
    "ErrorRule",
    "FeedbackRule",
    "GuardrailRule",
    "RateRule",
    "Severity",
    "ToxicityRule",
    "WebhookTarget",
    "load_alert_config",
]

Severity = Literal["info", "low", "medium", "high", "critical"]
SEVERITY_ORDER: dict[str, int] = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
PositiveInt = Annotated[int, Meta(ge=1)]
PositiveFloat = Annotated[float, Meta(gt=0)]
NonNegFloat = Annotated[float, Meta(ge=0)]
Ratio = Annotated[float, Meta(ge=0, le=1)]


class _Rule(Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    severity: Severity = "high"


class DriftRule(_Rule, frozen=True):
    """Fires when a key's windows drift ``consecutive`` times in a row; resolves after
    ``clear_after`` windows in a row without drift."""

    consecutive: PositiveInt = 1
    """1 by default: a window is already held to ``drift.alpha`` false alarms; 2 halves
    the false alerts again at the price of one window of delay."""
    clear_after: PositiveInt = 2


class RateRule(_Rule, frozen=True):
    """Fires when the share of calls with a problem, over the last ``window_seconds`` of
    event time, is above ``threshold`` (with at least ``min_calls`` calls); resolves when
    it falls to ``threshold * clear_ratio`` or below."""

    threshold: Ratio = 0.05
    window_seconds: PositiveFloat = 300.0
    min_calls: PositiveInt = 50
    clear_ratio: Ratio = 0.8
    score_threshold: float = 0.5
    """Toxicity: a call counts when its ``toxicity`` score is at least this."""
    min_severity: Severity = "high"
    """Guardrails: a call counts when a verdict is at least this severe, or blocked it."""


class ToxicityRule(RateRule, frozen=True):
    """Share of answers whose ``toxicity`` score is at least ``score_threshold``."""


class GuardrailRule(RateRule, frozen=True):
    """Share of calls with a guardrail verdict of ``min_severity`` or worse, or a block."""


class ErrorRule(RateRule, frozen=True):
    """Share of calls that failed (an error, or no response before the join gave up)."""

    severity: Severity = "critical"


class FeedbackRule(_Rule, frozen=True):
    """Feedback collapse: the thumbs-down share over ``window_seconds`` above
    ``max_thumbs_down_share``, or the mean rating below ``min_mean_rating``."""

    max_thumbs_down_share: Ratio = 0.4
    min_mean_rating: float | None = 2.5
    min_feedback: PositiveInt = 20
    window_seconds: PositiveFloat = 3600.0
    clear_ratio: Ratio = 0.8
    severity: Severity = "medium"


class WebhookTarget(Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """A receiver of alerts: generic JSON (the ``Alert`` contract) or a Slack-style payload."""

    url: str
    kind: Literal["json", "slack"] = "json"
    retries: Annotated[int, Meta(ge=0)] = 3
    backoff_seconds: NonNegFloat = 0.5
    timeout_seconds: PositiveFloat = 5.0
    headers: dict[str, str] = {}


class AlertConfig(Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Every rule, the cooldown, and the webhooks."""

    cooldown_seconds: NonNegFloat = 900.0
    drift: DriftRule | None = DriftRule()
    toxicity: ToxicityRule | None = ToxicityRule()
    guardrail: GuardrailRule | None = GuardrailRule()
    errors: ErrorRule | None = ErrorRule()
    feedback: FeedbackRule | None = FeedbackRule()
    webhooks: list[WebhookTarget] = []
    link_base: str | None = None
    """Prefix for alert links other than drift reports (a Grafana dashboard URL, say)."""


def load_alert_config(path: str | os.PathLike[str] | None = None, *,
                      environ: Mapping[str, str] | None = None) -> AlertConfig:
    """The ``alerting`` section of the workers' file and ``LLMPULSE_ALERTING__*`` variables."""
    return read_section("alerting", AlertConfig, path, environ=environ)
