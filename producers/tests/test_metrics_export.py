"""The SDK's counters through OpenTelemetry metrics (opentelemetry-sdk's in-memory reader)."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import llmpulse.producers as llmpulse


def _points(reader: InMemoryMetricReader) -> dict[tuple[str, tuple[tuple[str, Any], ...]], int]:
    data = reader.get_metrics_data()
    assert data is not None
    return {(metric.name, tuple(sorted(point.attributes.items()))): point.value
            for rm in data.resource_metrics for sm in rm.scope_metrics for metric in sm.metrics
            for point in metric.data.data_points}


def test_the_sdk_counters_are_exported_as_otel_metrics() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    sent: list[str] = []
    llmpulse.init(app="otel-metrics", deliver_to=lambda topic, key, value: sent.append(topic),
                  warn_on_drop=False)
    try:
        assert llmpulse.export_metrics(provider) is True
        assert llmpulse.export_metrics(provider) is True  # once per provider
        with llmpulse.call(prompt_id="answer", messages=[{"role": "user", "content": "Hi"}]) as c:
            c.record_response("Hello", input_tokens=1, output_tokens=1)
        assert llmpulse.feedback("", thumbs="up") is False  # refused by the contract: a drop
        llmpulse.flush(5)
        stats = llmpulse.stats()
        points = _points(reader)
        assert stats["sent"] == 2 == len(sent)
        assert points[("llmpulse.sdk.events", (("state", "sent"),))] == stats["sent"]
        assert points[("llmpulse.sdk.events", (("state", "dropped"),))] == stats["dropped"] >= 1
        for reason, count in stats["dropped_by_reason"].items():
            assert points[("llmpulse.sdk.dropped", (("reason", reason),))] == count
        assert points[("llmpulse.sdk.spool.size", ())] == stats["spool_bytes"]
        assert points[("llmpulse.sdk.queue.depth", ())] == stats["queue_depth"]
    finally:
        llmpulse.shutdown()
        provider.shutdown()
