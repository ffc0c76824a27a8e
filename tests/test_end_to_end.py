"""SDK -> Kafka -> worker -> Kafka -> sink -> ClickHouse (chDB): every call, right values."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sink_thread import running_sink
from store_rows import wait_rows
from worker_process import WorkerProcess

import llmpulse.producers as llmpulse
from llmpulse.cli.topics import ensure_topics
from llmpulse.sinks.store import Store

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_calls_flow_from_the_sdk_to_clickhouse(kafka_bootstrap: str, store: Store,
                                               tmp_path: Path) -> None:
    prefix = f"e{uuid.uuid4().hex[:8]}."
    ensure_topics(kafka_bootstrap, prefix=prefix, partitions=2)
    llmpulse.init(app="e2e", environment="test", bootstrap_servers=kafka_bootstrap,
                  topic_prefix=prefix, spool_dir=tmp_path / "spool", flush_interval_s=0.05)
    n = 300
    ids = []
    try:
        with (running_sink(kafka_bootstrap, prefix, store),
              WorkerProcess(kafka_bootstrap, prefix, tmp_path / "w")):
            for i in range(n):
                with llmpulse.call(prompt_id="answer", prompt_version="v2" if i % 2 else "v1",
                                   model="gpt-4o-mini", provider="openai",
                                   messages=[{"role": "user", "content": f"Where is order {i}?"}],
                                   context=[{"id": f"kb-{i % 5}", "content": "Orders ship in 2 days"}]
                                   ) as c:
                    c.record_response(f"Order {i} ships in 2 days.", input_tokens=10 + i % 7,
                                      output_tokens=6, finish_reason="stop", cost_usd=0.0002)
                ids.append(c.call_id)
                if i % 50 == 0:
                    llmpulse.feedback(c.call_id, thumbs="up" if i % 100 else "down", rating=4)
            assert llmpulse.flush(10)
            stored = wait_rows(store, "SELECT count() FROM calls", n, timeout_s=90)
            feedback = wait_rows(store, "SELECT count() FROM feedback", 6, timeout_s=30)
    finally:
        llmpulse.shutdown(2)
    assert stored == n and feedback == 6
    rows = store.query(
        "SELECT call_id, app, environment, prompt_id, prompt_version, model, provider, "
        "response_text, input_tokens, output_tokens, cost_usd, finish_reason, complete, "
        "latency_ms, retrieved_context_ids, scorer_set_version, policy_version "
        "FROM calls WHERE call_id IN {ids:Array(String)} ORDER BY call_id",
        {"ids": ids}).dicts()
    assert sorted(r["call_id"] for r in rows) == sorted(ids)
    by_id = {r["call_id"]: r for r in rows}
    first = by_id[ids[3]]
    assert (first["app"], first["environment"], first["prompt_id"], first["prompt_version"]) == (
        "e2e", "test", "answer", "v2")
    assert (first["model"], first["provider"], first["finish_reason"]) == ("gpt-4o-mini", "openai",
                                                                           "stop")
    assert first["response_text"] == "Order 3 ships in 2 days."
    assert first["input_tokens"] == 13 and first["output_tokens"] == 6
    assert first["cost_usd"] == pytest.approx(0.0002)
    assert first["complete"] is True and first["latency_ms"] >= 0
    assert first["retrieved_context_ids"] == ["kb-3"]
    assert first["scorer_set_version"] and first["policy_version"]
    versions = store.query("SELECT prompt_version, count() AS n FROM calls GROUP BY prompt_version "
                           "ORDER BY prompt_version").dicts()
    assert versions == [{"prompt_version": "v1", "n": n // 2}, {"prompt_version": "v2", "n": n // 2}]
