"""Precompiled per-type checks: the common events proved valid in a few C-level passes.

``validate_event`` asks :func:`passes` first. It answers True only when every rule of
``llmpulse.schemas._limits`` holds for the event; on False (a broken rule, or a shape
it leaves to the full checks: tool calls on a prompt or an answer, verdicts inside an
enriched call) the full checks run and name the field and the rule. So the fast path
never decides what is rejected, nor why: it only skips the walk for what is accepted.

What makes it cheap: one ``attrgetter`` per type reads every identifier; their lengths
are bounded at once by the length of their concatenation (within ``max_id_chars``,
every one is); one regex search covers the identifiers and the attribute keys; the time
window is built once per reading of the clock (see ``_limits``).

The OTLP mapper has two shortcuts of its own here, beside the rules they share, under the
same rule (True only where the full checks accept; False leaves them to decide):
:func:`answer_after_its_prompt` checks only what an answer adds to the prompt the mapper
has just accepted, and :func:`prompt_of_a_span` verifies that the ids have the shape the
mapper writes (hex, ``otel-<trace>-<span>``) instead of searching them, and searches the
other ids and keys once per set of limits.

Example:
    >>> from datetime import UTC, datetime
    >>> from llmpulse.schemas import FeedbackEvent, Limits, PromptEvent
    >>> from llmpulse.schemas._fast_checks import passes
    >>> class Window:  # the instants a timestamp may take
    ...     lo, hi = datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    >>> at = datetime(2026, 6, 1, tzinfo=UTC)
    >>> passes(PromptEvent(call_id="c1", app="a", occurred_at=at), Limits(), Window())
    True
    >>> passes(PromptEvent(call_id="c\\x07", app="a", occurred_at=at), Limits(), Window())
    False
    >>> passes(FeedbackEvent(call_id="c1", app="a", thumbs="up"), Limits(), Window())
    False
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Protocol

from llmpulse.schemas._events import (
    OPERATIONS,
    SCHEMA_VERSION,
    EnrichedCall,
    EventBase,
    PromptEvent,
    ResponseEvent,
    SpanEvent,
)

if TYPE_CHECKING:
    from llmpulse.schemas._limits import Limits

__all__ = ["CONTROL", "KNOWN_OPERATIONS", "OPERATION", "STORE_MAX_TIME", "STORE_MIN_TIME",
           "SUPPORTED_SCHEMA_VERSIONS", "answer_after_its_prompt", "passes", "prompt_of_a_span"]

SUPPORTED_SCHEMA_VERSIONS: frozenset[int] = frozenset({1, SCHEMA_VERSION})
STORE_MIN_TIME = datetime(1900, 1, 1, tzinfo=UTC)
"""The earliest instant a ``DateTime64`` column holds."""
STORE_MAX_TIME = datetime(2299, 12, 31, 23, 59, 59, tzinfo=UTC)
"""The latest instant a ``DateTime64`` column holds (to the second)."""
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
OPERATION = re.compile(r"[a-z][a-z0-9_.]*")
KNOWN_OPERATIONS = frozenset(OPERATIONS)

_CALL = ("app", "environment", "call_id", "trace_id", "span_id", "parent_span_id",
         "session_id", "user_id", "prompt_id", "prompt_version", "request_model", "provider")
_PROMPT_IDS = attrgetter(*_CALL, "operation")
_RESPONSE_IDS = attrgetter(*_CALL, "response_model", "response_id", "finish_reason")
_SPAN_IDS = attrgetter(*_CALL, "name", "operation")
_SPAN_HEX_IDS = ("call_id", "trace_id", "span_id", "parent_span_id")
_SPAN_PROMPT_IDS = attrgetter(*(name for name in _CALL if name not in _SPAN_HEX_IDS), "operation")
"""A prompt's identifiers but the ids the mapper writes in hex (``prompt_of_a_span``)."""
_ENRICHED_IDS = attrgetter(*_CALL, "incomplete_reason", "scorer_set_version", "policy_version")
_SCORE_IDS = attrgetter("name", "scorer_version", "backend")


