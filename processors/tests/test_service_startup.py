"""The Faust services' start-up: by the time the worker or the OTLP stage runs its loop, its
start-up heap (the app included) is in the cycle collector's permanent generation
(``llmpulse.schemas.runtime.freeze_start_heap``), so full collections no longer walk it.

The commands run for real up to the Faust worker, which is replaced by one that records
what the collector holds when the loop would start (no broker is needed to build the apps).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faust
import pytest
from click.testing import CliRunner

import llmpulse.processors.cli as processors_cli
from llmpulse.processors.otlp.command import run as otlp_run


class _LoopStart:
    """Stands for ``faust.Worker``: notes, as its loop would start, whether the app is
    tracked by the collector and whether any generation it still walks holds it."""

    seen: list[dict[str, Any]] = []

    def __init__(self, app: Any, **_options: Any) -> None:
        self.app = app

    def execute_from_commandline(self) -> None:
        walked = any(o is self.app for o in gc.get_objects())  # generations 0-2, not frozen
        _LoopStart.seen.append({"app": self.app, "frozen": gc.get_freeze_count(),
                                "tracked": gc.is_tracked(self.app), "walked": walked})


@pytest.fixture
def loop_start(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    monkeypatch.setattr(faust, "Worker", _LoopStart)
    monkeypatch.setattr(processors_cli, "require_kafka", lambda servers: None)
    _LoopStart.seen = []
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        yield _LoopStart.seen
    finally:
        gc.unfreeze()  # the rest of the test session collects as usual


@pytest.mark.parametrize("command", ["otlp-stage", "worker"])
def test_a_service_freezes_its_start_up_heap_before_its_loop(
        command: str, loop_start: list[dict[str, Any]], tmp_path: Path) -> None:
    common = ["--bootstrap-servers", "127.0.0.1:9", "--datadir", str(tmp_path),
              "--health-address", "off"]
    if command == "otlp-stage":
        result = CliRunner().invoke(otlp_run, common, catch_exceptions=False)
        app_id = "llmpulse-otlp"
    else:
        result = CliRunner().invoke(processors_cli.worker,
                                    [*common, "--role", "light", "--no-heavy", "--no-drift"],
                                    catch_exceptions=False)
        app_id = "llmpulse-processors"
    assert result.exit_code == 0, result.output
    [start] = loop_start
    assert start["app"].conf.id == app_id
    assert start["frozen"] > 10_000  # the imports and the app, not a handful of objects
    assert start["tracked"] and not start["walked"]  # the app itself sits in the frozen set
