"""From what apps and providers hand the SDK to the contract's messages, documents, tool calls.

Everything here runs where a call's events are built (the SDK's background thread, or the
caller's in the embedded mode), except ``output_fields`` and ``tool_call_parts``, which read
a provider's answer on the app's thread when the call ends.

Example:
    >>> from llmpulse.producers._messages import chat_messages
    >>> msgs = chat_messages([
    ...     {"role": "assistant", "content": None, "tool_calls": [
    ...         {"id": "c1", "type": "function",
    ...          "function": {"name": "lookup_order", "arguments": '{"id": 7}'}}]},
    ...     {"role": "tool", "tool_call_id": "c1", "content": "shipped"}])
    >>> msgs[0].tool_calls[0].name, msgs[1].tool_call_id
    ('lookup_order', 'c1')
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import msgspec

from llmpulse.schemas import ChatMessage, Limits, RetrievedDocument, ToolCall, bounded_text

__all__ = ["RESULT_PREVIEW_CHARS", "ToolCallParts", "arguments_text", "chat_messages",
           "documents", "getter", "output_fields", "preview", "tool_call_parts", "tool_calls"]

_ROLES = {"system", "user", "assistant", "tool", "developer"}
ToolCallParts = tuple[str | None, str, str]
"""A tool call as read off a provider's answer: (id, name, raw arguments text)."""
_LIMITS = Limits()
TOOL_ARGUMENTS_CHARS = _LIMITS.max_tool_arguments_chars
"""Tool arguments longer than this are cut (``arguments_truncated``): the contract's cap."""
RESULT_PREVIEW_CHARS = _LIMITS.max_tool_result_chars
"""A tool's result is kept as a preview of at most this many characters (``result_truncated``)."""
MAX_TOOL_CALLS = _LIMITS.max_tool_calls
"""Tool calls kept per message or answer; more are left out (the contract's cap)."""


def _same(value: str | None) -> str | None:
    return value


def getter(obj: Any) -> Callable[..., Any]:
    """``get(key, default)`` for a dict or an object with attributes (the providers' models)."""
    if isinstance(obj, Mapping):
        return obj.get
    return lambda k, d=None: getattr(obj, k, d)


_json = msgspec.json.Encoder(enc_hook=str)
"""Compact JSON, about ten times faster than ``json.dumps``; what JSON has no type for
(a custom object) is written as its ``str``."""


def to_json(value: Any) -> str:
    """``value`` as compact JSON text (``repr`` when even that fails, e.g. odd dict keys)."""
    try:
        return _json.encode(value).decode()
    except (TypeError, ValueError, msgspec.EncodeError):
        return repr(value)


def preview(value: Any, limit: int = RESULT_PREVIEW_CHARS) -> tuple[str, bool]:
    """A bounded text of any value (a tool's result): str as is, JSON for dicts and lists,
    ``repr`` otherwise. A megabyte string costs a slice, not a copy of the megabyte."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, bytes | bytearray):
        text = bytes(value[: limit * 4]).decode("utf-8", "replace")
        return text[:limit], len(value) > limit or len(text) > limit
    elif isinstance(value, Mapping | list | tuple):
        text = to_json(value)
    else:
        text = repr(value) if value is not None else ""
    return bounded_text(text, limit)


def tool_calls(parts: Iterable[ToolCallParts],
               text: Callable[[str | None], str | None] = _same) -> list[ToolCall]:
    """The contract's tool calls; arguments kept as the model wrote them (redacted, bounded)."""
    out: list[ToolCall] = []
    for call_id, name, arguments in parts:
        if len(out) == MAX_TOOL_CALLS:
            break
        args, cut = bounded_text(text(arguments) or "", TOOL_ARGUMENTS_CHARS)
        out.append(ToolCall(id=call_id or None, name=name or "unknown", arguments=args,
                            arguments_truncated=cut))
    return out


def arguments_text(value: Any) -> str:
    """Raw arguments as text: a str unchanged (even when not JSON), anything else as JSON."""
    return value if isinstance(value, str) else to_json(value)


