"""``wrap(client)``: record every chat completion of an OpenAI-compatible client.

Works with ``openai.OpenAI`` and ``openai.AsyncOpenAI`` (and so with any server that
speaks the protocol: vLLM, Ollama, LiteLLM proxy), streaming included: time to first
token, the text assembled from the chunks, and usage when the server sends it.
Everything else on the client passes through untouched. The ``openai`` package is not
a dependency of the SDK; the wrapper only uses what the client object offers.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlparse

from llmpulse.producers._capture import LLMCall, output_fields

_OPTIONS = ("prompt_id", "prompt_version", "session_id", "user_id", "trace_id", "attributes",
            "context", "template_variables", "call_id")


def _provider(client: Any) -> str:
    host = urlparse(str(getattr(client, "base_url", "") or "")).hostname or ""
    if host.endswith("openai.com"):
        return "openai"
    if host.endswith("azure.com"):
        return "azure.openai"
    return "openai_compatible"


class _Completions:
    def __init__(self, inner: Any, provider: str, defaults: dict[str, Any], is_async: bool):
        self._inner, self._provider, self._defaults, self._async = inner, provider, defaults, is_async

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _start(self, kwargs: dict[str, Any]) -> LLMCall:
        options = {**self._defaults, **(kwargs.pop("llmpulse", None) or {})}
        unknown = set(options) - set(_OPTIONS)
        if unknown:
            raise TypeError(f"unknown llmpulse option(s) {sorted(unknown)}; use {_OPTIONS}")
        response_format = kwargs.get("response_format")
        expects_json = bool(response_format) and "json" in str(
            response_format.get("type", "") if isinstance(response_format, dict) else response_format)
        return LLMCall(
            model=kwargs.get("model"), provider=self._provider, messages=kwargs.get("messages"),
            temperature=kwargs.get("temperature"),
            max_tokens=kwargs.get("max_completion_tokens") or kwargs.get("max_tokens"),
            top_p=kwargs.get("top_p"), expects_json=expects_json, **options)

    def create(self, *args: Any, **kwargs: Any) -> Any:
        if self._async:
            return self._acreate(*args, **kwargs)
        call = self._start(kwargs)
        call.__enter__()
        try:
            result = self._inner.create(*args, **kwargs)
        except BaseException as exc:
            call.__exit__(type(exc), exc, exc.__traceback__)
            raise
        if kwargs.get("stream"):
            return _Stream(result, call)
        call.record_response(**output_fields(result))
        call.__exit__(None, None, None)
        _tag(result, call)
        return result

    async def _acreate(self, *args: Any, **kwargs: Any) -> Any:
        call = self._start(kwargs)
        call.__enter__()
        try:
            result = await self._inner.create(*args, **kwargs)
        except BaseException as exc:
            call.__exit__(type(exc), exc, exc.__traceback__)
            raise
        if kwargs.get("stream"):
            return _AsyncStream(result, call)
        call.record_response(**output_fields(result))
        call.__exit__(None, None, None)
        _tag(result, call)
        return result


def _tag(result: Any, call: LLMCall) -> None:
    """Let the app read the call id off the response object, where it allows it."""
    with contextlib.suppress(Exception):  # else llmpulse.producers.last_call_id() has it
        object.__setattr__(result, "llmpulse_call_id", call.call_id)


class _StreamState:
    def __init__(self, call: LLMCall) -> None:
        self.call = call
        self.parts: list[str] = []
        self.fields: dict[str, Any] = {"streamed": True}
        self.done = False

    def take(self, chunk: Any) -> None:
        try:
            choices = getattr(chunk, "choices", None) or []
            if choices:
                delta = getattr(choices[0], "delta", None)
                content = getattr(delta, "content", None) if delta is not None else None
                if content:
                    self.call.first_token()
                    self.parts.append(content)
                reason = getattr(choices[0], "finish_reason", None)
                if reason:
                    self.fields["finish_reason"] = reason
            if getattr(chunk, "model", None):
                self.fields["response_model"] = chunk.model
            if getattr(chunk, "id", None):
                self.fields["response_id"] = chunk.id
            usage = getattr(chunk, "usage", None)
            if usage is not None:
                usage_fields = output_fields({"choices": [{}], "usage": usage})
                for key in ("input_tokens", "output_tokens", "cached_input_tokens"):
                    if usage_fields.get(key) is not None:
                        self.fields[key] = usage_fields[key]
        except Exception:  # an odd chunk must not break the app's stream
            self.call.attributes["llmpulse.unreadable_chunks"] = (
                int(self.call.attributes.get("llmpulse.unreadable_chunks", 0)) + 1)

    def end(self, exc: BaseException | None = None) -> None:
        if self.done:
            return
        self.done = True
        self.call.record_response(text="".join(self.parts), **self.fields)
        if exc is not None:
            self.call.record_error(exc)
        self.call.__exit__(None, None, None)


class _Stream:
    """Iterates the server's chunks unchanged while recording them; emits at the end."""

    def __init__(self, inner: Any, call: LLMCall) -> None:
        self._inner, self._state = inner, _StreamState(call)
        self.llmpulse_call_id = call.call_id

    def __iter__(self) -> Iterator[Any]:
        try:
            for chunk in self._inner:
                self._state.take(chunk)
                yield chunk
        except GeneratorExit:  # the app stopped reading early: record what it got
            self._state.end()
            raise
        except BaseException as exc:
            self._state.end(exc)
            raise
        self._state.end()

    def __enter__(self) -> _Stream:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._state.end()
        close = getattr(self._inner, "close", None)
        if close is not None:
            close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _AsyncStream:
    """The async counterpart of ``_Stream``."""

    def __init__(self, inner: Any, call: LLMCall) -> None:
        self._inner, self._state = inner, _StreamState(call)
        self.llmpulse_call_id = call.call_id

    async def __aiter__(self) -> AsyncIterator[Any]:
        try:
            async for chunk in self._inner:
                self._state.take(chunk)
                yield chunk
        except GeneratorExit:
            self._state.end()
            raise
        except BaseException as exc:
            self._state.end(exc)
            raise
        self._state.end()

    async def __aenter__(self) -> _AsyncStream:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        self._state.end()
        close = getattr(self._inner, "close", None)
        if close is not None:
            await close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _Chat:
    def __init__(self, inner: Any, completions: _Completions) -> None:
        self._inner, self.completions = inner, completions

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class WrappedClient:
    """An OpenAI-compatible client whose chat completions are recorded."""

    def __init__(self, client: Any, *, provider: str | None = None, **defaults: Any) -> None:
        unknown = set(defaults) - set(_OPTIONS)
        if unknown:
            raise TypeError(f"unknown llmpulse option(s) {sorted(unknown)}; use {_OPTIONS}")
        is_async = type(client).__name__.startswith("Async")
        self._client = client
        completions = _Completions(client.chat.completions, provider or _provider(client),
                                   defaults, is_async)
        self.chat = _Chat(client.chat, completions)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def wrap(client: Any, *, provider: str | None = None, **defaults: Any) -> Any:
    """Record every ``client.chat.completions.create`` call (sync, async, streaming).

    ``defaults`` (prompt_id, prompt_version, session_id, user_id, attributes ...) apply to
    every call; a call can add or override them with ``llmpulse={...}``.
    """
    return WrappedClient(client, provider=provider, **defaults)
