"""Capturing calls: the ``call()`` context manager and the ``@track`` decorator.

Both build a ``PromptEvent`` and a ``ResponseEvent`` with the same ``call_id`` and hand
them to the client when the call ends (so sampling can always keep errors). Nothing
here waits on the network, and nothing raises into the app: a failure inside the SDK
is counted in ``stats()``.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

from llmpulse.producers._client import get_client
from llmpulse.producers._generators import tracked_generator
from llmpulse.producers._messages import (
    ToolCallParts,
    chat_messages,
    documents,
    output_fields,
    tool_calls,
)
from llmpulse.producers._spans import Node, active, agent_of, new_span_id, new_trace_id, place, tool
from llmpulse.schemas import (
    ErrorInfo,
    FeedbackEvent,
    PromptEvent,
    ResponseEvent,
    SchemaError,
    TokenUsage,
    decode_event,
    encode_event,
    uuid7_after,
    uuid7_str_int,
)

F = TypeVar("F", bound=Callable[..., Any])
logger = logging.getLogger("llmpulse.producers")

_last_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "llmpulse_last_call_id", default=None)
_USAGE = ("input_tokens", "output_tokens", "cached_input_tokens", "reasoning_tokens",
          "cache_creation_input_tokens")


def current_call() -> LLMCall | None:
    """The call being recorded in this context (inside ``@track`` or ``with call()``): the
    innermost one, also from inside a tool span it made."""
    node = active.get()
    while node is not None and not isinstance(node, LLMCall):
        node = node.parent
    return node


def last_call_id() -> str | None:
    """The id of the last call finished in this context: hand it to your UI for feedback."""
    return _last_id.get()


class LLMCall(Node):
    """One LLM call being recorded. Made by ``llmpulse.producers.call(...)``.

    Use it as a context manager (sync or async); record what the model returned with
    ``record_response`` and anything that went wrong with ``record_error`` (an
    exception leaving the block is recorded for you, then re-raised). Made inside a
    ``trace()``, a tool span or another call, it is a node of that tree.
    """

    __slots__ = ("_context", "_finished", "_id_bits", "_latency_ms", "_messages",
                 "_normalize", "_response", "_span_id", "_started_at", "_started_ns", "_t0",
                 "_ttft_ms", "attributes", "call_id", "expects_json", "max_tokens",
                 "metadata", "model", "operation", "parent", "parent_span_id", "prompt_id",
                 "prompt_version", "provider", "session_id", "temperature",
                 "template_variables", "top_p", "trace_id", "user_id")
    event_count = 2
    """Events it becomes (the transports count them): its prompt and its response."""

    def __init__(self, *, prompt_id: str | None = None, prompt_version: str | None = None,
                 model: str | None = None, provider: str | None = None,
                 messages: Iterable[Any] | None = None, prompt: str | None = None,
                 context: Iterable[Any] | None = None,
                 template_variables: Mapping[str, str] | None = None,
                 session_id: str | None = None, user_id: str | None = None,
                 trace_id: str | None = None, attributes: Mapping[str, Any] | None = None,
                 expects_json: bool = False, operation: str = "chat",
                 temperature: float | None = None, max_tokens: int | None = None,
                 top_p: float | None = None, call_id: str | None = None,
                 occurred_at: datetime | None = None) -> None:
        origin = getattr(messages, "llmpulse_prompt", None)  # rendered from a template
        if origin is not None:
            prompt_id = prompt_id or origin[0]
            prompt_version = prompt_version or origin[1]
            template_variables = template_variables or origin[2]
        self._id_bits = 0  # the call id's bits: its events' ids follow it
        if call_id is None:
            call_id, self._id_bits = uuid7_str_int()
        self.call_id: str = call_id
        self.prompt_id, self.prompt_version = prompt_id, prompt_version
        self.model, self.provider = model, provider
        self._span_id: str | None = None
        (self.parent, trace_id, self.parent_span_id, session_id, user_id,
         self.metadata) = place(trace_id, session_id, user_id)
        if self.metadata:  # a trace's metadata, under the call's own attributes
            attributes = {**self.metadata, **(attributes or {})}
        self.session_id, self.user_id, self.trace_id = session_id, user_id, trace_id
        self.attributes: dict[str, Any] = dict(attributes) if attributes else {}
        self.expects_json, self.operation = expects_json, operation
        self.temperature, self.max_tokens, self.top_p = temperature, max_tokens, top_p
        self.template_variables = dict(template_variables) if template_variables else {}
        self._messages: Any = list(messages) if messages is not None else (
            [{"role": "user", "content": prompt}] if prompt is not None else [])
        self._normalize: Callable[[Any], Any] | None = None
        self._context: list[Any] = list(context) if context else []
        self._started_at = occurred_at
        self._started_ns = time.time_ns()
        self._t0 = time.perf_counter()
        self._latency_ms = 0.0
        self._ttft_ms: float | None = None
        self._response: dict[str, Any] = {}
        self._error: ErrorInfo | None = None
        self._finished = False
        self._token: contextvars.Token[Any] | None = None

    @property
    def span_id(self) -> str:
        """This call's span id (16 hex), made when first asked for."""
        span_id = self._span_id
        if span_id is None:
            span_id = self._span_id = new_span_id()
        return span_id

    def child_trace_id(self) -> str:
        """The trace id a node made inside this call takes: a call with nodes inside it
        starts a trace when it has none (a call alone keeps ``trace_id`` None)."""
        if self.trace_id is None:
            self.trace_id = new_trace_id()
        return self.trace_id

    # -- what the app records ----------------------------------------------------------
    def set_messages(self, messages: Iterable[Any], *,
                     normalize: Callable[[Any], Any] | None = None) -> None:
        """The chat messages sent (dicts with role and content, or OpenAI message objects).

        ``normalize`` turns another provider's input into such messages; it runs where the
        events are built, off the app's thread.
        """
        self._messages = messages if normalize is not None else list(messages)
        self._normalize = normalize

    def add_context(self, documents: Iterable[Any]) -> None:
        """Retrieved documents (str, dict with id/content/score, or RetrievedDocument)."""
        self._context.extend(documents)

    def first_token(self) -> None:
        """Mark the arrival of the first token (streaming): time to first token."""
        if self._ttft_ms is None:
            self._ttft_ms = (time.perf_counter() - self._t0) * 1000.0

    def record_response(self, text: str | None = None, *, input_tokens: int | None = None,
                        output_tokens: int | None = None, cached_input_tokens: int | None = None,
                        reasoning_tokens: int | None = None,
                        cache_creation_input_tokens: int | None = None,
                        tool_calls: list[ToolCallParts] | None = None,
                        finish_reason: str | None = None, response_model: str | None = None,
                        response_id: str | None = None, cost_usd: float | None = None,
                        streamed: bool | None = None, latency_ms: float | None = None) -> None:
        """What the model answered. Call again to add fields; the last value wins.

        ``tool_calls`` are the answer's tool calls as ``(id, name, arguments text)``.
        ``latency_ms`` overrides the time the SDK measured between entering and leaving
        the block (for an app that measured the call itself, or a replay of history).
        """
        fields = (("text", text), ("input_tokens", input_tokens),
                  ("output_tokens", output_tokens), ("cached_input_tokens", cached_input_tokens),
                  ("reasoning_tokens", reasoning_tokens),
                  ("cache_creation_input_tokens", cache_creation_input_tokens),
                  ("tool_calls", tool_calls),
                  ("finish_reason", finish_reason), ("response_model", response_model),
                  ("response_id", response_id), ("cost_usd", cost_usd), ("streamed", streamed),
                  ("latency_ms", latency_ms))
        response = self._response
        for name, value in fields:
            if value is not None:
                response[name] = value

    # -- context manager -----------------------------------------------------------------
    def __enter__(self) -> LLMCall:
        self._token = active.set(self)
        self._t0 = time.perf_counter()
        return self

    async def __aenter__(self) -> LLMCall:
        return self.__enter__()

    def finish(self) -> None:
        """End the call (once): called on leaving the block.

        On the app's thread this only takes the time, applies sampling (per trace when
        the call is part of one, so a trace is kept or dropped whole) and queues the call;
        its two events are built, redacted and encoded by the SDK's background thread
        (``events``), within the flush interval.
        """
        if self._finished:
            return
        self._finished = True
        self._latency_ms = (time.perf_counter() - self._t0) * 1000.0
        _last_id.set(self.call_id)
        client = get_client()
        try:
            if self.parent is not None:
                agent = agent_of(self.parent)
                if agent is not None:  # the run's totals: calls, tokens, cost
                    agent.add_call(self._response, self._error is not None)
            if client.keep(self.trace_id or self.call_id, is_error=self._error is not None,
                           call=self):
                client.submit(self)
        except Exception:
            client.stats.error("finish")

    def encoded(self, text: Callable[[str | None], str | None], app: str, environment: str,
                topics: Mapping[str, str]) -> tuple[str, list[tuple[str, bytes]]]:
        """Its two events, redacted and encoded: ``(call id, [(topic, value), ...])``."""
        prompt, response = self.events(text, app, environment)
        return self.call_id, [(topics["prompt"], encode_event(prompt)),
                              (topics["response"], encode_event(response))]

    def events(self, text: Callable[[str | None], str | None],
               app: str, environment: str) -> tuple[PromptEvent, ResponseEvent]:
        """The call's prompt and response events, with ``text`` (redaction) applied to every
        text. Run by the SDK's background thread after ``finish``."""
        bits = self._id_bits or uuid7_str_int()[1]
        started = self._started_at
        if started is None:
            started = datetime.fromtimestamp(self._started_ns / 1e9, UTC)
        span_id = self.span_id
        raw = self._messages
        if self._normalize is not None:
            raw = self._normalize(raw)
        prompt = PromptEvent(
            event_id=uuid7_after(bits, 1), call_id=self.call_id, app=app, environment=environment,
            trace_id=self.trace_id, span_id=span_id, parent_span_id=self.parent_span_id,
            session_id=self.session_id, user_id=self.user_id, prompt_id=self.prompt_id,
            prompt_version=self.prompt_version, request_model=self.model,
            provider=self.provider, occurred_at=started, operation=self.operation,
            messages=chat_messages(raw, text),
            retrieved_context=documents(self._context, text) if self._context else [],
            template_variables={k: text(str(v)) or "" for k, v in
                                self.template_variables.items()},
            temperature=self.temperature, max_tokens=self.max_tokens, top_p=self.top_p,
            expects_json=self.expects_json, attributes=self.attributes)
        r = self._response
        usage = None
        if any(name in r for name in _USAGE):
            usage = TokenUsage(**{name: int(r.get(name) or 0) for name in _USAGE})
        error = self._error
        if error is not None:
            error = ErrorInfo(type=error.type, message=text(error.message) or "")
        response_text = text(r.get("text"))
        if response_text is None and error is None:
            response_text = ""
        latency_ms = self._latency_ms
        if r.get("latency_ms") is not None:
            latency_ms = float(r["latency_ms"])
        response = ResponseEvent(
            event_id=uuid7_after(bits, 2), call_id=self.call_id, app=app,
            environment=environment, trace_id=self.trace_id, span_id=span_id,
            parent_span_id=self.parent_span_id, session_id=self.session_id,
            user_id=self.user_id, prompt_id=self.prompt_id,
            prompt_version=self.prompt_version, request_model=self.model,
            provider=self.provider, occurred_at=started + timedelta(milliseconds=latency_ms),
            text=response_text, error=error, finish_reason=r.get("finish_reason"),
            response_model=r.get("response_model"), response_id=r.get("response_id"),
            tool_calls=tool_calls(r["tool_calls"], text) if r.get("tool_calls") else [],
            usage=usage, latency_ms=latency_ms, time_to_first_token_ms=self._ttft_ms,
            cost_usd=r.get("cost_usd"), streamed=bool(r.get("streamed", False)))
        return prompt, response


