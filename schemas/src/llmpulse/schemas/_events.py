"""Event contracts v1: what flows through llmpulse's topics.

Every event is a ``msgspec.Struct`` tagged by ``type`` so one decoder reads any of them.
Field names follow the OpenTelemetry GenAI semantic conventions where one exists
(``request_model`` is ``gen_ai.request.model``, ``input_tokens`` is
``gen_ai.usage.input_tokens`` ...); ``schemas/OTEL_MAPPING.md`` has the whole mapping.

Example:
    >>> from llmpulse.schemas import PromptEvent, ChatMessage
    >>> p = PromptEvent(call_id="c1", app="support-bot",
    ...                 messages=[ChatMessage(role="user", content="Where is my order?")])
    >>> p.__struct_config__.tag, p.schema_version, p.event_id.version
    ('prompt', 1, 7)
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from msgspec import Meta, Struct, field

from llmpulse.schemas._ids import uuid7

__all__ = [
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
    "TokenUsage",
    "utcnow",
]

SCHEMA_VERSION = 1
"""The contract version this package writes. Readers accept the versions in
``SUPPORTED_SCHEMA_VERSIONS`` (see ``llmpulse.schemas.validate``)."""

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


class EventBase(Struct, kw_only=True, tag_field="type", omit_defaults=True):
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


class ChatMessage(Struct, kw_only=True, omit_defaults=True):
    """One message of a chat prompt (``gen_ai.input.messages``)."""

    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str
    name: str | None = None


class RetrievedDocument(Struct, kw_only=True, omit_defaults=True):
    """A document retrieved for a RAG prompt (``gen_ai.retrieval.documents``)."""

    id: Identifier
    content: str = ""
    score: Finite32 | None = None
    source: str | None = None


class PromptEvent(CallEvent, tag="prompt", kw_only=True):
    """A prompt sent to a model (topic ``llm.prompts``)."""

    operation: str = "chat"
    """``gen_ai.operation.name``: chat, text_completion, embeddings ..."""
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


class ErrorInfo(Struct, kw_only=True, omit_defaults=True):
    """What went wrong with a call (``error.type`` and the message)."""

    type: Identifier
    message: str = ""


class ResponseEvent(CallEvent, tag="response", kw_only=True):
    """A response received, or the error in its place (topic ``llm.responses``)."""

    text: str | None = None
    error: ErrorInfo | None = None
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


class ScoreResult(Struct, kw_only=True, omit_defaults=True):
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
    applies_to: Literal["prompt", "response", "context"]
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
    PromptEvent | ResponseEvent | FeedbackEvent | EnrichedCall | GuardrailVerdict | DriftResult
    | Alert | DeadLetter | PromptVersion | PromptLabel
)
"""Any event of contract v1."""
