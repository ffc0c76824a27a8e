"""The one dead-letter constructor: caps, fields, and a letter that survives its own codec."""

from __future__ import annotations

from llmpulse.schemas import (
    DLQ_PAYLOAD_MAX_BYTES,
    DeadLetter,
    dead_letter,
    dead_letters,
    decode_record,
    encode_batch,
    encode_event,
)
from llmpulse.schemas._dead_letters import DETAIL_MAX_CHARS


def test_the_payload_is_cut_to_the_cap_and_says_so() -> None:
    big = b"x" * (DLQ_PAYLOAD_MAX_BYTES + 1)
    letter = dead_letter("oversize", "too big", payload=big)
    assert letter.payload == big[:DLQ_PAYLOAD_MAX_BYTES] and letter.payload_truncated
    small = dead_letter("oversize", "too big", payload=b"abc", payload_max=3)
    assert small.payload == b"abc" and not small.payload_truncated


def test_the_detail_is_capped_and_never_empty() -> None:
    assert dead_letter("r", "d" * 5000).detail == "d" * DETAIL_MAX_CHARS
    assert dead_letter("rejected_by_store", "").detail == "rejected_by_store"


def test_each_failure_of_a_batch_gets_a_letter_with_its_index_and_source() -> None:
    batch = encode_batch([b'{"type":"prompt","app":"a"}', b'{"type":"prompt","app":"a","call_id":"c"}',
                          b'{"type":"prompt","app":"a","call_id":5}'])
    letters = dead_letters(decode_record(batch).failures, stage="sink", source_topic="t",
                           source_partition=2, source_offset=9)
    assert [(d.batch_index, d.stage, d.source_topic, d.source_partition, d.source_offset)
            for d in letters] == [(0, "sink", "t", 2, 9), (2, "sink", "t", 2, 9)]
    assert letters[0].error_field == "$.events[0].call_id"
    [back] = decode_record(encode_event(letters[0])).events
    assert isinstance(back, DeadLetter) and back.payload == letters[0].payload
