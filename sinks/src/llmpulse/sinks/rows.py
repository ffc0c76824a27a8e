"""Events to table rows: the one place that maps the contracts onto the columns.

Each ``*_row`` function returns a tuple in the order of its ``*_COLUMNS``; the writer
transposes a list of them and inserts column-oriented. The two big tables are built a
batch at a time instead: ``call_columns`` and ``span_columns`` give one column per
attribute, the nested parts of a call (scores, verdicts, maps, lists, the prompt's JSON)
as Arrow arrays of the whole batch (``llmpulse.sinks.columns``).

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

from collections.abc import Sequence
from itertools import chain
from typing import Any, NamedTuple

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from llmpulse.schemas import (
    Alert,
    DeadLetter,
    DriftResult,
    EnrichedCall,
    FeedbackEvent,
    GuardrailVerdict,
    PromptLabel,
    PromptVersion,
    SpanEvent,
)
from llmpulse.sinks.columns import (
    as_numpy,
    as_python,
    attribute_maps,
    attributes_map,
    json_lines,
    last_per_key,
    per_position,
    repeated_lineup,
    row_offsets,
    same_lineup,
    string_lists,
)

__all__ = [
    "ALERT_COLUMNS",
    "CALL_COLUMNS",
    "DEAD_LETTER_COLUMNS",
    "DRIFT_COLUMNS",
    "FEEDBACK_COLUMNS",
    "SPAN_COLUMNS",
    "TYPED_SCORES",
    "VERDICT_COLUMNS",
    "alert_row",
    "attributes_map",
    "call_columns",
    "call_row",
    "call_values",
    "dead_letter_row",
    "drift_row",
    "feedback_row",
    "span_columns",
    "span_row",
    "verdict_columns",
    "verdict_row",
]

TYPED_SCORES = ("quality", "toxicity", "relevance", "groundedness", "refusal")
"""Scorer names with a typed column of their own; any other scorer's value goes to
``custom_scores``. A scorer whose status is not ``ok`` (model missing ...) is listed in
``scores_unavailable`` and leaves its value NULL: never a silent zero."""

_SEVERITY_RANK = {"info": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}
_SEVERITY_NAMES = ["none", *_SEVERITY_RANK]
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
    # v1.1 (migration 0006_agents)
    "span_id", "parent_span_id", "tool_call_count", "tool_call_names", "reasoning_tokens",
    "cache_creation_input_tokens",
)
"""The columns of ``calls`` the sink writes (``inserted_at`` is the server's)."""


def call_row(call: EnrichedCall) -> tuple[object, ...]:
    """One ``calls`` row (``call_values`` of one call)."""
    return tuple(column[0] for column in call_values([call]))


def call_values(calls: Sequence[EnrichedCall]) -> list[list[Any]]:
    """``call_columns`` as Python values (maps as dicts), for a client that encodes Python
    values itself (clickhouse-connect's ``insert``)."""
    return [as_python(column) for column in call_columns(calls)]


def call_columns(calls: Sequence[EnrichedCall]) -> list[Any]:
    """The ``calls`` columns (in ``CALL_COLUMNS`` order) of a batch, built column by column.

    Each column is a list of Python values or, for the nested parts (scores, verdicts,
    maps, lists, the prompt's JSON), an Arrow array built for the whole batch at once:
    no Python dict, list or tuple per row. Fields missing from the envelope are taken
    from the prompt or the response (the model from the prompt's request, then the
    response's). A scorer named twice in one call keeps its last value and version.
    """
    n = len(calls)
    prompts = [c.prompt for c in calls]
    responses = [c.response for c in calls]
    usages = [r.usage if r is not None else None for r in responses]
    errors = [r.error if r is not None else None for r in responses]
    tools = [r.tool_calls if r else _NONE for r in responses]
    tool_counts = list(map(len, tools))
    documents = [p.retrieved_context if p else _NONE for p in prompts]
    scores = _score_columns(calls)
    attributes = [c.attributes for c in calls]
    for row, extra in scores.provenance.items():
        attributes[row] = {**attributes_map(attributes[row]), **extra}
    verdicts = _guardrail_columns(calls)
    messages = _json.encode_lines([p.messages if p is not None and p.messages else None for p in prompts])
    return [
        [c.event_id for c in calls], [c.call_id for c in calls], [c.occurred_at for c in calls],
        [c.processed_at for c in calls], [c.app for c in calls], [c.environment for c in calls],
        [c.prompt_id or (p.prompt_id if p else None) or "" for c, p in zip(calls, prompts, strict=True)],
        [c.prompt_version or (p.prompt_version if p else None) or ""
         for c, p in zip(calls, prompts, strict=True)],
        [c.request_model or (p.request_model if p else None)
         or (r.request_model or r.response_model if r else None) or ""
         for c, p, r in zip(calls, prompts, responses, strict=True)],
        [(r.response_model or "") if r else "" for r in responses],
        [c.provider or (p.provider if p else None) or (r.provider if r else None) or ""
         for c, p, r in zip(calls, prompts, responses, strict=True)],
        [p.operation if p else "" for p in prompts],
        [c.trace_id or (p.trace_id if p else None) or "" for c, p in zip(calls, prompts, strict=True)],
        [c.session_id or (p.session_id if p else None) or "" for c, p in zip(calls, prompts, strict=True)],
        [c.user_id or (p.user_id if p else None) or "" for c, p in zip(calls, prompts, strict=True)],
        json_lines(messages, n),
        attribute_maps([p.template_variables if p else _EMPTY for p in prompts]),
        [(r.text or "") if r else "" for r in responses],
        [e.message if e else "" for e in errors],
        string_lists(list(map(len, documents)), [d.id for d in chain.from_iterable(documents)]),
        [p.temperature if p else None for p in prompts],
        [p.max_tokens if p else None for p in prompts],
        [p.expects_json if p else False for p in prompts],
        [r.streamed if r else False for r in responses],
        [c.complete for c in calls], [c.incomplete_reason or "" for c in calls],
        [r.latency_ms if r else None for r in responses],
        [r.time_to_first_token_ms if r else None for r in responses],
        [u.input_tokens if u else 0 for u in usages],
        [u.output_tokens if u else 0 for u in usages],
        [u.cached_input_tokens if u else 0 for u in usages],
        [r.cost_usd if r else None for r in responses],
        [(r.finish_reason or "") if r else "" for r in responses],
        [e.type if e else "" for e in errors],
        *scores.typed, scores.custom, scores.unavailable, scores.versions,
        [c.scorer_set_version for c in calls], [c.policy_version for c in calls],
        *verdicts, attribute_maps(attributes),
        [c.span_id or (p.span_id if p else None) or (r.span_id if r else None) or ""
         for c, p, r in zip(calls, prompts, responses, strict=True)],
        [c.parent_span_id or (p.parent_span_id if p else None)
         or (r.parent_span_id if r else None) or ""
         for c, p, r in zip(calls, prompts, responses, strict=True)],
        tool_counts,
        string_lists(tool_counts, [t.name for t in chain.from_iterable(tools)]),
        [u.reasoning_tokens if u else 0 for u in usages],
        [u.cache_creation_input_tokens if u else 0 for u in usages],
    ]


_EMPTY: dict[str, str] = {}
_NONE: tuple[()] = ()


class _Scores(NamedTuple):
    typed: list[pa.Array]
    custom: pa.MapArray
    unavailable: pa.ListArray
    versions: pa.MapArray
    provenance: dict[int, dict[str, str]]
    """Row -> ``"<score>.<key>"`` attributes, for the calls whose scores carry provenance."""


def _score_columns(calls: Sequence[EnrichedCall]) -> _Scores:
    """The score columns of a batch from all its scores at once.

    A score with status ``ok`` and a value fills its typed column or ``custom_scores``;
    any other, unless ``not_applicable``, is listed in ``scores_unavailable``. A batch
    whose calls all carry the same scorers in the same order, each once (the usual case:
    one scorer set), takes the names, statuses and versions from the first call wherever
    every call agrees, instead of converting each score's text.
    """
    n = len(calls)
    lists = [c.scores for c in calls]
    scores = list(chain.from_iterable(lists))
    counts = np.fromiter(map(len, lists), np.int64, n)
    rows = np.repeat(np.arange(n), counts)
    names = [s.name for s in scores]
    statuses = [s.status for s in scores]
    versions = [s.scorer_version for s in scores]
    values = pa.array([s.value for s in scores], pa.float64())
    lineup = same_lineup(names, counts)
    if lineup is not None:  # each name once a call: every score is its name's last
        k = len(lineup)
        plain = repeated_lineup(lineup, n)
        codes = np.tile(np.arange(k), n)
        dictionary = lineup
        status_text = repeated_lineup(statuses[:k], n) if per_position(statuses, k) else None
        version_text = repeated_lineup(versions[:k], n) if per_position(versions, k) else None
    else:
        plain = pa.array(names, pa.string())
        encoded = plain.dictionary_encode()
        codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        dictionary = encoded.dictionary.to_pylist()
        status_text = version_text = None
    if status_text is None:
        status_text = pa.array(statuses, pa.string())
    is_ok = as_numpy(pc.and_(pc.equal(status_text, "ok"), values.is_valid()))
    missing = ~is_ok & as_numpy(pc.not_equal(status_text, "not_applicable"))
    if lineup is not None:
        named, valued = np.arange(len(scores)), np.flatnonzero(is_ok)
    else:
        key = rows * max(len(dictionary), 1) + codes
        named = last_per_key(key, np.arange(len(scores)))
        valued = last_per_key(key, np.flatnonzero(is_ok))
    slot = np.array([TYPED_SCORES.index(name) if name in TYPED_SCORES else -1 for name in dictionary],
                    np.int64)[codes[valued]]
    typed = []
    for i in range(len(TYPED_SCORES)):
        take = np.full(n, -1)
        chosen = valued[slot == i]
        take[rows[chosen]] = chosen
        typed.append(values.take(pa.array(take, mask=take < 0)))
    custom = valued[slot < 0]
    unavailable = np.flatnonzero(missing)
    provenance: dict[int, dict[str, str]] = {}
    if any([s.attributes for s in scores]):
        for i, score in enumerate(scores):
            if score.attributes:  # a cost's price source: "<score>.<key>", in score order
                extra = provenance.setdefault(int(rows[i]), {})
                extra.update({f"{score.name}.{k}": v for k, v in score.attributes.items()})
    if version_text is None:
        version_text = pa.array(versions, pa.string())
    return _Scores(
        typed=typed,
        custom=pa.MapArray.from_arrays(row_offsets(rows[custom], n), plain.take(custom),
                                       values.take(custom)),
        unavailable=pa.ListArray.from_arrays(row_offsets(rows[unavailable], n), plain.take(unavailable)),
        versions=pa.MapArray.from_arrays(row_offsets(rows[named], n), plain.take(named),
                                         version_text.take(named)),
        provenance=provenance,
    )


def _guardrail_columns(calls: Sequence[EnrichedCall]) -> list[Any]:
    """``guardrail_rules``, ``guardrail_severity`` (the highest), ``guardrail_flagged``,
    ``guardrail_blocked`` and ``guardrail_redacted`` of a batch."""
    n = len(calls)
    lists = [c.verdicts for c in calls]
    counts = list(map(len, lists))
    verdicts = list(chain.from_iterable(lists))
    rows = np.repeat(np.arange(n), counts)
    severity = np.zeros(n, np.int64)
    np.maximum.at(severity, rows, np.fromiter((_SEVERITY_RANK[v.severity] for v in verdicts), np.int64,
                                              len(verdicts)))
    actions = [v.action for v in verdicts]
    blocked = np.zeros(n, bool)
    blocked[rows[[a == "block" for a in actions]]] = True
    redacted = np.zeros(n, bool)
    redacted[rows[[a == "redact" for a in actions]]] = True
    return [string_lists(counts, [v.rule_id for v in verdicts]),
            pa.array(_SEVERITY_NAMES, pa.string()).take(pa.array(severity)),
            pa.array(np.asarray(counts) > 0), pa.array(blocked), pa.array(redacted)]


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
    "span_start", "span_end", "match_preview", "message", "attributes", "trace_id", "span_id",
)


