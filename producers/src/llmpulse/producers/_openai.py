"""OpenAI-compatible clients: chat completions (tool calls included) and the Responses API.

Works with ``openai.OpenAI`` and ``openai.AsyncOpenAI`` (and so with any server that
speaks the protocol: vLLM, Ollama, LiteLLM proxy), streaming included: time to first
token, the text and the tool calls assembled from the chunks, and usage when the server
sends it. Tool messages and assistant tool calls in the prompt are kept. The Responses
API is in ``_responses``. Everything else on the client passes through untouched; the
``openai`` package is not a dependency of the SDK.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from llmpulse.producers._capture import LLMCall
from llmpulse.producers._messages import output_fields
from llmpulse.producers._responses import responses_endpoints
from llmpulse.producers._streams import Endpoint, Resource, StreamState

__all__ = ["WrappedOpenAI"]


def _provider(client: Any) -> str:
    host = urlparse(str(getattr(client, "base_url", "") or "")).hostname or ""
    if host.endswith("openai.com"):
        return "openai"
    if host.endswith("azure.com"):
        return "azure.openai"
    return "openai_compatible"


def _expects_json(response_format: Any) -> bool:
    return bool(response_format) and "json" in str(
        response_format.get("type", "") if isinstance(response_format, dict) else response_format)


class ChatState(StreamState):
    """Chat completion chunks: text deltas, tool-call deltas (by index), usage."""

    def __init__(self, call: LLMCall) -> None:
        super().__init__(call)
        self.parts: list[str] = []
        self.tools: dict[int, list[Any]] = {}  # index -> [id, name, argument pieces]
        self.info: dict[str, Any] = {}

    def read(self, chunk: Any) -> None:
        choices = getattr(chunk, "choices", None) or []
        if choices:
            delta = getattr(choices[0], "delta", None)
            content = getattr(delta, "content", None) if delta is not None else None
            if content:
                self.call.first_token()
                self.parts.append(content)
            for tc in getattr(delta, "tool_calls", None) or ():
                self.call.first_token()
                entry = self.tools.setdefault(getattr(tc, "index", 0) or 0, [None, "", []])
                entry[0] = getattr(tc, "id", None) or entry[0]
                fn = getattr(tc, "function", None)
                if fn is not None:
                    entry[1] = getattr(fn, "name", None) or entry[1]
                    if getattr(fn, "arguments", None):
                        entry[2].append(fn.arguments)
            reason = getattr(choices[0], "finish_reason", None)
            if reason:
                self.info["finish_reason"] = reason
        if getattr(chunk, "model", None):
            self.info["response_model"] = chunk.model
        if getattr(chunk, "id", None):
            self.info["response_id"] = chunk.id
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            read = output_fields({"choices": [{}], "usage": usage})
            for key in ("input_tokens", "output_tokens", "cached_input_tokens", "reasoning_tokens"):
                if read.get(key) is not None:
                    self.info[key] = read[key]

    def fields(self) -> dict[str, Any]:
        out = {"text": "".join(self.parts), **self.info}
        if self.tools:
            out["tool_calls"] = [(e[0], e[1], "".join(e[2])) for _, e in sorted(self.tools.items())]
        return out


def _chat_call(provider: str) -> Any:
    def open_call(kwargs: dict[str, Any], options: dict[str, Any]) -> LLMCall:
        return LLMCall(
            model=kwargs.get("model"), provider=provider, messages=kwargs.get("messages"),
            temperature=kwargs.get("temperature"),
            max_tokens=kwargs.get("max_completion_tokens") or kwargs.get("max_tokens"),
            top_p=kwargs.get("top_p"), expects_json=_expects_json(kwargs.get("response_format")),
            **options)
    return open_call


class WrappedOpenAI:
    """An OpenAI-compatible client whose chat completions and responses are recorded."""

    def __init__(self, client: Any, *, provider: str | None = None, **defaults: Any) -> None:
        is_async = type(client).__name__.startswith("Async")
        self._client = client
        provider = provider or _provider(client)
        chat = getattr(client, "chat", None)
        if chat is not None:
            create = Endpoint(chat.completions.create, _chat_call(provider), output_fields,
                              ChatState, defaults, is_async)
            self.chat = Resource(chat, completions=Resource(chat.completions, create=create))
        try:
            responses = client.responses
        except AttributeError:  # an older client, or a compatible one without it
            responses = None
        if responses is not None:
            self.responses = Resource(responses, **responses_endpoints(responses, provider,
                                                                        defaults, is_async))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