class _Window(Protocol):
    lo: datetime
    hi: datetime


def _short_clean(ids: list[str | None], keys: list[str], cap: int) -> bool:
    """No identifier longer than ``cap``, no control character in one or in a key."""
    present = [v for v in ids if v]
    joined = "".join(present)
    if len(joined) > cap and max(map(len, present)) > cap:
        return False
    return CONTROL.search(joined) is None and (not keys or CONTROL.search("".join(keys)) is None)


def _base(event: EventBase, limits: Limits, window: _Window) -> bool:
    """Version, ``occurred_at`` in the window, attributes bounded."""
    if event.schema_version not in SUPPORTED_SCHEMA_VERSIONS \
            or not window.lo <= event.occurred_at <= window.hi:
        return False
    attributes = event.attributes
    if attributes:
        if len(attributes) > limits.max_attributes:
            return False
        cap = limits.max_attribute_chars
        for key, value in attributes.items():
            if len(key) > cap or (isinstance(value, str) and len(value) > cap):
                return False
    return True


def _operation(event: PromptEvent | SpanEvent) -> bool:
    operation = event.operation
    return (event.schema_version <= 1 or operation in KNOWN_OPERATIONS
            or OPERATION.fullmatch(operation) is not None)


def _prompt(event: PromptEvent, limits: Limits, window: _Window,
            ids: list[str | None], keys: list[str]) -> bool:
    """The prompt's own rules; its identifiers and keys are added to ``ids`` and ``keys``."""
    if not _base(event, limits, window) or not _operation(event):
        return False
    ids.extend(_PROMPT_IDS(event))
    keys.extend(event.attributes)
    return _prompt_texts(event, limits, ids)


def _prompt_texts(event: PromptEvent, limits: Limits, ids: list[str | None]) -> bool:
    """The prompt's messages, documents and template variables bounded, no tool message;
    the documents' ids are added to ``ids``."""
    messages, documents, variables = event.messages, event.retrieved_context, event.template_variables
    cap = limits.max_text_chars
    if messages:
        if len(messages) > limits.max_messages:
            return False
        for message in messages:
            if len(message.content) > cap or message.tool_calls or message.tool_call_id is not None:
                return False  # tool messages: the full checks
    if documents:
        if len(documents) > limits.max_documents:
            return False
        for doc in documents:
            if len(doc.content) > cap:
                return False
            ids.append(doc.id)
    if variables:
        if len(variables) > limits.max_attributes:
            return False
        for value in variables.values():
            if len(value) > cap:
                return False
    return True


def _response(event: ResponseEvent, limits: Limits, window: _Window,
              ids: list[str | None], keys: list[str]) -> bool:
    """The response's own rules; its identifiers and keys are added to ``ids`` and ``keys``."""
    if not _base(event, limits, window) or event.tool_calls:
        return False  # an answer's tool calls: the full checks
    text, error, cap = event.text, event.error, limits.max_text_chars
    if text is None and error is None:
        return False
    if text is not None and len(text) > cap:
        return False
    ids.extend(_RESPONSE_IDS(event))
    keys.extend(event.attributes)
    if error is not None:
        if len(error.message) > cap:
            return False
        ids.append(error.type)
    return True


def answer_after_its_prompt(response: ResponseEvent, limits: Limits, now: datetime) -> bool:
    """True only when ``validate_event(response, limits, now=now)`` accepts an answer whose
    prompt it has just accepted, with the same call fields, an earlier ``occurred_at`` and a
    superset of the answer's attributes (how the OTLP mapper builds the pair from one span).
    What the answer adds is checked here, beside ``_response``'s rules: its time not after
    the clock (the window's top is later), its text, its three identifiers. An error or tool
    calls answer False (the full checks decide and name the field and rule)."""
    if (response.error is not None or response.tool_calls or limits.max_future_seconds < 0
            or response.occurred_at > now or response.text is None
            or len(response.text) > limits.max_text_chars):
        return False
    model, answer_id, reason, cap = (response.response_model, response.response_id,
                                     response.finish_reason, limits.max_id_chars)
    if (model and len(model) > cap) or (answer_id and len(answer_id) > cap) \
            or (reason and len(reason) > cap):
        return False
    return CONTROL.search(f"{model or ''}{answer_id or ''}{reason or ''}") is None