def call(**fields: Any) -> LLMCall:
    """Record one LLM call: ``with llmpulse.producers.call(prompt_id=..., messages=...) as c:``."""
    try:
        return LLMCall(**fields)
    except TypeError:
        raise  # a wrong keyword is the developer's mistake, shown at once
    except Exception:
        get_client().stats.error("call")
        return LLMCall()


def _input_fields(args: tuple[Any, ...], kwargs: dict[str, Any],
                  capture_input: Callable[..., Any] | None) -> dict[str, Any]:
    if capture_input is not None:
        value = capture_input(*args, **kwargs)
        return {"prompt": value} if isinstance(value, str) else {"messages": value}
    if "messages" in kwargs:
        return {"messages": kwargs["messages"]}
    if isinstance(kwargs.get("prompt"), str):
        return {"prompt": kwargs["prompt"]}
    for arg in args:
        if isinstance(arg, str):
            return {"prompt": arg}
    return {}


def track(_fn: F | None = None, *, capture_input: Callable[..., Any] | None = None,
          capture_output: Callable[[Any], Any] | None = None, kind: str = "llm",
          **fields: Any) -> Any:
    """Decorate a function that calls an LLM (sync or async, or a generator of either) to
    record every call.

    The prompt is taken from a ``messages`` or ``prompt`` keyword, or the first str
    argument (or ``capture_input(*args, **kwargs)``); the response from the return value
    (a str or an OpenAI-style completion, or ``capture_output(result)``). A generator's
    answer is its items put together (str items, or OpenAI/Anthropic stream chunks;
    ``capture_output(item)`` gives an item's text), its latency runs to the last item and
    its time to first token to the first. Inside, the call is ``current_call()``;
    afterwards its id is ``last_call_id()``. ``kind="tool"`` records a tool instead
    (the same as ``@llmpulse.tool``; ``name=`` names it).
    """
    if kind == "tool":
        return tool(_fn, **fields) if _fn is not None else tool(**fields)
    if kind != "llm":
        raise ValueError(f"kind must be 'llm' or 'tool', not {kind!r}")

    def decorate(fn: F) -> F:
        def start(args: tuple[Any, ...], kwargs: dict[str, Any]) -> LLMCall:
            try:
                return LLMCall(**fields, **_input_fields(args, kwargs, capture_input))
            except Exception:
                get_client().stats.error("track")
                return LLMCall(**fields)

        def end(c: LLMCall, result: Any) -> None:
            try:
                value = capture_output(result) if capture_output is not None else result
                c.record_response(**output_fields(value))
            except Exception:
                get_client().stats.error("track_output")

        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            return cast(F, tracked_generator(fn, start, capture_output))

        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                c = start(args, kwargs)
                with c:
                    result = await fn(*args, **kwargs)
                    end(c, result)
                return result
            return cast(F, async_wrapper)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            c = start(args, kwargs)
            with c:
                result = fn(*args, **kwargs)
                end(c, result)
            return result
        return cast(F, wrapper)

    return decorate(_fn) if _fn is not None else decorate


