"""Event contracts v1.1 (``schema_version`` 2): what flows through llmpulse's topics.

Every event is a ``msgspec.Struct`` tagged by ``type`` so one decoder reads any of them.
Field names follow the OpenTelemetry GenAI semantic conventions where one exists
(``request_model`` is ``gen_ai.request.model``, ``input_tokens`` is
``gen_ai.usage.input_tokens`` ...); ``schemas/OTEL_MAPPING.md`` has the whole mapping.

v1.1 is additive over v1 (every v1 record still decodes): span and parent span ids on
every call event, tool calls on messages and answers, reasoning and cache-creation
tokens, and the ``span`` event for the steps of a trace that are not LLM calls (a tool
execution, an agent step, a retrieval). A trace is the calls and spans sharing a
``trace_id``; the calls stay LLM calls only.

Events, messages, tool calls and scores are ``gc=False`` structs: they hold only values,
lists and maps of values and other such structs, never a cycle, so the cycle collector
need not track them. A worker holds tens of thousands of them in one micro-batch; tracked,
each collection walked them all (v1.1's ``tool_calls`` lists and the scores' ``attributes``
maps had made a tracked object of every message and score too). Never put an event into
one of its own lists or maps: such a cycle would not be collected.

Example:
    >>> from llmpulse.schemas import PromptEvent, ChatMessage
    >>> p = PromptEvent(call_id="c1", app="support-bot",
    ...                 messages=[ChatMessage(role="user", content="Where is my order?")])
    >>> p.__struct_config__.tag, p.schema_version, p.event_id.version
    ('prompt', 2, 7)
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from msgspec import Meta, Struct, field

from llmpulse.schemas._ids import uuid7

__all__ = [
    "OPERATIONS",
    "SCHEMA_VERSION",
    "Alert",
    "CallEvent",
    "ChatMessage",
    "DeadLetter",
    "DriftResult",
    "EnrichedCall",
    "ErrorInfo",
    "Event",
    "EventBase",
    "FeatureDrift",
    "FeedbackEvent",
    "GuardrailVerdict",
    "PromptEvent",
    "PromptLabel",
    "PromptVersion",
    "ResponseEvent",
    "RetrievedDocument",
    "ScoreResult",
    "SpanEvent",
    "TokenUsage",
    "ToolCall",
    "utcnow",
]

SCHEMA_VERSION = 2
"""The contract version this package writes (2 = v1.1). Readers accept the versions in
``SUPPORTED_SCHEMA_VERSIONS`` (1 and 2: v1.1 only adds optional fields and the ``span``
event, so a v1 record decodes as it did). Upgrade readers (workers, sink) before writers."""

OPERATIONS: tuple[str, ...] = (
    "chat", "text_completion", "embeddings", "execute_tool", "invoke_agent", "retrieval",
)
"""The operations llmpulse knows (``gen_ai.operation.name``). A v1.1 event may carry any
other lowercase identifier (OpenTelemetry adds values such as ``generate_content``), kept
as is; see ``llmpulse.schemas._limits`` for the rule."""

# Bounds that keep every accepted value storable (see ``llmpulse.schemas._limits``): an
# integer fits its column's type, a float is finite and in a range a dashboard can average.
UInt32 = Annotated[int, Meta(ge=0, le=2**32 - 1)]
"""A count stored as ``UInt32`` (tokens, character offsets)."""
Count64 = Annotated[int, Meta(ge=0, le=2**63 - 1)]
"""A count or offset stored as a 64-bit integer."""
Partition = Annotated[int, Meta(ge=0, le=2**31 - 1)]
"""A Kafka partition (``Int32``)."""
Offset = Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)]
"""A Kafka offset (``Int64``)."""
DurationMs = Annotated[float, Meta(ge=0, le=7 * 86_400_000)]
"""A duration in milliseconds, at most 7 days (``Float32``)."""
CostUsd = Annotated[float, Meta(ge=0, le=1_000_000)]
"""The cost of one call in US dollars, at most a million."""
Probability = Annotated[float, Meta(ge=0, le=1)]
Finite32 = Annotated[float, Meta(ge=-1e30, le=1e30)]
"""A finite value that fits ``Float32`` (scores, document scores)."""
Finite64 = Annotated[float, Meta(ge=-1e300, le=1e300)]
"""A finite value stored as ``Float64`` (test statistics, alert values)."""
Identifier = Annotated[str, Meta(min_length=1)]
AwareDatetime = Annotated[datetime, Meta(tz=True)]
AttributeValue = str | int | float | bool | None


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class EventBase(Struct, kw_only=True, tag_field="type", omit_defaults=True, gc=False):
    """Fields every event carries, whatever its topic."""

    event_id: uuid.UUID = field(default_factory=uuid7)
    """UUIDv7, unique per event: ClickHouse tables are idempotent on it."""
    schema_version: int = field(default_factory=lambda: SCHEMA_VERSION)
    """Always written, even though it equals the default (a factory is never omitted)."""
    occurred_at: AwareDatetime = field(default_factory=utcnow)
    """When it happened, in UTC (timezone required on the wire)."""
    app: Identifier
    environment: str = "production"
    attributes: dict[str, AttributeValue] = {}
    """Open map for anything else (OTel attribute values: str, int, float, bool)."""


class CallEvent(EventBase, kw_only=True):
    """Fields of the events that belong to one LLM call (the common envelope)."""

    call_id: Identifier
    """The id later feedback refers to; the Kafka key and partition of every call topic."""
    trace_id: str | None = None
    """The trace the call belongs to (OpenTelemetry's 32 hex digits when the SDK makes it)."""
    span_id: str | None = None
    """The call's own span in the trace (16 hex digits when the SDK makes it)."""
    parent_span_id: str | None = None
    """The span the call ran inside (an agent step, a tracked function), if any."""
    session_id: str | None = None
    """``gen_ai.conversation.id``."""
    user_id: str | None = None
    """The app may hash it before sending."""
    prompt_id: str | None = None
    prompt_version: str | None = None
    request_model: str | None = None
    """``gen_ai.request.model``."""
    provider: str | None = None
    """``gen_ai.provider.name`` (openai, anthropic, vllm, ollama ...)."""


class ToolCall(Struct, kw_only=True, omit_defaults=True, gc=False):
    """A tool call a model asked for (``gen_ai.tool.call.*``; a ``tool_call`` message part).

    ``arguments`` is the raw text the model produced, never parsed (it may not be JSON:
    processors check that). It is bounded by ``Limits.max_tool_arguments_chars``; a
    producer cuts longer text with ``llmpulse.schemas.bounded_text`` and sets
    ``arguments_truncated``.
    """

    id: str | None = None
    """``gen_ai.tool.call.id``: what the tool message answering it refers to."""
    name: Identifier
    """``gen_ai.tool.name``."""
    arguments: str = ""
    arguments_truncated: bool = False


class ChatMessage(Struct, kw_only=True, omit_defaults=True, gc=False):
    """One message of a chat prompt (``gen_ai.input.messages``)."""

    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str
    name: str | None = None
    tool_calls: list[ToolCall] = []
    """An assistant message's tool calls."""
    tool_call_id: str | None = None
    """A tool message: the id of the tool call it answers."""


class RetrievedDocument(Struct, kw_only=True, omit_defaults=True):
    """A document retrieved for a RAG prompt (``gen_ai.retrieval.documents``)."""

    id: Identifier
    content: str = ""
    score: Finite32 | None = None
    source: str | None = None


class PromptEvent(CallEvent, tag="prompt", kw_only=True):
    """A prompt sent to a model (topic ``llm.prompts``)."""

    operation: str = "chat"
    """``gen_ai.operation.name``: one of ``OPERATIONS`` or another lowercase identifier."""
    messages: list[ChatMessage] = []
    template_variables: dict[str, str] = {}
    """The variables the prompt template was rendered with (replay re-renders them)."""
    retrieved_context: list[RetrievedDocument] = []
    temperature: Annotated[float, Meta(ge=0, le=10)] | None = None
    """``gen_ai.request.temperature``."""
    max_tokens: UInt32 | None = None
    """``gen_ai.request.max_tokens``."""
    top_p: Probability | None = None
    expects_json: bool = False
    """The prompt asked for a JSON answer (quality scorers check validity)."""


class TokenUsage(Struct, kw_only=True, omit_defaults=True):
    """Token counts (``gen_ai.usage.*``)."""

    input_tokens: UInt32 = 0
    output_tokens: UInt32 = 0
    cached_input_tokens: UInt32 = 0
    reasoning_tokens: UInt32 = 0
    """Thinking tokens (``gen_ai.usage.reasoning_tokens``), counted inside ``output_tokens``
    by OpenAI, in addition by providers that bill them apart (recorded as reported)."""
    cache_creation_input_tokens: UInt32 = 0
    """Input tokens written to the provider's prompt cache
    (``gen_ai.usage.cache_creation.input_tokens``; Anthropic bills them apart)."""


class ErrorInfo(Struct, kw_only=True, omit_defaults=True):
    """What went wrong with a call (``error.type`` and the message)."""

    type: Identifier
    message: str = ""


class ResponseEvent(CallEvent, tag="response", kw_only=True):
    """A response received, or the error in its place (topic ``llm.responses``)."""

    text: str | None = None
    error: ErrorInfo | None = None
    tool_calls: list[ToolCall] = []
    """The tool calls in the answer (an answer may hold only tool calls, and no text)."""
    finish_reason: str | None = None
    """``gen_ai.response.finish_reasons`` (the first): stop, length, content_filter ..."""
    response_model: str | None = None
    """``gen_ai.response.model``."""
    response_id: str | None = None
    """``gen_ai.response.id``."""
    usage: TokenUsage | None = None
    latency_ms: DurationMs
    """Wall time of the whole call (``gen_ai.client.operation.duration``, in ms)."""
    time_to_first_token_ms: DurationMs | None = None
    cost_usd: CostUsd | None = None
    streamed: bool = False


class FeedbackEvent(CallEvent, tag="feedback", kw_only=True):
    """Human (or automated) feedback on a call, sent any time later (topic ``llm.feedback``)."""

    thumbs: Literal["up", "down"] | None = None
    rating: Annotated[int, Meta(ge=1, le=5)] | None = None
    """A 1-5 rating."""
    label: str | None = None
    correction: str | None = None
    comment: str | None = None
    source: Literal["user", "annotator", "automated"] = "user"
    """Who gave it."""
    author_id: str | None = None


class ScoreResult(Struct, kw_only=True, omit_defaults=True, gc=False):
    """One scorer's output for one call. ``value`` is None when no model produced it."""

    name: Identifier
    scorer_version: str
    backend: str
    """What produced the value (``detoxify:original``, ``profanity-check``, ``heuristic``)."""
    value: Finite32 | None = None
    label: str | None = None
    status: Literal["ok", "unavailable", "error", "not_applicable"] = "ok"
    detail: str | None = None
    """Why the value is missing, naming the model or dependency."""
    attributes: dict[str, str] = {}
    """Provenance of the value (a cost's ``price_source``, ``price_date``, ``price_model``);
    the store keeps them in the call's ``attributes`` as ``<name>.<key>``."""


class GuardrailVerdict(CallEvent, tag="guardrail_verdict", kw_only=True):
    """A guardrail rule that matched a call (topic ``llm.alerts`` and the verdicts table)."""

    rule_id: Identifier
    rule_kind: str
    applies_to: Literal["prompt", "response", "context", "tool_arguments", "tool_result"]
    """What the rule read; on a span (``tool_arguments``, ``tool_result``) the verdict
    carries the span's ``call_id``, ``trace_id`` and ``span_id``."""
    severity: Literal["info", "low", "medium", "high", "critical"]
    action: Literal["flag", "block", "redact"]
    policy_version: str
    span_start: UInt32 | None = None
    span_end: UInt32 | None = None
    match_preview: str | None = None
    """The matched text masked (``j***@***.com``); never the secret itself."""
    message: str = ""


class EnrichedCall(CallEvent, tag="enriched_call", kw_only=True):
    """A prompt joined with its response, scored and guarded (topic ``llm.enriched``)."""

    prompt: PromptEvent | None = None
    response: ResponseEvent | None = None
    complete: bool = True
    incomplete_reason: str | None = None
    """``response_timeout`` or ``prompt_timeout`` when one half never came."""
    scores: list[ScoreResult] = []
    verdicts: list[GuardrailVerdict] = []
    scorer_set_version: str = ""
    policy_version: str = ""
    processed_at: AwareDatetime = field(default_factory=utcnow)


class SpanEvent(CallEvent, tag="span", kw_only=True):
    """A step of a trace that is not an LLM call (topic ``llm.spans``, key ``trace_id``):
    a tool execution, an agent step, a retrieval. One event, sent when the step ends, so
    nothing waits for a join; ``occurred_at`` is the end.

    ``call_id`` is the span's own id (the same value as ``span_id``), so verdicts on the
    span and the dead-letter paths address it like a call.

    Example:
        >>> from datetime import UTC, datetime
        >>> from llmpulse.schemas import SpanEvent, ToolCall
        >>> span = SpanEvent(call_id="b7ad6b7169203331", span_id="b7ad6b7169203331",
        ...                  trace_id="0af7651916cd43dd8448eb211c80319c", app="shop",
        ...                  name="lookup_order", operation="execute_tool",
        ...                  started_at=datetime.now(UTC), latency_ms=12.5,
        ...                  tool=ToolCall(id="call_1", name="lookup_order",
        ...                                arguments='{"order": 42}'))
        >>> span.__struct_config__.tag, span.status
        ('span', 'ok')
    """

    trace_id: Identifier  # required on a span
    span_id: Identifier  # required on a span
    name: Identifier
    """What the step is (``gen_ai.tool.name``, ``gen_ai.agent.name``, a function name)."""
    operation: Identifier
    """``execute_tool``, ``invoke_agent``, ``retrieval``, or another lowercase identifier."""
    started_at: AwareDatetime
    latency_ms: DurationMs
    status: Literal["ok", "error"] = "ok"
    error: ErrorInfo | None = None
    tool: ToolCall | None = None
    """For ``execute_tool``: the tool's name, the call id and the arguments it ran with."""
    result_preview: str | None = None
    """The start of what the step returned, bounded by ``Limits.max_tool_result_chars``."""
    result_truncated: bool = False
    usage: TokenUsage | None = None
    """An agent span may carry the totals of the calls inside it."""
    cost_usd: CostUsd | None = None


class FeatureDrift(Struct, kw_only=True, omit_defaults=True):
    """One feature's drift test in one window."""

    feature: Identifier
    test: str
    """The statistical test (``ks``, ``chisquare``, ``psi``, ``wasserstein``, ``mmd``)."""
    statistic: Finite64
    p_value: Probability | None = None
    threshold: Finite64
    drifted: bool


class DriftResult(EventBase, tag="drift_result", kw_only=True):
    """A window of traffic compared with its reference (topic ``llm.drift``)."""

    prompt_id: str | None = None
    prompt_version: str | None = None
    request_model: str | None = None
    window_start: AwareDatetime
    window_end: AwareDatetime
    reference_start: AwareDatetime
    reference_end: AwareDatetime
    window_size: Count64
    reference_size: Count64
    features: list[FeatureDrift] = []
    share_drifted: Annotated[float, Meta(ge=0, le=1)] = 0.0
    drifted: bool = False
    report_uri: str | None = None


class Alert(EventBase, tag="alert", kw_only=True):
    """An alert raised or resolved (topic ``llm.alerts``); one incident, one ``dedup_key``."""

    rule: Identifier
    status: Literal["firing", "resolved"]
    severity: Literal["info", "low", "medium", "high", "critical"] = "medium"
    dedup_key: Identifier
    summary: str
    prompt_id: str | None = None
    prompt_version: str | None = None
    request_model: str | None = None
    started_at: AwareDatetime | None = None
    value: Finite64 | None = None
    threshold: Finite64 | None = None
    link: str | None = None


class DeadLetter(Struct, tag="dead_letter", tag_field="type", kw_only=True, omit_defaults=True):
    """A record that could not be processed, with the reason (topic ``llm.dlq``)."""

    event_id: uuid.UUID = field(default_factory=uuid7)
    schema_version: int = field(default_factory=lambda: SCHEMA_VERSION)
    occurred_at: AwareDatetime = field(default_factory=utcnow)
    reason: Identifier
    """A stable code (``malformed_json``, ``unknown_schema_version`` ...)."""
    detail: str
    """The field and the rule, in words."""
    error_field: str | None = None
    """The field that broke a rule, as a path (``$.events[3].call_id``)."""
    stage: str = "validate"
    """Which stage rejected it (validate, join, score, sink)."""
    source_topic: str | None = None
    source_partition: Partition | None = None
    source_offset: Offset | None = None
    batch_index: Count64 | None = None
    payload: bytes = b""
    """The rejected bytes (base64 in JSON), cut to the configured cap."""
    payload_truncated: bool = False


class PromptVersion(EventBase, tag="prompt_version", kw_only=True):
    """One version of a prompt template (topic ``llm.prompt-versions``, compacted, key
    ``<prompt_id>@<version>``). The version is a hash of the content."""

    prompt_id: Identifier
    version: Identifier
    messages: list[ChatMessage]
    """The template's messages; ``{name}`` marks a variable."""
    variables: list[str] = []
    model: str | None = None
    model_settings: dict[str, AttributeValue] = {}
    metadata: dict[str, str] = {}
    source: str | None = None
    """Where it was published from (a file path, a commit)."""


class PromptLabel(EventBase, tag="prompt_label", kw_only=True):
    """A movable label pointing at a version (``production``, ``staging``, ``v3``); topic
    ``llm.prompt-versions``, key ``<prompt_id>#<label>`` so compaction keeps the latest."""

    prompt_id: Identifier
    label: Identifier
    version: Identifier


Event = (
    PromptEvent | ResponseEvent | FeedbackEvent | EnrichedCall | GuardrailVerdict | SpanEvent
    | DriftResult | Alert | DeadLetter | PromptVersion | PromptLabel
)
"""Any event of contract v1.1."""
