"""The machinery every wrapped provider method shares: open a call, run the provider, record.

An ``Endpoint`` stands in for one method of a provider's client (``chat.completions.create``,
``responses.create``, ``messages.create``), sync or async. It opens an ``LLMCall`` from
the request's keywords, runs the provider's method and records its answer, or wraps the
returned stream so each chunk passes to the app unchanged while a ``StreamState`` adds
it up; the call ends with the stream (or when the app stops reading). ``Managed`` does
the same for a provider's stream manager (``with client.messages.stream(...) as s``).

The host app always gets the provider's own result or exception: a failure of the SDK
while opening or recording a call is counted in ``stats()`` (``errors``) and the call is
recorded as far as it got, or not at all.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from llmpulse.producers._capture import LLMCall
from llmpulse.producers._client import get_client

OPTIONS = ("prompt_id", "prompt_version", "session_id", "user_id", "trace_id", "attributes",
           "context", "template_variables", "call_id")
"""What ``wrap(client, **defaults)`` and a call's ``llmpulse={...}`` may set."""

OpenCall = Callable[[dict[str, Any], dict[str, Any]], LLMCall]
"""Makes the call from the request's keywords and the llmpulse options."""
FieldsOf = Callable[[Any], dict[str, Any]]
"""Reads a provider's answer into ``LLMCall.record_response`` keywords."""


def check_options(options: dict[str, Any]) -> None:
    """A wrong option is the developer's mistake: shown at once (TypeError)."""
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise TypeError(f"unknown llmpulse option(s) {sorted(unknown)}; use {OPTIONS}")


def tag(result: Any, call: LLMCall) -> None:
    """Let the app read the call id off the response object, where it allows it."""
    with contextlib.suppress(Exception):  # else llmpulse.producers.last_call_id() has it
        object.__setattr__(result, "llmpulse_call_id", call.call_id)


class StreamState:
    """What a stream's chunks add up to. A subclass reads one provider's chunks (``read``)
    and says what they made (``fields``)."""

    def __init__(self, call: LLMCall) -> None:
        self.call = call
        self.done = False

    def read(self, chunk: Any) -> None:
        raise NotImplementedError

    def fields(self) -> dict[str, Any]:
        raise NotImplementedError

    def take(self, chunk: Any) -> None:
        try:
            self.read(chunk)
        except Exception:  # an odd chunk must not break the app's stream
            self.call.attributes["llmpulse.unreadable_chunks"] = (
                int(self.call.attributes.get("llmpulse.unreadable_chunks", 0)) + 1)

    def end(self, exc: BaseException | None = None) -> None:
        """Record what came (once) and end the call."""
        if self.done:
            return
        self.done = True
        try:
            self.call.record_response(streamed=True, **self.fields())
        except Exception:
            get_client().stats.error("wrap_output")
        if exc is not None:
            self.call.record_error(exc)
        self.call.finish()


class Stream:
    """Iterates the provider's chunks unchanged while recording them; emits at the end."""

    def __init__(self, inner: Any, state: StreamState) -> None:
        self._inner, self._state = inner, state
        self.llmpulse_call_id = state.call.call_id

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

    def __enter__(self) -> Stream:
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


class AsyncStream:
    """The async counterpart of ``Stream``."""

    def __init__(self, inner: Any, state: StreamState) -> None:
        self._inner, self._state = inner, state
        self.llmpulse_call_id = state.call.call_id

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

    async def __aenter__(self) -> AsyncStream:
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


class Endpoint:
    """One wrapped method of a provider's client: every call through it is recorded."""

    def __init__(self, method: Any, open_call: OpenCall, fields_of: FieldsOf,
                 state: type[StreamState], defaults: dict[str, Any], is_async: bool) -> None:
        self._method, self._open_call, self._fields_of = method, open_call, fields_of
        self._state, self._defaults, self._async = state, defaults, is_async

    def _open(self, kwargs: dict[str, Any]) -> LLMCall | None:
        options = {**self._defaults, **(kwargs.pop("llmpulse", None) or {})}
        check_options(options)
        try:
            return self._open_call(kwargs, options)
        except Exception:
            get_client().stats.error("wrap")
            return None

    def _done(self, call: LLMCall, result: Any, stream: bool) -> Any:
        if stream:
            return (AsyncStream if self._async else Stream)(result, self._state(call))
        try:
            call.record_response(**self._fields_of(result))
        except Exception:
            get_client().stats.error("wrap_output")
        call.finish()
        tag(result, call)
        return result

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._async:
            return self._acall(*args, **kwargs)
        call = self._open(kwargs)
        if call is None:
            return self._method(*args, **kwargs)
        try:
            result = self._method(*args, **kwargs)
        except BaseException as exc:
            call.record_error(exc)
            call.finish()
            raise
        return self._done(call, result, bool(kwargs.get("stream")))

    async def _acall(self, *args: Any, **kwargs: Any) -> Any:
        call = self._open(kwargs)
        if call is None:
            return await self._method(*args, **kwargs)
        try:
            result = await self._method(*args, **kwargs)
        except BaseException as exc:
            call.record_error(exc)
            call.finish()
            raise
        return self._done(call, result, bool(kwargs.get("stream")))


class Managed:
    """A provider's stream manager (``with client.messages.stream(...) as stream``), sync or
    async: the app gets the provider's own stream object; every event it reads from it
    (by iterating, ``text_stream`` or ``get_final_message()``) passes through the state."""

    def __init__(self, manager: Any, state: StreamState) -> None:
        self._manager, self._state = manager, state

    def _watch(self, stream: Any, is_async: bool) -> None:
        try:
            inner = stream._iterator  # what every way of reading the stream goes through
            stream._iterator = self._apass(inner) if is_async else self._pass(inner)
        except Exception:
            get_client().stats.error("wrap_stream")

    def _pass(self, inner: Iterator[Any]) -> Iterator[Any]:
        for event in inner:
            self._state.take(event)
            yield event

    async def _apass(self, inner: AsyncIterator[Any]) -> AsyncIterator[Any]:
        async for event in inner:
            self._state.take(event)
            yield event

    def __enter__(self) -> Any:
        try:
            stream = self._manager.__enter__()
        except BaseException as exc:
            self._state.end(exc)
            raise
        self._watch(stream, False)
        return stream

    def __exit__(self, *exc: Any) -> Any:
        self._state.end(exc[1])
        return self._manager.__exit__(*exc)

    async def __aenter__(self) -> Any:
        try:
            stream = await self._manager.__aenter__()
        except BaseException as exc:
            self._state.end(exc)
            raise
        self._watch(stream, True)
        return stream

    async def __aexit__(self, *exc: Any) -> Any:
        self._state.end(exc[1])
        return await self._manager.__aexit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._manager, name)


class Resource:
    """A provider resource (``client.chat.completions``, ``client.responses``) whose named
    methods are recorded; everything else passes through."""

    def __init__(self, inner: Any, **methods: Any) -> None:
        self._inner = inner
        for name, method in methods.items():
            setattr(self, name, method)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class StreamEndpoint(Endpoint):
    """A method that returns a stream manager (``messages.stream``, ``responses.stream``),
    sync or async alike: the manager is wrapped, the call ends when its block does."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        call = self._open(kwargs)
        if call is None:
            return self._method(*args, **kwargs)
        try:
            manager = self._method(*args, **kwargs)
        except BaseException as exc:
            call.record_error(exc)
            call.finish()
            raise
        return Managed(manager, self._state(call))