def verdict_row(verdict: GuardrailVerdict, call: EnrichedCall | None = None) -> tuple[object, ...]:
    """One ``guardrail_verdicts`` row (``verdict_columns`` of one verdict, as Python values)."""
    return tuple(as_python(column)[0] for column in verdict_columns([(verdict, call)]))


def verdict_columns(pairs: Sequence[tuple[GuardrailVerdict, EnrichedCall | None]]) -> list[Any]:
    """The ``guardrail_verdicts`` columns (in ``VERDICT_COLUMNS`` order) of a batch of
    ``(verdict, call)`` pairs, built column by column (lists of Python values; the
    attributes one ``Map(String, String)`` Arrow array).

    The call (None for a verdict that came on its own) fills the prompt version, model and
    trace a verdict nested in an enriched call may leave out: the verdict's own value, else
    the call's, else the call's prompt's. A verdict on a span carries the span's
    ``call_id`` (its span id) and ``trace_id``.
    """
    verdicts = [v for v, _ in pairs]
    calls = [c for _, c in pairs]
    prompts = [c.prompt if c is not None else None for c in calls]
    both = list(zip(verdicts, calls, prompts, strict=True))
    return [
        [v.event_id for v in verdicts], [v.call_id for v in verdicts], [v.occurred_at for v in verdicts],
        [v.app for v in verdicts], [v.environment for v in verdicts],
        [v.prompt_id or (c.prompt_id if c else None) or (p.prompt_id if p else None) or ""
         for v, c, p in both],
        [v.prompt_version or (c.prompt_version if c else None) or (p.prompt_version if p else None) or ""
         for v, c, p in both],
        [v.request_model or (c.request_model if c else None) or (p.request_model if p else None) or ""
         for v, c, p in both],
        [v.rule_id for v in verdicts], [v.rule_kind for v in verdicts], [v.applies_to for v in verdicts],
        [v.severity for v in verdicts], [v.action for v in verdicts], [v.policy_version for v in verdicts],
        [v.span_start for v in verdicts], [v.span_end for v in verdicts],
        [v.match_preview or "" for v in verdicts], [v.message for v in verdicts],
        attribute_maps([v.attributes for v in verdicts]),
        [v.trace_id or (c.trace_id if c else None) or (p.trace_id if p else None) or "" for v, c, p in both],
        [v.span_id or (c.span_id if c else None) or (p.span_id if p else None) or "" for v, c, p in both],
    ]


