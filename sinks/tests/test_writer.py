"""The writer: each event stored once, refused rows isolated, feedback attributed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from clickhouse_connect.driver.exceptions import OperationalError

from llmpulse.schemas import FeedbackEvent, TokenUsage
from llmpulse.sinks.errors import StoreUnavailable
from llmpulse.sinks.queries import run_dashboard_queries
from llmpulse.sinks.store import Store
from llmpulse.sinks.testing import (
    dashboard_differences,
    sample_alert,
    sample_calls,
    sample_drift,
    sample_feedback,
)
from llmpulse.sinks.writer import Sourced, Writer

Count = Callable[[str], int]


def _items(events: list) -> list[Sourced]:  # type: ignore[type-arg]
    return [Sourced(e, "llm.enriched", 0, i) for i, e in enumerate(events)]


def _snapshot(store: Store) -> dict[str, list]:  # type: ignore[type-arg]
    end = datetime.now(UTC) + timedelta(hours=1)
    return run_dashboard_queries(store, "support-bot", end - timedelta(days=2), end)


def test_redelivered_events_are_stored_once_whatever_the_batch_boundaries(store: Store, count: Count) -> None:
    calls = sample_calls(300, seed=1)
    feedback = sample_feedback(calls, seed=1)
    events = [*calls, *feedback, sample_alert(), sample_drift()]
    writer = Writer(store)
    first = writer.write(_items(events[:200]))
    writer.write(_items(events[200:]))
    before = _snapshot(store)

    again = writer.write(_items(events[100:250]) + _items(events[100:110]))  # other boundaries, twice
    verdicts = sum(len(c.verdicts) for c in [*calls[100:250], *calls[100:110]])
    assert again.total_written == 0 and again.duplicates == 160 + verdicts
    assert dashboard_differences(before, _snapshot(store)) == []
    assert count("calls") == 300 and count("feedback") == len(feedback)
    assert store.query("SELECT sum(calls) FROM calls_1m").scalar() == 300
    assert first.written["calls"] == 200


def test_a_verdict_seen_inside_a_call_and_on_its_own_is_stored_once(store: Store, count: Count) -> None:
    call = next(c for c in sample_calls(200, seed=2) if c.verdicts)
    Writer(store).write(_items([call, call.verdicts[0]]))
    Writer(store).write(_items([call.verdicts[0]]))
    assert count("guardrail_verdicts") == 1
    assert store.query("SELECT sum(verdicts) FROM guardrail_verdicts_1m").scalar() == 1


def test_a_refused_row_is_isolated_and_the_rest_of_the_batch_is_written(store: Store, count: Count) -> None:
    calls = sample_calls(64, seed=3, error_rate=0.0)
    bad = calls[37]
    assert bad.response is not None
    calls[37] = msgspec.structs.replace(bad, response=msgspec.structs.replace(
        bad.response, usage=TokenUsage(input_tokens=2**40, output_tokens=1)))  # does not fit UInt32
    result = Writer(store).write(_items(calls))
    assert [(r.item.event.event_id, r.table, r.reason) for r in result.rejected] == [
        (bad.event_id, "calls", "rejected_by_store")]
    assert "input_tokens" in result.rejected[0].detail
    assert result.rejected[0].item.offset == 37
    assert count("calls") == 63 and result.written["calls"] == 63
    assert result.inserts <= 2 * 7 + 2  # a bisection, not one insert per row
    assert count(f"calls WHERE event_id = '{bad.event_id}'") == 0


def test_feedback_is_attributed_to_its_calls_prompt_version(store: Store) -> None:
    calls = sample_calls(40, seed=4)
    earlier, later = calls[:20], calls[20:]
    writer = Writer(store)
    writer.write(_items(earlier))
    feedback = [FeedbackEvent(call_id=c.call_id, app=c.app, thumbs="down") for c in calls]
    orphan = FeedbackEvent(call_id="never-seen", app="support-bot", rating=2)
    writer.write(_items([*later, *feedback, orphan]))  # same batch as half of the calls
    rows = store.query("SELECT call_id, prompt_version, model, attributed FROM feedback").rows
    by_call = {row[0]: row[1:] for row in rows}
    for call in calls:
        assert by_call[call.call_id] == (call.prompt_version, call.request_model, True)
    assert by_call["never-seen"] == ("", "", False)
    per_version = {row[1]: row[2] for row in _snapshot(store)["feedback_by_prompt_version"]}
    assert sum(per_version.values()) == 41
    assert per_version == {"": 1} | {v: sum(c.prompt_version == v for c in calls) for v in ("1", "2")}


def test_a_batch_interrupted_by_an_outage_is_completed_once_on_retry(
        store: Store, count: Count, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = sample_calls(100, seed=5)
    feedback = sample_feedback(calls, seed=5, share=0.5)
    insert = store._send  # the one INSERT of a frame, on either backend

    def insert_calls_then_fail(table: str, *args: object, **kwargs: object) -> object:
        if table == "feedback":
            raise OperationalError("connection refused")
        return insert(table, *args, **kwargs)

    monkeypatch.setattr(store, "_send", insert_calls_then_fail)
    with pytest.raises(StoreUnavailable):
        Writer(store).write(_items([*calls, *feedback]))
    assert count("calls") == 100 and count("feedback") == 0
    monkeypatch.setattr(store, "_send", insert)
    retry = Writer(store).write(_items([*calls, *feedback]))
    assert retry.written == {"feedback": len(feedback)}
    assert count("calls") == 100 and count("feedback") == len(feedback)


def test_rollups_agree_with_the_raw_rows(store: Store) -> None:
    Writer(store).write(_items(sample_calls(2_000, seed=6)))
    exact = store.query(
        "SELECT count(), countIf(error_type != ''), sum(input_tokens), "
        "quantileExact(0.5)(latency_ms), quantileExact(0.99)(latency_ms) FROM calls").rows[0]
    rolled = store.query(
        "SELECT sum(calls), sum(errors), sum(input_tokens), "
        "quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99)(latency_ms) FROM calls_1m").rows[0]
    assert rolled[:3] == exact[:3]
    p50, _, _, p99 = rolled[3]
    assert p50 == pytest.approx(exact[3], rel=0.03) and p99 == pytest.approx(exact[4], rel=0.05)


def test_prompt_versions_and_labels_are_stored_and_a_label_points_at_its_latest_version(
        store) -> None:  # type: ignore[no-untyped-def]
    from llmpulse.schemas import ChatMessage, PromptLabel, PromptVersion
    from llmpulse.sinks.writer import Sourced, Writer

    v1 = PromptVersion(app="registry", prompt_id="answer", version="aaa111",
                       messages=[ChatMessage(role="user", content="{question}")],
                       variables=["question"], model="m", model_settings={"temperature": 0.2})
    v2 = PromptVersion(app="registry", prompt_id="answer", version="bbb222",
                       messages=[ChatMessage(role="user", content="Kindly: {question}")],
                       variables=["question"])
    first = PromptLabel(app="registry", prompt_id="answer", label="production", version="aaa111")
    moved = PromptLabel(app="registry", prompt_id="answer", label="production", version="bbb222")
    writer = Writer(store)
    writer.write([Sourced(e) for e in (v1, v2, first)])
    writer.write([Sourced(moved), Sourced(v1)])  # a label moved; v1 redelivered
    versions = store.query("SELECT version, variables, model_settings FROM prompt_versions FINAL "
                           "WHERE prompt_id = {p:String} ORDER BY version", {"p": "answer"}).dicts()
    assert [v["version"] for v in versions] == ["aaa111", "bbb222"]
    assert versions[0]["variables"] == ["question"] and versions[0]["model_settings"] == {
        "temperature": "0.2"}
    label = store.query("SELECT argMax(version, occurred_at) FROM prompt_labels "
                        "WHERE prompt_id = 'answer' AND label = 'production'").scalar()
    assert label == "bbb222"
