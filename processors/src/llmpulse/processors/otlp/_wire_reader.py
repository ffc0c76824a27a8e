"""Span attributes read with protobuf's C parser straight into a dict, one pass per span.

Reading ``span.attributes`` through protobuf's Python objects builds a ``KeyValue`` and an
``AnyValue`` object per attribute, and asks each which field it holds: the mapper's largest
single cost. A ``KeyValue`` has the wire layout of a protobuf map entry (key = 1, value = 2),
so ``FlatTracesData`` is ``TracesData`` with one change, made on a copy of its descriptors:
``Span.attributes`` is a ``map<string, bytes>``. Parsing fills that map in C (the last of a
repeated key wins, as in ``_wire.attributes``), and each value, an ``AnyValue``'s bytes, is
read here in a few byte operations, or looked up: the value of a key whose values repeat
by nature (``REPEATING_KEYS``: a model, a provider, an operation, a request parameter, a
server address; never a text, an id or a count) is kept with its bytes as the key
(``_KNOWN``, bounded; never a list, which each span must own). Everything else (ids, times,
events, status, resource and scope) is read as before, from the same objects.

It reads the common shapes only and answers None for anything else; the caller then
decodes with ``TracesData`` as before, so the outcome is always the one protobuf's decoding
gives. The map's re-serialized size, unknown fields left out, must equal the record's,
which holds only when the parse kept every byte: a ``KeyValue`` whose value is given twice
(protobuf merges those), a repeated key, unknown fields anywhere (a map entry with one is
kept aside as an unknown field), non-minimal varints all fall back. So do an empty key or
value (a map writes those back, which could hide a loss of the same size),
map (``kvlist``) values, nested arrays, string-table references, an ``AnyValue`` of more
than one field, and invalid UTF-8 (a map of bytes does not check it; this reader does).
``processors/tests/test_otlp_wire_reader.py`` compares both readers on generated and
mutated records.

Example:
    >>> from opentelemetry.proto.trace.v1.trace_pb2 import TracesData
    >>> data = TracesData()
    >>> span = data.resource_spans.add().scope_spans.add().spans.add()
    >>> kv = span.attributes.add(); kv.key = "gen_ai.request.model"
    >>> kv.value.string_value = "gpt-4o"
    >>> _, attributes = read_traces(data.SerializeToString())
    >>> attributes
    [{'gen_ai.request.model': 'gpt-4o'}]
"""

from __future__ import annotations

import struct
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

__all__ = ["REPEATING_KEYS", "FlatTracesData", "known_stats", "read_traces"]

_DOUBLE = struct.Struct("<d").unpack_from


def _flat_traces_class() -> Any:
    """``TracesData`` whose ``Span.attributes`` is a ``map<string, bytes>`` (own pool)."""
    pool = descriptor_pool.DescriptorPool()
    for module in (common_pb2, resource_pb2):
        proto = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(proto)
        pool.Add(proto)
    proto = descriptor_pb2.FileDescriptorProto()
    trace_pb2.DESCRIPTOR.CopyToProto(proto)
    span = next(m for m in proto.message_type if m.name == "Span")
    entry = span.nested_type.add(name="AttributesEntry")
    entry.options.map_entry = True
    field_type = descriptor_pb2.FieldDescriptorProto
    entry.field.add(name="key", number=1, type=field_type.TYPE_STRING,
                    label=field_type.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=field_type.TYPE_BYTES,
                    label=field_type.LABEL_OPTIONAL)
    field = next(f for f in span.field if f.name == "attributes")
    field.type_name = f".{trace_pb2.DESCRIPTOR.package}.Span.AttributesEntry"
    pool.Add(proto)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName(trace_pb2.TracesData.DESCRIPTOR.full_name))


FlatTracesData = _flat_traces_class()


class _Unhandled(Exception):
    """Not a shape this reader takes: ``TracesData`` decodes the record."""


def read_traces(data: bytes) -> tuple[Any, list[dict[str, Any]]] | None:
    """The record as ``FlatTracesData`` and each span's attributes (in the order of the
    spans), or None when ``TracesData`` must read it (see the module's doc)."""
    try:
        traces = FlatTracesData.FromString(data)
        traces.DiscardUnknownFields()  # (a map entry with unknown fields is kept as one)
        if traces.ByteSize() != len(data):
            return None
        known, repeating = _KNOWN, REPEATING_KEYS  # (never emptied: ``in`` then ``[]`` is safe)
        read = [{key: (known[raw] if raw in known else _read_value(key, raw)) if key in repeating
                 else raw[2:].decode()  # (short strings inline)
                 if raw[0] == 0x0A and raw[1] < 0x80 and raw[1] + 2 == len(raw) else _value(raw)
                 for key in pairs for raw in (pairs[key],)}
                for resource_spans in traces.resource_spans
                for scope_spans in resource_spans.scope_spans
                for span in scope_spans.spans for pairs in (span.attributes,)]
        if any("" in attributes for attributes in read):
            return None
        return traces, read
    except (_Unhandled, DecodeError, RecursionError, IndexError, UnicodeDecodeError, ValueError):
        return None


