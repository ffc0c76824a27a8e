"""Reading a span's messages: the prompt's (system instructions first) and the answer's.

Current conventions (the ``semantic-conventions-genai`` repository, span
``gen_ai.client.inference``): ``gen_ai.input.messages``, ``gen_ai.output.messages`` and
``gen_ai.system_instructions`` as JSON strings or structured values (role + parts), the
same attributes on a ``gen_ai.client.inference.operation.details`` span event. Older forms
still emitted in the wild are read too: indexed ``gen_ai.prompt.N.*`` /
``gen_ai.completion.N.*``, ``gen_ai.prompt`` / ``gen_ai.completion`` on
``gen_ai.content.*`` events, and the per-message ``gen_ai.{system,user,assistant,tool}.message``
and ``gen_ai.choice`` events. Tool calls (``tool_call`` parts, OpenLLMetry's indexed
``...tool_calls.N.*``) are read as structured calls (id, name, raw arguments), not as text;
a ``tool_call_response`` part is a tool message's text and its id the message's
``tool_call_id``. Message JSON of the common shape (text parts only) is decoded straight
into typed structs; anything else is walked as plain data. ``schemas/OTEL_MAPPING.md`` has
the table.

A value of the wrong type or nested too deep raises ``SchemaError`` naming the attribute;
the mapper dead-letters that span and keeps the others.

Example:
    >>> attrs = {"gen_ai.input.messages":
    ...          '[{"role": "user", "parts": [{"type": "text", "content": "Hi"}]}]'}
    >>> input_messages(attrs, [])
    [{'role': 'user', 'content': 'Hi'}]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

import msgspec

from llmpulse.processors.otlp.conventions import SpanEvent, first, structured, wrong_type
from llmpulse.processors.otlp.conventions import as_text as _text
from llmpulse.schemas import SchemaError

__all__ = ["Output", "input_messages", "output", "tool_call"]

_ROLES = {"system": "system", "user": "user", "assistant": "assistant", "tool": "tool",
          "developer": "developer", "model": "assistant", "human": "user", "ai": "assistant",
          "function": "tool"}
_MESSAGE_EVENTS = {"gen_ai.system.message": "system", "gen_ai.user.message": "user",
                   "gen_ai.assistant.message": "assistant", "gen_ai.tool.message": "tool"}

def _read_parts(parts: Any) -> tuple[str, list[dict[str, Any]], Any]:
    """A message's parts in one pass: their text, their tool calls and the id of the first
    tool result (None if none).

    The text: text parts as they are, tool results as compact JSON; tool calls, reasoning,
    media and unknown parts are left out. The tool calls: the ``tool_call`` parts (current
    conventions), or the items of OpenAI's ``tool_calls`` list (``{"id", "function":
    {"name", "arguments"}}``), or already-read calls (``{"id", "name", "arguments"}``,
    indexed attributes)."""
    if not isinstance(parts, list):
        return (parts if isinstance(parts, str) else ""), [], None
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    answered = None
    for part in parts:
        if isinstance(part, str):
            texts.append(part)
            continue
        if not isinstance(part, dict):
            continue
        kind = part.get("type", "text")
        if kind == "text":
            content = part.get("content")
            if content is not None:
                texts.append(content if isinstance(content, str) else _text(content))
                if len(part) == 2 and "type" in part:  # {"type", "content"}: nothing more to read
                    continue
        elif kind == "tool_call_response":
            texts.append(_text(part.get("response", part.get("result"))))
            if answered is None and part.get("id"):
                answered = part["id"]
        if kind == "tool_call":
            call = tool_call(part.get("id"), part.get("name"), part.get("arguments"))
        elif isinstance(part.get("function"), dict):
            function = part["function"]
            call = tool_call(part.get("id"), function.get("name"), function.get("arguments"))
        elif "name" in part and "arguments" in part:
            call = tool_call(part.get("id"), part["name"], part["arguments"])
        else:
            continue
        if call is not None:
            calls.append(call)
    return "\n".join(texts), calls, answered


def _parts_text(parts: Any) -> str:
    """The text of a message's parts (see ``_read_parts``)."""
    return _read_parts(parts)[0]