def feedback(call_id: str, *, thumbs: str | bool | None = None, rating: int | None = None,
             label: str | None = None, correction: str | None = None, comment: str | None = None,
             source: str = "user", author_id: str | None = None,
             attributes: Mapping[str, Any] | None = None, prompt_id: str | None = None,
             prompt_version: str | None = None, occurred_at: datetime | None = None) -> bool:
    """Send feedback on a call, any time later, from any process. True when queued.

    ``thumbs`` is "up"/"down" (or True/False); ``rating`` 1-5. Invalid feedback is not
    raised into the app: it is logged, counted (``invalid_feedback``) and False returned.
    """
    client = get_client()
    try:
        if isinstance(thumbs, bool):
            thumbs = "up" if thumbs else "down"
        text = client.text
        event = FeedbackEvent(
            call_id=call_id, app=client.config.app, environment=client.config.environment,
            thumbs=thumbs, rating=rating, label=label, correction=text(correction),  # type: ignore[arg-type]
            comment=text(comment), source=source, author_id=author_id,  # type: ignore[arg-type]
            attributes=dict(attributes or {}), prompt_id=prompt_id, prompt_version=prompt_version)
        if occurred_at is not None:
            event.occurred_at = occurred_at
        decode_event(encode_event(event))  # the contract's checks, before it leaves
    except SchemaError as exc:
        client.stats.drop("invalid_feedback")
        logger.warning("llmpulse: feedback not sent: %s", exc)
        return False
    except Exception:
        client.stats.error("feedback")
        client.stats.drop("invalid_feedback")
        return False
    client.emit("feedback", event)
    return True