def prompt_of_a_span(event: PromptEvent, limits: Limits, window: _Window, clean: set[str]) -> bool:
    """True only when ``passes(event, limits, window)`` is, for a prompt the OTLP mapper built
    from a span, at less cost: its ``call_id``, ``trace_id``, ``span_id`` and
    ``parent_span_id`` must be what the mapper writes, lowercase hex of the span's ids
    (``otel-<32>-<16>``, 32, 16 and 16 characters): that is checked in a few C calls (the
    call id built from the other two, all of them ASCII letters and digits, the call id and
    the parent within the cap) instead of the regex (a third of its work per call before). Every other
    identifier and each attribute key is checked as ``passes`` checks it, once: ``clean``
    (the caller's, for these ``limits``) keeps those found clean. False leaves the decision
    (and the error's field and rule) to the full checks, as ``passes``."""
    cap = limits.max_id_chars
    trace_id, span_id, parent = event.trace_id, event.span_id, event.parent_span_id or ""
    hex_ids = f"{trace_id}{span_id}{parent}"
    if not _base(event, limits, window) or not _operation(event) or event.retrieved_context \
            or event.call_id != f"otel-{trace_id}-{span_id}" or len(event.call_id) > cap \
            or len(parent) > cap or not (hex_ids.isascii() and hex_ids.isalnum()) \
            or not _prompt_texts(event, limits, []):
        return False  # (documents: the mapper gives none; their ids would need the search)
    for value in _SPAN_PROMPT_IDS(event):
        if value and value not in clean:
            if len(value) > cap or CONTROL.search(value) is not None:
                return False
            clean.add(value)
    for key in event.attributes:  # (a key has no length cap: one kept is within an id's)
        if key not in clean:
            if CONTROL.search(key) is not None:
                return False
            if len(key) <= cap:
                clean.add(key)
    return True


def _span(event: SpanEvent, limits: Limits, window: _Window,
          ids: list[str | None], keys: list[str]) -> bool:
    if not _base(event, limits, window) or not _operation(event) \
            or event.call_id != event.span_id \
            or not STORE_MIN_TIME <= event.started_at <= event.occurred_at:
        return False
    ids.extend(_SPAN_IDS(event))
    keys.extend(event.attributes)
    error, tool, preview = event.error, event.tool, event.result_preview
    if error is not None:
        if len(error.message) > limits.max_text_chars:
            return False
        ids.append(error.type)
    if tool is not None:
        if len(tool.arguments) > limits.max_tool_arguments_chars:
            return False
        ids.append(tool.id)
        ids.append(tool.name)
    return preview is None or len(preview) <= limits.max_tool_result_chars


def _enriched(event: EnrichedCall, limits: Limits, window: _Window,
              ids: list[str | None], keys: list[str]) -> bool:
    prompt, response = event.prompt, event.response
    if event.verdicts or (prompt is None and response is None) \
            or not _base(event, limits, window) \
            or not window.lo <= event.processed_at <= window.hi:
        return False  # verdicts: the full checks
    ids.extend(_ENRICHED_IDS(event))
    keys.extend(event.attributes)
    for score in event.scores:
        ids.extend(_SCORE_IDS(score))
    return ((prompt is None or _prompt(prompt, limits, window, ids, keys))
            and (response is None or _response(response, limits, window, ids, keys)))


_CHECKS: dict[type, Callable[[Any, Limits, _Window, list[str | None], list[str]], bool]] = {
    PromptEvent: _prompt, ResponseEvent: _response, SpanEvent: _span, EnrichedCall: _enriched,
}


def passes(event: object, limits: Limits, window: _Window) -> bool:
    """True when ``event`` keeps every rule; False when the full checks must decide."""
    check = _CHECKS.get(type(event))
    if check is None:
        return False
    ids: list[str | None] = []
    keys: list[str] = []
    return check(event, limits, window, ids, keys) and _short_clean(ids, keys, limits.max_id_chars)
