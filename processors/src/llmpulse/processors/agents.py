"""Checks on tool calls and agent traces: arguments that are not JSON, failed tools, loops,
and parent links that form a cycle.

- ``arguments_problem(text)``: why a tool call's raw arguments are not a JSON object
  (None when they are, or when there are none).
- ``tool_call_verdicts(call, version)``: ``tool_arguments_invalid_json`` on the tool calls
  of a call's answer (the light path runs it on every call).
- ``TraceMonitor``: the spans of each trace (``llm.spans`` is partitioned by trace id, so
  one worker sees a whole trace). ``check(span)`` gives the span, and its verdicts:
  ``tool_arguments_invalid_json``, ``tool_error`` (a tool span whose status is ``error``)
  and ``agent_loop`` (the same tool with the same arguments ``loop_threshold`` times in one
  trace, flagged once per trace, tool and arguments). A span whose parent link closes a
  cycle is emitted with no parent (the store's trace stays a tree) and the link it had in
  ``attributes["llmpulse.cycle_parent_span_id"]``.

Nothing waits for a parent: a span is emitted when it arrives (children end before their
parents, so they come first), and a parent that never comes loses nothing.

The per-trace state is bounded: ``max_spans_per_trace`` spans remembered per trace (a
bigger trace's later spans are checked and emitted, their loops counted for tools already
seen, but not remembered), ``max_tracked_spans`` over all traces and ``max_traces``
traces (the least recently seen are dropped), and a trace idle for ``trace_idle_s`` is
dropped. ``counts`` says how often each bound was hit. The state is in memory: a loop that
straddles a worker restart can be missed; a redelivered span (same ``span_id``) is not
counted twice.

Example:
    >>> from datetime import UTC, datetime
    >>> from llmpulse.processors.agents import TraceMonitor, arguments_problem
    >>> from llmpulse.processors.config import AgentsConfig
    >>> from llmpulse.schemas import SpanEvent, ToolCall
    >>> arguments_problem('{"order": 42}'), arguments_problem('{"order": 42,}')
    (None, 'not JSON: JSON is malformed: trailing comma in object (byte 13)')
    >>> monitor = TraceMonitor(AgentsConfig(loop_threshold=2))
    >>> def lookup(n):
    ...     return SpanEvent(call_id=f"s{n}", span_id=f"s{n}", trace_id="t1", app="shop",
    ...                      name="lookup", operation="execute_tool",
    ...                      started_at=datetime.now(UTC), latency_ms=3.0,
    ...                      tool=ToolCall(name="lookup", arguments='{"order": 42}'))
    >>> [[v.rule_id for v in monitor.check(lookup(n)).verdicts] for n in range(3)]
    [[], ['agent_loop'], []]
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, Literal, NamedTuple

import msgspec

from llmpulse.processors._ids import derived_uuid7
from llmpulse.processors._verdicts import envelope
from llmpulse.processors.config import AgentsConfig
from llmpulse.schemas import CallEvent, EnrichedCall, GuardrailVerdict, Limits, SpanEvent, ToolCall

__all__ = ["AGENT_RULES", "SpanCheck", "TraceMonitor", "agents_version", "arguments_problem",
           "tool_call_verdicts"]

logger = logging.getLogger(__name__)

AGENT_RULES: dict[str, tuple[Literal["low", "medium", "high"], str]] = {
    "tool_arguments_invalid_json": ("medium", "tool call arguments are not a JSON object"),
    "tool_error": ("medium", "the tool failed"),
    "agent_loop": ("high", "the same tool with the same arguments again and again in one trace"),
}
"""The agent checks' rule ids, with their severity and message (``rule_kind`` ``agent``)."""

CYCLE_ATTRIBUTE = "llmpulse.cycle_parent_span_id"
_MAX_ATTRIBUTES = Limits().max_attributes
_object = msgspec.json.Decoder(dict[str, Any])


def agents_version(config: AgentsConfig) -> str:
    """The version agent verdicts carry as ``policy_version``: ``agents-1+<settings hash>``."""
    data = msgspec.json.encode(msgspec.to_builtins(config), order="sorted")
    return f"agents-1+{hashlib.sha256(data).hexdigest()[:8]}"


