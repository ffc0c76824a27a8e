"""Anthropic Messages: ``client.messages.create`` (sync, async, ``stream=True``) and
``client.messages.stream`` (sync and async).

The prompt is the request's ``system`` and ``messages``: text blocks as text, the
model's earlier ``tool_use`` blocks as the assistant's tool calls (their ``input`` as
JSON text), ``tool_result`` blocks as tool messages. The answer is the text blocks, the
``tool_use`` blocks as tool calls, and the usage: ``input_tokens`` counts every input
token (Anthropic's ``input_tokens`` plus the cache reads and writes it reports apart,
as OpenTelemetry asks), ``cached_input_tokens`` the cache reads,
``cache_creation_input_tokens`` the cache writes, ``reasoning_tokens`` the thinking
tokens (``output_tokens_details.thinking_tokens``, inside ``output_tokens``). A stream is
read from its raw events: ``message_start``, ``content_block_start``,
``content_block_delta`` (``text_delta``, ``input_json_delta``, ``thinking_delta`` ...),
``message_delta`` (cumulative usage, stop reason); the first delta is the time to first
token.

Example:
    >>> from llmpulse.producers._anthropic import anthropic_messages
    >>> anthropic_messages(("Be brief.", [
    ...     {"role": "assistant", "content": [{"type": "tool_use", "id": "t1",
    ...                                        "name": "lookup", "input": {"id": 7}}]},
    ...     {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
    ...                                   "content": "shipped"}]}]))[1:]  # doctest: +NORMALIZE_WHITESPACE
    [{'role': 'assistant', 'content': '',
      'tool_calls': [{'id': 't1', 'function': {'name': 'lookup', 'arguments': '{"id":7}'}}]},
     {'role': 'tool', 'content': 'shipped', 'tool_call_id': 't1'}]
"""

from __future__ import annotations

from typing import Any

from llmpulse.producers._capture import LLMCall
from llmpulse.producers._messages import arguments_text, getter
from llmpulse.producers._streams import Endpoint, Resource, StreamEndpoint, StreamState

__all__ = ["AnthropicState", "WrappedAnthropic", "anthropic_fields", "anthropic_messages"]


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(getter(b)("text") or "" for b in content or ()
                   if getter(b)("type") in ("text", None))


def anthropic_messages(raw: tuple[Any, Any]) -> list[dict[str, Any]]:
    """``(system, messages)`` of a request as chat-style messages."""
    system, messages = raw
    out: list[dict[str, Any]] = []
    if system:
        out.append({"role": "system", "content": _text(system)})
    for message in messages or ():
        get = getter(message)
        role, content = get("role") or "user", get("content")
        if isinstance(content, str):
            out.append({"role": role, "content": content})
            continue
        texts, calls = [], []
        for block in content or ():
            bget = getter(block)
            kind = bget("type")
            if kind == "text":
                texts.append(bget("text") or "")
            elif kind in ("tool_use", "server_tool_use"):
                calls.append({"id": bget("id"), "function": {
                    "name": bget("name") or "", "arguments": arguments_text(bget("input") or {})}})
            elif kind == "tool_result":
                out.append({"role": "tool", "content": _text(bget("content") or ""),
                            "tool_call_id": bget("tool_use_id")})
        if texts or calls:
            entry: dict[str, Any] = {"role": role, "content": "".join(texts)}
            if calls:
                entry["tool_calls"] = calls
            out.append(entry)
    return out


def _usage(usage: Any, out: dict[str, Any]) -> None:
    get = getter(usage)
    read, write = get("cache_read_input_tokens"), get("cache_creation_input_tokens")
    if get("input_tokens") is not None:
        out["input_tokens"] = int(get("input_tokens")) + int(read or 0) + int(write or 0)
    if read is not None:
        out["cached_input_tokens"] = read
    if write is not None:
        out["cache_creation_input_tokens"] = write
    if get("output_tokens") is not None:
        out["output_tokens"] = get("output_tokens")
    details = get("output_tokens_details")
    if details is not None:
        out["reasoning_tokens"] = getter(details)("thinking_tokens")


def anthropic_fields(message: Any) -> dict[str, Any]:
    """``record_response`` keywords from a Message (object or dict)."""
    get = getter(message)
    texts, calls = [], []
    for block in get("content") or ():
        bget = getter(block)
        kind = bget("type")
        if kind == "text":
            texts.append(bget("text") or "")
        elif kind == "tool_use":
            calls.append((bget("id"), str(bget("name") or ""), arguments_text(bget("input") or {})))
    out: dict[str, Any] = {"text": "".join(texts), "finish_reason": get("stop_reason"),
                           "response_model": get("model"), "response_id": get("id")}
    if calls:
        out["tool_calls"] = calls
    usage = get("usage")
    if usage is not None:
        _usage(usage, out)
    return out


class AnthropicState(StreamState):
    """Anthropic stream events (the raw ones; the stream helper's own events are skipped)."""

    def __init__(self, call: LLMCall) -> None:
        super().__init__(call)
        self.parts: list[str] = []
        self.tools: dict[int, list[Any]] = {}  # block index -> [id, name, json pieces, input]
        self.usage: dict[str, Any] = {}
        self.info: dict[str, Any] = {}

    def read(self, event: Any) -> None:
        kind = getattr(event, "type", None)
        if kind == "content_block_delta":
            self.call.first_token()
            delta = event.delta
            dtype = getattr(delta, "type", None)
            if dtype == "text_delta":
                self.parts.append(delta.text)
            elif dtype == "input_json_delta" and event.index in self.tools:
                self.tools[event.index][2].append(delta.partial_json)
        elif kind == "content_block_start":
            block = event.content_block
            if getattr(block, "type", None) == "tool_use":
                self.tools[event.index] = [block.id, block.name, [], getattr(block, "input", None)]
        elif kind == "message_start":
            message = event.message
            self.info = {"response_id": message.id, "response_model": message.model}
            self.usage = dict(message.usage) if hasattr(message.usage, "__iter__") else {}
        elif kind == "message_delta":
            reason = getattr(event.delta, "stop_reason", None)
            if reason:
                self.info["finish_reason"] = reason
            for key, value in event.usage:  # cumulative: the last value wins
                if value is not None:
                    self.usage[key] = value

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {"text": "".join(self.parts), **self.info}
        if self.tools:
            out["tool_calls"] = [(t[0], str(t[1] or ""), "".join(t[2]) or arguments_text(t[3] or {}))
                                 for _, t in sorted(self.tools.items())]
        if self.usage:
            _usage(self.usage, out)
        return out


def _open_call(kwargs: dict[str, Any], options: dict[str, Any]) -> LLMCall:
    call = LLMCall(model=kwargs.get("model"), provider="anthropic",
                   temperature=kwargs.get("temperature"), max_tokens=kwargs.get("max_tokens"),
                   top_p=kwargs.get("top_p"), **options)
    call.set_messages((kwargs.get("system"), kwargs.get("messages")), normalize=anthropic_messages)
    return call


class WrappedAnthropic:
    """An ``anthropic.Anthropic``/``AsyncAnthropic`` client whose messages are recorded."""

    def __init__(self, client: Any, *, provider: str | None = None, **defaults: Any) -> None:
        is_async = type(client).__name__.startswith("Async")
        self._client = client
        messages = client.messages
        self.messages = Resource(
            messages,
            create=Endpoint(messages.create, _open_call, anthropic_fields, AnthropicState,
                            defaults, is_async),
            stream=StreamEndpoint(messages.stream, _open_call, anthropic_fields, AnthropicState,
                                  defaults, is_async))
        del provider  # always "anthropic" (gen_ai.provider.name)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)
