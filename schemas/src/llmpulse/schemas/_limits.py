"""Limits on events, and the checks that the types alone cannot express.

The type of every field is checked while decoding, with the numeric bounds of the
contract (an integer fits its column's type, a float is finite and sane: see
``llmpulse.schemas._events``). This module adds what is configurable (size caps per
field and per event, the time window), the cross-field rules (a response has text or
an error; feedback says something) and what keeps every accepted event storable:

- **Time window.** Every timestamp that drives a table's partition or TTL
  (``occurred_at``, ``processed_at``, a drift window's end) must lie within
  ``max_past_seconds`` before and ``max_future_seconds`` after the reader's clock;
  other timestamps within what ``DateTime64`` holds (1900-2299). Outside:
  ``timestamp_out_of_range``, and the event goes to the dead-letter topic. A far-past
  event is never stored with its arrival time instead: that would put it in the wrong
  windows and latencies without a trace; the dead letter keeps the payload, so an
  operator can fix the producer's clock and send it again. The prompt registry
  (``PromptVersion``, ``PromptLabel``: no TTL, compacted topic) only needs storable times.
- **Identifiers** (ids, names, labels, attribute keys) hold no control character
  (``control_character``).
- **Operations** (v1.1, ``schema_version`` 2): a lowercase identifier (``chat``,
  ``execute_tool``, OpenTelemetry's ``generate_content`` ...), else ``invalid_value``. A
  v1 record's operation was free text and is kept as it was.
- **Tool calls and spans** (v1.1): tool arguments and a span's result preview are
  bounded (``max_tool_arguments_chars``, ``max_tool_result_chars``; a producer cuts them
  with ``bounded_text`` and flags the cut), tool calls per message or answer by
  ``max_tool_calls``; a span's ``call_id`` is its ``span_id``, and it ends after it starts.

The common events first take the precompiled checks of ``_fast_checks`` (the same
rules in a few C-level passes); what they do not prove valid is checked here, and the
error names the field and the rule.

Example:
    >>> from llmpulse.schemas import FeedbackEvent, Limits, SchemaError, validate_event
    >>> limits = Limits(max_text_chars=10)
    >>> event = FeedbackEvent(call_id="c1", app="a", comment="way too long a comment")
    >>> try:
    ...     validate_event(event, limits)
    ... except SchemaError as err:
    ...     print(err.reason, err.field, err.detail)
    limit_exceeded $.comment 22 characters, more than max_text_chars=10
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from functools import lru_cache
from operator import attrgetter

from msgspec import Struct

from llmpulse.schemas import environment as env
from llmpulse.schemas._events import (
    Alert,
    CallEvent,
    DeadLetter,
    DriftResult,
    EnrichedCall,
    EventBase,
    FeedbackEvent,
    GuardrailVerdict,
    PromptEvent,
    PromptLabel,
    PromptVersion,
    ResponseEvent,
    SpanEvent,
    ToolCall,
    utcnow,
)
from llmpulse.schemas._fast_checks import (
    CONTROL,
    KNOWN_OPERATIONS,
    OPERATION,
    STORE_MAX_TIME,
    STORE_MIN_TIME,
    SUPPORTED_SCHEMA_VERSIONS,
    passes,
)
from llmpulse.schemas.errors import SchemaError

__all__ = ["STORE_MAX_TIME", "STORE_MIN_TIME", "SUPPORTED_SCHEMA_VERSIONS", "Limits",
           "bounded_text", "validate_event"]

_DAY = 86_400


class Limits(Struct, kw_only=True, frozen=True):
    """Size caps. Every one is configurable (keyword or ``LLMPULSE_LIMIT_*`` variable).

    The defaults fit a RAG prompt with a long context while keeping one batch record
    under the topics' ``max.message.bytes`` (8 MiB, see ``llmpulse.schemas.topics``).
    """

    max_record_bytes: int = 8 * 1024 * 1024
    """One Kafka record value: a single event or a whole batch."""
    max_event_bytes: int = 1024 * 1024
    """One event, encoded."""
    max_batch_events: int = 10_000
    max_id_chars: int = 256
    """Ids and names: call_id, app, environment, prompt_id, model ..."""
    max_text_chars: int = 256 * 1024
    """Any text: a message, a response, a document, a comment, a correction."""
    max_messages: int = 1_000
    max_documents: int = 200
    max_attributes: int = 128
    max_attribute_chars: int = 4_096
    """An attribute's key or string value."""
    max_tool_calls: int = 128
    """Tool calls in one message or one answer."""
    max_tool_arguments_chars: int = 32_768
    """A tool call's raw arguments (producers cut longer ones and set
    ``arguments_truncated``)."""
    max_tool_result_chars: int = 16_384
    """A span's ``result_preview`` (producers cut longer ones and set ``result_truncated``).
    Guardrails read it for instructions hidden in tool results, so it is more than a
    glimpse."""
    max_past_seconds: int = 30 * _DAY
    """How long before the reader's clock an event may have happened. The default is the
    topics' retention and the text retention (30 days), inside the raw rows' (90 days):
    an accepted call is kept, with its text, and a redelivery can still be recognised."""
    max_future_seconds: int = 900
    """How long after the reader's clock: the clock skew between hosts."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Limits:
        """Read ``LLMPULSE_LIMIT_<NAME>`` overrides (e.g. ``LLMPULSE_LIMIT_MAX_TEXT_CHARS``).

        Without ``LLMPULSE_LIMIT_MAX_PAST_SECONDS``, a raw retention shorter than the
        default window (``LLMPULSE_RETENTION_RAW_DAYS``) shortens it to one day less than
        the retention, so an accepted event is not deleted on arrival.
        """
        source = os.environ if environ is None else environ
        overrides: dict[str, int] = {}
        raw_days = source.get(env.RETENTION_RAW_DAYS, "").strip()
        if raw_days.isdigit() and int(raw_days) > 0:
            overrides["max_past_seconds"] = min(cls.max_past_seconds,
                                                max(1, int(raw_days) - 1) * _DAY)
        for name in cls.__struct_fields__:
            raw = source.get(env.LIMIT_PREFIX + name.upper())
            if raw is None:
                continue
            try:
                value = int(raw)
            except ValueError:
                raise ValueError(f"{env.LIMIT_PREFIX}{name.upper()}={raw!r} is not an integer") from None
            if value <= 0:
                raise ValueError(f"{env.LIMIT_PREFIX}{name.upper()} must be positive, got {value}")
            overrides[name] = value
        return cls(**overrides)


DEFAULT_LIMITS = Limits()


def bounded_text(text: str, cap: int) -> tuple[str, bool]:
    """``text`` cut to ``cap`` characters, and whether it was cut.

    Example:
        >>> from llmpulse.schemas import Limits, bounded_text
        >>> bounded_text("x" * 40_000, Limits().max_tool_arguments_chars)[1]
        True
    """
    return (text, False) if len(text) <= cap else (text[:cap], True)


class _Window:
    """The instants a windowed timestamp may take, against one reading of the clock."""

    __slots__ = ("future", "hi", "lo", "past")

    def __init__(self, limits: Limits, now: datetime | None) -> None:
        now = utcnow() if now is None else now
        self.past, self.future = limits.max_past_seconds, limits.max_future_seconds
        try:
            self.lo = max(STORE_MIN_TIME, now - timedelta(seconds=self.past))
        except OverflowError:
            self.lo = STORE_MIN_TIME
        try:
            self.hi = min(STORE_MAX_TIME, now + timedelta(seconds=self.future))
        except OverflowError:
            self.hi = STORE_MAX_TIME

    def check(self, value: datetime, path: str) -> None:
        """Raise ``timestamp_out_of_range`` unless ``value`` is inside the window."""
        if not self.lo <= value <= self.hi:
            raise SchemaError(
                "timestamp_out_of_range",
                f"{value.isoformat()} is outside {self.lo:%Y-%m-%dT%H:%M:%SZ} .. "
                f"{self.hi:%Y-%m-%dT%H:%M:%SZ} (max_past_seconds={self.past}, "
                f"max_future_seconds={self.future}, against the reader's clock)", field=path)


_last_window: tuple[Limits, datetime, _Window] | None = None


def _window(limits: Limits, now: datetime | None) -> _Window:
    """The window against ``now``, built once per reading of the clock (a record's events,
    or a mapped OTLP record's, share one reading); ``now`` None reads the clock."""
    global _last_window
    last = _last_window
    if now is not None and last is not None and last[0] is limits and last[1] is now:
        return last[2]
    window = _Window(limits, now)
    if now is not None:
        _last_window = (limits, now, window)
    return window


def _storable(value: datetime | None, path: str) -> None:
    """Raise ``timestamp_out_of_range`` unless a ``DateTime64`` column holds ``value``."""
    if value is not None and not STORE_MIN_TIME <= value <= STORE_MAX_TIME:
        raise SchemaError("timestamp_out_of_range",
                          f"{value.isoformat()} is outside what the store holds "
                          f"({STORE_MIN_TIME:%Y-%m-%d} .. {STORE_MAX_TIME:%Y-%m-%d})", field=path)


def _no_control(values: list[str], path: Callable[[int], str]) -> None:
    """One C-level pass over identifiers; the slow path names the culprit."""
    if values and CONTROL.search("".join(values)) is not None:
        for i, value in enumerate(values):
            found = CONTROL.search(value)
            if found is not None:
                raise SchemaError("control_character",
                                  f"U+{ord(found.group()):04X} at character {found.start()}",
                                  field=path(i))


_CALL_IDS = ("call_id", "trace_id", "span_id", "parent_span_id", "session_id", "user_id",
             "prompt_id", "prompt_version", "request_model", "provider")


def _too_long(value: str | None, cap: int, cap_name: str, path: str) -> SchemaError | None:
    if value is not None and len(value) > cap:
        return SchemaError("limit_exceeded", f"{len(value)} characters, more than {cap_name}={cap}",
                           field=path)
    return None


@lru_cache(maxsize=64)
def _getter(names: tuple[str, ...]) -> Callable[[object], tuple[str | None, ...]]:
    return attrgetter(*names) if len(names) > 1 else lambda e: (getattr(e, names[0]),)


def _ids(event: object, names: tuple[str, ...], limits: Limits, prefix: str = "$") -> None:
    """One C-level pass over the id fields; the slow path only names the culprit."""
    values = _getter(names)(event)
    present = [v for v in values if v]
    if not present:
        return
    if max(map(len, present)) > limits.max_id_chars:
        for name, value in zip(names, values, strict=True):
            error = _too_long(value, limits.max_id_chars, "max_id_chars", f"{prefix}.{name}")
            if error is not None:
                raise error
    if CONTROL.search("".join(present)) is not None:
        named = [(n, v) for n, v in zip(names, values, strict=True) if v]
        _no_control([v for _, v in named], lambda i: f"{prefix}.{named[i][0]}")


def _texts(values: list[str], path: Callable[[int], str], limits: Limits) -> None:
    """One C-level pass over the texts; ``path(i)`` names the culprit on the slow path."""
    if values and max(map(len, values)) > limits.max_text_chars:
        for i, value in enumerate(values):
            error = _too_long(value, limits.max_text_chars, "max_text_chars", path(i))
            if error is not None:
                raise error


def _count(n: int, cap: int, cap_name: str, path: str) -> None:
    if n > cap:
        raise SchemaError("limit_exceeded", f"{n} items, more than {cap_name}={cap}", field=path)


def _base(event: EventBase, limits: Limits, window: _Window | None, prefix: str = "$") -> None:
    """Version, attributes, and ``occurred_at``: in the window, or (``window`` None: a
    table without a TTL on it) storable."""
    if event.schema_version not in SUPPORTED_SCHEMA_VERSIONS:
        raise SchemaError(
            "unknown_schema_version",
            f"schema_version {event.schema_version} is not one of "
            f"{sorted(SUPPORTED_SCHEMA_VERSIONS)}",
            field=f"{prefix}.schema_version",
        )
    if window is not None:
        window.check(event.occurred_at, f"{prefix}.occurred_at")
    else:
        _storable(event.occurred_at, f"{prefix}.occurred_at")
    attributes = event.attributes
    if attributes:
        _count(len(attributes), limits.max_attributes, "max_attributes", f"{prefix}.attributes")
        cap = limits.max_attribute_chars
        for key, value in attributes.items():
            if len(key) > cap or (isinstance(value, str) and len(value) > cap):
                raise SchemaError(
                    "limit_exceeded",
                    f"attribute key or value longer than max_attribute_chars={cap}",
                    field=f"{prefix}.attributes.{key[:64]}",
                )
        keys = list(attributes)
        _no_control(keys, lambda i: f"{prefix}.attributes.{keys[i][:64]!r}")


def _call(event: CallEvent, limits: Limits, window: _Window, prefix: str = "$") -> None:
    _base(event, limits, window, prefix)
    _ids(event, ("app", "environment", *_CALL_IDS), limits, prefix)


def _operation(event: PromptEvent | SpanEvent, limits: Limits, prefix: str) -> None:
    """Bounded; from v1.1 on, a lowercase identifier (v1 kept it as free text)."""
    _ids(event, ("operation",), limits, prefix)
    operation = event.operation
    if event.schema_version > 1 and operation not in KNOWN_OPERATIONS \
            and OPERATION.fullmatch(operation) is None:
        raise SchemaError("invalid_value",
                          f"operation {event.operation[:64]!r} is not a lowercase identifier "
                          "(chat, text_completion, embeddings, execute_tool, invoke_agent, "
                          "retrieval ...)", field=f"{prefix}.operation")


def _tool_call(call: ToolCall, limits: Limits, path: str) -> None:
    _ids(call, ("id", "name"), limits, path)
    error = _too_long(call.arguments, limits.max_tool_arguments_chars,
                      "max_tool_arguments_chars", f"{path}.arguments")
    if error is not None:
        raise error


def _tool_calls(calls: list[ToolCall], limits: Limits, path: str) -> None:
    _count(len(calls), limits.max_tool_calls, "max_tool_calls", path)
    for i, call in enumerate(calls):
        _tool_call(call, limits, f"{path}[{i}]")


def _messages_tools(event: PromptEvent, limits: Limits, prefix: str) -> None:
    """Tool calls on assistant messages, and the tool call ids of tool messages."""
    for i, message in enumerate(event.messages):
        if message.tool_calls:
            _tool_calls(message.tool_calls, limits, f"{prefix}.messages[{i}].tool_calls")
        if message.tool_call_id is not None:
            _ids(message, ("tool_call_id",), limits, f"{prefix}.messages[{i}]")


def _prompt(event: PromptEvent, limits: Limits, window: _Window, prefix: str = "$") -> None:
    _call(event, limits, window, prefix)
    _operation(event, limits, prefix)
    messages, documents, variables = event.messages, event.retrieved_context, event.template_variables
    if messages:
        _count(len(messages), limits.max_messages, "max_messages", f"{prefix}.messages")
        _texts([m.content for m in messages], lambda i: f"{prefix}.messages[{i}].content",
               limits)
        if any(m.tool_calls or m.tool_call_id is not None for m in messages):
            _messages_tools(event, limits, prefix)
    if documents:
        _count(len(documents), limits.max_documents, "max_documents",
               f"{prefix}.retrieved_context")
        ids = [d.id for d in documents]
        if max(map(len, ids)) > limits.max_id_chars:
            for i, doc in enumerate(documents):
                _ids(doc, ("id",), limits, f"{prefix}.retrieved_context[{i}]")
        _no_control(ids, lambda i: f"{prefix}.retrieved_context[{i}].id")
        _texts([d.content for d in documents],
               lambda i: f"{prefix}.retrieved_context[{i}].content", limits)
    if variables:
        _count(len(variables), limits.max_attributes, "max_attributes",
               f"{prefix}.template_variables")
        keys = list(variables)
        _texts(list(variables.values()),
               lambda i: f"{prefix}.template_variables.{keys[i][:64]}", limits)


def _response(event: ResponseEvent, limits: Limits, window: _Window, prefix: str = "$") -> None:
    _call(event, limits, window, prefix)
    if event.text is None and event.error is None and not event.tool_calls:
        raise SchemaError("missing_field", "a response needs text, tool calls or an error",
                          field=f"{prefix}.text")
    _ids(event, ("response_model", "response_id", "finish_reason"), limits, prefix)
    if event.tool_calls:
        _tool_calls(event.tool_calls, limits, f"{prefix}.tool_calls")
    if event.error is not None:
        _ids(event.error, ("type",), limits, f"{prefix}.error")
    texts = [event.text or "", event.error.message if event.error else ""]
    _texts(texts, lambda i: f"{prefix}.text" if i == 0 else f"{prefix}.error.message", limits)


def _feedback(event: FeedbackEvent, limits: Limits, window: _Window) -> None:
    _call(event, limits, window)
    if (event.thumbs is None and event.rating is None and event.label is None
            and event.correction is None and event.comment is None):
        raise SchemaError(
            "missing_field",
            "feedback needs at least one of thumbs, rating, label, correction, comment",
            field="$.thumbs",
        )
    _ids(event, ("label", "author_id"), limits)
    _texts([event.correction or "", event.comment or ""],
           lambda i: "$.correction" if i == 0 else "$.comment", limits)


def _verdict(event: GuardrailVerdict, limits: Limits, window: _Window, prefix: str = "$") -> None:
    _call(event, limits, window, prefix)
    _ids(event, ("rule_id", "rule_kind", "policy_version"), limits, prefix)


def _span(event: SpanEvent, limits: Limits, window: _Window) -> None:
    _call(event, limits, window)
    if event.call_id != event.span_id:
        raise SchemaError("invalid_value", "a span's call_id must be its span_id",
                          field="$.call_id")
    _storable(event.started_at, "$.started_at")
    if event.started_at > event.occurred_at:
        raise SchemaError("invalid_value",
                          f"started_at {event.started_at.isoformat()} is after occurred_at "
                          f"{event.occurred_at.isoformat()} (a span's end)", field="$.started_at")
    _ids(event, ("name",), limits)
    _operation(event, limits, "$")
    if event.error is not None:
        _ids(event.error, ("type",), limits, "$.error")
        _texts([event.error.message], lambda _: "$.error.message", limits)
    if event.tool is not None:
        _tool_call(event.tool, limits, "$.tool")
    error = _too_long(event.result_preview, limits.max_tool_result_chars,
                      "max_tool_result_chars", "$.result_preview")
    if error is not None:
        raise error


def _enriched(event: EnrichedCall, limits: Limits, window: _Window) -> None:
    _call(event, limits, window)
    window.check(event.processed_at, "$.processed_at")
    _ids(event, ("incomplete_reason", "scorer_set_version", "policy_version"), limits)
    if event.prompt is not None:
        _prompt(event.prompt, limits, window, "$.prompt")
    if event.response is not None:
        _response(event.response, limits, window, "$.response")
    if event.prompt is None and event.response is None:
        raise SchemaError("missing_field", "an enriched call needs a prompt or a response",
                          field="$.prompt")
    for i, score in enumerate(event.scores):
        _ids(score, ("name", "scorer_version", "backend"), limits, f"$.scores[{i}]")
    for i, verdict in enumerate(event.verdicts):
        _verdict(verdict, limits, window, f"$.verdicts[{i}]")


def _drift(event: DriftResult, limits: Limits, window: _Window) -> None:
    _base(event, limits, window)
    window.check(event.window_end, "$.window_end")  # the table's partition and TTL
    for name in ("window_start", "reference_start", "reference_end"):
        _storable(getattr(event, name), f"$.{name}")
    for i, feature in enumerate(event.features):
        _ids(feature, ("feature", "test"), limits, f"$.features[{i}]")


def _alert(event: Alert, limits: Limits, window: _Window) -> None:
    _base(event, limits, window)
    _storable(event.started_at, "$.started_at")
    _ids(event, ("rule", "dedup_key"), limits)


def _dead_letter(event: DeadLetter, limits: Limits, window: _Window) -> None:
    if event.schema_version not in SUPPORTED_SCHEMA_VERSIONS:
        raise SchemaError("unknown_schema_version",
                          f"schema_version {event.schema_version} is unknown",
                          field="$.schema_version")
    window.check(event.occurred_at, "$.occurred_at")
    _ids(event, ("reason", "stage", "source_topic"), limits)


def validate_event(event: object, limits: Limits = DEFAULT_LIMITS, *,
                   now: datetime | None = None) -> None:
    """Check the configurable limits, the time window and the cross-field rules of one
    decoded event.

    Args:
        event: a decoded event.
        limits: the caps and the time window.
        now: the reader's clock (default: the current time, in UTC).

    Raises:
        SchemaError: naming the field and the rule that failed.
    """
    window = _window(limits, now)
    if passes(event, limits, window):
        return
    if isinstance(event, PromptEvent):
        _prompt(event, limits, window)
    elif isinstance(event, ResponseEvent):
        _response(event, limits, window)
    elif isinstance(event, FeedbackEvent):
        _feedback(event, limits, window)
    elif isinstance(event, EnrichedCall):
        _enriched(event, limits, window)
    elif isinstance(event, GuardrailVerdict):
        _verdict(event, limits, window)
    elif isinstance(event, SpanEvent):
        _span(event, limits, window)
    elif isinstance(event, PromptVersion | PromptLabel):
        _base(event, limits, None)
        _ids(event, ("app", "prompt_id", "version"), limits)
        if isinstance(event, PromptVersion):
            _count(len(event.messages), limits.max_messages, "max_messages", "$.messages")
            _texts([m.content for m in event.messages], lambda i: f"$.messages[{i}].content",
                   limits)
        else:
            _ids(event, ("label",), limits)
    elif isinstance(event, DriftResult):
        _drift(event, limits, window)
        _ids(event, ("app", "environment", "prompt_id", "prompt_version", "request_model"), limits)
    elif isinstance(event, Alert):
        _alert(event, limits, window)
        _ids(event, ("app", "environment", "prompt_id", "prompt_version", "request_model"), limits)
    elif isinstance(event, DeadLetter):
        _dead_letter(event, limits, window)
    else:
        raise SchemaError("unknown_type", f"{type(event).__name__} is not an llmpulse event")
