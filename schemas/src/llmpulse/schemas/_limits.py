"""Limits on events, and the checks that the types alone cannot express.

The type of every field is checked while decoding; this module adds what is
configurable (size caps per field and per event) and the cross-field rules
(a response has text or an error; feedback says something).

Example:
    >>> from llmpulse.schemas import FeedbackEvent, Limits, SchemaError, validate_event
    >>> limits = Limits(max_text_chars=10)
    >>> event = FeedbackEvent(call_id="c1", app="a", comment="way too long a comment")
    >>> try:
    ...     validate_event(event, limits)
    ... except SchemaError as err:
    ...     print(err.reason, err.field, err.detail)
    limit_exceeded $.comment 22 characters, more than max_text_chars=10
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from functools import lru_cache
from operator import attrgetter

from msgspec import Struct

from llmpulse.schemas import environment as env
from llmpulse.schemas._events import (
    SCHEMA_VERSION,
    Alert,
    CallEvent,
    DeadLetter,
    DriftResult,
    EnrichedCall,
    EventBase,
    FeedbackEvent,
    GuardrailVerdict,
    PromptEvent,
    PromptLabel,
    PromptVersion,
    ResponseEvent,
)
from llmpulse.schemas.errors import SchemaError

__all__ = ["SUPPORTED_SCHEMA_VERSIONS", "Limits", "validate_event"]

SUPPORTED_SCHEMA_VERSIONS: frozenset[int] = frozenset({SCHEMA_VERSION})


class Limits(Struct, kw_only=True, frozen=True):
    """Size caps. Every one is configurable (keyword or ``LLMPULSE_LIMIT_*`` variable).

    The defaults fit a RAG prompt with a long context while keeping one batch record
    under the topics' ``max.message.bytes`` (8 MiB, see ``llmpulse.schemas.topics``).
    """

    max_record_bytes: int = 8 * 1024 * 1024
    """One Kafka record value: a single event or a whole batch."""
    max_event_bytes: int = 1024 * 1024
    """One event, encoded."""
    max_batch_events: int = 10_000
    max_id_chars: int = 256
    """Ids and names: call_id, app, environment, prompt_id, model ..."""
    max_text_chars: int = 256 * 1024
    """Any text: a message, a response, a document, a comment, a correction."""
    max_messages: int = 1_000
    max_documents: int = 200
    max_attributes: int = 128
    max_attribute_chars: int = 4_096
    """An attribute's key or string value."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Limits:
        """Read ``LLMPULSE_LIMIT_<NAME>`` overrides (e.g. ``LLMPULSE_LIMIT_MAX_TEXT_CHARS``)."""
        source = os.environ if environ is None else environ
        overrides: dict[str, int] = {}
        for name in cls.__struct_fields__:
            raw = source.get(env.LIMIT_PREFIX + name.upper())
            if raw is None:
                continue
            try:
                value = int(raw)
            except ValueError:
                raise ValueError(f"{env.LIMIT_PREFIX}{name.upper()}={raw!r} is not an integer") from None
            if value <= 0:
                raise ValueError(f"{env.LIMIT_PREFIX}{name.upper()} must be positive, got {value}")
            overrides[name] = value
        return cls(**overrides)


DEFAULT_LIMITS = Limits()


_CALL_IDS = ("call_id", "trace_id", "session_id", "user_id", "prompt_id", "prompt_version",
             "request_model", "provider")


def _too_long(value: str | None, cap: int, cap_name: str, path: str) -> SchemaError | None:
    if value is not None and len(value) > cap:
        return SchemaError("limit_exceeded", f"{len(value)} characters, more than {cap_name}={cap}",
                           field=path)
    return None


@lru_cache(maxsize=64)
def _getter(names: tuple[str, ...]) -> Callable[[object], tuple[str | None, ...]]:
    return attrgetter(*names) if len(names) > 1 else lambda e: (getattr(e, names[0]),)


def _ids(event: object, names: tuple[str, ...], limits: Limits, prefix: str = "$") -> None:
    """One C-level pass over the id fields; the slow path only names the culprit."""
    values = _getter(names)(event)
    if max(map(len, filter(None, values)), default=0) > limits.max_id_chars:
        for name, value in zip(names, values, strict=True):
            error = _too_long(value, limits.max_id_chars, "max_id_chars", f"{prefix}.{name}")
            if error is not None:
                raise error


def _texts(values: list[str], path: Callable[[int], str], limits: Limits) -> None:
    """One C-level pass over the texts; ``path(i)`` names the culprit on the slow path."""
    if values and max(map(len, values)) > limits.max_text_chars:
        for i, value in enumerate(values):
            error = _too_long(value, limits.max_text_chars, "max_text_chars", path(i))
            if error is not None:
                raise error


def _count(n: int, cap: int, cap_name: str, path: str) -> None:
    if n > cap:
        raise SchemaError("limit_exceeded", f"{n} items, more than {cap_name}={cap}", field=path)


