"""Alert rules and where alerts go: the ``alerting`` section of the workers' file.

The thresholds (rates, ``min_calls``, the window) are the ones the Grafana rules use:
``llmpulse.schemas.thresholds.AlertThresholds``, set with ``LLMPULSE_ALERT_*``
(``LLMPULSE_ALERT_TOXICITY_RATE=0.1``, ``LLMPULSE_ALERT_MIN_CALLS=100``). The section
holds the rest::

    alerting:
      cooldown_seconds: 900          # after a resolve, the same incident stays quiet this long
      drift: {consecutive: 1, clear_after: 2, severity: high}
      toxicity: {clear_ratio: 0.8}
      guardrail: {min_severity: high}
      errors: {severity: critical}
      feedback: {max_thumbs_down_share: 0.4, min_feedback: 20, window_seconds: 3600}
      webhooks:
        - {url: "https://hooks.slack.com/services/...", kind: slack}
        - {url: "https://ops.example.com/llmpulse", kind: json, retries: 5}

A rule set to ``null`` is off. ``LLMPULSE_ALERTING__COOLDOWN_SECONDS=600`` and the like
override single settings. Deprecated, still honoured with a warning: a rate rule's
``threshold``, ``min_calls`` and ``window_seconds`` in the section (or as
``LLMPULSE_ALERTING__TOXICITY__THRESHOLD``); they win over ``LLMPULSE_ALERT_*`` for
their one rule.

Example:
    >>> from llmpulse.processors.alerting.rules import load_alert_config
    >>> cfg = load_alert_config(environ={"LLMPULSE_ALERT_ERROR_RATE": "0.2"})
    >>> cfg.errors.threshold, cfg.drift.consecutive, cfg.toxicity.window_seconds
    (0.2, 1, 300.0)
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

from llmpulse.processors.drift.config import read_section
from llmpulse.processors.errors import ConfigError
from llmpulse.schemas import environment as env
from llmpulse.schemas.thresholds import TOXIC_SCORE, AlertThresholds

__all__ = [
    "AlertConfig",
    "DriftRule",
    "ErrorRateRule",
    "FeedbackRule",
    "GuardrailRateRule",
    "RateRule",
    "Severity",
    "ToxicityRateRule",
    "WebhookTarget",
    "load_alert_config",
]

Severity = Literal["info", "low", "medium", "high", "critical"]
SEVERITY_ORDER: dict[str, int] = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
PositiveInt = Annotated[int, Meta(ge=1)]
PositiveFloat = Annotated[float, Meta(gt=0)]
NonNegFloat = Annotated[float, Meta(ge=0)]
Ratio = Annotated[float, Meta(ge=0, le=1)]
_SHARED = AlertThresholds()

logger = logging.getLogger(__name__)


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

    threshold: Ratio = _SHARED.error_rate
    window_seconds: PositiveFloat = _SHARED.window_minutes * 60.0
    min_calls: PositiveInt = _SHARED.min_calls
    clear_ratio: Ratio = 0.8
    score_threshold: float = TOXIC_SCORE
    """Toxicity: a call counts when its ``toxicity`` score is at least this."""
    min_severity: Severity = "high"
    """Guardrails: a call counts when a verdict is at least this severe, or blocked it."""


class ToxicityRateRule(RateRule, frozen=True):
    """Share of answers whose ``toxicity`` score is at least ``score_threshold``
    (``LLMPULSE_ALERT_TOXICITY_RATE``)."""

    threshold: Ratio = _SHARED.toxicity_rate


class GuardrailRateRule(RateRule, frozen=True):
    """Share of calls with a guardrail verdict of ``min_severity`` or worse, or a block
    (``LLMPULSE_ALERT_GUARDRAIL_VIOLATION_RATE``)."""

    threshold: Ratio = _SHARED.guardrail_violation_rate


class ErrorRateRule(RateRule, frozen=True):
    """Share of calls that failed: an error, or no response before the join gave up
    (``LLMPULSE_ALERT_ERROR_RATE``)."""

    threshold: Ratio = _SHARED.error_rate
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
    toxicity: ToxicityRateRule | None = ToxicityRateRule()
    guardrail: GuardrailRateRule | None = GuardrailRateRule()
    errors: ErrorRateRule | None = ErrorRateRule()
    feedback: FeedbackRule | None = FeedbackRule()
    webhooks: list[WebhookTarget] = []
    link_base: str | None = None
    """Prefix for alert links other than drift reports (a Grafana dashboard URL, say)."""


_RATE_FIELDS = {"toxicity": "toxicity_rate", "guardrail": "guardrail_violation_rate", "errors": "error_rate"}


def load_alert_config(path: str | os.PathLike[str] | None = None, *,
                      environ: Mapping[str, str] | None = None) -> AlertConfig:
    """The ``alerting`` section of the workers' file and ``LLMPULSE_ALERTING__*`` variables,
    the rate rules' thresholds from ``LLMPULSE_ALERT_*`` (``AlertThresholds``).

    Raises:
        ConfigError: naming the file or variable and what is wrong.
    """
    source = os.environ if environ is None else environ
    try:
        shared = AlertThresholds.from_env(source)
    except ValueError as exc:
        raise ConfigError(str(exc), source="environment") from None
    config = read_section("alerting", AlertConfig, path, environ=source)
    changes: dict[str, RateRule] = {}
    for name, field in _RATE_FIELDS.items():
        rule: RateRule | None = getattr(config, name)
        if rule is None:
            continue
        wanted = {"threshold": getattr(shared, field), "min_calls": shared.min_calls,
                  "window_seconds": shared.window_minutes * 60.0}
        default = type(rule)()
        kept = {key for key in wanted if getattr(rule, key) != getattr(default, key)}
        for key in sorted(kept):  # set the old way: the section or LLMPULSE_ALERTING__<RULE>__<KEY>
            new_name = env.ALERT_PREFIX + (field if key == "threshold" else
                                           "MIN_CALLS" if key == "min_calls" else "WINDOW_MINUTES").upper()
            message = (f"alerting.{name}.{key} (or {env.ALERTING_PREFIX}{name.upper()}__{key.upper()}) "
                       f"is deprecated: set {new_name}, shared with the Grafana rules")
            warnings.warn(message, DeprecationWarning, stacklevel=2)
            logger.warning("%s", message)
        changes[name] = msgspec.structs.replace(rule, **{k: v for k, v in wanted.items() if k not in kept})
    return msgspec.structs.replace(config, **changes)
