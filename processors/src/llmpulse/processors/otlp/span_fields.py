"""What one span says, read into event fields: token usage, the open attribute map, the
error, times, tool calls held to the limits, and a step span's whole ``SpanEvent``.

``mapper`` assembles an inference span's prompt and answer from these; a tool execution,
agent invocation or retrieval span is built here (``step_event``). Every reader checks
the types it reads (``conventions``), so the events are built directly and then held to
the contract's ranges and the size limits; a wrong value raises ``SchemaError`` naming
the field, and the mapper dead-letters that span.

Example:
    >>> token_counts({"gen_ai.usage.input_tokens": 12, "gen_ai.usage.prompt_tokens": 9,
    ...               "llm.usage.completion_tokens": 3})
    {'input_tokens': 12, 'output_tokens': 3}
    >>> with_extras({"llmpulse.source": "otlp"}, {"gen_ai.request.seed": 7}, REQUEST_EXTRAS)
    {'llmpulse.source': 'otlp', 'gen_ai.request.seed': 7}
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from llmpulse.processors._ids import derived_uuid7
from llmpulse.processors.otlp import conventions as c
from llmpulse.processors.otlp.messages import output, tool_call
from llmpulse.schemas import (
    ChatMessage,
    ErrorInfo,
    Limits,
    SchemaError,
    SpanEvent,
    TokenUsage,
    ToolCall,
    bounded_text,
    validate_event,
)

__all__ = ["OPTIONAL_KEYS", "REQUEST_EXTRAS", "STEP_EXTRAS", "SpanShape", "bounded_tool",
           "error_of", "from_timestamp", "message_with_tools", "non_negative", "planned_counts",
           "shape_of", "span_time", "step_event", "token_counts", "usage_of", "with_extras"]

_STATUS_ERROR = Status.STATUS_CODE_ERROR  # (read once: the enum wrapper's lookup is Python code)
_NON_NEGATIVE = ("max_tokens", "latency_ms", "time_to_first_token_ms")
REQUEST_EXTRAS = ("gen_ai.request.frequency_penalty", "gen_ai.request.presence_penalty",
                  "gen_ai.request.seed", "gen_ai.request.stop_sequences", "gen_ai.request.top_k",
                  "gen_ai.request.choice.count", "gen_ai.request.reasoning.level",
                  "gen_ai.request.stream", "gen_ai.output.type", "server.address")
"""Request attributes kept in the prompt's open attribute map."""
STEP_EXTRAS = ("gen_ai.tool.type", "gen_ai.tool.description", "gen_ai.agent.id",
               "gen_ai.agent.description", "gen_ai.data_source.id")
"""Attributes kept in a step's open attribute map."""
_USAGE = {
    "input_tokens": ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens",
                     "llm.usage.prompt_tokens"),
    "output_tokens": ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
                      "llm.usage.completion_tokens"),
    "cached_input_tokens": ("gen_ai.usage.cache_read.input_tokens",
                            "gen_ai.usage.cache_read_input_tokens"),
    "cache_creation_input_tokens": ("gen_ai.usage.cache_write.input_tokens",
                                    "gen_ai.usage.cache_creation.input_tokens",
                                    "gen_ai.usage.cache_creation_input_tokens"),
    "reasoning_tokens": ("gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens"),
}
OPTIONAL_KEYS = frozenset({
    "llmpulse.app", "llmpulse.environment", "gen_ai.conversation.id", "session.id", "user.id",
    "enduser.id", "llmpulse.prompt.id", "gen_ai.prompt.name", "llmpulse.prompt.version",
    "gen_ai.prompt.version", "gen_ai.request.max_tokens", "gen_ai.request.top_p",
    "gen_ai.output.type", "gen_ai.response.time_to_first_chunk",
    "gen_ai.response.time_to_first_token", "gen_ai.request.stream", "gen_ai.is_streaming",
    "llm.is_streaming"})
"""Keys an inference span often lacks: when it has none of them, their readers (each would
answer None) are not called, at a function call each (``SpanShape.optional``)."""
_USAGE_ITEMS = tuple(_USAGE.items())
_EXTRAS_KEYS: dict[tuple[str, ...], frozenset[str]] = {
    keys: frozenset(keys) for keys in (REQUEST_EXTRAS, STEP_EXTRAS)}
_USAGE_ORDER = {key: (n, rank) for n, (_, keys) in enumerate(_USAGE_ITEMS)
                for rank, key in enumerate(keys)}
