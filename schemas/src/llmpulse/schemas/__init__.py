"""llmpulse event contracts v1.1: typed events, limits, validation, batch records.

Example:
    >>> from llmpulse.schemas import PromptEvent, ResponseEvent, TokenUsage
    >>> from llmpulse.schemas import decode_record, encode_event, partition_for
    >>> prompt = PromptEvent(call_id="c-1", app="support-bot", prompt_id="greet",
    ...                      prompt_version="3", request_model="gpt-4o-mini")
    >>> response = ResponseEvent(call_id="c-1", app="support-bot", text="Hello!",
    ...                          latency_ms=412.0, usage=TokenUsage(input_tokens=12, output_tokens=3))
    >>> [type(e).__name__ for e in decode_record(encode_event(response)).events]
    ['ResponseEvent']
    >>> 0 <= partition_for("c-1", 6) < 6
    True
"""

from llmpulse.schemas._codec import (
    DecodedRecord,
    RecordFailure,
    decode_event,
    decode_record,
    encode_batch,
    encode_event,
)
from llmpulse.schemas._dead_letters import (
    DLQ_PAYLOAD_MAX_BYTES,
    dead_letter,
    dead_letters,
)
from llmpulse.schemas._events import (
    OPERATIONS,
    SCHEMA_VERSION,
    Alert,
    CallEvent,
    ChatMessage,
    DeadLetter,
    DriftResult,
    EnrichedCall,
    ErrorInfo,
    Event,
    EventBase,
    FeatureDrift,
    FeedbackEvent,
    GuardrailVerdict,
    PromptEvent,
    PromptLabel,
    PromptVersion,
    ResponseEvent,
    RetrievedDocument,
    ScoreResult,
    SpanEvent,
    TokenUsage,
    ToolCall,
    utcnow,
)
from llmpulse.schemas._export import BatchRecord, export_json_schemas, json_schemas
from llmpulse.schemas._ids import (
    uuid7,
    uuid7_after,
    uuid7_str,
    uuid7_str_int,
    uuid7_time_ms,
)
from llmpulse.schemas._limits import (
    STORE_MAX_TIME,
    STORE_MIN_TIME,
    SUPPORTED_SCHEMA_VERSIONS,
    Limits,
    bounded_text,
    validate_event,
)
from llmpulse.schemas._partition import event_key, murmur2, partition_for
from llmpulse.schemas.errors import LlmpulseError, SchemaError

__all__ = [
    "DLQ_PAYLOAD_MAX_BYTES",
    "OPERATIONS",
    "SCHEMA_VERSION",
    "STORE_MAX_TIME",
    "STORE_MIN_TIME",
    "SUPPORTED_SCHEMA_VERSIONS",
    "Alert",
    "BatchRecord",
    "CallEvent",
    "ChatMessage",
    "DeadLetter",
    "DecodedRecord",
    "DriftResult",
    "EnrichedCall",
    "ErrorInfo",
    "Event",
    "EventBase",
    "FeatureDrift",
    "FeedbackEvent",
    "GuardrailVerdict",
    "Limits",
    "LlmpulseError",
    "PromptEvent",
    "PromptLabel",
    "PromptVersion",
    "RecordFailure",
    "ResponseEvent",
    "RetrievedDocument",
    "SchemaError",
    "ScoreResult",
    "SpanEvent",
    "TokenUsage",
    "ToolCall",
    "bounded_text",
    "dead_letter",
    "dead_letters",
    "decode_event",
    "decode_record",
    "encode_batch",
    "encode_event",
    "event_key",
    "export_json_schemas",
    "json_schemas",
    "murmur2",
    "partition_for",
    "utcnow",
    "uuid7",
    "uuid7_after",
    "uuid7_str",
    "uuid7_str_int",
    "uuid7_time_ms",
    "validate_event",
]