REPEATING_KEYS = frozenset({
    "gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.system", "gen_ai.output.type",
    "gen_ai.request.model", "gen_ai.response.model", "llm.request.model", "llm.response.model",
    "llm.request.type", "gen_ai.request.temperature", "gen_ai.request.top_p",
    "gen_ai.request.top_k", "gen_ai.request.max_tokens", "gen_ai.request.seed",
    "gen_ai.request.presence_penalty", "gen_ai.request.frequency_penalty",
    "gen_ai.request.choice.count", "gen_ai.request.reasoning.level", "gen_ai.request.stream",
    "gen_ai.is_streaming", "llm.is_streaming", "server.address", "server.port",
    "gen_ai.prompt.name", "gen_ai.prompt.version", "llmpulse.app", "llmpulse.environment",
    "llmpulse.source", "llmpulse.prompt.id", "llmpulse.prompt.version",
})
"""Span attributes whose values repeat from span to span by nature and say nothing about a
user: names, parameters, addresses. Never message or content text, ids (response, session,
user, conversation, tool call) or counts (usage tokens vary from call to call). A list
(``gen_ai.response.finish_reasons``) is never kept, whatever its key."""

_KNOWN: dict[bytes, Any] = {}
"""``AnyValue`` bytes of a ``REPEATING_KEYS`` attribute already read -> their value (a str,
int, float, bool or bytes; never a list). Each is then one dict lookup instead of a read.
Only those keys' values are looked up or kept, so no text of a call stays in memory, and
the other values' bytes are not hashed. At most ``_KNOWN_MAX`` values: once full (only a
flood of distinct model names or parameters gets there) a new value is read each time; it
is never emptied, so a lookup of a value seen in it cannot fail under threads."""
_KNOWN_MAX = 4096
_KNOWN_LEN = 64
"""Values of more bytes are read each time and not kept."""
_misses = 0


def known_stats() -> dict[str, int]:
    """Values kept in ``_KNOWN``, and ``REPEATING_KEYS`` values read (not found in it) since
    start: the benchmarks' hit rate is one minus reads over those keys' values sent."""
    return {"kept": len(_KNOWN), "reads": _misses}


def _read_value(key: str, raw: bytes) -> Any:
    """``_value(raw)`` (short strings inline) of a ``REPEATING_KEYS`` attribute, kept in
    ``_KNOWN`` when short, not a list, and ``_KNOWN`` not full."""
    global _misses
    _misses += 1
    value: Any = (raw[2:].decode() if raw[0] == 0x0A and raw[1] < 0x80 and raw[1] + 2 == len(raw)
                  else _value(raw))
    if len(raw) <= _KNOWN_LEN and type(value) is not list and len(_KNOWN) < _KNOWN_MAX:
        _KNOWN[raw] = value
    return value


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result, shift = 0, 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            if result >> 64:
                raise _Unhandled
            return result, pos
        shift += 7
        if shift >= 70:
            raise _Unhandled


def _value(raw: bytes, outer: bool = True) -> Any:
    """An ``AnyValue``'s bytes as ``_wire.attributes`` reads it: one scalar, bytes, or
    (``outer``) an array of those."""
    tag = raw[0]  # (an empty value or key falls back: a map writes those back)
    if tag == 0x0A or tag == 0x3A or (tag == 0x2A and outer):  # string, bytes, array
        length = raw[1]
        at = 2
        if length >= 0x80:
            if raw[2] < 0x80:  # two bytes (message JSON of up to 16 KiB) inline
                length, at = (length & 0x7F) | raw[2] << 7, 3
            else:
                length, at = _varint(raw, 1)
        if at + length != len(raw):
            raise _Unhandled
        if tag == 0x0A:
            return raw[at:].decode()
        if tag == 0x3A:
            return raw[at:]
        items: list[Any] = []
        end = len(raw)
        while at < end:
            if raw[at] != 0x0A:
                raise _Unhandled
            length = raw[at + 1]
            at += 2
            if length >= 0x80:
                length, at = _varint(raw, at - 1)
            stop = at + length
            if stop > end:
                raise _Unhandled
            if stop > at + 1 and raw[at] == 0x0A and raw[at + 1] + at + 2 == stop and raw[at + 1] < 0x80:
                items.append(raw[at + 2:stop].decode())  # a short string (finish reasons) inline
            else:
                items.append(_value(raw[at:stop], False) if stop > at else None)
            at = stop
        return items
    if tag == 0x18 or tag == 0x10:  # int64, bool
        if len(raw) == 2 and raw[1] < 0x80:
            value = raw[1]
        else:
            value, at = _varint(raw, 1)
            if at != len(raw):
                raise _Unhandled
        if tag == 0x10:
            return value != 0
        return value - (1 << 64) if value >> 63 else value
    if tag == 0x21 and len(raw) == 9:  # double
        return _DOUBLE(raw, 1)[0]
    raise _Unhandled  # kvlist, nested arrays, string_value_strindex, more than one field