SPAN_COLUMNS = (
    "event_id", "trace_id", "span_id", "parent_span_id", "occurred_at", "started_at", "app",
    "environment", "name", "operation", "tool_name", "tool_call_id", "tool_arguments",
    "arguments_truncated", "status", "error_type", "error_message", "result_preview",
    "result_truncated", "latency_ms", "input_tokens", "output_tokens", "cost_usd", "session_id",
    "user_id", "model", "provider", "attributes",
)
"""The columns of ``spans`` the sink writes (``arguments_valid_json`` is the server's)."""


def span_row(span: SpanEvent) -> tuple[object, ...]:
    """One ``spans`` row (``span_columns`` of one span, as Python values)."""
    return tuple(as_python(column)[0] for column in span_columns([span]))


def span_columns(spans: Sequence[SpanEvent]) -> list[Any]:
    """The ``spans`` columns (in ``SPAN_COLUMNS`` order) of a batch, built column by column
    (lists of Python values; the attributes one ``Map(String, String)`` Arrow array).

    ``tool_name`` is the tool's name, or the span's name for an ``execute_tool`` span that
    does not say which tool (the per-tool rollup counts every tool execution).
    """
    tools = [s.tool for s in spans]
    errors = [s.error for s in spans]
    usages = [s.usage for s in spans]
    return [
        [s.event_id for s in spans], [s.trace_id for s in spans], [s.span_id for s in spans],
        [s.parent_span_id or "" for s in spans], [s.occurred_at for s in spans],
        [s.started_at for s in spans], [s.app for s in spans], [s.environment for s in spans],
        [s.name for s in spans], [s.operation for s in spans],
        [t.name if t else s.name if s.operation == "execute_tool" else ""
         for s, t in zip(spans, tools, strict=True)],
        [(t.id or "") if t else "" for t in tools],
        [t.arguments if t else "" for t in tools],
        [t.arguments_truncated if t else False for t in tools],
        [s.status for s in spans], [e.type if e else "" for e in errors],
        [e.message if e else "" for e in errors], [s.result_preview or "" for s in spans],
        [s.result_truncated for s in spans], [s.latency_ms for s in spans],
        [u.input_tokens if u else 0 for u in usages], [u.output_tokens if u else 0 for u in usages],
        [s.cost_usd for s in spans], [s.session_id or "" for s in spans],
        [s.user_id or "" for s in spans], [s.request_model or "" for s in spans],
        [s.provider or "" for s in spans], attribute_maps([s.attributes for s in spans]),
    ]


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
