"""The worker's span agent: tool executions and agent steps from ``llm.spans``.

Micro-batches of records go through the processing step's ``take`` (decode, validate, dead
letters: only spans belong here) and ``trace`` (the agent checks against each span's
trace, the guardrails on tool arguments and results); the spans go on to ``llm.enriched``
and their verdicts to ``llm.alerts``. Spans need no join: nothing lingers, a record is
acknowledged once its batch is sent. ``llm.spans`` is keyed by trace id, so one worker
sees the whole of each trace it holds (loops are counted per trace).

Example (not a doctest: it needs a Faust app)::

    SpanAgent(app, topics, settings, step, outputs).register()
"""

from __future__ import annotations

import time
from typing import Any

from llmpulse.processors.step import ProcessingStep, Record
from llmpulse.processors.worker.faust_app import Topics, WorkerApp
from llmpulse.processors.worker.outputs import Outputs
from llmpulse.processors.worker.settings import WorkerSettings

__all__ = ["SpanAgent"]


class SpanAgent:
    """The ``llmpulse-spans`` agent."""

    def __init__(self, app: WorkerApp, topics: Topics, settings: WorkerSettings,
                 step: ProcessingStep, outputs: Outputs) -> None:
        self.app = app
        self.topics = topics
        self.settings = settings
        self.step = step
        self.outputs = outputs

    def register(self) -> None:
        """Add the agent to the app."""

        @self.app.agent(self.topics.spans, name="llmpulse-spans")
        async def spans(stream: Any) -> None:
            await self.run(stream)

    async def run(self, stream: Any) -> None:
        """Micro-batches of records, as the join agent takes them."""
        settings = self.settings
        async for events in stream.take_events(settings.join_batch_records,
                                               within=settings.join_batch_wait_s):
            await self.spans_batch(events)

    async def spans_batch(self, events: list[Any]) -> None:
        records = [Record(topic=e.message.topic, value=e.value, partition=e.message.partition,
                          offset=e.message.offset, key=e.message.key) for e in events]
        taken = self.step.take(records, now=time.time())
        for rejected in taken.rejected:
            await self.outputs.reject(rejected)
        if taken.spans:
            await self.outputs.finish_spans(self.step.trace(taken.spans))
