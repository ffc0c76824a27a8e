"""OTLP on the wire: protobuf or OTLP/JSON bytes in, ``TracesData`` and plain values out.

The Collector's Kafka exporter writes ``otlp_proto`` records: a serialized ``TracesData``,
which has the same wire format as an OTLP ``ExportTraceServiceRequest`` (field 1, the
resource spans), so one decoder reads both. OTLP/JSON (what ``curl`` sends, and what
``llmpulse import --otlp`` reads) differs from protobuf's JSON mapping in one way: trace
and span ids are hex, not base64; they are converted before parsing.

Example:
    >>> from opentelemetry.proto.common.v1.common_pb2 import AnyValue
    >>> value = AnyValue(); value.array_value.values.add().string_value = "a"
    >>> plain_value(value)
    ['a']
"""

from __future__ import annotations

import base64
import json
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

__all__ = ["MAX_DEPTH", "OtlpDecodeError", "attributes", "decode_traces", "plain_value"]

MAX_DEPTH = 32
"""Deepest nesting of an attribute value (arrays and maps) or of message JSON we read."""
_SCALARS = frozenset({"string_value", "int_value", "double_value", "bool_value"})


class OtlpDecodeError(ValueError):
    """A record or file that is not OTLP trace data; ``reason`` is a stable code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def decode_traces(data: bytes, *, content_type: str = "protobuf") -> TracesData:
    """Decode OTLP trace data: ``protobuf`` (a record from the Collector) or ``json``.

    Raises:
        OtlpDecodeError: ``malformed_otlp`` with what the parser said.
    """
    traces = TracesData()
    if content_type == "json":
        try:
            document = json.loads(data)
            _hex_ids_to_base64(document)
            json_format.ParseDict(document, traces, ignore_unknown_fields=True)
        except (ValueError, TypeError, RecursionError, json_format.ParseError) as exc:
            raise OtlpDecodeError("malformed_otlp", f"not OTLP/JSON trace data: {exc}"[:500]) from None
        return traces
    try:
        traces.ParseFromString(data)
    except (DecodeError, RecursionError, ValueError) as exc:
        raise OtlpDecodeError("malformed_otlp", f"not OTLP protobuf trace data: {exc}"[:500]) from None
    return traces


def _hex_ids_to_base64(document: Any) -> None:
    """OTLP/JSON ids are hex; protobuf's JSON mapping wants base64 for bytes fields."""
    if not isinstance(document, dict):
        raise TypeError("an OTLP/JSON document is an object with resourceSpans")
    for resource_spans in document.get("resourceSpans") or document.get("resource_spans") or []:
        for scope_spans in resource_spans.get("scopeSpans") or resource_spans.get("scope_spans") or []:
            for span in scope_spans.get("spans") or []:
                _convert_ids(span)
                for link in span.get("links") or []:
                    _convert_ids(link)


def _convert_ids(item: dict[str, Any]) -> None:
    for key in ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"):
        value = item.get(key)
        if isinstance(value, str) and value:
            try:
                item[key] = base64.b64encode(bytes.fromhex(value)).decode()
            except ValueError:
                raise ValueError(f"{key} {value[:40]!r} is not hex") from None


def plain_value(value: AnyValue, depth: int = 0) -> Any:
    """An ``AnyValue`` as a Python value (str, bool, int, float, bytes, list, dict, None).

    Raises:
        ValueError: nested deeper than ``MAX_DEPTH``.
    """
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "bool_value":
        return value.bool_value
    if kind is None:
        return None
    if depth >= MAX_DEPTH:
        raise ValueError(f"an attribute value nested deeper than {MAX_DEPTH} levels")
    if kind == "array_value":
        return [plain_value(v, depth + 1) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: plain_value(kv.value, depth + 1) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return value.bytes_value
    return None


def attributes(pairs: Any) -> dict[str, Any]:
    """Repeated ``KeyValue`` as a dict (the last value of a repeated key wins)."""
    out: dict[str, Any] = {}
    pair: KeyValue
    for pair in pairs:  # runs for every attribute: the scalar kinds and their arrays inline
        value = pair.value
        kind = value.WhichOneof("value")
        if kind in _SCALARS:
            out[pair.key] = getattr(value, kind)
        elif kind == "array_value":  # e.g. finish reasons: as plain_value reads it
            out[pair.key] = [getattr(item, item_kind) if (item_kind := item.WhichOneof("value"))
                             in _SCALARS else plain_value(item, 1)
                             for item in value.array_value.values]
        else:
            out[pair.key] = plain_value(value)
    return out