def _tool_calls(parts: Any) -> list[dict[str, Any]]:
    """The tool calls of a message's parts or of a ``tool_calls`` list (see ``_read_parts``)."""
    return _read_parts(parts)[1]


def tool_call(call_id: Any, name: Any, arguments: Any) -> dict[str, Any] | None:
    """A tool call as ``ToolCall`` fields; the arguments as raw text (structured ones as
    compact JSON). None without a name: a call to no tool is not made up."""
    if not isinstance(name, str) or not name:
        return None
    return {"id": str(call_id) if call_id is not None else None, "name": name,
            "arguments": "" if arguments is None else _text(arguments)}


def _message(item: Any, key: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise SchemaError("invalid_value", f"{key} holds a {type(item).__name__}, not a message",
                          field=f"$.attributes.{key}")
    role = _ROLES.get(str(item.get("role", "user")).lower(), "user")
    text, calls, answered = _read_parts(item["parts"] if "parts" in item else item.get("content"))
    message: dict[str, Any] = {"role": role, "content": text}
    if isinstance(item.get("name"), str):
        message["name"] = item["name"]
    listed = item.get("tool_calls")
    if listed is not None:
        calls = calls + _tool_calls(listed)
    if calls:
        message["tool_calls"] = calls
    if item.get("tool_call_id") is not None:
        answered = item["tool_call_id"]
    if answered is not None:
        message["tool_call_id"] = str(answered)
    return message


class _TextPart(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    type: Literal["text"]
    content: str


class _TextMessage(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, gc=False):
    """The common shape: a message of text parts only, no name, no tool calls."""

    role: str = "user"
    parts: list[_TextPart]
    finish_reason: str | None = None


_TEXT_MESSAGES = msgspec.json.Decoder(list[_TextMessage])


def _text_messages(value: Any) -> list[_TextMessage] | None:
    """Message JSON of the common shape, decoded straight into that shape (what the general
    walk would read from it, at less cost); None for anything else, which the walk reads."""
    if type(value) is not str:
        return None
    try:
        return _TEXT_MESSAGES.decode(value)
    except msgspec.DecodeError:  # (its ValidationError too): not of that shape
        return None


def _text_content(message: _TextMessage) -> str:
    parts = message.parts
    return parts[0].content if len(parts) == 1 else "\n".join([p.content for p in parts])


def _text_message(message: _TextMessage) -> dict[str, Any]:
    role, parts = message.role, message.parts  # (a role most often one of ours: no lower())
    return {"role": _ROLES.get(role) or _ROLES.get(role.lower(), "user"),  # (_text_content inline)
            "content": parts[0].content if len(parts) == 1 else "\n".join([p.content for p in parts])}


def _messages(key: str, value: Any) -> list[dict[str, Any]]:
    plain = _text_messages(value)
    if plain is not None:
        return [_text_message(message) for message in plain]
    data = structured(key, value)
    items = data if isinstance(data, list) else [data]
    return [_message(item, key) for item in items]


def _indexed(attrs: Mapping[str, Any], prefix: str) -> list[dict[str, Any]]:
    """``prefix.0.role``, ``prefix.0.content``, ``prefix.0.tool_calls.0.name`` ... as a list
    of dicts (old OpenLLMetry)."""
    out = []
    for n in range(10_000):
        at = f"{prefix}.{n}"
        role, content = attrs.get(f"{at}.role"), attrs.get(f"{at}.content")
        calls = []
        for m in range(10_000):
            name = attrs.get(f"{at}.tool_calls.{m}.name")
            if name is None:
                break
            call = tool_call(attrs.get(f"{at}.tool_calls.{m}.id"), name,
                             attrs.get(f"{at}.tool_calls.{m}.arguments"))
            if call is not None:
                calls.append(call)
        if role is None and content is None and not calls:
            break
        item = {"role": role or "user", "content": "" if content is None else content,
                "finish_reason": attrs.get(f"{at}.finish_reason"), "tool_calls": calls,
                "tool_call_id": attrs.get(f"{at}.tool_call_id")}
        for field in ("role", "content"):
            if item[field] is not None and not isinstance(item[field], str):
                raise wrong_type(f"{at}.{field}", item[field], "a string")
        out.append(item)
    return out


def input_messages(attrs: Mapping[str, Any], events: Iterable[SpanEvent]) -> list[dict[str, Any]]:
    """The prompt's messages, system instructions first."""
    messages: list[dict[str, Any]] = []
    if attrs.get("gen_ai.system_instructions") is not None:
        text = _parts_text(structured("gen_ai.system_instructions",
                                      attrs["gen_ai.system_instructions"]))
        messages.append({"role": "system", "content": text})
    if attrs.get("gen_ai.input.messages") is not None:
        given = _messages("gen_ai.input.messages", attrs["gen_ai.input.messages"])
        if messages and given and given[0]["role"] == "system" \
                and given[0]["content"] == messages[0]["content"]:
            return given  # OpenLIT writes its system message in both attributes: once
        return messages + given
    indexed = _indexed(attrs, "gen_ai.prompt")
    if indexed:
        return messages + [_message(i, "gen_ai.prompt") for i in indexed]
    events = list(events)
    for name, event_attrs in events:
        if name == "gen_ai.content.prompt" and event_attrs.get("gen_ai.prompt") is not None:
            return messages + _messages("gen_ai.prompt", event_attrs["gen_ai.prompt"])
    for name, event_attrs in events:
        role = _MESSAGE_EVENTS.get(name)
        if role is None:
            continue
        key, content = first(event_attrs, "content", "gen_ai.event.content", "message")
        if isinstance(content, str) and key == "gen_ai.event.content":
            content = structured(key, content)
        body = content if isinstance(content, dict) else event_attrs
        if isinstance(content, dict):
            content = content.get("content", content.get("parts", ""))
        message: dict[str, Any] = {"role": role, "content": _parts_text(content)}
        calls = _tool_calls(body.get("tool_calls"))
        if calls:
            message["tool_calls"] = calls
        if role == "tool" and body.get("id") is not None:
            message["tool_call_id"] = str(body["id"])
        messages.append(message)
    return messages


Output = tuple[str | None, str | None, list[dict[str, Any]]]
"""The answer's text, its finish reason and its tool calls."""


def output(attrs: Mapping[str, Any], events: Iterable[SpanEvent]) -> Output:
    """The answer's text (the first choice), its finish reason and its tool calls, or
    (None, None, [])."""
    if attrs.get("gen_ai.output.messages") is not None:
        plain = _text_messages(attrs["gen_ai.output.messages"])
        if plain is not None:
            return (_text_content(plain[0]), plain[0].finish_reason, []) if plain else ("", None, [])
        data = structured("gen_ai.output.messages", attrs["gen_ai.output.messages"])
        items = data if isinstance(data, list) else [data]
        if not items:
            return "", None, []
        message = _message(items[0], "gen_ai.output.messages")
        reason = items[0].get("finish_reason")
        return (message["content"], reason if isinstance(reason, str) else None,
                message.get("tool_calls", []))
    indexed = _indexed(attrs, "gen_ai.completion")
    if indexed:
        reason = indexed[0]["finish_reason"]
        return (indexed[0]["content"], reason if isinstance(reason, str) else None,
                indexed[0]["tool_calls"])
    events = list(events)
    for name, event_attrs in events:
        if name == "gen_ai.content.completion" and event_attrs.get("gen_ai.completion") is not None:
            messages = _messages("gen_ai.completion", event_attrs["gen_ai.completion"])
            first_message = messages[0] if messages else {}
            return first_message.get("content", ""), None, first_message.get("tool_calls", [])
    for name, event_attrs in events:
        if name != "gen_ai.choice":
            continue
        body: Any = dict(event_attrs)
        if event_attrs.get("gen_ai.event.content") is not None:
            body = structured("gen_ai.event.content", event_attrs["gen_ai.event.content"])
        choice: Any = body.get("message", body.get("content", "")) if isinstance(body, dict) else body
        if isinstance(choice, str) and choice.startswith("{"):
            choice = structured("message", choice)
        calls: list[dict[str, Any]] = []
        if isinstance(choice, dict):
            calls = _tool_calls(choice.get("tool_calls")) + _tool_calls(choice.get("parts"))
            choice = choice.get("content", choice.get("parts", ""))
        reason = body.get("finish_reason") if isinstance(body, dict) else None
        return _parts_text(choice), reason if isinstance(reason, str) else None, calls
    return None, None, []
