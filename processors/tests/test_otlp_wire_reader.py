"""The wire reader against protobuf: on every record it reads, the span attributes and the
mapper's output (events, dead letters with their reasons and payloads, counts) are what
decoding as ``TracesData`` gives; what it does not read, ``TracesData`` decodes. Generated
records of every attribute kind, bad ids, events, statuses and unknown fields, and the
same records mutated byte by byte."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status, TracesData
from otlp_spans import T0, _set

from llmpulse.processors.otlp import OtlpMapper
from llmpulse.processors.otlp._wire import OtlpDecodeError, attributes, decode_traces
from llmpulse.processors.otlp._wire_reader import FlatTracesData, read_traces
from llmpulse.schemas import Limits, encode_event

FIXTURES = Path(__file__).resolve().parent / "otlp_fixtures"
RECORDED = Limits(max_past_seconds=20 * 365 * 86_400)


@pytest.mark.parametrize("message", [TracesData, ResourceSpans, Resource, ScopeSpans,
                                     InstrumentationScope, Span, Span.Event, Span.Link, Status])
def test_the_flat_messages_are_otlps_but_for_the_span_attributes(message: Any) -> None:
    flat = FlatTracesData.DESCRIPTOR.file.pool.FindMessageTypeByName(message.DESCRIPTOR.full_name)
    fields = {f.number: (f.name, f.type, f.message_type and f.message_type.full_name)
              for f in message.DESCRIPTOR.fields}
    flat_fields = {f.number: (f.name, f.type, f.message_type and f.message_type.full_name)
                   for f in flat.fields}
    if message is Span:
        assert flat.fields_by_name["attributes"].message_type.GetOptions().map_entry
        entry = flat.fields_by_name["attributes"].message_type
        assert [(f.number, f.type) for f in entry.fields] == [
            (1, entry.fields[0].TYPE_STRING), (2, entry.fields[0].TYPE_BYTES)]
        del fields[9], flat_fields[9]
    assert flat_fields == fields


_CLOCK = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
"""The reader's clock in a time window's detail (two mappers may read different seconds)."""


def _outcome(record: Any) -> dict[str, Any]:
    return {
        "events": [encode_event(e) for e in (*record.prompts, *record.responses,
                                              *record.span_events)],
        "dead_letters": [(d.reason, _CLOCK.sub("<now>", d.detail), d.error_field, d.payload,
                          d.payload_truncated) for d in record.dead_letters],
        "spans": record.spans, "skipped": record.skipped}


def _nan_free(value: Any) -> Any:
    """``value`` with NaN as a string (NaN is unequal to itself)."""
    if isinstance(value, float) and value != value:
        return "NaN"
    if isinstance(value, list):
        return [_nan_free(v) for v in value]
    if isinstance(value, dict):
        return {k: _nan_free(v) for k, v in value.items()}
    return value


def _same_as_protobuf(data: bytes, limits: Limits | None = None) -> bool:
    """True when the wire reader read ``data`` (and the outcome is protobuf's)."""
    wire = read_traces(data)
    if wire is None:
        return False
    try:
        decoded = decode_traces(data)
    except OtlpDecodeError:
        pytest.fail(f"the wire reader read a record protobuf rejects: {data!r}")
    spans = [span for rs in decoded.resource_spans for ss in rs.scope_spans for span in ss.spans]
    assert _nan_free(wire[1]) == _nan_free([attributes(span.attributes) for span in spans])
    by_wire, by_protobuf = OtlpMapper(limits=limits), OtlpMapper(limits=limits)
    assert _outcome(by_wire.map_record(data)) == _outcome(by_protobuf.map_traces(decoded))
    assert by_wire.counts == by_protobuf.counts
    return True


def test_recorded_payloads_are_read_off_the_wire_as_protobuf_reads_them() -> None:
    for path in sorted(FIXTURES.glob("*.binpb")):
        assert _same_as_protobuf(path.read_bytes(), RECORDED), path


_KEYS = ["gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.system", "gen_ai.request.model",
         "gen_ai.response.model", "gen_ai.request.temperature", "gen_ai.request.max_tokens",
         "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.input.messages",
         "gen_ai.output.messages", "gen_ai.system_instructions", "gen_ai.response.finish_reasons",
         "gen_ai.request.stop_sequences", "gen_ai.request.stream", "gen_ai.tool.name",
         "gen_ai.tool.call.result", "gen_ai.prompt.0.content", "gen_ai.prompt.0.role",
         "gen_ai.completion.0.content", "llmpulse.app", "error.type", "session.id", "user.id",
         "gen_ai.response.time_to_first_chunk", "llm.request.type", "server.address"]
_OPERATIONS = ["chat", "text_completion", "completion", "execute_tool", "invoke_agent",
               "retrieval", "embeddings", "CHAT", ""]
_MESSAGES = ['[{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]',
             '[{"role": "assistant", "finish_reason": "stop", "parts": [{"type": "text", '
             '"content": "ok"}, {"type": "tool_call", "id": "c1", "name": "f", "arguments": {}}]}]',
             '[[[[', '{"role": "user", "content": "x"}', "[]", "not json"]


_GOOD = {"gen_ai.request.temperature": 0.5, "gen_ai.request.max_tokens": 64,
         "gen_ai.usage.input_tokens": 12, "gen_ai.usage.output_tokens": 3,
         "gen_ai.input.messages": _MESSAGES[0], "gen_ai.output.messages": _MESSAGES[1],
         "gen_ai.response.finish_reasons": ["stop"], "gen_ai.request.stream": True,
         "gen_ai.response.time_to_first_chunk": 0.25, "gen_ai.request.stop_sequences": ["END"]}


def _value(rng: random.Random) -> Any:
    kind = rng.randrange(12)
    if kind in (5, 6) and rng.random() < 0.9:  # (a record with one of those is protobuf's)
        kind = 7
    if kind == 0:
        return rng.choice([0, 1, -1, 7, 2**63 - 1, -(2**63), 200, 10**12])
    if kind == 1:
        return rng.choice([0.0, 0.2, -1.5, 1e300, float("inf")])
    if kind == 2:
        return rng.choice([True, False])
    if kind == 3:
        return [rng.choice(["stop", "length", "", "ü"]) for _ in range(rng.randrange(3))]
    if kind == 4:
        return [rng.choice([1, 2.5, True, "x"]) for _ in range(rng.randrange(3))]
    if kind == 5:
        return {"role": "user", "content": "nested"}  # a kvlist: protobuf reads it
    if kind == 6:
        return [["nested"]]
    if kind == 7:
        return rng.choice(_MESSAGES)
    return rng.choice(["chat", "gpt-4o", "openai", "", "ünïcode ✓", "x" * 300, "1", "true"])


def _attrs(rng: random.Random, repeated: Any, count: int, first: dict[str, Any] | None = None) -> None:
    for key, value in (first or {}).items():
        kv = repeated.add()
        kv.key = key
        _set(kv.value, value)
    keys = rng.sample([key for key in _KEYS if key not in (first or {})], count)
    for key in keys:
        kv = repeated.add()
        kv.key = key if rng.random() < 0.99 else rng.choice(["", *keys, *(first or {})])  # repeated
        if rng.random() < 0.995:  # else a KeyValue without a value
            value = _value(rng) if rng.random() < 0.3 else _GOOD.get(kv.key, "gpt-4o")
            if kv.key == "gen_ai.operation.name" and rng.random() < 0.7:
                value = rng.choice(_OPERATIONS)
            _set(kv.value, value)


def _span(rng: random.Random, span: Any) -> None:
    span.name = rng.choice(["chat gpt-4o", "", "tool", "ü" * 300])
    span.trace_id = rng.randbytes(16) if rng.random() < 0.9 else rng.choice([bytes(16), b"\x01", b""])
    span.span_id = rng.randbytes(8) if rng.random() < 0.9 else rng.choice([bytes(8), b""])
    span.parent_span_id = rng.choice([b"", rng.randbytes(8), bytes(8)])
    start = T0 if rng.random() < 0.9 else rng.choice([0, 1])
    span.start_time_unix_nano = start
    span.end_time_unix_nano = start + rng.choice([1_500_000_000, 0, 10**9]) if start else \
        rng.choice([0, T0])
    span.kind = rng.randrange(6)
    _attrs(rng, span.attributes, rng.randrange(12),
           {"gen_ai.operation.name": rng.choice(_OPERATIONS)} if rng.random() < 0.8 else None)
    for _ in range(rng.choice([0, 0, 1, 3])):
        event = span.events.add()
        event.name = rng.choice(["gen_ai.client.inference.operation.details", "exception",
                                 "gen_ai.user.message", "gen_ai.choice",
                                 "gen_ai.content.completion.chunk", "other"])
        event.time_unix_nano = rng.choice([T0 + 5, 0, T0 - 5])
        _attrs(rng, event.attributes, rng.randrange(4),
               {"exception.message": "boom"} if event.name == "exception" else None)
    if rng.random() < 0.3:
        span.status.code = rng.choice([0, 1, 2])
        span.status.message = rng.choice(["", "failed"])
    if rng.random() < 0.1:
        link = span.links.add()
        link.trace_id, link.span_id, link.trace_state = rng.randbytes(16), rng.randbytes(8), "a=b"
    if rng.random() < 0.1:
        span.trace_state, span.flags, span.dropped_attributes_count = "k=v", 256, 3


def _record(rng: random.Random) -> bytes:
    data = TracesData()
    for _ in range(rng.choice([1, 1, 2])):
        rs = data.resource_spans.add()
        if rng.random() < 0.95:
            attrs = {"service.name": rng.choice(["support-bot", "", "ü-bot"])}
            if rng.random() < 0.2:
                attrs["deployment.environment.name"] = _value(rng)
            _attrs(rng, rs.resource.attributes, 0, attrs)
        for _ in range(rng.choice([1, 1, 2])):
            ss = rs.scope_spans.add()
            if rng.random() < 0.8:
                ss.scope.name, ss.scope.version = rng.choice(["openllmetry", "", "x" * 300]), "1.0"
            for _ in range(rng.randrange(1, 4)):
                _span(rng, ss.spans.add())
    out = data.SerializeToString()
    if rng.random() < 0.1:  # an unknown field (number 99, LEN) at the end of the record
        out += b"\x9a\x06\x03abc"
    return out


def _mutated(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randrange(1, 4)):
        at = rng.randrange(len(buf))
        choice = rng.randrange(4)
        if choice == 0:
            buf[at] ^= 1 << rng.randrange(8)
        elif choice == 1:
            buf[at] = rng.choice([0x80, 0xFF, 0xC3, 0xED, 0x00, 0x7F])
        elif choice == 2:
            del buf[at:]
            if not buf:
                return bytes(buf)
        else:
            buf.insert(at, rng.randrange(256))
    return bytes(buf)


def test_generated_records_map_as_protobuf_maps_them() -> None:
    rng = random.Random(13)
    read = 0
    for _ in range(400):
        read += _same_as_protobuf(_record(rng))
    assert read > 200  # most are read off the wire (kvlist, nested arrays, unknown fields are not)


def test_mutated_records_map_as_protobuf_maps_them_or_go_to_protobuf() -> None:
    rng = random.Random(1313)
    read = 0
    for _ in range(1500):
        read += _same_as_protobuf(_mutated(rng, _record(rng)))
    assert read > 80  # many mutations keep the record readable (e.g. a flipped text bit)


@pytest.mark.parametrize("data", [b"", b"\x0a", b"\x0a\x05\x12\x03", b"\x0b\x0c", b"\x08\x01",
                                  b"\x0a\x02\x0a\x00", b"\x0a\x00" * 3, b"\xff" * 11])
def test_edge_records(data: bytes) -> None:
    """Empty, truncated, groups, wrong wire types, overlong varints: read the same or left
    to protobuf, whose decode error is the dead letter's reason."""
    _same_as_protobuf(data)
    record = OtlpMapper().map_record(data)
    try:
        decoded = decode_traces(data)
    except OtlpDecodeError:
        assert [d.reason for d in record.dead_letters] == ["malformed_otlp"]
        return
    assert _outcome(record) == _outcome(OtlpMapper().map_traces(decoded))


def test_module_example_runs() -> None:
    import doctest

    from llmpulse.processors.otlp import _wire_reader

    result = doctest.testmod(_wire_reader)
    assert result.attempted > 0 and result.failed == 0


def test_a_record_the_reader_took_but_protobuf_cannot_decode_gets_protobufs_outcome(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Not seen (what the reader takes, ``TracesData`` reads); should it happen, the record is
    mapped as protobuf decodes it, not half mapped."""
    from llmpulse.processors.otlp import mapper

    class Undecodable:
        def __init__(self, data: bytes) -> None:
            pass

        def __call__(self) -> TracesData:
            raise OtlpDecodeError("malformed_otlp", "as if protobuf had refused it")

    rng = random.Random(3)
    data = next(d for d in (_record(rng) for _ in range(200))
                if read_traces(d) is not None and OtlpMapper().map_record(d).dead_letters)
    expected = _outcome(OtlpMapper().map_traces(decode_traces(data)))
    monkeypatch.setattr(mapper, "_Decoded", Undecodable)
    assert _outcome(OtlpMapper().map_record(data)) == expected
