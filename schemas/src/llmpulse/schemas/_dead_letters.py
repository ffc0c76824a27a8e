"""The one way a dead letter is made: the reason, where the record came from, and the
rejected bytes cut to a cap.

The worker (validation), the embedded demo and the sink (a store that refuses a row) all
build their ``DeadLetter`` here, so every dead letter has the same fields and caps.

Example:
    >>> from llmpulse.schemas import dead_letters, decode_record
    >>> record = decode_record(b'{"type":"prompt","app":"a"}')
    >>> [letter] = dead_letters(record.failures, source_topic="llm.prompts",
    ...                         source_partition=0, source_offset=7)
    >>> letter.reason, letter.stage, letter.source_offset, letter.payload_truncated
    ('missing_field', 'validate', 7, False)
"""

from __future__ import annotations

from collections.abc import Iterable

from llmpulse.schemas._codec import RecordFailure
from llmpulse.schemas._events import DeadLetter

__all__ = ["DETAIL_MAX_CHARS", "DLQ_PAYLOAD_MAX_BYTES", "dead_letter", "dead_letters"]

DLQ_PAYLOAD_MAX_BYTES = 64 * 1024
"""The default cap on the rejected bytes a dead letter keeps."""
DETAIL_MAX_CHARS = 4000
"""The cap on a dead letter's ``detail``."""


def dead_letter(reason: str, detail: str, *, stage: str = "validate",
                source_topic: str | None = None, source_partition: int | None = None,
                source_offset: int | None = None, batch_index: int | None = None,
                error_field: str | None = None, payload: bytes = b"",
                payload_max: int = DLQ_PAYLOAD_MAX_BYTES) -> DeadLetter:
    """A ``DeadLetter``: ``payload`` cut to ``payload_max`` bytes (``payload_truncated``
    says so), ``detail`` to ``DETAIL_MAX_CHARS`` (the reason when it is empty).

    Args:
        reason: a stable code (``malformed_json``, ``unknown_type``, ``rejected_by_store``...).
        detail: the field and the rule, in words.
        stage: which stage rejected it (``validate``, ``join``, ``score``, ``sink``).
        source_topic: the topic the record was read from (with its partition and offset).
        batch_index: the event's position inside a batch record (None: the whole record).
        error_field: the field that broke a rule, as a path (``$.events[3].call_id``).
        payload: the rejected bytes.
        payload_max: the cap on the bytes kept.
    """
    return DeadLetter(reason=reason, detail=detail[:DETAIL_MAX_CHARS] or reason,
                      error_field=error_field, stage=stage, source_topic=source_topic,
                      source_partition=source_partition, source_offset=source_offset,
                      batch_index=batch_index, payload=payload[:payload_max],
                      payload_truncated=len(payload) > payload_max)


def dead_letters(failures: Iterable[RecordFailure], *, stage: str = "validate",
                 source_topic: str | None = None, source_partition: int | None = None,
                 source_offset: int | None = None,
                 payload_max: int = DLQ_PAYLOAD_MAX_BYTES) -> list[DeadLetter]:
    """One ``DeadLetter`` per rejected event (or whole record) of ``decode_record``."""
    return [dead_letter(f.error.reason, f.error.detail, stage=stage, source_topic=source_topic,
                        source_partition=source_partition, source_offset=source_offset,
                        batch_index=f.index, error_field=f.error.field, payload=f.payload,
                        payload_max=payload_max)
            for f in failures]
