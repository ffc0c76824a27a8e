"""The worker's drift agents: drift windows and alert rules, with their state in a table.

- ``llmpulse-feedback-to-drift`` forwards ``llm.feedback`` to the drift input;
- ``llmpulse-drift`` feeds calls and feedback to the processing step's ``watch`` (the
  ``DriftMonitor`` and ``AlertEngine``), in a thread;
- a timer closes time windows (``step.tick``).

Their state (reservoir samples of the open window, the reference, the alert incidents)
lives in a Faust table, written when it changes, so a restarted worker goes on with the
same windows. Drift windows go to ``llm.drift``, alerts to ``llm.alerts``.

Example (not a doctest: it needs a Faust app)::

    DriftAgent(app, topics, settings, step, executor).register()
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from typing import Any

from llmpulse.processors.step import Drifted, ProcessingStep
from llmpulse.processors.worker.faust_app import TableStore, Topics, WorkerApp
from llmpulse.processors.worker.settings import WorkerSettings
from llmpulse.schemas import EnrichedCall, FeedbackEvent, decode_record, encode_event

__all__ = ["DriftAgent"]

DirtyState = dict[str, bytes]


class DriftAgent:
    """The drift agents and timer around ``step.watch`` and ``step.tick``."""

    def __init__(self, app: WorkerApp, topics: Topics, settings: WorkerSettings,
                 step: ProcessingStep, executor: Executor) -> None:
        from llmpulse.processors.alerting import AlertEngine
        from llmpulse.processors.drift.monitor import DriftMonitor

        if step.drift is None:
            step.drift = DriftMonitor()
        if step.alerts is None:
            step.alerts = AlertEngine()
        self.app = app
        self.topics = topics
        self.settings = settings
        self.step = step
        self.counts = step.counts
        self.executor = executor
        self.state = TableStore(app.Table("llmpulse-drift-state", default=None, partitions=1,
                                          key_type=bytes, value_type=bytes))
        self.restored = False

    def register(self) -> None:
        """Add the agents and the timer to the app."""
        app, topics = self.app, self.topics

        @app.agent(topics.feedback, name="llmpulse-feedback-to-drift")
        async def forward_feedback(stream: Any) -> None:
            async for value in stream:
                await topics.drift_input.send(value=value, partition=0)

        @app.agent(topics.drift_input, name="llmpulse-drift")
        async def drift(stream: Any) -> None:
            await self.run(stream)

        @app.timer(interval=max(1.0, self.settings.expiry_check_s))
        async def drift_tick() -> None:
            await self.tick()

    def restore(self) -> None:
        """Load every key's drift and alert state from the table (once, at the start)."""
        from llmpulse.processors.drift.window import DriftKey

        for name, value in self.state.items():
            kind, _, encoded = name.partition("|")
            key = DriftKey.decode(encoded)
            (self.step.alerts if kind == "alert" else self.step.drift).restore(key, value)
            self.counts["drift_keys_restored"] += 1
        self.restored = True

    async def run(self, stream: Any) -> None:
        loop = asyncio.get_running_loop()
        async for values in stream.take(500, within=1.0):
            if not self.restored:
                self.restore()
            calls: list[EnrichedCall] = []
            feedback: list[FeedbackEvent] = []
            for value in values:
                for event in decode_record(value, self.step.limits).events:
                    if isinstance(event, EnrichedCall):
                        calls.append(event)
                    elif isinstance(event, FeedbackEvent):
                        feedback.append(event)
            out = await loop.run_in_executor(self.executor, self._watch, calls, feedback)
            await self.publish(*out)

    def _watch(self, calls: list[EnrichedCall], feedback: list[FeedbackEvent]
               ) -> tuple[Drifted, DirtyState, DirtyState]:
        """In the executor: the step's drift and alerts, and the state they changed."""
        return (self.step.watch(calls, feedback), *self._dirty())

    def _dirty(self) -> tuple[DirtyState, DirtyState]:
        """The parts of each key's drift state that changed (the open window changes with
        every call; the reference only when a window closes) and the changed alert
        incidents, by table key."""
        monitor, engine = self.step.drift, self.step.alerts
        drift = {f"drift.{part}|{key.encode()}": monitor.state_for(key, part)
                 for key, parts in monitor.take_dirty().items() for part in sorted(parts)}
        alerts = {f"alert|{key.encode()}": engine.state_for(key) for key in engine.take_dirty()}
        return drift, alerts

    async def tick(self) -> None:
        if not self.restored:
            return
        drifted = self.step.tick()
        if drifted.results:
            await self.publish(drifted, *self._dirty())

    async def publish(self, drifted: Drifted, dirty_drift: DirtyState,
                      dirty_alerts: DirtyState) -> None:
        for name, value in (*dirty_drift.items(), *dirty_alerts.items()):
            self.state.put(name, value, 0)  # only changed parts
        for result in drifted.results:
            await self.topics.drift_out.send(
                key=f"{result.app}/{result.prompt_id}/{result.prompt_version}".encode(),
                value=encode_event(result))
        for alert in drifted.alerts:
            await self.topics.alerts.send(key=alert.dedup_key.encode(), value=encode_event(alert))
        self.counts["drift_windows"] += len(drifted.results)
        self.counts["alerts"] += len(drifted.alerts)


