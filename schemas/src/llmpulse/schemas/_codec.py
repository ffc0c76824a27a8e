"""Encoding and decoding events and batch records (JSON via msgspec).

A Kafka record value holds one event, or a batch of events bound for the same
partition::

    {"type": "batch", "schema_version": 1, "count": 3, "events": [{...}, {...}, {...}]}

Readers accept both. A bad event inside a batch is reported on its own, with its
index and bytes, and the good events around it are kept.

Example:
    >>> from llmpulse.schemas import FeedbackEvent, encode_batch, encode_event, decode_record
    >>> events = [FeedbackEvent(call_id="c1", app="a", thumbs="up"),
    ...           FeedbackEvent(call_id="c1", app="a", rating=9)]
    >>> record = decode_record(encode_batch([encode_event(e) for e in events]))
    >>> len(record.events), [(f.index, f.error.reason) for f in record.failures]
    (1, [(1, 'out_of_range')])
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import msgspec
from msgspec import Raw, Struct

from llmpulse.schemas._events import SCHEMA_VERSION, Event, utcnow
from llmpulse.schemas._limits import (
    DEFAULT_LIMITS,
    SUPPORTED_SCHEMA_VERSIONS,
    Limits,
    validate_event,
)
from llmpulse.schemas.errors import SchemaError

__all__ = [
    "DecodedRecord",
    "RecordFailure",
    "decode_event",
    "decode_record",
    "encode_batch",
    "encode_event",
]


class _Batch(Struct, tag="batch", tag_field="type", kw_only=True):
    schema_version: int = SCHEMA_VERSION
    count: int
    events: list[Raw]


class _Header(Struct, kw_only=True):
    type: Any = None
    schema_version: Any = None


_encoder = msgspec.json.Encoder()
_event_decoder = msgspec.json.Decoder(Event)
_record_decoder = msgspec.json.Decoder(_Batch | Event)
_header_decoder = msgspec.json.Decoder(_Header)
_LONE_SURROGATE = re.compile(
    rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    rb"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)
_MISSING = re.compile(r"missing required field `([^`]+)`")
_AT = re.compile(r" - at `([^`]+)`$")
_BOUND = re.compile(r"^(Expected `(int|float)` [<>]=? |Number out of range$)")


def encode_event(event: Event) -> bytes:
    """Encode one event to JSON bytes."""
    return _encoder.encode(event)


def encode_batch(encoded_events: Sequence[bytes]) -> bytes:
    """Join already-encoded events into one batch record value.

    Joining bytes costs far less than encoding a container of events again, so the
    SDK encodes each event once, then batches.
    """
    head = b'{"type":"batch","schema_version":%d,"count":%d,"events":[' % (
        SCHEMA_VERSION,
        len(encoded_events),
    )
    return head + b",".join(encoded_events) + b"]}"


class RecordFailure(Struct, kw_only=True):
    """One event (or the whole record, ``index`` None) that could not be decoded."""

    error: SchemaError
    payload: bytes
    index: int | None = None


class DecodedRecord(Struct, kw_only=True):
    """What one Kafka record held: the valid events, and a failure per bad one."""

    events: list[Event]
    failures: list[RecordFailure]
    batched: bool


def _classify(exc: BaseException, data: bytes) -> SchemaError:
    """Turn a decoder exception into a SchemaError naming the field and the rule."""
    if isinstance(exc, SchemaError):
        return exc
    if isinstance(exc, UnicodeDecodeError):
        return SchemaError("invalid_utf8", f"byte {exc.start}: {exc.reason}")
    if isinstance(exc, RecursionError):
        return SchemaError("too_deep", "JSON nested too deeply")
    message = str(exc)
    if isinstance(exc, msgspec.ValidationError):
        header = _header(data)
        if header is not None:
            version = header.schema_version
            if version is not None and (
                not isinstance(version, int) or version not in SUPPORTED_SCHEMA_VERSIONS
            ):
                return SchemaError(
                    "unknown_schema_version",
                    f"schema_version {version!r} is not one of {sorted(SUPPORTED_SCHEMA_VERSIONS)}",
                    field="$.schema_version",
                )
        at = _AT.search(message)
        path = at.group(1) if at else "$"
        rule = _AT.sub("", message)
        missing = _MISSING.search(message)
        if missing:
            name = missing.group(1)
            if name == "type":
                return SchemaError("unknown_type", "the 'type' field is missing", field=f"{path}.type")
            return SchemaError("missing_field", rule, field=f"{path}.{name}")
        if path.endswith(".type") and rule.startswith("Invalid value"):
            return SchemaError("unknown_type", rule, field=path)
        if _BOUND.match(rule):
            return SchemaError("out_of_range", rule, field=path)
        return SchemaError("invalid_value", rule, field=path)
    if isinstance(exc, msgspec.DecodeError):
        if _LONE_SURROGATE.search(data):
            return SchemaError("invalid_utf8", "a string holds a lone UTF-16 surrogate escape")
        return SchemaError("malformed_json", message)
    return SchemaError("invalid_value", f"{type(exc).__name__}: {message}")


def _header(data: bytes) -> _Header | None:
    try:
        return _header_decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError):
        return None


def _too_large(size: int, cap: int, cap_name: str) -> SchemaError:
    return SchemaError("too_large", f"{size} bytes, more than {cap_name}={cap}")


def decode_event(data: bytes, limits: Limits = DEFAULT_LIMITS, *,
                 now: datetime | None = None) -> Event:
    """Decode and validate one event (``now``: the reader's clock, default the current
    time; the time window is checked against it).

    Raises:
        SchemaError: the reason code, the field and the rule.
    """
    if len(data) > limits.max_event_bytes:
        raise _too_large(len(data), limits.max_event_bytes, "max_event_bytes")
    try:
        event = cast(Event, _event_decoder.decode(data))
        validate_event(event, limits, now=now)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError,
            SchemaError) as exc:
        raise _classify(exc, data) from None
    return event


def decode_record(data: bytes | None, limits: Limits = DEFAULT_LIMITS, *,
                  now: datetime | None = None) -> DecodedRecord:
    """Decode one Kafka record value: a single event or a batch.

    ``now`` is the reader's clock (default: the current time), read once per record;
    the time window of every event is checked against it. Never raises for bad input:
    every problem is a ``RecordFailure`` in the result.
    """
    if data is None:
        error = SchemaError("malformed_json", "the record has no value (a tombstone)")
        return DecodedRecord(events=[], failures=[RecordFailure(error=error, payload=b"")],
                             batched=False)
    if len(data) > limits.max_record_bytes:
        error = _too_large(len(data), limits.max_record_bytes, "max_record_bytes")
        return DecodedRecord(events=[], failures=[RecordFailure(error=error, payload=data)],
                             batched=False)
    try:
        decoded = _record_decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError,
            RecursionError) as exc:
        failure = RecordFailure(error=_classify(exc, data), payload=data)
        return DecodedRecord(events=[], failures=[failure], batched=False)
    if not isinstance(decoded, _Batch):
        try:
            if len(data) > limits.max_event_bytes:
                raise _too_large(len(data), limits.max_event_bytes, "max_event_bytes")
            validate_event(decoded, limits, now=now)
        except SchemaError as exc:
            return DecodedRecord(events=[], failures=[RecordFailure(error=exc, payload=data)],
                                 batched=False)
        return DecodedRecord(events=[decoded], failures=[], batched=False)
    return _decode_batch(decoded, data, limits, utcnow() if now is None else now)


def _decode_batch(batch: _Batch, data: bytes, limits: Limits, now: datetime) -> DecodedRecord:
    whole: SchemaError | None = None
    if batch.schema_version not in SUPPORTED_SCHEMA_VERSIONS:
        whole = SchemaError("unknown_schema_version",
                            f"batch schema_version {batch.schema_version} is unknown",
                            field="$.schema_version")
    elif batch.count != len(batch.events):
        whole = SchemaError("batch_count_mismatch",
                            f"count says {batch.count}, the record holds {len(batch.events)}",
                            field="$.count")
    elif batch.count > limits.max_batch_events:
        whole = SchemaError("limit_exceeded",
                            f"{batch.count} events, more than max_batch_events="
                            f"{limits.max_batch_events}", field="$.events")
    if whole is not None:
        return DecodedRecord(events=[], failures=[RecordFailure(error=whole, payload=data)],
                             batched=True)
    events: list[Event] = []
    failures: list[RecordFailure] = []
    for index, raw in enumerate(batch.events):
        payload = bytes(raw)
        try:
            events.append(decode_event(payload, limits, now=now))
        except SchemaError as exc:
            field = f"$.events[{index}]" + exc.field[1:] if exc.field else f"$.events[{index}]"
            error = SchemaError(exc.reason, exc.detail, field=field, index=index)
            failures.append(RecordFailure(error=error, payload=payload, index=index))
    return DecodedRecord(events=events, failures=failures, batched=True)
