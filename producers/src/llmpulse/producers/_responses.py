"""The OpenAI Responses API: ``client.responses.create`` (sync, async, streaming) and
``client.responses.stream``.

The prompt is the request's ``instructions`` (a system message) and ``input`` (a text,
or items: messages, the model's earlier function calls, their ``function_call_output``
results, which become tool messages). The answer is the ``output_text`` of the
response's message items and its ``function_call`` items as tool calls; usage with
cached input tokens and reasoning tokens. A stream's text is assembled from its
``response.output_text.delta`` events (first one: time to first token) and the rest is
read from the final ``response.completed`` (or ``incomplete``/``failed``) event.

Example:
    >>> from llmpulse.producers._responses import responses_fields, responses_messages
    >>> responses_messages(("Be brief.", [{"type": "function_call_output",
    ...                                     "call_id": "c1", "output": "shipped"}]))
    [{'role': 'system', 'content': 'Be brief.'}, {'role': 'tool', 'content': 'shipped', 'tool_call_id': 'c1'}]
    >>> responses_fields({"id": "r1", "status": "completed", "output": [
    ...     {"type": "function_call", "call_id": "c2", "name": "lookup", "arguments": "{}"}]}
    ...     )["tool_calls"]
    [('c2', 'lookup', '{}')]
"""

from __future__ import annotations

from typing import Any

from llmpulse.producers._capture import LLMCall
from llmpulse.producers._messages import arguments_text, getter
from llmpulse.producers._streams import Endpoint, StreamEndpoint, StreamState

__all__ = ["ResponsesState", "responses_endpoints", "responses_fields", "responses_messages"]

_DONE = ("response.completed", "response.incomplete", "response.failed")


def _parts_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    out = []
    for part in content or ():
        get = getter(part)
        text = get("text")
        if text is None:
            text = get("refusal")
        if isinstance(text, str):
            out.append(text)
    return "".join(out)


def responses_messages(raw: tuple[Any, Any]) -> list[dict[str, Any]]:
    """``(instructions, input)`` of a request as chat-style messages."""
    instructions, items = raw
    out: list[dict[str, Any]] = []
    if instructions:
        out.append({"role": "system", "content": _parts_text(instructions)})
    if isinstance(items, str):
        out.append({"role": "user", "content": items})
        return out
    for item in items or ():
        get = getter(item)
        kind = get("type")
        if kind == "function_call" or kind == "custom_tool_call":
            out.append({"role": "assistant", "content": "", "tool_calls": [
                {"id": get("call_id") or get("id"), "function": {
                    "name": get("name") or "", "arguments": get("arguments") or get("input") or ""}}]})
        elif kind in ("function_call_output", "custom_tool_call_output"):
            out.append({"role": "tool", "content": _parts_text(get("output")),
                        "tool_call_id": get("call_id")})
        elif get("role") is not None:
            out.append({"role": get("role"), "content": _parts_text(get("content"))})
    return out


def responses_fields(response: Any) -> dict[str, Any]:
    """``record_response`` keywords from a Response (object or dict)."""
    get = getter(response)
    texts: list[str] = []
    calls: list[tuple[str | None, str, str]] = []
    for item in get("output") or ():
        iget = getter(item)
        kind = iget("type")
        if kind == "message":
            texts.append(_parts_text(iget("content")))
        elif kind in ("function_call", "custom_tool_call"):
            calls.append((iget("call_id") or iget("id"), str(iget("name") or ""),
                          arguments_text(iget("arguments") or iget("input") or "")))
    status = get("status")
    if status == "incomplete":
        reason = getter(get("incomplete_details") or {})("reason") or "incomplete"
    else:
        reason = "tool_calls" if calls else status and ("stop" if status == "completed" else status)
    out: dict[str, Any] = {"text": "".join(texts), "response_model": get("model"),
                           "response_id": get("id"), "finish_reason": reason}
    if calls:
        out["tool_calls"] = calls
    usage = get("usage")
    if usage is not None:
        uget = getter(usage)
        out["input_tokens"] = uget("input_tokens")
        out["output_tokens"] = uget("output_tokens")
        details = uget("input_tokens_details")
        if details is not None:
            out["cached_input_tokens"] = getter(details)("cached_tokens")
        details = uget("output_tokens_details")
        if details is not None:
            out["reasoning_tokens"] = getter(details)("reasoning_tokens")
    return out


class ResponsesState(StreamState):
    """Responses stream events: text deltas, finished items, the final response."""

    def __init__(self, call: LLMCall) -> None:
        super().__init__(call)
        self.parts: list[str] = []
        self.items: list[Any] = []
        self.final: Any = None
        self.info: dict[str, Any] = {}

    def read(self, event: Any) -> None:
        kind = getattr(event, "type", None)
        if kind == "response.output_text.delta":
            self.call.first_token()
            self.parts.append(event.delta)
        elif kind == "response.function_call_arguments.delta":
            self.call.first_token()
        elif kind == "response.output_item.done":
            self.items.append(event.item)
        elif kind in _DONE:
            self.final = event.response
            error = getattr(event.response, "error", None)
            if kind == "response.failed" and error is not None:
                self.call.record_error(str(getattr(error, "code", None) or "ResponseFailed"),
                                       str(getattr(error, "message", "") or ""))
        elif kind == "response.created":
            self.info = {"response_id": event.response.id, "response_model": event.response.model}
        elif kind == "error":
            self.call.record_error(str(getattr(event, "code", None) or "StreamError"),
                                   str(getattr(event, "message", "") or ""))

    def fields(self) -> dict[str, Any]:
        if self.final is not None:
            out = responses_fields(self.final)
            out["text"] = out["text"] or "".join(self.parts)
            return out
        out = {**self.info, **responses_fields({"output": self.items})}
        out["text"] = "".join(self.parts)
        out.pop("finish_reason", None)
        return out


def _open_call(provider: str) -> Any:
    def open_call(kwargs: dict[str, Any], options: dict[str, Any]) -> LLMCall:
        text = kwargs.get("text")
        fmt = getter(text)("format") if text is not None else None
        call = LLMCall(model=kwargs.get("model"), provider=provider,
                       temperature=kwargs.get("temperature"),
                       max_tokens=kwargs.get("max_output_tokens"), top_p=kwargs.get("top_p"),
                       expects_json=fmt is not None and "json" in str(getter(fmt)("type") or ""),
                       **options)
        call.set_messages((kwargs.get("instructions"), kwargs.get("input")),
                          normalize=responses_messages)
        return call
    return open_call


def responses_endpoints(resource: Any, provider: str, defaults: dict[str, Any],
                        is_async: bool) -> dict[str, Any]:
    """The recorded ``create`` and ``stream`` of ``client.responses``."""
    open_call = _open_call(provider)
    out: dict[str, Any] = {"create": Endpoint(resource.create, open_call, responses_fields,
                                              ResponsesState, defaults, is_async)}
    if hasattr(resource, "stream"):
        out["stream"] = StreamEndpoint(resource.stream, open_call, responses_fields,
                                       ResponsesState, defaults, is_async)
    return out
