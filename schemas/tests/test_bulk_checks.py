"""``llmpulse.schemas.bulk_checks``: the public window is the one ``validate_event`` holds
times to, and the shortcuts are the fast checks' (their own tests: test_fast_checks.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from llmpulse.schemas import Limits, PromptEvent, SchemaError, validate_event
from llmpulse.schemas import _fast_checks as fast
from llmpulse.schemas.bulk_checks import answer_after_its_prompt, prompt_of_a_span, time_window


def test_the_window_is_validate_events_and_built_once_per_clock_reading() -> None:
    now, limits = datetime.now(UTC), Limits(max_past_seconds=60, max_future_seconds=5)
    window = time_window(limits, now)
    assert time_window(limits, now) is window
    assert (window.lo, window.hi) == (now - timedelta(seconds=60), now + timedelta(seconds=5))
    for at in (window.lo, window.hi):
        validate_event(PromptEvent(call_id="c", app="a", occurred_at=at), limits, now=now)
    for at in (window.lo - timedelta(microseconds=1), window.hi + timedelta(microseconds=1)):
        with pytest.raises(SchemaError) as caught:
            validate_event(PromptEvent(call_id="c", app="a", occurred_at=at), limits, now=now)
        assert caught.value.reason == "timestamp_out_of_range"


def test_the_shortcuts_are_the_fast_checks() -> None:
    assert prompt_of_a_span is fast.prompt_of_a_span
    assert answer_after_its_prompt is fast.answer_after_its_prompt
