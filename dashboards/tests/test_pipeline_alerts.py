"""The pipeline's store-side alert rules (freshness p99, dead-letter rate, silent source),
evaluated on chDB as Grafana would: each fires on traffic that breaks it, none on healthy
traffic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from llmpulse.dashboards.alerts import evaluate_rules
from llmpulse.dashboards.pipeline_board import (
    DEAD_LETTERS_PER_5M,
    FRESHNESS_P99_SECONDS,
    SILENT_MINUTES,
    pipeline_alert_rules,
)
from llmpulse.schemas import EnrichedCall, Event, PromptEvent, ResponseEvent, dead_letter
from llmpulse.sinks.store import Store
from llmpulse.sinks.writer import Sourced, Writer


def _calls(app: str, *, count: int, occurred: datetime, processing_s: float) -> list[Event]:
    """``count`` calls of ``app`` that happened at ``occurred`` and were processed
    ``processing_s`` later (the store adds its own ``inserted_at``: now)."""
    calls: list[Event] = []
    for i in range(count):
        call_id = f"{app}-{i}"
        prompt = PromptEvent(call_id=call_id, app=app, occurred_at=occurred)
        response = ResponseEvent(call_id=call_id, app=app, text="ok", latency_ms=5.0,
                                 occurred_at=occurred)
        calls.append(EnrichedCall(call_id=call_id, app=app, occurred_at=occurred, prompt=prompt,
                                  response=response,
                                  processed_at=occurred + timedelta(seconds=processing_s)))
    return calls


def _write(store: Store, events: list[Event]) -> None:
    result = Writer(store).write([Sourced(e) for e in events])
    assert sum(result.written.values()) == len(events), result


def _firing(store: Store) -> dict[str, set[tuple[str, ...]]]:
    """The firing instances of each pipeline rule (by their labels), now."""
    now = datetime.now(UTC) + timedelta(seconds=5)  # the rows just written are inside
    firing: dict[str, set[tuple[str, ...]]] = {}
    for instance in evaluate_rules(store, pipeline_alert_rules(), now=now):
        if instance.firing:
            firing.setdefault(instance.rule_uid, set()).add(tuple(sorted(instance.labels.values())))
    return firing


def test_each_pipeline_rule_fires_on_the_traffic_that_breaks_it(fresh_store: Store) -> None:
    now = datetime.now(UTC)
    late = FRESHNESS_P99_SECONDS * 4  # processed 20 s after it happened
    silent = now - timedelta(minutes=SILENT_MINUTES * 3)  # its last call: 45 minutes ago
    _write(fresh_store, [
        *_calls("late-app", count=20, occurred=now - timedelta(seconds=30), processing_s=late),
        *_calls("gone-app", count=5, occurred=silent, processing_s=0.1),
        *[dead_letter("malformed_json", "not JSON", stage="validate", payload=b"{x")
          for _ in range(DEAD_LETTERS_PER_5M + 1)],
    ])
    firing = _firing(fresh_store)
    assert firing == {
        # gone-app's calls are stored now, 45 minutes after they happened: late too
        "llmpulse-freshness-p99": {("late-app", "production"), ("gone-app", "production")},
        "llmpulse-dead-letter-rate": {("malformed_json", "validate")},
        "llmpulse-silent-source": {("gone-app", "production")},
    }


def test_no_pipeline_rule_fires_on_healthy_traffic(fresh_store: Store) -> None:
    now = datetime.now(UTC)
    _write(fresh_store, [
        *_calls("busy-app", count=50, occurred=now - timedelta(seconds=2), processing_s=0.2),
        *[dead_letter("malformed_json", "not JSON", payload=b"{x")
          for _ in range(DEAD_LETTERS_PER_5M)],  # at the threshold: not above it
    ])
    instances = evaluate_rules(fresh_store, pipeline_alert_rules(),
                               now=datetime.now(UTC) + timedelta(seconds=5))
    # every rule had data to judge, and none fired
    assert {i.rule_uid for i in instances} == {r.uid for r in pipeline_alert_rules()}
    assert not [i for i in instances if i.firing], instances
