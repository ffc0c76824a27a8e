"""The OTLP mapper: GenAI spans in, llmpulse call and span events out. No Kafka here.

One OTLP record (what the Collector's Kafka exporter writes, or an OTLP/JSON file) becomes
a ``MappedRecord``: a ``PromptEvent`` and a ``ResponseEvent`` per GenAI inference span, a
``SpanEvent`` per tool execution, agent invocation or retrieval span (``execute_tool``,
``invoke_agent``, ``retrieval``), dead letters for the spans that cannot be kept (each with
its reason and the span's bytes), and counts of the spans skipped because they are none of
these (HTTP spans, embeddings, create_agent). A bad span never costs the good spans of the
same record, and nothing here raises on bad input. Every event carries the span's own id
and its parent's, so calls and steps form the trace's tree.

What the events share (token usage, the open attribute map, the error, times, tool calls
held to the limits) is read by ``span_fields``, which also builds a step span's event;
this module maps a record's spans and assembles a call's prompt and answer.

Ids are derived, so redelivery is harmless: ``call_id`` is ``otel-<trace id>-<span id>``
(a step's is its span id, as for every ``SpanEvent``) and the events' UUIDv7 ids are the
span's start time plus a hash of those ids (ClickHouse keeps one row per ``event_id``).

Example:
    >>> from opentelemetry.proto.trace.v1.trace_pb2 import TracesData
    >>> traces = TracesData()
    >>> rs = traces.resource_spans.add()
    >>> kv = rs.resource.attributes.add(); kv.key = "service.name"
    >>> kv.value.string_value = "support-bot"
    >>> span = rs.scope_spans.add().spans.add()
    >>> span.trace_id, span.span_id = bytes(range(1, 17)), bytes(range(1, 9))
    >>> import time; start = time.time_ns() - 60 * 10**9  # a minute ago
    >>> span.start_time_unix_nano, span.end_time_unix_nano = start, start + 10**9
    >>> for key, value in [("gen_ai.operation.name", "chat"), ("gen_ai.request.model", "gpt-4o"),
    ...                    ("gen_ai.output.messages", '[{"role": "assistant", "parts": '
    ...                     '[{"type": "text", "content": "Hello"}], "finish_reason": "stop"}]')]:
    ...     kv = span.attributes.add(); kv.key = key; kv.value.string_value = value
    >>> record = OtlpMapper().map_record(traces.SerializeToString())
    >>> [(e.app, e.request_model) for e in record.prompts], record.responses[0].text
    ([('support-bot', 'gpt-4o')], 'Hello')
    >>> record.responses[0].latency_ms, record.prompts[0].call_id[:13]
    (1000.0, 'otel-01020304')
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import Span, TracesData

from llmpulse.processors._ids import DIGEST_SIZE, uuid7_of_digest, uuid_from_int
from llmpulse.processors.otlp import conventions as c
from llmpulse.processors.otlp import span_fields as f
from llmpulse.processors.otlp._wire import OtlpDecodeError, attributes, decode_traces
from llmpulse.processors.otlp._wire_reader import read_traces
from llmpulse.processors.otlp.auth import TOKEN_HASH_ATTRIBUTE, TokenBindings
from llmpulse.processors.otlp.messages import input_messages, output
from llmpulse.schemas import (
    ChatMessage,
    DeadLetter,
    ErrorInfo,
    Limits,
    PromptEvent,
    ResponseEvent,
    SchemaError,
    SpanEvent,
    dead_letter,
    utcnow,
    validate_event,
)
from llmpulse.schemas.bulk_checks import answer_after_its_prompt, prompt_of_a_span, time_window

__all__ = ["MappedRecord", "OtlpMapper", "call_id_for"]

logger = logging.getLogger(__name__)

STAGE = "otlp"
_PROVIDERS = {"az.ai.openai": "azure.ai.openai", "az.ai.inference": "azure.ai.inference"}
_LEGACY_OPERATIONS = {"chat": "chat", "completion": "text_completion", "embedding": "embeddings",
                      "rerank": "rerank"}
_ZERO_TRACE, _ZERO_SPAN = bytes(16), bytes(8)
_CLEAN_MAX = 4096
"""Identifiers and keys kept as found clean: the set is emptied at a record's start once it
holds more (a span's model, provider, app ... are few, its hex ids are not kept; one record
of many distinct session or user ids can grow it past this until the next record)."""
_EVENT_ID_PREFIX = hashlib.blake2b(b"otlp\x1f", digest_size=DIGEST_SIZE)
"""The events' ids hash ``otlp``, a separator and the call id (``derived_uuid7``'s join)."""
_RESPONSE_BITS = 0x5A5A_5A5A_5A5A_5A5A  # flips random bits of the low 62 only
_OPTIONAL_CALL_FIELDS = (("session_id", ("gen_ai.conversation.id", "session.id")),
                         ("user_id", ("user.id", "enduser.id")),
                         ("prompt_id", ("llmpulse.prompt.id", "gen_ai.prompt.name")),
                         ("prompt_version", ("llmpulse.prompt.version", "gen_ai.prompt.version")))


def call_id_for(trace_id: str, span_id: str) -> str:
    """The call id of the span with these hex ids."""
    return f"otel-{trace_id}-{span_id}"


def _event_ids(start_ns: int, call_id: str) -> tuple[uuid.UUID, uuid.UUID]:
    """UUIDv7s of the prompt and the response from the span's start time and its ids: the
    same span, the same ids. The response's differs from the prompt's in random bits only."""
    hashed = _EVENT_ID_PREFIX.copy()  # (derived_uuid7's data: the prefix hashed once)
    hashed.update(call_id.encode())
    prompt = uuid7_of_digest(start_ns // 1_000_000, hashed.digest())
    return prompt, uuid_from_int(prompt.int ^ _RESPONSE_BITS)


@dataclass
class MappedRecord:
    """What one OTLP record became."""

    prompts: list[PromptEvent] = field(default_factory=list)
    responses: list[ResponseEvent] = field(default_factory=list)
    span_events: list[SpanEvent] = field(default_factory=list)
    """Tool executions, agent invocations and retrievals (topic ``llm.spans``)."""
    dead_letters: list[DeadLetter] = field(default_factory=list)
    spans: int = 0
    """Spans read."""
    skipped: int = 0
    """Spans that are neither GenAI calls nor steps (counted, not dead-lettered)."""


@dataclass(frozen=True)
class _ResourceView:
    """What every span of one resource shares."""

    app: str | None
    environment: str | None
    token_hash: str | None


class _Decoded:
    """A record decoded as ``TracesData`` when first asked (for a dead letter's bytes)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.traces: TracesData | None = None

    def __call__(self) -> TracesData:
        if self.traces is None:
            self.traces = decode_traces(self.data)
        return self.traces


@dataclass
class _Source:
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None


class OtlpMapper:
    """Maps OTLP trace data onto llmpulse's call events.

    Args:
        limits: size caps the events must meet (as everywhere else).
        bindings: token -> apps; when given, every span must carry the Collector's token
            hash on its resource and name an app bound to that token.
        refresh_bindings: a fresher look at the bindings, asked (and kept) before a span
            is refused ``app_not_allowed`` (``TokensFile.refresh``: a token the Collector
            took a moment ago is not refused until the next look).
        payload_max: bytes of a rejected span kept in its dead letter.
        default_environment: when the resource names none.
    """

    def __init__(self, *, limits: Limits | None = None, bindings: TokenBindings | None = None,
                 refresh_bindings: Callable[[], TokenBindings] | None = None,
                 payload_max: int = 64 * 1024, default_environment: str = "production") -> None:
        self.limits = limits if limits is not None else Limits.from_env()
        self.bindings = bindings
        self.refresh_bindings = refresh_bindings
        self.payload_max = payload_max
        self.default_environment = default_environment
        self.counts: Counter[str] = Counter()
        self._now: datetime | None = None
        self._window: Any = None
        self._clean: tuple[Limits | None, set[str]] = (None, set())
        """Identifiers and keys found clean under these limits (``prompt_of_a_span``)."""

    def map_record(self, data: bytes, *, content_type: str = "protobuf", topic: str | None = None,
                   partition: int | None = None, offset: int | None = None) -> MappedRecord:
        """Map one OTLP record (protobuf ``TracesData`` or OTLP/JSON).

        Protobuf of the common shapes has its span attributes read in one pass per span
        (``_wire_reader``); the rest is decoded as ``TracesData``: the same events and dead
        letters either way."""
        source = _Source(topic, partition, offset)
        if content_type == "protobuf":
            read = read_traces(data)
            if read is not None:
                flat, span_attributes = read
                span_attributes.reverse()  # taken from the end: each span's dict let go after it
                try:
                    return self._map(flat, source, span_attributes.pop, _Decoded(data))
                except OtlpDecodeError:  # (not seen: what the reader takes, TracesData reads)
                    pass  # the record's outcome is then protobuf's, below
        try:
            traces = decode_traces(data, content_type=content_type)
        except OtlpDecodeError as exc:
            self.counts[f"dlq:{exc.reason}"] += 1
            return MappedRecord(dead_letters=[self._letter(exc.reason, exc.detail, None, data,
                                                           source)])
        return self.map_traces(traces, source=source)

    def map_traces(self, traces: TracesData, *, source: _Source | None = None) -> MappedRecord:
        """Map decoded trace data; see ``map_record``."""
        return self._map(traces, source or _Source(), None, lambda: traces)

    def _map(self, traces: Any, source: _Source, span_attributes: Callable[[], dict[str, Any]] | None,
             original: Callable[[], TracesData]) -> MappedRecord:
        """Map ``traces`` (a ``TracesData``, or a ``FlatTracesData`` whose spans' attributes,
        already read, ``span_attributes()`` hands out one by one, in order: each dict is let
        go once its span is mapped, fewer young objects for the collector to walk); a
        rejected span's dead letter holds its bytes as ``original()`` (the record as
        ``TracesData``) has them."""
        out = MappedRecord()
        self._now = utcnow()  # the validation's clock, read once per record
        self._window = time_window(self.limits, self._now)
        if self._clean[0] is not self.limits or len(self._clean[1]) > _CLEAN_MAX:
            self._clean = (self.limits, set())
        for r, resource_spans in enumerate(traces.resource_spans):
            try:
                resource = attributes(resource_spans.resource.attributes)
                view = self._resource_view(resource)
            except (ValueError, SchemaError) as exc:
                resource = None
                resource_error = (exc if isinstance(exc, SchemaError) else
                                  SchemaError("too_deep", str(exc), field="$.resource.attributes"))
            for s, scope_spans in enumerate(resource_spans.scope_spans):
                scope_name = scope_spans.scope.name[:256] or None
                for k, span in enumerate(scope_spans.spans):
                    out.spans += 1
                    attrs = None if span_attributes is None else span_attributes()
                    try:
                        if resource is None:
                            raise resource_error
                        events = self._map_span(view, scope_name, span, attrs)
                    except SchemaError as exc:
                        self._reject(out, exc, original(), (r, s, k), source)
                        continue
                    except Exception as exc:  # the mapper never dies on one span
                        logger.warning("OTLP span not mapped: %s", type(exc).__name__, exc_info=True)
                        error = SchemaError("invalid_value", f"the span could not be mapped: "
                                            f"{type(exc).__name__}: {exc}"[:500])
                        self._reject(out, error, original(), (r, s, k), source)
                        continue
                    if events is None:
                        out.skipped += 1
                    elif isinstance(events, SpanEvent):
                        out.span_events.append(events)
                    else:
                        out.prompts.append(events[0])
                        out.responses.append(events[1])
        self.counts["spans"] += out.spans
        self.counts["calls"] += len(out.prompts)
        self.counts["steps"] += len(out.span_events)
        self.counts["skipped"] += out.skipped
        return out

    def _resource_view(self, resource: dict[str, Any]) -> _ResourceView:
        token_hash = resource.get(TOKEN_HASH_ATTRIBUTE)
        return _ResourceView(
            app=c.as_str(resource, "llmpulse.app", "service.name"),
            environment=c.as_str(resource, "llmpulse.environment", "deployment.environment.name",
                                 "deployment.environment"),
            token_hash=token_hash if isinstance(token_hash, str) else None)

    def _map_span(self, resource: _ResourceView, scope_name: str | None, span: Span,
                  attrs: dict[str, Any] | None) -> tuple[PromptEvent, ResponseEvent] | SpanEvent | None:
        try:
            if attrs is None:
                attrs = attributes(span.attributes)
            span_events = span.events
            events = [(e.name, attributes(e.attributes)) for e in span_events] if span_events else []
        except ValueError as exc:
            raise SchemaError("too_deep", str(exc), field="$.attributes") from None
        for name, event_attrs in events:
            if name == c.DETAILS_EVENT:
                for key, value in event_attrs.items():
                    attrs.setdefault(key, value)
        shape = f.shape_of(attrs)
        if not shape.genai:
            return None
        operation = c.as_str(attrs, "gen_ai.operation.name")
        if operation is None:
            legacy = c.as_str(attrs, "llm.request.type")
            operation = _LEGACY_OPERATIONS.get(legacy or "chat", legacy or "chat")
        if operation == "completion":
            operation = "text_completion"
        step = operation in c.STEP_OPERATIONS
        if operation not in c.INFERENCE_OPERATIONS and not step:
            return None
        raw_trace, raw_span = span.trace_id, span.span_id
        start_ns, end_ns = span.start_time_unix_nano, span.end_time_unix_nano
        if (len(raw_trace) != 16 or len(raw_span) != 8 or raw_trace == _ZERO_TRACE
                or raw_span == _ZERO_SPAN or start_ns <= 0 or end_ns < start_ns):
            raise SchemaError("missing_ids", "the span needs a 16-byte trace id, an 8-byte span "
                              "id, a start time and an end time not before it",
                              field="$.span_id" if len(raw_trace) == 16 else "$.trace_id")
        trace_id, span_id = raw_trace.hex(), raw_span.hex()  # (the ids call_id_for takes)
        raw_parent = span.parent_span_id
        parent_id = raw_parent.hex() if len(raw_parent) == 8 and raw_parent != _ZERO_SPAN else None
        optional = shape.optional  # (below: "if optional else None")
        app = (c.as_str(attrs, "llmpulse.app") if optional else None) or resource.app
        if not app:
            raise SchemaError("missing_field", "the span's resource has no service.name",
                              field="$.resource.attributes.service.name")
        bindings = self.bindings
        if bindings is not None and not bindings.allows(resource.token_hash, app):
            refresh = self.refresh_bindings
            if refresh is not None:  # one more look first (kept for the spans after this one)
                bindings = self.bindings = refresh()
            if refresh is None or not bindings.allows(resource.token_hash, app):
                problem = bindings.problem
                raise SchemaError("app_not_allowed", f"the token that sent this span may not "
                                  f"write app {app!r}" + (f": {problem}" if problem else ""),
                                  field="$.resource.attributes.service.name")
        call_id = span_id if step else f"otel-{trace_id}-{span_id}"  # (call_id_for inline)
        provider = c.as_str(attrs, "gen_ai.provider.name", "gen_ai.system")
        if provider:
            provider = provider.lower()
            provider = _PROVIDERS.get(provider, provider)
        else:
            provider = None
        # The call's fields; one that is None is left out (its default), at less cost to
        # build the events. The readers run in a fixed order: the first wrong type is named.
        common: dict[str, Any] = {"call_id": call_id, "trace_id": trace_id, "span_id": span_id,
                                  "app": app}
        if parent_id is not None:
            common["parent_span_id"] = parent_id
        if optional:
            common["environment"] = (c.as_str(attrs, "llmpulse.environment")
                                     or resource.environment or self.default_environment)
            for name, keys in _OPTIONAL_CALL_FIELDS:
                value = c.as_str(attrs, *keys)
                if value is not None:
                    common[name] = value
        else:
            common["environment"] = resource.environment or self.default_environment
        model = c.as_str(attrs, "gen_ai.request.model", "llm.request.model")
        if model is not None:
            common["request_model"] = model
        if provider is not None:
            common["provider"] = provider
        origin: dict[str, Any] = {"llmpulse.source": "otlp", "otel.span_name": span.name[:256]}
        if scope_name:
            origin["otel.scope.name"] = scope_name
        usage = f.planned_counts(attrs, shape.usage_plan) if shape.usage_plan else {}
        error = f.error_of(span, attrs, events)
        if step:
            return f.step_event(common, operation, span, attrs, events, origin, usage, error,
                                self.limits, self._now)
        prompt_id, response_id = _event_ids(start_ns, call_id)
        messages = input_messages(attrs, events)
        temperature = c.as_float(attrs, "gen_ai.request.temperature")
        request: dict[str, Any] = {} if temperature is None else {"temperature": temperature}
        if optional:  # (else all None and False: the fields' defaults)
            request["max_tokens"] = c.as_int(attrs, "gen_ai.request.max_tokens")
            request["top_p"] = c.as_float(attrs, "gen_ai.request.top_p")
            request["expects_json"] = c.as_str(attrs, "gen_ai.output.type") == "json"
        prompt_attributes = (f.with_extras(origin, attrs, f.REQUEST_EXTRAS)
                             if shape.request_extras else dict(origin))
        text, reason, tool_calls = output(attrs, events)
        ttfc = c.as_float(attrs, "gen_ai.response.time_to_first_chunk",
                          "gen_ai.response.time_to_first_token") if optional else None
        if ttfc is None and events:  # OpenLLMetry: one span event per streamed chunk
            chunks = [e.time_unix_nano for e in span.events
                      if e.name == "gen_ai.content.completion.chunk" and e.time_unix_nano]
            ttfc = (min(chunks) - start_ns) / 1e9 if chunks and min(chunks) >= start_ns else None
        finish_reason = c.as_str(attrs, "gen_ai.response.finish_reasons") or reason
        response_model = c.as_str(attrs, "gen_ai.response.model")
        model_response_id = c.as_str(attrs, "gen_ai.response.id")
        streamed = optional and bool(c.as_bool(attrs, "gen_ai.request.stream",
                                                "gen_ai.is_streaming", "llm.is_streaming"))
        # The events are built directly (the readers above checked every type; a None is the
        # field's default) and held to the contract's ranges and the size limits.
        if optional:
            f.non_negative("max_tokens", request["max_tokens"], f.UINT32_MAX)
        prompt = PromptEvent(
            **common, event_id=prompt_id, occurred_at=f.from_timestamp(start_ns / 1e9, UTC),
            operation=operation,
            messages=[ChatMessage(role=m["role"], content=m["content"]) if len(m) == 2  # (the common case)
                      else f.message_with_tools(m, self.limits) if "tool_calls" in m
                      else ChatMessage(**m) for m in messages],
            attributes=prompt_attributes, **request)
        if not prompt_of_a_span(prompt, self.limits, self._window, self._clean[1]):
            validate_event(prompt, self.limits, now=self._now)  # (decides, names the rule)
        latency_ms = (end_ns - start_ns) / 1e6  # (>= 0: the end is not before the start)
        ttft_ms = None if ttfc is None else ttfc * 1000.0
        f.non_negative("time_to_first_token_ms", ttft_ms)
        answer: dict[str, Any] = {}  # (what is None, False or no tool calls: left to the defaults)
        if error is not None:
            answer["error"] = ErrorInfo(**error)
        if tool_calls:
            answer["tool_calls"] = [f.bounded_tool(t, self.limits) for t in tool_calls]
        if ttft_ms is not None:
            answer["time_to_first_token_ms"] = ttft_ms
        if streamed:
            answer["streamed"] = True
        response = ResponseEvent(
            **common, event_id=response_id, occurred_at=f.from_timestamp(end_ns / 1e9, UTC),
            text=text if text is not None or error else "", finish_reason=finish_reason,
            response_model=response_model, response_id=model_response_id,
            usage=f.usage_of(usage), latency_ms=latency_ms, attributes=origin, **answer)
        if self._now is None or not answer_after_its_prompt(response, self.limits, self._now):
            validate_event(response, self.limits, now=self._now)
        return prompt, response

    def _reject(self, out: MappedRecord, error: SchemaError, traces: TracesData,
                where: tuple[int, int, int], source: _Source) -> None:
        """Dead-letter span ``where`` (indices of its resource, scope and span) with its
        resource and scope."""
        self.counts[f"dlq:{error.reason}"] += 1
        resource_spans = traces.resource_spans[where[0]]
        scope_spans = resource_spans.scope_spans[where[1]]
        span = scope_spans.spans[where[2]]
        one = TracesData()
        rs = one.resource_spans.add()
        rs.resource.CopyFrom(resource_spans.resource)
        ss = rs.scope_spans.add()
        ss.scope.CopyFrom(scope_spans.scope)
        ss.spans.add().CopyFrom(span)
        out.dead_letters.append(self._letter(error.reason, error.detail, error.field,
                                             one.SerializeToString(), source))

    def _letter(self, reason: str, detail: str, where: str | None, payload: bytes,
                source: _Source) -> DeadLetter:
        return dead_letter(reason, detail[:1000], error_field=where, stage=STAGE,
                           source_topic=source.topic, source_partition=source.partition,
                           source_offset=source.offset, payload=payload,
                           payload_max=self.payload_max)
