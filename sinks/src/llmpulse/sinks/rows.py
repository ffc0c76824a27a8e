"""Events to table rows: the one place that maps the contracts onto the columns.

Each ``*_row`` function returns a tuple in the order of its ``*_COLUMNS``; the writer
transposes a list of them and inserts column-oriented.

Example:
    >>> from llmpulse.schemas import EnrichedCall, ResponseEvent
    >>> from llmpulse.sinks.rows import CALL_COLUMNS, call_row
    >>> call = EnrichedCall(call_id="c1", app="bot", response=ResponseEvent(
    ...     call_id="c1", app="bot", text="hi", latency_ms=120.0))
    >>> row = dict(zip(CALL_COLUMNS, call_row(call)))
    >>> row["response_text"], row["latency_ms"], row["complete"]
    ('hi', 120.0, True)
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import msgspec

from llmpulse.schemas import (
    Alert,
    DeadLetter,
    DriftResult,
    EnrichedCall,
    FeedbackEvent,
    GuardrailVerdict,
    PromptLabel,
    PromptVersion,
)

__all__ = [
    "ALERT_COLUMNS",
    "CALL_COLUMNS",
    "DEAD_LETTER_COLUMNS",
    "DRIFT_COLUMNS",
    "FEEDBACK_COLUMNS",
    "TYPED_SCORES",
    "VERDICT_COLUMNS",
    "alert_row",
    "attributes_map",
    "call_row",
    "dead_letter_row",
    "drift_row",
    "feedback_row",
    "verdict_row",
]

TYPED_SCORES = ("quality", "toxicity", "relevance", "groundedness", "refusal")
"""Scorer names with a typed column of their own; any other scorer's value goes to
``custom_scores``. A scorer whose status is not ``ok`` (model missing ...) is listed in
``scores_unavailable`` and leaves its value NULL: never a silent zero."""

_SEVERITY_RANK = {"info": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}
_SEVERITY_NAME = {rank: name for name, rank in _SEVERITY_RANK.items()} | {0: "none"}
_json = msgspec.json.Encoder()

CALL_COLUMNS = (
    "event_id", "call_id", "occurred_at", "processed_at", "app", "environment",
    "prompt_id", "prompt_version", "model", "response_model", "provider", "operation",
    "trace_id", "session_id", "user_id", "prompt_messages", "template_variables",
    "response_text", "error_message", "retrieved_context_ids", "temperature", "max_tokens",
    "expects_json", "streamed", "complete", "incomplete_reason", "latency_ms",
    "time_to_first_token_ms", "input_tokens", "output_tokens", "cached_input_tokens",
    "cost_usd", "finish_reason", "error_type", *TYPED_SCORES, "custom_scores",
    "scores_unavailable", "scorer_versions", "scorer_set_version", "policy_version",
    "guardrail_rules", "guardrail_severity", "guardrail_flagged", "guardrail_blocked",
    "guardrail_redacted", "attributes",
)
"""The columns of ``calls`` the sink writes (``inserted_at`` is the server's)."""


def attributes_map(attributes: Mapping[str, object]) -> dict[str, str]:
    """The open ``attributes`` map as ``Map(String, String)``: strings as they are,
    other values as JSON (``true``, ``1.5``, ``null``)."""
    if not attributes:
        return {}
    return {k: v if type(v) is str else _LITERALS[v] if v is None or type(v) is bool
            else str(v) if type(v) is int or (type(v) is float and math.isfinite(v))
            else _json.encode(v).decode() for k, v in attributes.items()}


_LITERALS: dict[object, str] = {None: "null", True: "true", False: "false"}


def call_row(call: EnrichedCall) -> tuple[object, ...]:
    """One ``calls`` row. Fields missing from the envelope are taken from the prompt or
    the response (the model from the prompt's request, then the response's)."""
    prompt, response = call.prompt, call.response
    scores: dict[str, float | None] = dict.fromkeys(TYPED_SCORES)
    custom: dict[str, float] = {}
    unavailable: list[str] = []
    versions: dict[str, str] = {}
    for score in call.scores:
        versions[score.name] = score.scorer_version
        if score.status != "ok" or score.value is None:
            if score.status != "not_applicable":
                unavailable.append(score.name)
            continue
        if score.name in scores:
            scores[score.name] = score.value
        else:
            custom[score.name] = score.value
    rules: list[str] = []
    severity = 0
    actions: set[str] = set()
    for verdict in call.verdicts:
        rules.append(verdict.rule_id)
        severity = max(severity, _SEVERITY_RANK[verdict.severity])
        actions.add(verdict.action)
    usage = response.usage if response is not None else None
    error = response.error if response is not None else None
    model = _first(call.request_model, prompt and prompt.request_model,
                   response and response.request_model, response and response.response_model)
    return (
        call.event_id, call.call_id, call.occurred_at, call.processed_at, call.app,
        call.environment, _first(call.prompt_id, prompt and prompt.prompt_id),
        _first(call.prompt_version, prompt and prompt.prompt_version), model,
        (response.response_model or "") if response else "",
        _first(call.provider, prompt and prompt.provider, response and response.provider),
        prompt.operation if prompt else "",
        _first(call.trace_id, prompt and prompt.trace_id),
        _first(call.session_id, prompt and prompt.session_id),
        _first(call.user_id, prompt and prompt.user_id),
        _json.encode(prompt.messages).decode() if prompt and prompt.messages else "",
        dict(prompt.template_variables) if prompt else {},
        (response.text or "") if response else "",
        error.message if error else "",
        [d.id for d in prompt.retrieved_context] if prompt else [],
        prompt.temperature if prompt else None,
        prompt.max_tokens if prompt else None,
        prompt.expects_json if prompt else False,
        response.streamed if response else False,
        call.complete, call.incomplete_reason or "",
        response.latency_ms if response else None,
        response.time_to_first_token_ms if response else None,
        usage.input_tokens if usage else 0,
        usage.output_tokens if usage else 0,
        usage.cached_input_tokens if usage else 0,
        response.cost_usd if response else None,
        (response.finish_reason or "") if response else "",
        error.type if error else "",
        *scores.values(), custom, unavailable, versions, call.scorer_set_version,
        call.policy_version, rules, _SEVERITY_NAME[severity], bool(call.verdicts),
        "block" in actions, "redact" in actions, attributes_map(call.attributes),
    )


def _first(*values: object) -> str:
    """The first non-empty string (``x and x.field`` arguments may be None)."""
    for value in values:
        if value and isinstance(value, str):
            return value
    return ""


FEEDBACK_COLUMNS = (
    "event_id", "call_id", "occurred_at", "app", "environment", "prompt_id", "prompt_version",
    "model", "attributed", "thumbs", "rating", "label", "correction", "comment", "source",
    "author_id", "user_id", "session_id", "attributes",
)


def feedback_row(event: FeedbackEvent) -> tuple[object, ...]:
    """One ``feedback`` row; ``attributed`` is True when the event names its prompt
    version (the writer fills the others from ``call_index``)."""
    return (
        event.event_id, event.call_id, event.occurred_at, event.app, event.environment,
        event.prompt_id or "", event.prompt_version or "", event.request_model or "",
        bool(event.prompt_id and event.prompt_version), event.thumbs or "none", event.rating,
        event.label or "", event.correction or "", event.comment or "", event.source,
        event.author_id or "", event.user_id or "", event.session_id or "",
        attributes_map(event.attributes),
    )


VERDICT_COLUMNS = (
    "event_id", "call_id", "occurred_at", "app", "environment", "prompt_id", "prompt_version",
    "model", "rule_id", "rule_kind", "applies_to", "severity", "action", "policy_version",
    "span_start", "span_end", "match_preview", "message", "attributes",
)


def verdict_row(verdict: GuardrailVerdict, call: EnrichedCall | None = None) -> tuple[object, ...]:
    """One ``guardrail_verdicts`` row; ``call`` fills the prompt version and model a
    verdict nested in an enriched call may leave out."""
    return (
        verdict.event_id, verdict.call_id, verdict.occurred_at, verdict.app, verdict.environment,
        _first(verdict.prompt_id, call and call.prompt_id, call and call.prompt and call.prompt.prompt_id),
        _first(verdict.prompt_version, call and call.prompt_version,
               call and call.prompt and call.prompt.prompt_version),
        _first(verdict.request_model, call and call.request_model,
               call and call.prompt and call.prompt.request_model),
        verdict.rule_id, verdict.rule_kind, verdict.applies_to, verdict.severity, verdict.action,
        verdict.policy_version, verdict.span_start, verdict.span_end, verdict.match_preview or "",
        verdict.message, attributes_map(verdict.attributes),
    )


ALERT_COLUMNS = (
    "event_id", "occurred_at", "app", "environment", "rule", "status", "severity", "dedup_key",
    "summary", "prompt_id", "prompt_version", "model", "started_at", "value", "threshold", "link",
    "attributes",
)


def alert_row(alert: Alert) -> tuple[object, ...]:
    """One ``alerts`` row."""
    return (
        alert.event_id, alert.occurred_at, alert.app, alert.environment, alert.rule, alert.status,
        alert.severity, alert.dedup_key, alert.summary, alert.prompt_id or "",
        alert.prompt_version or "", alert.request_model or "", alert.started_at, alert.value,
        alert.threshold, alert.link or "", attributes_map(alert.attributes),
    )


DRIFT_COLUMNS = (
    "event_id", "occurred_at", "app", "environment", "prompt_id", "prompt_version", "model",
    "window_start", "window_end", "reference_start", "reference_end", "window_size",
    "reference_size", "share_drifted", "drifted", "feature_names", "feature_tests",
    "feature_statistics", "feature_p_values", "feature_thresholds", "feature_drifted",
    "report_uri", "attributes",
)


def drift_row(result: DriftResult) -> tuple[object, ...]:
    """One ``drift_results`` row; the per-feature tests become parallel arrays."""
    features = result.features
    return (
        result.event_id, result.occurred_at, result.app, result.environment,
        result.prompt_id or "", result.prompt_version or "", result.request_model or "",
        result.window_start, result.window_end, result.reference_start, result.reference_end,
        result.window_size, result.reference_size, result.share_drifted, result.drifted,
        [f.feature for f in features], [f.test for f in features],
        [f.statistic for f in features], [f.p_value for f in features],
        [f.threshold for f in features], [f.drifted for f in features],
        result.report_uri or "", attributes_map(result.attributes),
    )


DEAD_LETTER_COLUMNS = (
    "event_id", "occurred_at", "reason", "detail", "error_field", "stage", "source_topic",
    "source_partition", "source_offset", "batch_index", "payload", "payload_truncated",
)


def dead_letter_row(letter: DeadLetter) -> tuple[object, ...]:
    """One ``dead_letters`` row; the payload is kept as bytes (a ClickHouse String)."""
    return (
        letter.event_id, letter.occurred_at, letter.reason, letter.detail,
        letter.error_field or "", letter.stage, letter.source_topic or "",
        letter.source_partition, letter.source_offset, letter.batch_index, letter.payload,
        letter.payload_truncated,
    )


PROMPT_VERSION_COLUMNS = (
    "event_id", "occurred_at", "prompt_id", "version", "messages", "variables", "model",
    "model_settings", "metadata", "source",
)


def prompt_version_row(event: PromptVersion) -> tuple[object, ...]:
    """One ``prompt_versions`` row (the messages as JSON)."""
    messages = msgspec.json.encode(event.messages).decode()
    return (
        event.event_id, event.occurred_at, event.prompt_id, event.version, messages,
        list(event.variables), event.model or "", attributes_map(event.model_settings),
        dict(event.metadata), event.source or "",
    )


PROMPT_LABEL_COLUMNS = ("event_id", "occurred_at", "prompt_id", "label", "version")


def prompt_label_row(event: PromptLabel) -> tuple[object, ...]:
    """One ``prompt_labels`` row."""
    return (event.event_id, event.occurred_at, event.prompt_id, event.label, event.version)