"""Each token count key: its count's place in ``_USAGE`` and its precedence among its keys."""
_USAGE_KEYS = frozenset(_USAGE_ORDER)
_USAGE_PLANS: dict[frozenset[str], tuple[tuple[str, str], ...]] = {}
"""Token count keys present -> (count, key) in the order ``token_counts`` reads them."""

from_timestamp = datetime.fromtimestamp
"""``datetime.fromtimestamp`` (bound once: a span's times are read at every span)."""


class SpanShape(NamedTuple):
    """What a span's attribute keys (not their values) decide, worked out once per key
    order (``shape_of``)."""

    genai: bool
    """``c.is_genai``."""
    optional: bool
    """It has one of ``OPTIONAL_KEYS`` at least."""
    usage_plan: tuple[tuple[str, str], ...]
    """(count, key) in the order ``token_counts`` reads them; empty: no token count keys."""
    request_extras: bool
    """It has one of ``REQUEST_EXTRAS`` at least (else ``with_extras`` copies ``origin``)."""


_SHAPES: dict[tuple[str, ...], SpanShape] = {}
_SHAPES_MAX = 1024
"""Key orders kept (emptied past this: an instrumentation writes a few in practice)."""


def shape_of(attrs: dict[str, Any]) -> SpanShape:
    """The span's ``SpanShape``: one lookup by its keys in order instead of a pass over
    them for each of the questions (the spans of one instrumentation share a few orders)."""
    keys = tuple(attrs)
    shape = _SHAPES.get(keys)
    if shape is None:
        present = _USAGE_KEYS.intersection(attrs)
        shape = SpanShape(c.is_genai(attrs), not OPTIONAL_KEYS.isdisjoint(attrs),
                          _usage_plan(present) if present else (),
                          not _EXTRAS_KEYS[REQUEST_EXTRAS].isdisjoint(attrs))
        if len(_SHAPES) >= _SHAPES_MAX:
            _SHAPES.clear()
        _SHAPES[keys] = shape
    return shape


def _usage_plan(present: frozenset[str]) -> tuple[tuple[str, str], ...]:
    plan = _USAGE_PLANS.get(present)
    if plan is None:
        plan = tuple((_USAGE_ITEMS[_USAGE_ORDER[key][0]][0], key)
                     for key in sorted(present, key=_USAGE_ORDER.__getitem__))
        if len(_USAGE_PLANS) < 1024:  # (a span's keys are few sets in practice; bounded)
            _USAGE_PLANS[present] = plan
    return plan


def token_counts(attrs: dict[str, Any]) -> dict[str, int]:
    """Each token count from the first of its keys present (in ``_USAGE``'s order of the
    counts): ``c.as_int`` per name, the integers (the common case) taken inline. Only the
    keys the span has are visited, in an order worked out once per set of keys."""
    present = _USAGE_KEYS.intersection(attrs)  # (a frozenset: the plans' key)
    if not present:
        return {}
    return planned_counts(attrs, _usage_plan(present))


def planned_counts(attrs: dict[str, Any], plan: tuple[tuple[str, str], ...]) -> dict[str, int]:
    """``token_counts`` by the span's plan (``SpanShape.usage_plan``)."""
    usage: dict[str, int] = {}
    for name, key in plan:
        value = attrs[key]
        if value is not None and name not in usage:
            usage[name] = value if type(value) is int else c.as_int(attrs, key)  # type: ignore[assignment]
    return usage


def span_time(ns: int) -> datetime:
    """A span's time (nanoseconds since the epoch) as an aware UTC datetime."""
    return from_timestamp(ns / 1e9, UTC)


UINT32_MAX = 2**32 - 1
"""The largest count the contract (``UInt32``) and the store's columns hold."""


def non_negative(name: str, value: float | None, most: float | None = None) -> None:
    """Raise ``SchemaError`` (``invalid_value`` at ``$.<name>``) when ``value`` < 0 or above
    ``most``. The events are built directly, and msgspec does not check a field's bounds
    when a Struct is built: a count the store cannot keep must be refused here."""
    if value is not None and (value < 0 or (most is not None and value > most)):
        expected = ">= 0" if most is None else f"within 0..{most}"
        raise SchemaError("invalid_value", f"{name} is {value}, expected {expected}", field=f"$.{name}")


def usage_of(usage: dict[str, int] | None) -> TokenUsage | None:
    """The token counts given (None if none), each within ``0..UINT32_MAX``."""
    if not usage:
        return None
    for name, value in usage.items():
        if value < 0 or value > UINT32_MAX:
            non_negative(f"usage.{name}", value, UINT32_MAX)
    return TokenUsage(**usage)


