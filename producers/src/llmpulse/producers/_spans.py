"""Traces: the LLM calls, tool executions and agent steps of one run, as a tree.

``with trace(name=...)`` opens a run (an ``invoke_agent`` span); every call captured inside
it (``@track``, ``call()``, ``wrap(client)``), every ``@tool`` function and every
``tool_span()`` becomes a node of its tree: one ``trace_id`` (32 hex), its own
``span_id`` (16 hex) and its parent's as ``parent_span_id``, passed down through
``contextvars`` (threads started inside do not inherit it; ``asyncio`` tasks do). The
``session_id``, ``user_id`` and ``metadata`` given to ``trace()`` are set on everything
captured in the block. When OpenTelemetry is in use and one of its spans is active, a
root node takes that span's trace id and is its child, so both tools show one trace.

A span (a tool execution, an agent run) is one ``SpanEvent`` on ``llm.spans``, keyed by
its trace id, sent when it ends; nothing is held per child, so a run of 10,000 steps
costs what 10,000 separate ones do.

Example:
    >>> import llmpulse.producers as llmpulse
    >>> _ = llmpulse.init(app="agent", bootstrap_servers=None)
    >>> @llmpulse.tool
    ... def lookup_order(order_id: str) -> dict[str, str]:
    ...     return {"order": order_id, "status": "shipped"}
    >>> with llmpulse.trace(name="support-agent", session_id="s-1") as run:
    ...     lookup_order("A-17")["status"]
    'shipped'
    >>> len(run.trace_id), len(run.span_id), run.parent_span_id is None
    (32, 16, True)
    >>> llmpulse.shutdown()
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from random import getrandbits
from typing import Any, Literal, TypeVar, cast

from llmpulse.producers._client import get_client
from llmpulse.producers._messages import RESULT_PREVIEW_CHARS, arguments_text, preview, tool_calls
from llmpulse.schemas import ErrorInfo, SpanEvent, TokenUsage, bounded_text, encode_event

F = TypeVar("F", bound=Callable[..., Any])

active: contextvars.ContextVar[Any] = contextvars.ContextVar("llmpulse_active_span",
                                                            default=None)
"""The innermost node being recorded in this context: an ``LLMCall`` or a ``Span``."""


_TOKENS = ("input_tokens", "output_tokens", "cached_input_tokens", "reasoning_tokens",
           "cache_creation_input_tokens")
_TOTALS = (*_TOKENS, "cost_usd")


def new_span_id() -> str:
    """A random, non-zero 64-bit id in 16 hex digits (OpenTelemetry's form)."""
    return f"{getrandbits(64) or 1:016x}"


def new_trace_id() -> str:
    """A random, non-zero 128-bit id in 32 hex digits (OpenTelemetry's form)."""
    return f"{getrandbits(128) or 1:032x}"


def otel_parent() -> tuple[str, str] | None:
    """(trace id, span id) of the active OpenTelemetry span, if the app uses OpenTelemetry.

    Costs a dictionary look-up when it does not: OpenTelemetry is never imported here.
    """
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None
    try:
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"
    except Exception:  # a broken tracer must not break the app
        return None
    return None


def current_span() -> Any:
    """The innermost node recorded in this context (a ``Span`` or an ``LLMCall``), or None."""
    return active.get()


class Node:
    """What the nodes of a trace share (``Span`` and ``LLMCall``): being the active node
    inside their block, and recording the error that left it."""

    __slots__ = ("_error", "_token")
    _error: ErrorInfo | None
    _token: contextvars.Token[Any] | None

    def finish(self) -> None:
        raise NotImplementedError

    def record_error(self, error: BaseException | str, message: str | None = None) -> None:
        """It failed: an exception, or an error type name and message."""
        if isinstance(error, BaseException):
            self._error = ErrorInfo(type=type(error).__name__, message=message or str(error))
        else:
            self._error = ErrorInfo(type=error or "Error", message=message or "")

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> Literal[False]:
        if exc is not None and self._error is None:
            self.record_error(exc)
        self.finish()
        if self._token is not None:
            with contextlib.suppress(ValueError):  # left in another context: harmless
                active.reset(self._token)
        return False

    async def __aexit__(self, exc_type: Any, exc: BaseException | None,
                        tb: Any) -> Literal[False]:
        return self.__exit__(exc_type, exc, tb)


def place(trace_id: str | None, session_id: str | None, user_id: str | None
          ) -> tuple[Any, str | None, str | None, str | None, str | None, Any]:
    """Where a node made now stands: ``(parent, trace_id, parent_span_id, session_id,
    user_id, metadata)``. Inside another node it joins that node's trace (unless given
    another trace id) and takes its session, user and metadata; at the root, under an
    active OpenTelemetry span, it joins that span's trace."""
    parent = active.get()
    if parent is not None:
        parent_trace = parent.child_trace_id()
        trace_id = trace_id or parent_trace
        return (parent, trace_id, parent.span_id if trace_id == parent_trace else None,
                session_id or parent.session_id, user_id or parent.user_id, parent.metadata)
    otel = otel_parent()
    if otel is not None and trace_id in (None, otel[0]):
        return None, otel[0], otel[1], session_id, user_id, None
    return None, trace_id, None, session_id, user_id, None


class Span(Node):
    """One step of a run that is not an LLM call: a tool execution, an agent, a retrieval.

    Made by ``trace()``, ``tool_span()``, ``span()`` and ``@tool``; used as a context
    manager (sync or async). An exception leaving the block marks it ``error`` (and is
    re-raised); ``record_result`` keeps a bounded preview of what the step returned.
    """

    __slots__ = ("_finished", "_given_latency_ms", "_latency_ms", "_result", "_started_at",
                 "_started_ns", "_t0", "_totals",
                 "arguments", "attributes", "metadata", "name", "operation", "parent",
                 "parent_span_id", "session_id", "span_id", "tool_call_id", "trace_id",
                 "user_id")
    event_count = 1
    """Events it becomes (the transports count them)."""

    def __init__(self, name: str, *, operation: str = "other", arguments: Any = None,
                 tool_call_id: str | None = None, session_id: str | None = None,
                 user_id: str | None = None, metadata: Mapping[str, Any] | None = None,
                 trace_id: str | None = None, attributes: Mapping[str, Any] | None = None,
                 occurred_at: datetime | None = None) -> None:
        self.name, self.operation = name, operation
        self.span_id = new_span_id()
        (self.parent, trace_id, self.parent_span_id, session_id, user_id,
         inherited) = place(trace_id, session_id, user_id)
        self.trace_id: str = trace_id or new_trace_id()
        self.session_id, self.user_id = session_id, user_id
        self.metadata: Mapping[str, Any] | None = (  # shared down the tree, never changed
            {**(inherited or {}), **metadata} if metadata else inherited)
        self.attributes: dict[str, Any] = dict(attributes) if attributes else {}
        """The span's own attributes (the run's metadata is added when its event is built)."""
        self.arguments = None if arguments is None else arguments_text(arguments)
        self.tool_call_id = tool_call_id
        self._result: tuple[str, bool] | None = None
        self._totals: dict[str, Any] | None = {} if operation == "invoke_agent" else None
        self._error: ErrorInfo | None = None
        self._finished = False
        self._latency_ms = 0.0
        self._given_latency_ms: float | None = None
        self._started_at = occurred_at
        self._started_ns = time.time_ns()
        self._t0 = time.perf_counter()
        self._token: contextvars.Token[Any] | None = None

    def child_trace_id(self) -> str:
        """The trace id a node made inside this one takes."""
        return self.trace_id

    # -- what the app records ----------------------------------------------------------
    def record_result(self, value: Any) -> None:
        """What the step returned: kept as a bounded text preview (``result_truncated``)."""
        try:
            self._result = preview(value)
        except Exception:
            get_client().stats.error("span_result")

    def record_latency(self, latency_ms: float) -> None:
        """How long the step took, instead of the block's wall time (with ``occurred_at``:
        a replay of history, a simulation), as ``record_response(latency_ms=)`` for calls."""
        self._given_latency_ms = float(latency_ms)

    # -- context manager -----------------------------------------------------------------
    def __enter__(self) -> Span:
        self._token = active.set(self)
        self._t0 = time.perf_counter()
        self._started_ns = time.time_ns()
        return self

    async def __aenter__(self) -> Span:
        return self.__enter__()

    def finish(self) -> None:
        """End the step (once): takes the time and queues it; its event is built later."""
        if self._finished:
            return
        self._finished = True
        self._latency_ms = (time.perf_counter() - self._t0) * 1000.0
        if self._given_latency_ms is not None:
            self._latency_ms = self._given_latency_ms
        client = get_client()
        try:
            agent = agent_of(self.parent)
            if agent is not None:
                agent.add_step(self)
            if client.keep(self.trace_id, is_error=self._error is not None):
                client.submit(self)
        except Exception:
            client.stats.error("finish")

    # -- an agent's totals ------------------------------------------------------------
    def add(self, key: str, value: Any) -> None:
        totals = self._totals
        if totals is not None and value:
            totals[key] = totals.get(key, 0) + value

    def add_call(self, response: Mapping[str, Any], failed: bool) -> None:
        """An LLM call inside this agent ended: count it, its tokens and its cost."""
        self.add("llm_calls", 1)
        self.add("errors", int(failed))
        for key in _TOTALS:
            self.add(key, response.get(key))

    def add_step(self, step: Span) -> None:
        """A span inside this agent ended: a tool call, or a sub-agent and its totals."""
        self.add("errors", int(step._error is not None))
        if step.operation == "execute_tool":
            self.add("tool_calls", 1)
        for key, value in (step._totals or {}).items():
            self.add(key, value)

    def _usage(self) -> tuple[TokenUsage | None, float | None, dict[str, Any]]:
        totals = self._totals
        if not totals:
            return None, None, {}
        usage = None
        if any(key in totals for key in _TOKENS):
            usage = TokenUsage(**{key: int(totals.get(key, 0)) for key in _TOKENS})
        counts = {f"llmpulse.{key}": int(totals.get(key, 0))
                  for key in ("llm_calls", "tool_calls", "errors")}
        return usage, totals.get("cost_usd"), counts

    def encoded(self, text: Callable[[str | None], str | None], app: str, environment: str,
                topics: Mapping[str, str]) -> tuple[str, list[tuple[str, bytes]]]:
        """Its ``SpanEvent``, redacted and encoded: ``(trace id, [(topic, value)])``."""
        started = self._started_at or datetime.fromtimestamp(self._started_ns / 1e9, UTC)
        usage, cost, counts = self._usage()
        tool = None
        if self.operation == "execute_tool":
            tool = tool_calls([(self.tool_call_id, self.name, self.arguments or "")], text)[0]
        result, cut = None, False
        if self._result is not None:  # cut again: redaction may lengthen it
            result, cut = bounded_text(text(self._result[0]) or "", RESULT_PREVIEW_CHARS)
            cut = cut or self._result[1]
        error = self._error
        if error is not None:
            error = ErrorInfo(type=error.type, message=text(error.message) or "")
        event = SpanEvent(
            call_id=self.span_id, app=app, environment=environment,
            trace_id=self.trace_id, span_id=self.span_id, parent_span_id=self.parent_span_id,
            session_id=self.session_id, user_id=self.user_id, name=self.name or self.operation,
            operation=self.operation, started_at=started,
            occurred_at=started + timedelta(milliseconds=self._latency_ms),
            latency_ms=self._latency_ms, status="error" if error is not None else "ok",
            error=error, tool=tool, result_preview=result, result_truncated=cut,
            usage=usage, cost_usd=cost,
            attributes={**(self.metadata or {}), **counts, **self.attributes})
        return self.trace_id, [(topics["span"], encode_event(event))]


def agent_of(node: Any) -> Span | None:
    """The nearest agent run (``invoke_agent`` span) at or above ``node``."""
    while node is not None and getattr(node, "_totals", None) is None:
        node = node.parent
    return cast(Span | None, node)


def trace(name: str = "agent", *, session_id: str | None = None, user_id: str | None = None,
          metadata: Mapping[str, Any] | None = None, trace_id: str | None = None,
          attributes: Mapping[str, Any] | None = None, occurred_at: datetime | None = None
          ) -> Span:
    """Open a run: ``with llmpulse.trace(name="support-agent", session_id=...) as run:``.

    Everything captured in the block joins the run's tree and takes its ``session_id``,
    ``user_id`` and ``metadata`` (added to each event's attributes). The run itself is an
    ``invoke_agent`` span, sent when the block ends; inside another run it is a sub-agent.
    ``occurred_at`` (and ``run.record_latency(ms)``) give the time of a run replayed from
    history or simulated, as ``call(occurred_at=)`` does; the same holds for every span.
    """
    return _span(name, operation="invoke_agent", session_id=session_id, user_id=user_id,
                 metadata=metadata, trace_id=trace_id, attributes=attributes,
                 occurred_at=occurred_at)


def tool_span(name: str, arguments: Any = None, *, tool_call_id: str | None = None,
              attributes: Mapping[str, Any] | None = None,
              occurred_at: datetime | None = None) -> Span:
    """Record one tool execution: ``with llmpulse.tool_span("lookup_order", args) as t:``.

    ``arguments`` is the raw text the model produced (kept as is, JSON or not) or a value
    (written as JSON); ``tool_call_id`` links it to the model's tool call. Call
    ``t.record_result(value)`` with what the tool returned (kept as a bounded preview).
    """
    return _span(name, operation="execute_tool", arguments=arguments,
                 tool_call_id=tool_call_id, attributes=attributes, occurred_at=occurred_at)


def span(name: str, *, operation: str = "other",
         attributes: Mapping[str, Any] | None = None, occurred_at: datetime | None = None) -> Span:
    """Record any other step of a run (``operation="retrieval"`` for a search ...)."""
    return _span(name, operation=operation, attributes=attributes, occurred_at=occurred_at)


def _span(name: str, **fields: Any) -> Span:
    try:
        return Span(name, **fields)
    except TypeError:
        raise  # a wrong keyword is the developer's mistake, shown at once
    except Exception:
        get_client().stats.error("span")
        return Span(name or "span", operation=fields.get("operation", "other"))


def _arguments_of(fn: Callable[..., Any]) -> Callable[[tuple[Any, ...], dict[str, Any]], Any]:
    """A function's call arguments as a dict by parameter name (``self``/``cls`` left
    out, defaults not filled in), without ``inspect.Signature.bind`` (ten times slower)."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        params = []
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    names = [p.name for p in params if p.kind in kinds]
    rest = next((p.name for p in params if p.kind == inspect.Parameter.VAR_POSITIONAL), "args")
    skip = 1 if names and names[0] in ("self", "cls") else 0
    names = names[skip:]

    def bind(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        args = args[skip:]
        bound = dict(zip(names, args, strict=False))
        if len(args) > len(names):
            bound[rest] = list(args[len(names):])
        if kwargs:
            bound.update(kwargs)
        return bound

    return bind


def tool(_fn: F | None = None, *, name: str | None = None, capture_arguments: bool = True,
         capture_result: bool = True) -> Any:
    """Decorate a tool function (sync or async): every execution becomes an
    ``execute_tool`` span with its arguments (as JSON), a bounded preview of its result,
    its status, error and latency. ``@llmpulse.tool`` or ``@llmpulse.tool(name=...)``.
    """

    def decorate(fn: F) -> F:
        tool_name: str = name or getattr(fn, "__name__", None) or "tool"
        bind = _arguments_of(fn)

        def start(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Span:
            arguments = None
            if capture_arguments:
                try:
                    arguments = arguments_text(bind(args, kwargs))
                except Exception:  # a call the signature rejects: the function will say so
                    get_client().stats.error("tool_arguments")
            return _span(tool_name, operation="execute_tool", arguments=arguments)

        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with start(args, kwargs) as s:
                    result = await fn(*args, **kwargs)
                    if capture_result:
                        s.record_result(result)
                return result
            return cast(F, async_wrapper)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with start(args, kwargs) as s:
                result = fn(*args, **kwargs)
                if capture_result:
                    s.record_result(result)
            return result
        return cast(F, wrapper)

    return decorate(_fn) if _fn is not None else decorate
