"""Reading the OpenTelemetry GenAI semantic conventions off one span: its attributes.

Which span is a GenAI call or step (``is_genai``, the operations), and typed readers of
its attributes that take the first of several keys (current names first, older ones
after: ``gen_ai.system``, ``llm.*`` ...), as OpenLLMetry, OpenLIT and the current
conventions write them. The messages (``gen_ai.input.messages`` and their older forms)
are read by ``messages``. ``schemas/OTEL_MAPPING.md`` has the table.

A value of the wrong type or nested too deep raises ``SchemaError`` naming the attribute;
the mapper dead-letters that span and keeps the others.

Example:
    >>> attrs = {"gen_ai.system": "openai", "gen_ai.usage.input_tokens": "12"}
    >>> as_str(attrs, "gen_ai.provider.name", "gen_ai.system")
    'openai'
    >>> as_int(attrs, "gen_ai.usage.input_tokens")
    12
    >>> try:
    ...     as_float({"top_p": True}, "top_p")
    ... except SchemaError as exc:
    ...     print(exc.reason, exc.field)
    invalid_value $.attributes.top_p
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import msgspec

from llmpulse.processors.otlp._wire import MAX_DEPTH
from llmpulse.schemas import SchemaError

__all__ = [
    "DETAILS_EVENT",
    "INFERENCE_OPERATIONS",
    "STEP_OPERATIONS",
    "SpanEvent",
    "as_bool",
    "as_float",
    "as_int",
    "as_str",
    "as_text",
    "first",
    "is_genai",
    "structured",
    "wrong_type",
]

DETAILS_EVENT = "gen_ai.client.inference.operation.details"
INFERENCE_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "completion"})
"""Operations that are one model call with a prompt and a response (others: embeddings,
create_agent ... are counted and skipped)."""
STEP_OPERATIONS = frozenset({"execute_tool", "invoke_agent", "retrieval"})
"""Operations that are a step of a trace but not an LLM call: each becomes a ``SpanEvent``."""
_GENAI_KEYS = frozenset({
    "gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.system", "gen_ai.request.model",
    "llm.request.type", "gen_ai.input.messages", "gen_ai.prompt.0.content"})

SpanEvent = tuple[str, Mapping[str, Any]]
"""A span event: its name and attributes."""


def is_genai(attrs: Mapping[str, Any]) -> bool:
    """Does the span describe a GenAI operation at all (any convention generation)?"""
    return not _GENAI_KEYS.isdisjoint(attrs)


def first(attrs: Mapping[str, Any], *keys: str) -> tuple[str, Any]:
    """The first of ``keys`` present (not None), with its value; ``("", None)`` if none."""
    for key in keys:
        value = attrs.get(key)
        if value is not None:
            return key, value
    return "", None


def wrong_type(key: str, value: Any, expected: str) -> SchemaError:
    """The error of attribute ``key`` whose ``value`` is not ``expected`` (``invalid_value``
    at ``$.attributes.<key>``, naming the type found): what every reader raises."""
    return SchemaError("invalid_value", f"span attribute {key} is {type(value).__name__}, "
                       f"expected {expected}", field=f"$.attributes.{key}")


def as_str(attrs: Mapping[str, Any], *keys: str) -> str | None:
    for key in keys:  # the hot path inline: most keys are absent, most values strings
        value = attrs.get(key)
        if type(value) is str:
            return value
        if value is not None:
            break
    else:
        return None
    if type(value) is list and len(value) == 1 and type(value[0]) is str:
        return value[0]  # e.g. finish reasons, most often one (the general case below)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return str(value[0])
    raise wrong_type(key, value, "a string")


def as_int(attrs: Mapping[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = attrs.get(key)
        if type(value) is int:
            return value
        if value is not None:
            break
    else:
        return None
    if isinstance(value, bool):
        raise wrong_type(key, value, "an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise wrong_type(key, value, "an integer")


def as_float(attrs: Mapping[str, Any], *keys: str) -> float | None:
    for key in keys:  # the hot path inline, as in as_str
        value = attrs.get(key)
        if type(value) is float:
            return value
        if value is not None:
            break
    else:
        return None
    if isinstance(value, bool):
        raise wrong_type(key, value, "a number")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise wrong_type(key, value, "a number")


def as_bool(attrs: Mapping[str, Any], *keys: str) -> bool | None:
    for key in keys:
        value = attrs.get(key)
        if value is not None:
            break
    else:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    raise wrong_type(key, value, "a boolean")


def _depth(value: Any) -> int:
    """Nesting depth of lists and dicts, iteratively (no recursion to blow up)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level > MAX_DEPTH:
                return level
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict)
                                                             else item))
    return deepest


def structured(key: str, value: Any) -> Any:
    """A message attribute as Python data: a JSON string is parsed; structured OTLP values
    (arrays, maps) are taken as they are."""
    original = value
    if isinstance(value, str):
        try:
            value = msgspec.json.decode(value)
        except RecursionError:
            raise SchemaError("too_deep", f"{key} is JSON nested deeper than the parser allows",
                              field=f"$.attributes.{key}") from None
        except msgspec.DecodeError as exc:
            raise SchemaError("malformed_json", f"{key} is not valid JSON: {exc}",
                              field=f"$.attributes.{key}") from None
    if not isinstance(value, list | dict):
        raise wrong_type(key, value, "a JSON array or object")
    if not isinstance(original, str) or original.count("[") + original.count("{") > MAX_DEPTH:
        depth = _depth(value)  # (a string with few brackets cannot nest deeper than their count)
    else:
        depth = 0
    if depth > MAX_DEPTH:
        raise SchemaError("too_deep", f"{key} is nested deeper than {MAX_DEPTH} levels",
                          field=f"$.attributes.{key}")
    return value


def as_text(value: Any) -> str:
    """A string as it is; anything else (a structured value) as JSON text."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