def with_extras(origin: dict[str, Any], attrs: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """The open attribute map: ``origin`` and those of ``keys`` (``REQUEST_EXTRAS`` or
    ``STEP_EXTRAS``) the span has, lists, maps and bytes as JSON text."""
    out = dict(origin)
    if _EXTRAS_KEYS[keys].isdisjoint(attrs):
        return out
    for key in keys:
        value = attrs.get(key)
        if value is None:
            continue
        if isinstance(value, list | dict | bytes):
            value = json.dumps(value, ensure_ascii=False, default=str)
        out[key] = value
    return out


def error_of(span: Span, attrs: dict[str, Any], events: Sequence[c.SpanEvent]) -> dict[str, str] | None:
    """The span's error as ``ErrorInfo`` fields (status, ``error.type``, an ``exception``
    event), or None when it did not fail."""
    if span.status.code != _STATUS_ERROR and attrs.get("error.type") is None:
        return None
    message = span.status.message
    kind = c.as_str(attrs, "error.type")
    for name, event_attrs in events:
        if name == "exception":
            message = message or str(event_attrs.get("exception.message") or "")
            kind = kind or str(event_attrs.get("exception.type") or "") or None
    return {"type": kind or "error", "message": message}


def bounded_tool(call: dict[str, Any], limits: Limits) -> ToolCall:
    """A tool call, its arguments cut to ``max_tool_arguments_chars`` and flagged."""
    arguments, cut = bounded_text(call["arguments"], limits.max_tool_arguments_chars)
    return ToolCall(id=call["id"], name=call["name"], arguments=arguments, arguments_truncated=cut)


def message_with_tools(message: dict[str, Any], limits: Limits) -> ChatMessage:
    """A message with tool calls, their arguments held to the limits."""
    calls = [bounded_tool(t, limits) for t in message["tool_calls"]]
    return ChatMessage(**dict(message, tool_calls=calls))


def step_event(common: dict[str, Any], operation: str, span: Span, attrs: dict[str, Any],
               events: Sequence[c.SpanEvent], origin: dict[str, Any], usage: dict[str, int],
               error: dict[str, str] | None, limits: Limits, now: datetime | None) -> SpanEvent:
    """A tool execution, agent invocation or retrieval span as a ``SpanEvent`` (``common``:
    the call's fields; ``now``: the validation's clock); tool arguments and the result are
    cut to the limits and flagged, never dead-lettered."""
    start_ns, end_ns = span.start_time_unix_nano, span.end_time_unix_nano
    tool_name = c.as_str(attrs, "gen_ai.tool.name")
    _, result = c.first(attrs, "gen_ai.tool.call.result")
    if result is None and operation == "invoke_agent":
        result = output(attrs, events)[0]
    preview, cut = (None, False) if result is None else bounded_text(
        c.as_text(result), limits.max_tool_result_chars)
    _, arguments = c.first(attrs, "gen_ai.tool.call.arguments")
    data = dict(
        common, event_id=derived_uuid7(start_ns // 1_000_000, b"otlp-span", common["trace_id"],
                                       common["span_id"]),
        occurred_at=span_time(end_ns), started_at=span_time(start_ns), operation=operation,
        name=(tool_name or c.as_str(attrs, "gen_ai.agent.name", "gen_ai.data_source.id")
              or span.name[:256] or operation),
        latency_ms=(end_ns - start_ns) / 1e6, status="error" if error else "ok", error=error,
        tool=None if tool_name is None else tool_call(
            c.as_str(attrs, "gen_ai.tool.call.id"), tool_name, arguments),
        result_preview=preview, result_truncated=cut,
        usage=usage, attributes=with_extras(origin, attrs, STEP_EXTRAS))
    # Built directly (the readers above already checked every type), then held to the
    # contract's ranges and the size limits.
    for name in _NON_NEGATIVE:
        non_negative(name, data.get(name))
    data["usage"] = usage_of(data.get("usage"))
    if data.get("tool"):
        data["tool"] = bounded_tool(data["tool"], limits)
    if data.get("error"):
        data["error"] = ErrorInfo(**data["error"])
    # None means "not given": the field's default (msgspec does not check types when a
    # Struct is built, so a None passed for a non-optional field would reach the wire).
    event = SpanEvent(**{k: v for k, v in data.items() if v is not None})
    validate_event(event, limits, now=now)
    return event
