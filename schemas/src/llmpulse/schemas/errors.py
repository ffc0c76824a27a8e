"""Errors of the event contracts, and the root of every llmpulse error.

Example:
    >>> from llmpulse.schemas import decode_event
    >>> from llmpulse.schemas.errors import SchemaError
    >>> try:
    ...     decode_event(b'{"type": "prompt"}')
    ... except SchemaError as err:
    ...     print(err.reason, err.field)
    missing_field $.app
"""

from __future__ import annotations

__all__ = ["REASONS", "LlmpulseError", "SchemaError"]

REASONS: dict[str, str] = {
    "malformed_json": "the bytes are not valid JSON",
    "invalid_utf8": "the bytes are not valid UTF-8, or a string holds a lone surrogate",
    "too_large": "the record or event is bigger than the configured cap",
    "too_deep": "JSON nested deeper than the decoder allows",
    "unknown_type": "the 'type' field is missing or names no known event",
    "unknown_schema_version": "the schema_version is not one this reader knows",
    "missing_field": "a required field is absent",
    "invalid_value": "a field has the wrong type or breaks a rule of the contract",
    "limit_exceeded": "a field is longer or has more items than the configured limit",
    "batch_count_mismatch": "a batch record's count differs from its number of events",
    "malformed_otlp": "an OTLP record or file that is not valid OTLP trace data",
    "missing_ids": "an OTLP span without a valid trace id, span id or start time",
    "app_not_allowed": "an OTLP span whose app is not bound to the token that sent it",
    "out_of_range": "a number is outside what its column and the dashboards can hold "
                    "(an integer too big for its type, a float not finite or not sane)",
    "timestamp_out_of_range": "a timestamp is outside the accepted window around the reader's "
                              "clock (max_past_seconds, max_future_seconds), or outside what "
                              "the store can hold",
    "control_character": "an identifier (id, name, label, attribute key) holds a control "
                         "character",
}
"""Every reason code a validation failure can carry, with its meaning."""


class LlmpulseError(Exception):
    """The root of every exception llmpulse raises."""


class SchemaError(LlmpulseError):
    """An event or record broke the contract.

    Attributes:
        reason: a stable code from ``REASONS`` (DLQ records and counters use it).
        detail: the field and the rule, in words.
        field: the path of the offending field (``$.events[2].call_id``), when known.
        index: the event's position inside a batch record, when it came from one.
    """

    def __init__(
        self, reason: str, detail: str, *, field: str | None = None, index: int | None = None
    ) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown schema error reason {reason!r}")
        self.reason = reason
        self.detail = detail
        self.field = field
        self.index = index
        where = f" at {field}" if field else ""
        super().__init__(f"{reason}{where}: {detail}")
