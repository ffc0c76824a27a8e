"""Each capture style produces the right events, keys and partitions on a real broker."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka_events import read_events

import llmpulse.producers as llmpulse
from llmpulse.cli.topics import ensure_topics
from llmpulse.schemas import FeedbackEvent, PromptEvent, ResponseEvent, partition_for

pytestmark = pytest.mark.kafka
PARTITIONS = 4


@pytest.fixture
def sdk(kafka_bootstrap: str, tmp_path: Path) -> Iterator[str]:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    ensure_topics(kafka_bootstrap, prefix=prefix, partitions=PARTITIONS)
    llmpulse.init(app="support-bot", environment="test", bootstrap_servers=kafka_bootstrap,
                  topic_prefix=prefix, spool_dir=tmp_path / "spool", flush_interval_s=0.05)
    yield prefix
    llmpulse.shutdown()


def _topics(prefix: str) -> list[str]:
    return [f"{prefix}llm.prompts", f"{prefix}llm.responses", f"{prefix}llm.feedback"]


def _check_routing(events: list, prefix: str) -> None:
    for e in events:
        assert e.key is not None
        assert e.partition == partition_for(e.event.call_id, PARTITIONS), "co-partitioning broken"
        kind = {PromptEvent: "prompts", ResponseEvent: "responses", FeedbackEvent: "feedback"}
        assert e.topic == f"{prefix}llm.{kind[type(e.event)]}"


def test_decorator_sync_and_async_record_prompt_response_and_latency(
        sdk: str, kafka_bootstrap: str) -> None:
    @llmpulse.track(prompt_id="answer", prompt_version="v3", model="gpt-4o-mini", provider="openai")
    def answer(question: str) -> str:
        assert llmpulse.current_call() is not None
        return f"About {question}: it ships tomorrow."

    @llmpulse.track(prompt_id="answer-async", prompt_version="v1", model="m")
    async def answer_async(question: str) -> dict:
        await asyncio.sleep(0.01)
        return {"id": "r1", "model": "m-2024", "choices": [
            {"message": {"content": "async " + question}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 3}}

    @llmpulse.track(prompt_id="broken")
    def broken(question: str) -> str:
        raise RuntimeError("model overloaded")

    answer("parcel")
    sync_id = llmpulse.last_call_id()
    asyncio.run(answer_async("refund"))
    with pytest.raises(RuntimeError, match="overloaded"):  # the app's own error goes through
        broken("x")
    error_id = llmpulse.last_call_id()
    assert llmpulse.flush(10)

    got = read_events(kafka_bootstrap, _topics(sdk), expected=6)
    assert len(got) == 6
    _check_routing(got, sdk)
    by_call: dict[str, dict[str, object]] = {}
    for e in got:
        by_call.setdefault(e.event.call_id, {})[type(e.event).__name__] = e.event
    sync = by_call[sync_id]
    prompt, response = sync["PromptEvent"], sync["ResponseEvent"]
    assert prompt.messages[0].content == "parcel" and prompt.prompt_version == "v3"
    assert prompt.request_model == "gpt-4o-mini" and prompt.app == "support-bot"
    assert prompt.environment == "test"
    assert response.text == "About parcel: it ships tomorrow."
    assert 0 <= response.latency_ms < 5_000
    async_response = next(c["ResponseEvent"] for c in by_call.values()
                          if c["PromptEvent"].prompt_id == "answer-async")
    assert async_response.text == "async refund" and async_response.latency_ms >= 10
    assert async_response.usage.input_tokens == 7 and async_response.finish_reason == "stop"
    failed = by_call[error_id]["ResponseEvent"]
    assert failed.error.type == "RuntimeError" and failed.error.message == "model overloaded"


def test_context_manager_records_usage_context_and_errors(sdk: str, kafka_bootstrap: str) -> None:
    with llmpulse.call(prompt_id="rag", prompt_version="2", model="llama3", session_id="s1",
                       messages=[{"role": "system", "content": "Be brief"},
                                 {"role": "user", "content": "Return policy?"}]) as c:
        c.add_context([{"id": "kb-12", "content": "30 days", "score": 0.91}, "plain doc"])
        c.first_token()
        c.record_response("30 days.", input_tokens=40, output_tokens=3, finish_reason="stop",
                          cost_usd=0.0001)
    with llmpulse.call(prompt_id="rag") as failing:
        failing.record_error("RateLimitError", "429 Too Many Requests")
    assert llmpulse.flush(10)
    got = read_events(kafka_bootstrap, _topics(sdk), expected=4)
    _check_routing(got, sdk)
    events = {(e.event.call_id, type(e.event).__name__): e.event for e in got}
    prompt = events[(c.call_id, "PromptEvent")]
    assert [d.id for d in prompt.retrieved_context] == ["kb-12", "doc-1"]
    assert prompt.retrieved_context[0].score == pytest.approx(0.91)
    assert prompt.session_id == "s1" and prompt.messages[0].role == "system"
    response = events[(c.call_id, "ResponseEvent")]
    assert response.usage.output_tokens == 3 and response.cost_usd == pytest.approx(0.0001)
    assert response.time_to_first_token_ms is not None
    assert response.time_to_first_token_ms <= response.latency_ms
    assert events[(failing.call_id, "ResponseEvent")].error.type == "RateLimitError"


def test_feedback_lands_on_its_topic_keyed_and_partitioned_like_the_call(
        sdk: str, kafka_bootstrap: str) -> None:
    with llmpulse.call(prompt_id="p") as c:
        c.record_response("ok")
    assert llmpulse.feedback(c.call_id, thumbs=True, rating=4, comment="helpful",
                             correction="Better: ok!")
    assert not llmpulse.feedback(c.call_id, rating=11)  # invalid: refused, not raised
    assert llmpulse.stats()["dropped_by_reason"]["invalid_feedback"] == 1
    assert llmpulse.flush(10)
    got = read_events(kafka_bootstrap, _topics(sdk), expected=3)
    fb = [e for e in got if isinstance(e.event, FeedbackEvent)]
    assert len(fb) == 1
    assert fb[0].key == c.call_id.encode()
    assert fb[0].event.thumbs == "up" and fb[0].event.rating == 4
    call_partitions = {e.partition for e in got}
    assert call_partitions == {partition_for(c.call_id, PARTITIONS)}


def test_many_calls_travel_as_batch_records_and_stats_add_up(sdk: str, kafka_bootstrap: str) -> None:
    @llmpulse.track(prompt_id="bulk")
    def work(i: str) -> str:
        return i

    for i in range(1000):
        work(str(i))
    assert llmpulse.flush(15)
    got = read_events(kafka_bootstrap, _topics(sdk), expected=2000)
    assert len(got) == 2000 and len({e.event.event_id for e in got}) == 2000
    assert sum(e.batched for e in got) > 1900, "events should travel in batch records"
    _check_routing(got, sdk)
    s = llmpulse.stats()
    assert s["sent"] == s["captured"] == 2000 and s["dropped"] == 0 and s["queue_depth"] == 0


def test_events_are_built_off_the_app_thread_unless_it_outpaces_the_flusher(
        kafka_bootstrap: str, tmp_path: Path) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    ensure_topics(kafka_bootstrap, prefix=prefix, partitions=PARTITIONS)
    built_on: list[str] = []

    def spy(text: str) -> str:  # redaction runs where the events are built
        built_on.append(threading.current_thread().name)
        return text

    llmpulse.init(app="support-bot", bootstrap_servers=kafka_bootstrap, topic_prefix=prefix,
                  spool_dir=tmp_path / "spool", redact=spy, flush_interval_s=5.0,
                  max_batch_events=10)
    try:
        for i in range(30):  # the flusher sleeps 5 s: 10 calls wait, the app builds the rest
            with llmpulse.call(prompt_id="flood", prompt=f"q{i}") as c:
                c.record_response(f"a{i}")
        assert built_on == ["MainThread"] * 40, "only calls beyond the queue are built inline"
        assert llmpulse.flush(15)
        assert built_on[40:] == ["MainThread"] * 20  # flush() builds the 10 that waited
        got = read_events(kafka_bootstrap, _topics(prefix), expected=60)
        assert len({e.event.event_id for e in got}) == 60
        assert {e.event.call_id for e in got if isinstance(e.event, PromptEvent)} == {
            e.event.call_id for e in got if isinstance(e.event, ResponseEvent)}
        _check_routing(got, prefix)
        built_on.clear()
        llmpulse.init(app="support-bot", bootstrap_servers=kafka_bootstrap, topic_prefix=prefix,
                      spool_dir=tmp_path / "spool", redact=spy, flush_interval_s=0.05)
        with llmpulse.call(prompt_id="calm", prompt="q") as c:
            c.record_response("a")
        deadline = time.monotonic() + 10
        while len(built_on) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert built_on == ["llmpulse-flusher"] * 2  # not the app's thread: the flusher's
    finally:
        llmpulse.shutdown()
