"""The sink's start-up: by the time ``llmpulse sink`` starts consuming, its start-up heap (the
store, the writer, the sink itself) is in the cycle collector's permanent generation
(``llmpulse.schemas.runtime.freeze_start_heap``), so full collections no longer walk it
(processors/tests/test_service_startup.py checks the same of the worker and OTLP stage).

The command runs for real on a chDB store up to ``Sink.run``, which is replaced by one that
records what the collector holds when the consumer would start (no broker is needed).
"""

from __future__ import annotations

import gc
import signal
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

import llmpulse.sinks.cli as sinks_cli
from llmpulse.sinks.sink import Sink, SinkStats


@pytest.fixture
def loop_start(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """``Sink.run`` replaced: each call notes whether the sink is tracked by the collector
    and whether any generation it still walks holds it."""
    seen: list[dict[str, Any]] = []

    def run(self: Sink, stop: Any = None) -> SinkStats:
        walked = any(o is self for o in gc.get_objects())  # generations 0-2, not frozen
        seen.append({"sink": self, "frozen": gc.get_freeze_count(),
                     "tracked": gc.is_tracked(self), "walked": walked})
        return SinkStats()

    monkeypatch.setattr(Sink, "run", run)
    monkeypatch.setattr(sinks_cli, "require_kafka", lambda servers: None)
    monkeypatch.setattr(signal, "signal", lambda signum, handler: None)  # the test process keeps its own
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        yield seen
    finally:
        gc.unfreeze()  # the rest of the test session collects as usual


def test_the_sink_freezes_its_start_up_heap_before_it_consumes(
        loop_start: list[dict[str, Any]], store_url: str) -> None:
    result = CliRunner().invoke(sinks_cli.sink, [
        "--bootstrap-servers", "127.0.0.1:9", "--clickhouse", store_url, "--health-address", "off"],
        catch_exceptions=False)
    assert result.exit_code == 0, result.output
    [start] = loop_start
    assert start["sink"].store.url.startswith("chdb://")
    assert start["frozen"] > 10_000  # the imports, the store and the sink, not a handful of objects
    assert start["tracked"] and not start["walked"]  # the sink itself sits in the frozen set