def _parse(arguments: str) -> tuple[dict[str, Any] | None, str | None]:
    """The arguments as an object, or why they are not one (empty text: no arguments)."""
    if not arguments.strip():
        return {}, None
    try:
        return _object.decode(arguments), None
    except msgspec.ValidationError as exc:
        return None, f"valid JSON, but {str(exc)[0].lower()}{str(exc)[1:]}"
    except msgspec.DecodeError as exc:
        return None, f"not JSON: {exc}"


def arguments_problem(arguments: str) -> str | None:
    """Why ``arguments`` are not a JSON object (None: they are, or they are empty). The
    reason names the position, never the text."""
    return _parse(arguments)[1]


def _verdict(event: CallEvent, rule_id: str, applies_to: Literal["tool_arguments", "tool_result"],
             version: str, segment: str, preview: str, key: Iterable[str | bytes],
             **attributes: str | int) -> GuardrailVerdict:
    severity, message = AGENT_RULES[rule_id]
    ms = int(event.occurred_at.timestamp() * 1000)
    return GuardrailVerdict(
        event_id=derived_uuid7(ms, rule_id, *key), **envelope(event), rule_id=rule_id,
        rule_kind="agent", applies_to=applies_to, severity=severity, action="flag",
        policy_version=version, match_preview=preview[:200], message=message,
        attributes={"segment": segment, "match_kind": rule_id, **attributes})


def _invalid_json(event: CallEvent, tool: ToolCall, problem: str, segment: str,
                  version: str) -> GuardrailVerdict:
    return _verdict(event, "tool_arguments_invalid_json", "tool_arguments", version, segment,
                    problem, (str(event.event_id), segment), tool=tool.name)


def tool_call_verdicts(call: EnrichedCall, version: str) -> list[GuardrailVerdict]:
    """``tool_arguments_invalid_json`` for each tool call of the answer whose arguments are
    not a JSON object (cut arguments are not judged)."""
    response = call.response
    if response is None or not response.tool_calls:
        return []
    out = []
    for i, tool in enumerate(response.tool_calls):
        if tool.arguments_truncated:
            continue
        problem = arguments_problem(tool.arguments)
        if problem is not None:
            out.append(_invalid_json(call, tool, problem, f"response.tool_calls[{i}]", version))
    return out


def _cut(span: SpanEvent) -> SpanEvent:
    """The span without its parent link, the link kept in an attribute (when there is room)."""
    attributes = dict(span.attributes)
    if len(attributes) < _MAX_ATTRIBUTES:
        attributes[CYCLE_ATTRIBUTE] = span.parent_span_id
    return msgspec.structs.replace(span, parent_span_id=None, attributes=attributes)


class SpanCheck(NamedTuple):
    """A span as it goes on (a cycle's link cut), and its verdicts."""

    span: SpanEvent
    verdicts: list[GuardrailVerdict]


class _Trace:
    """What is remembered of one trace: each span's parent, and each tool call's count."""

    __slots__ = ("parents", "seen_at", "tools")

    def __init__(self, now: float) -> None:
        self.parents: dict[str, str | None] = {}
        self.tools: dict[bytes, int] = {}
        self.seen_at = now


