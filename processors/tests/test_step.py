"""The processing step: records in; calls, verdicts, dead letters and drift out."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from llmpulse.processors.config import load_config
from llmpulse.processors.join import CallJoiner
from llmpulse.processors.pipeline import Enricher
from llmpulse.processors.step import ProcessingStep, Record
from llmpulse.schemas import (
    DLQ_PAYLOAD_MAX_BYTES,
    ChatMessage,
    FeedbackEvent,
    PromptEvent,
    PromptVersion,
    ResponseEvent,
    encode_batch,
    encode_event,
)


def _prompt(call_id: str, text: str = "hello") -> PromptEvent:
    return PromptEvent(call_id=call_id, app="shop", prompt_id="p",
                       messages=[ChatMessage(role="user", content=text)])


def _response(call_id: str, text: str = "fine") -> ResponseEvent:
    return ResponseEvent(call_id=call_id, app="shop", text=text, latency_ms=5.0)


@pytest.fixture
def enricher() -> Enricher:
    return Enricher(load_config(environ={}), batched_scorers=[])


def test_bad_events_become_dead_letters_that_say_where_they_came_from(enricher):
    step = ProcessingStep(enricher)
    batch = encode_batch([encode_event(_prompt("c1")),
                          encode_event(FeedbackEvent(call_id="c1", app="shop", thumbs="up")),
                          b'{"type":"prompt","app":"shop"}'])
    out = step.process([Record("llm.prompts", batch, partition=3, offset=41, key=b"c1"),
                        Record("llm.responses", encode_event(_response("c1")), partition=3,
                               offset=7),
                        Record("llm.prompts", b"{not json", partition=1, offset=42)], now=0.0)
    assert [c.call_id for c in out.calls] == ["c1"] and out.calls[0].complete
    letters = {(d.reason, d.source_topic, d.source_partition, d.source_offset, d.batch_index)
               for d in out.dead_letters}
    assert letters == {("unknown_type", "llm.prompts", 3, 41, 1),
                       ("missing_field", "llm.prompts", 3, 41, 2),
                       ("malformed_json", "llm.prompts", 1, 42, None)}
    assert out.events == 3  # the prompt, the feedback (decoded, then refused), the response
    assert step.counts["dlq:unknown_type"] == 1 and step.counts["dlq:malformed_json"] == 1


def test_the_demo_setting_takes_feedback_and_skips_other_events(enricher):
    step = ProcessingStep(enricher, take_feedback=True, reject_unexpected=False)
    feedback = FeedbackEvent(call_id="c1", app="shop", thumbs="down")
    out = step.process([Record("llm.feedback", encode_event(feedback)),
                        Record("llm.prompt-versions", encode_event(
                            PromptVersion(app="shop", prompt_id="p", version="1", messages=[])))], now=0.0)
    assert [f.call_id for f in out.feedback] == ["c1"] and out.dead_letters == []
    assert out.drift_input == [*out.calls, *out.feedback]


def test_a_dead_letter_keeps_the_payload_up_to_the_cap(enricher):
    step = ProcessingStep(enricher, payload_max=100)
    big = b'{"type":"prompt","app":"shop","call_id":' + b"9" * 500
    [letter] = step.process([Record("llm.prompts", big)], now=0.0).dead_letters
    assert letter.payload == big[:100] and letter.payload_truncated
    assert ProcessingStep(enricher).payload_max == DLQ_PAYLOAD_MAX_BYTES


def test_halves_in_separate_batches_meet_and_lonely_ones_expire(enricher):
    step = ProcessingStep(enricher, joiner=CallJoiner())
    first = step.process([Record("llm.prompts", encode_event(_prompt("a"))),
                          Record("llm.prompts", encode_event(_prompt("b")))], now=100.0)
    assert first.calls == []
    second = step.process([Record("llm.responses", encode_event(_response("a")))], now=101.0)
    assert [c.call_id for c in second.calls] == ["a"]
    expired = step.expire(now=500.0, timeout_s=60.0)
    assert [(p.prompt.call_id, p.incomplete_reason) for p in expired] == [("b", "response_timeout")]
    assert step.counts["incomplete"] == 1


def test_verdicts_come_with_their_calls(enricher):
    step = ProcessingStep(enricher)
    out = step.process([Record("llm.prompts", encode_event(_prompt("c", "mail ada@example.com"))),
                        Record("llm.responses", encode_event(_response("c")))], now=0.0)
    assert [v.rule_id for v in out.verdicts] == ["pii-prompt"]
    assert set(out.seconds) == {"join", "light", "heavy", "drift", "spans"}


class _Monitor:
    def __init__(self) -> None:
        self.seen: list[tuple[int, int]] = []

    def observe(self, calls, feedback):
        self.seen.append((len(calls), len(feedback)))
        return [SimpleNamespace(drifted=True)] if calls else []

    def flush(self):
        return [SimpleNamespace(drifted=False)]


class _Engine:
    def __init__(self) -> None:
        self.calls: list[dict] = []

    def evaluate(self, **kwargs):
        self.calls.append(kwargs)
        return []


def test_drift_sees_the_calls_and_the_feedback_and_alerts_see_the_windows(enricher):
    monitor, engine = _Monitor(), _Engine()
    step = ProcessingStep(enricher, drift=monitor, alerts=engine, take_feedback=True)
    out = step.process([Record("llm.prompts", encode_event(_prompt("c"))),
                        Record("llm.responses", encode_event(_response("c"))),
                        Record("llm.feedback", encode_event(FeedbackEvent(call_id="c", app="shop",
                                                                          thumbs="up")))], now=0.0)
    assert monitor.seen == [(1, 1)] and len(out.drift.results) == 1
    assert engine.calls[0]["drift_results"] == out.drift.results
    assert len(engine.calls[0]["calls"]) == 1 and len(engine.calls[0]["feedback"]) == 1
    flushed = step.flush()
    assert [r.drifted for r in flushed.results] == [False]
    assert engine.calls[-1] == {"drift_results": flushed.results}


def test_an_unexpected_event_after_a_bad_one_names_its_own_place_in_the_batch(enricher):
    batch = encode_batch([b'{"type":"prompt","app":"shop"}', encode_event(_prompt("c1")),
                          encode_event(FeedbackEvent(call_id="c1", app="shop", thumbs="up"))])
    letters = ProcessingStep(enricher).process([Record("llm.prompts", batch)], now=0.0).dead_letters
    assert sorted((d.batch_index, d.reason) for d in letters) == [(0, "missing_field"),
                                                                 (2, "unknown_type")]



def test_a_narrower_configured_window_dead_letters_what_the_default_accepts(enricher,
                                                                            monkeypatch):
    from datetime import UTC, datetime, timedelta

    from llmpulse.processors.worker.settings import WorkerSettings

    hour_old = datetime.now(UTC) - timedelta(hours=1)
    prompt = PromptEvent(call_id="c1", app="shop", occurred_at=hour_old,
                         messages=[ChatMessage(role="user", content="hello")])
    records = [Record("llm.prompts", encode_event(prompt), offset=5)]
    assert ProcessingStep(enricher).process(records).dead_letters == []  # default: 30 days

    monkeypatch.setenv("LLMPULSE_LIMIT_MAX_PAST_SECONDS", "600")
    worker_step = ProcessingStep(enricher, limits=WorkerSettings("127.0.0.1:9").limits)
    for step in (ProcessingStep(enricher), worker_step):  # the demo's / replay's, the worker's
        assert step.limits.max_past_seconds == 600
        [letter] = step.process(records).dead_letters
        assert (letter.reason, letter.source_offset) == ("timestamp_out_of_range", 5)
        assert step.counts["dlq:timestamp_out_of_range"] == 1