def tool_call_parts(raw: Any) -> list[ToolCallParts]:
    """OpenAI-style ``tool_calls`` (dicts or objects with ``function.name/arguments``)."""
    out = []
    for tc in raw or ():
        get = getter(tc)
        fn = get("function")
        if fn is None:
            continue
        fget = getter(fn)
        out.append((get("id"), str(fget("name") or ""), arguments_text(fget("arguments") or "")))
    return out


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") if isinstance(p, Mapping) else str(getattr(p, "text", p))
                   for p in content)


def chat_messages(raw: Any, text: Callable[[str | None], str | None] = _same) -> list[ChatMessage]:
    """Chat messages (OpenAI-style dicts or objects, or ``ChatMessage``), tool calls kept."""
    out = []
    for m in raw or ():
        if type(m) is dict and type(m.get("content")) is str and len(m) == 2:  # the usual case
            role = m.get("role", "user")
            out.append(ChatMessage(role=role if role in _ROLES else "user",
                                   content=text(m["content"]) or ""))
            continue
        if isinstance(m, ChatMessage):
            out.append(ChatMessage(role=m.role, content=text(m.content) or "", name=m.name,
                                   tool_calls=tool_calls(((c.id, c.name, c.arguments)
                                                          for c in m.tool_calls), text),
                                   tool_call_id=m.tool_call_id))
            continue
        get = getter(m)
        role = str(get("role", "user"))
        name = get("name")
        call_id = get("tool_call_id")
        out.append(ChatMessage(role=role if role in _ROLES else "user",  # type: ignore[arg-type]
                               content=text(_content_text(get("content", ""))) or "",
                               name=name if isinstance(name, str) else None,
                               tool_calls=tool_calls(tool_call_parts(get("tool_calls")), text),
                               tool_call_id=str(call_id) if call_id is not None else None))
    return out


def documents(raw: Iterable[Any],
              text: Callable[[str | None], str | None] = _same) -> list[RetrievedDocument]:
    """Retrieved documents: str, dict with id/content/score, or ``RetrievedDocument``."""
    out = []
    for i, d in enumerate(raw or ()):
        if isinstance(d, RetrievedDocument):
            out.append(RetrievedDocument(id=d.id, content=text(d.content) or "", score=d.score,
                                         source=d.source))
        elif isinstance(d, str):
            out.append(RetrievedDocument(id=f"doc-{i}", content=text(d) or ""))
        else:
            get = getter(d)
            score = get("score")
            out.append(RetrievedDocument(id=str(get("id") or f"doc-{i}"),
                                         content=text(str(get("content") or get("text") or ""))
                                         or "",
                                         score=float(score) if score is not None else None,
                                         source=get("source")))
    return out


def output_fields(result: Any) -> dict[str, Any]:
    """Fields of ``record_response`` from a function's result: a str, or an OpenAI-style
    chat completion (object or dict), tool calls included."""
    if isinstance(result, str):
        return {"text": result}
    get = getter(result)
    choices = get("choices")
    if not choices:
        return {"text": ""}
    fget = getter(choices[0])
    message = fget("message")
    out: dict[str, Any] = {"finish_reason": fget("finish_reason"),
                           "response_model": get("model"), "response_id": get("id")}
    if message is not None:
        mget = getter(message)
        out["text"] = mget("content") or ""
        calls = mget("tool_calls")
        if calls:
            out["tool_calls"] = tool_call_parts(calls)
    else:
        out["text"] = fget("text") or ""
    usage = get("usage")
    if usage is not None:
        uget = getter(usage)
        out["input_tokens"] = uget("prompt_tokens")
        out["output_tokens"] = uget("completion_tokens")
        details = uget("prompt_tokens_details")
        if details is not None:
            out["cached_input_tokens"] = getter(details)("cached_tokens")
        details = uget("completion_tokens_details")
        if details is not None:
            out["reasoning_tokens"] = getter(details)("reasoning_tokens")
    return out
