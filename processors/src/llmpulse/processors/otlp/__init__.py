"""OpenTelemetry in: GenAI spans that the OpenTelemetry Collector writes to Kafka, mapped onto
llmpulse's prompt and response events (inference spans) and span events (tool executions,
agent invocations, retrievals).

``OtlpMapper`` is plain Python (no Kafka): decode OTLP, keep the GenAI inference and step
spans, map them, dead-letter what cannot be kept. ``llmpulse.processors.otlp.stage`` is the thin Faust
agent around it, and ``llmpulse import --otlp FILE`` uses it too.

Example:
    >>> from llmpulse.processors.otlp import OtlpMapper
    >>> record = OtlpMapper().map_record(b"not protobuf")
    >>> [d.reason for d in record.dead_letters]
    ['malformed_otlp']
"""

from llmpulse.processors.otlp._wire import OtlpDecodeError, decode_traces
from llmpulse.processors.otlp.auth import (
    TOKEN_HASH_ATTRIBUTE,
    TokenBindings,
    TokensFile,
    TokensFileError,
    header_sha256,
)
from llmpulse.processors.otlp.mapper import MappedRecord, OtlpMapper, call_id_for

__all__ = [
    "TOKEN_HASH_ATTRIBUTE",
    "MappedRecord",
    "OtlpDecodeError",
    "OtlpMapper",
    "TokenBindings",
    "TokensFile",
    "TokensFileError",
    "call_id_for",
    "decode_traces",
    "header_sha256",
]
