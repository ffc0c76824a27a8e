"""Validation for code that builds events in bulk: the clock's window read once, and the
OTLP mapper's two shortcut checks.

``validate_event`` is the rule for every event. A producer that builds many events against
one reading of the clock (the OTLP mapper: a record's spans) reads the window of accepted
times once with ``time_window``, and may ask a shortcut first: ``prompt_of_a_span`` (a
prompt built from a span, with the ids the mapper writes) and ``answer_after_its_prompt``
(its answer, once the prompt is accepted). A shortcut answers True only where
``validate_event`` accepts; on False the caller runs ``validate_event``, which decides and
names the field and the rule. So a shortcut never decides what is rejected, nor why.

Example:
    >>> from datetime import UTC, datetime, timedelta
    >>> from llmpulse.schemas import Limits, PromptEvent
    >>> from llmpulse.schemas.bulk_checks import prompt_of_a_span, time_window
    >>> now, limits = datetime.now(UTC), Limits()
    >>> window = time_window(limits, now)  # once per reading of the clock
    >>> window.lo == now - timedelta(seconds=limits.max_past_seconds)
    True
    >>> trace, span = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    >>> prompt = PromptEvent(call_id=f"otel-{trace}-{span}", trace_id=trace, span_id=span,
    ...                      app="support-bot", occurred_at=now - timedelta(seconds=2))
    >>> clean: set[str] = set()  # the caller's, for these limits
    >>> prompt_of_a_span(prompt, limits, window, clean)  # else: validate_event(prompt, ...)
    True
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from llmpulse.schemas._fast_checks import answer_after_its_prompt, prompt_of_a_span
from llmpulse.schemas._limits import Limits, _window

__all__ = ["TimeWindow", "answer_after_its_prompt", "prompt_of_a_span", "time_window"]


class TimeWindow(Protocol):
    """The instants an event's time may take against one reading of the clock."""

    lo: datetime
    """The earliest: the clock less ``max_past_seconds`` (or the store's earliest)."""
    hi: datetime
    """The latest: the clock plus ``max_future_seconds`` (or the store's latest)."""


def time_window(limits: Limits, now: datetime) -> TimeWindow:
    """The window ``validate_event(..., now=now)`` holds times to under ``limits``, built
    once per ``now`` (the same object for the same ``limits`` and ``now`` as the last call)."""
    return _window(limits, now)