class TraceMonitor:
    """The agent checks of spans, with bounded per-trace state (see the module).

    Args:
        config: the ``agents`` section (loop threshold, bounds).
        clock: seconds, for the idle timeout (default ``time.monotonic``).
        counts: the counter to count in (the processing step's); default a new one.

    Attributes:
        counts: ``agent_loops``, ``span_parent_cycles``, ``spans_redelivered``,
            ``spans_untracked`` (beyond ``max_spans_per_trace``), ``traces_idle_dropped``,
            ``traces_evicted`` (beyond ``max_traces`` or ``max_tracked_spans``).
        version: what the verdicts carry as ``policy_version``.
    """

    def __init__(self, config: AgentsConfig | None = None, *,
                 clock: Callable[[], float] = time.monotonic,
                 counts: Counter[str] | None = None) -> None:
        self.config = config if config is not None else AgentsConfig()
        self.version = agents_version(self.config)
        self._clock = clock
        self._traces: OrderedDict[str, _Trace] = OrderedDict()
        self.tracked_spans = 0
        """Spans remembered over all traces (at most ``max_tracked_spans``)."""
        self.counts: Counter[str] = counts if counts is not None else Counter()

    def __len__(self) -> int:
        """Traces held."""
        return len(self._traces)

    def check(self, span: SpanEvent) -> SpanCheck:
        """The span's verdicts, and the span (its parent link cut if it closes a cycle)."""
        verdicts: list[GuardrailVerdict] = []
        tool = span.tool
        parsed: dict[str, Any] | None = None
        if tool is not None and not tool.arguments_truncated:
            parsed, problem = _parse(tool.arguments)
            if problem is not None:
                verdicts.append(_invalid_json(span, tool, problem, "tool.arguments", self.version))
        if span.status == "error" and (tool is not None or span.operation == "execute_tool"):
            kind = span.error.type if span.error is not None else "error"
            verdicts.append(_verdict(span, "tool_error", "tool_result", self.version, "span",
                                     kind, (str(span.event_id),), tool=tool.name if tool else span.name))
        trace = self._trace(span.trace_id)
        if span.span_id in trace.parents:
            self.counts["spans_redelivered"] += 1
            if trace.parents[span.span_id] != span.parent_span_id:  # cut the first time
                span = _cut(span)
            return SpanCheck(span, verdicts)
        remember = len(trace.parents) < self.config.max_spans_per_trace
        if remember:
            span = self._link(trace, span)
        else:
            self.counts["spans_untracked"] += 1
        if tool is not None:
            loop = self._count_tool(trace, span, tool, parsed, remember)
            if loop is not None:
                verdicts.append(loop)
        self._bound()
        return SpanCheck(span, verdicts)

    def _trace(self, trace_id: str) -> _Trace:
        now = self._clock()
        traces = self._traces
        idle = now - self.config.trace_idle_s
        while traces:
            oldest_id = next(iter(traces))
            if traces[oldest_id].seen_at >= idle:
                break
            self._drop(oldest_id, "traces_idle_dropped")
        trace = traces.get(trace_id)
        if trace is None:
            if len(traces) >= self.config.max_traces:
                self._drop(next(iter(traces)), "traces_evicted")
            trace = traces[trace_id] = _Trace(now)
        else:
            traces.move_to_end(trace_id)
            trace.seen_at = now
        return trace

    def _drop(self, trace_id: str, why: str) -> None:
        trace = self._traces.pop(trace_id)
        self.tracked_spans -= len(trace.parents)
        self.counts[why] += 1

    def _bound(self) -> None:
        while self.tracked_spans > self.config.max_tracked_spans and len(self._traces) > 1:
            self._drop(next(iter(self._traces)), "traces_evicted")

    def _link(self, trace: _Trace, span: SpanEvent) -> SpanEvent:
        """Remember the span's parent; cut the link if it closes a cycle."""
        parent = span.parent_span_id
        node, steps = parent, 0
        while node is not None and steps <= len(trace.parents):
            if node == span.span_id:
                self.counts["span_parent_cycles"] += 1
                logger.warning("agents: span %s of trace %s closes a cycle of parent links; "
                               "emitted without its parent", span.span_id, span.trace_id)
                span, parent = _cut(span), None
                break
            node, steps = trace.parents.get(node), steps + 1
        trace.parents[span.span_id] = parent
        self.tracked_spans += 1
        return span

    def _count_tool(self, trace: _Trace, span: SpanEvent, tool: ToolCall,
                    parsed: dict[str, Any] | None, remember: bool) -> GuardrailVerdict | None:
        """Count the tool call in its trace; the ``agent_loop`` verdict when it reaches the
        threshold (once per trace, tool and arguments)."""
        canonical = msgspec.json.encode(parsed, order="sorted") if parsed is not None \
            else tool.arguments.strip().encode()
        key = hashlib.blake2b(tool.name.encode() + b"\x1f" + canonical, digest_size=8).digest()
        count = trace.tools.get(key)
        if count is None:
            if remember:
                trace.tools[key] = 1
            return None
        trace.tools[key] = count = count + 1
        if count != self.config.loop_threshold:
            return None
        self.counts["agent_loops"] += 1
        return _verdict(span, "agent_loop", "tool_arguments", self.version, "tool.arguments",
                        f"{tool.name} x{count}", (span.trace_id, key), tool=tool.name,
                        count=count, threshold=self.config.loop_threshold)