def _base(event: EventBase, limits: Limits, prefix: str = "$") -> None:
    if event.schema_version not in SUPPORTED_SCHEMA_VERSIONS:
        raise SchemaError(
            "unknown_schema_version",
            f"schema_version {event.schema_version} is not one of "
            f"{sorted(SUPPORTED_SCHEMA_VERSIONS)}",
            field=f"{prefix}.schema_version",
        )
    attributes = event.attributes
    if attributes:
        _count(len(attributes), limits.max_attributes, "max_attributes", f"{prefix}.attributes")
        cap = limits.max_attribute_chars
        for key, value in attributes.items():
            if len(key) > cap or (isinstance(value, str) and len(value) > cap):
                raise SchemaError(
                    "limit_exceeded",
                    f"attribute key or value longer than max_attribute_chars={cap}",
                    field=f"{prefix}.attributes.{key[:64]}",
                )


def _call(event: CallEvent, limits: Limits, prefix: str = "$") -> None:
    _base(event, limits, prefix)
    _ids(event, ("app", "environment", *_CALL_IDS), limits, prefix)


def _prompt(event: PromptEvent, limits: Limits, prefix: str = "$") -> None:
    _call(event, limits, prefix)
    messages, documents, variables = event.messages, event.retrieved_context, event.template_variables
    if messages:
        _count(len(messages), limits.max_messages, "max_messages", f"{prefix}.messages")
        _texts([m.content for m in messages], lambda i: f"{prefix}.messages[{i}].content",
               limits)
    if documents:
        _count(len(documents), limits.max_documents, "max_documents",
               f"{prefix}.retrieved_context")
        ids = [d.id for d in documents]
        if max(map(len, ids)) > limits.max_id_chars:
            for i, doc in enumerate(documents):
                _ids(doc, ("id",), limits, f"{prefix}.retrieved_context[{i}]")
        _texts([d.content for d in documents],
               lambda i: f"{prefix}.retrieved_context[{i}].content", limits)
    if variables:
        _count(len(variables), limits.max_attributes, "max_attributes",
               f"{prefix}.template_variables")
        keys = list(variables)
        _texts(list(variables.values()),
               lambda i: f"{prefix}.template_variables.{keys[i][:64]}", limits)


def _response(event: ResponseEvent, limits: Limits, prefix: str = "$") -> None:
    _call(event, limits, prefix)
    if event.text is None and event.error is None:
        raise SchemaError("missing_field", "a response needs text or an error", field=f"{prefix}.text")
    _ids(event, ("response_model", "response_id", "finish_reason"), limits, prefix)
    texts = [event.text or "", event.error.message if event.error else ""]
    _texts(texts, lambda i: f"{prefix}.text" if i == 0 else f"{prefix}.error.message", limits)


def _feedback(event: FeedbackEvent, limits: Limits) -> None:
    _call(event, limits)
    if (event.thumbs is None and event.rating is None and event.label is None
            and event.correction is None and event.comment is None):
        raise SchemaError(
            "missing_field",
            "feedback needs at least one of thumbs, rating, label, correction, comment",
            field="$.thumbs",
        )
    _ids(event, ("label", "author_id"), limits)
    _texts([event.correction or "", event.comment or ""],
           lambda i: "$.correction" if i == 0 else "$.comment", limits)


def _enriched(event: EnrichedCall, limits: Limits) -> None:
    _call(event, limits)
    if event.prompt is not None:
        _prompt(event.prompt, limits, "$.prompt")
    if event.response is not None:
        _response(event.response, limits, "$.response")
    if event.prompt is None and event.response is None:
        raise SchemaError("missing_field", "an enriched call needs a prompt or a response",
                          field="$.prompt")


def validate_event(event: object, limits: Limits = DEFAULT_LIMITS) -> None:
    """Check the configurable limits and the cross-field rules of one decoded event.

    Raises:
        SchemaError: naming the field and the rule that failed.
    """
    if isinstance(event, PromptEvent):
        _prompt(event, limits)
    elif isinstance(event, ResponseEvent):
        _response(event, limits)
    elif isinstance(event, FeedbackEvent):
        _feedback(event, limits)
    elif isinstance(event, EnrichedCall):
        _enriched(event, limits)
    elif isinstance(event, GuardrailVerdict):
        _call(event, limits)
    elif isinstance(event, PromptVersion | PromptLabel):
        _base(event, limits)
        _ids(event, ("app", "prompt_id", "version"), limits)
        if isinstance(event, PromptVersion):
            _count(len(event.messages), limits.max_messages, "max_messages", "$.messages")
            _texts([m.content for m in event.messages], lambda i: f"$.messages[{i}].content",
                   limits)
    elif isinstance(event, DriftResult | Alert):
        _base(event, limits)
        _ids(event, ("app", "environment", "prompt_id", "prompt_version", "request_model"), limits)
    elif isinstance(event, DeadLetter):
        if event.schema_version not in SUPPORTED_SCHEMA_VERSIONS:
            raise SchemaError("unknown_schema_version",
                              f"schema_version {event.schema_version} is unknown",
                              field="$.schema_version")
    else:
        raise SchemaError("unknown_type", f"{type(event).__name__} is not an llmpulse event")
