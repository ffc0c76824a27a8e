"""Alerts that reach people: rules over drift results, rates and feedback; webhooks.

``AlertEngine(config).evaluate(drift_results, calls, feedback, now)`` returns the alerts
that changed state (``firing`` or ``resolved``, one ``dedup_key`` per incident, with
cooldown); send them to the ``llm.alerts`` topic (the sink stores them) and to
``WebhookNotifier`` (generic JSON or Slack-style, retried in a background thread).

Example:
    >>> from llmpulse.processors.alerting import AlertEngine, WebhookNotifier, load_alert_config
    >>> cfg = load_alert_config(environ={})
    >>> engine = AlertEngine(cfg)
    >>> engine.evaluate(), cfg.cooldown_seconds
    ([], 900.0)
"""

from llmpulse.processors.alerting.engine import AlertEngine
from llmpulse.processors.alerting.rules import (
    AlertConfig,
    DriftRule,
    ErrorRateRule,
    FeedbackRule,
    GuardrailRateRule,
    RateRule,
    ToxicityRateRule,
    WebhookTarget,
    load_alert_config,
)
from llmpulse.processors.alerting.webhook import WebhookNotifier, notifiers_from_config, slack_payload

__all__ = [
    "AlertConfig",
    "AlertEngine",
    "DriftRule",
    "ErrorRateRule",
    "FeedbackRule",
    "GuardrailRateRule",
    "RateRule",
    "ToxicityRateRule",
    "WebhookNotifier",
    "WebhookTarget",
    "load_alert_config",
    "notifiers_from_config",
    "slack_payload",
]
