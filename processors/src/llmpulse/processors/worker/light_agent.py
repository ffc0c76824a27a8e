"""The worker's join agent and its timers: validate, join, light scorers and guardrails.

Micro-batches of records from ``llm.prompts`` and ``llm.responses`` go through the
processing step's ``take`` (decode, validate, dead letters, join) and ``light``. A prompt
and its response (sent together by the SDK) meet in memory and never touch the join table:
a lonely half lingers (its record unacknowledged) until its partner comes or
``join_linger_s`` passes, then waits in the table. A timer settles lingering halves,
another expires halves whose partner never came (emitted as incomplete calls). Each
batch's count of valid events goes to the ``llmpulse_batch_events`` histogram.

Example (not a doctest: it needs a Faust app)::

    LightAgent(app, topics, settings, step, outputs).register()
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Any

from llmpulse.processors.pipeline import CallPair
from llmpulse.processors.step import ProcessingStep, Record
from llmpulse.processors.worker.faust_app import Topics, WorkerApp
from llmpulse.processors.worker.outputs import Outputs
from llmpulse.processors.worker.settings import WorkerSettings
from llmpulse.schemas import partition_for
from llmpulse.schemas.health import PipelineMetrics
from llmpulse.schemas.topics import PROMPTS

__all__ = ["LightAgent"]


class LightAgent:
    """The ``llmpulse-join`` agent, the settle and expiry timers, and the hook that stores
    lingering halves before a rebalance or a stop."""

    def __init__(self, app: WorkerApp, topics: Topics, settings: WorkerSettings,
                 step: ProcessingStep, outputs: Outputs, *,
                 metrics: PipelineMetrics | None = None) -> None:
        self.app = app
        self.topics = topics
        self.settings = settings
        self.step = step
        self.joiner = step.joiner
        self.outputs = outputs
        self.metrics = metrics  # batch sizes go to its histogram (None: not recorded)
        self.stream: Any = None  # the agent's stream, once it runs (acknowledges records)
        self.lock = asyncio.Lock()  # the agent's batch and the timers' settling, one at a time

    def register(self) -> None:
        """Add the agent, its timers and the ``before_wait_empty`` hook to the app."""
        app, settings = self.app, self.settings
        app.before_wait_empty = self.settle_all

        @app.agent(self.topics.inputs, name="llmpulse-join")
        async def join(stream: Any) -> None:
            await self.run(stream)

        @app.timer(interval=max(0.1, settings.join_linger_s / 2))
        async def settle() -> None:
            await self.settle()

        @app.timer(interval=settings.expiry_check_s)
        async def expire() -> None:
            await self.expire()

    def owned(self) -> Callable[[int], bool]:
        """Is a partition of the input (and of the join table) still this worker's?"""
        return {tp.partition for tp in self.app.consumer.assignment()
                if tp.topic == self.settings.topic(PROMPTS)}.__contains__

    async def run(self, stream: Any) -> None:
        """Micro-batches of records, one batch at a time under the lock."""
        self.stream = stream
        settings = self.settings
        async for events in stream.take_events(settings.join_batch_records,
                                               within=settings.join_batch_wait_s):
            async with self.lock:
                await self.join_batch(events)

    async def join_batch(self, events: list[Any]) -> None:
        now = time.time()
        records = [Record(topic=e.message.topic, value=e.value, partition=e.message.partition,
                          offset=e.message.offset, key=e.message.key, source=e)
                   for e in events]
        taken = self.step.take(records, now=now)
        if self.metrics is not None:
            self.metrics.batch_events.observe(taken.events)
        for rejected in taken.rejected:
            await self.outputs.reject(rejected)
        released = self.joiner.settle(now=now, owned=self.owned())
        for event in self.joiner.pin_holding(events):
            event.message.incref()  # stays unacknowledged while its halves linger
        if taken.pairs:
            await self.emit_pairs(taken.pairs)
        await self.release(released)

    async def emit_pairs(self, pairs: list[CallPair]) -> None:
        """Light-enrich the pairs and hand them on, by the partition of their call id."""
        by_partition: dict[int, list[CallPair]] = {}
        for pair in pairs:
            call_id = (pair.prompt or pair.response).call_id  # type: ignore[union-attr]
            by_partition.setdefault(partition_for(call_id, self.settings.partitions),
                                    []).append(pair)
        for partition, group in by_partition.items():
            await self.outputs.hand_on(self.step.light(group), partition)

    async def release(self, sources: list[Any]) -> None:
        """Acknowledge records whose every half is paired or in the table."""
        for event in sources:
            await self.stream.ack(event)

    async def settle_all(self) -> None:
        """Before Faust waits for every record to be acknowledged (a rebalance, a stop):
        store every lingering half in the table and acknowledge its record."""
        async with self.lock:
            if self.stream is not None:
                await self.release(self.joiner.settle(now=math.inf))

    async def settle(self) -> None:
        """Store the halves that lingered ``join_linger_s``; acknowledge their records."""
        if self.stream is not None and self.joiner.lingering:
            async with self.lock:
                await self.release(self.joiner.settle(now=time.time(), owned=self.owned()))

    async def expire(self) -> None:
        """Emit halves of this worker's partitions that waited ``join_timeout_s``."""
        mine = self.owned()
        expired = self.step.expire(now=time.time(), timeout_s=self.settings.join_timeout_s,
                                   accept=lambda half: mine(half.partition))
        if expired:
            await self.emit_pairs(expired)
