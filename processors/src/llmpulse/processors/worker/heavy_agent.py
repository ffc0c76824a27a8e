"""The worker's heavy agent: model scorers (toxicity, embeddings, readability) on
micro-batches of light calls from ``llm.enriched.pending``.

Batches are ``take(N, within=T)`` from the scorers' settings; the scoring runs in a
thread so the event loop and the light path keep going. With ``role="light"`` and
``role="heavy"`` the two run in separate processes and consumer groups.

Example (not a doctest: it needs a Faust app)::

    register_heavy(app, topics, step, outputs, executor)
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from typing import Any

from llmpulse.processors.step import ProcessingStep
from llmpulse.processors.worker.faust_app import Topics, WorkerApp
from llmpulse.processors.worker.outputs import Outputs
from llmpulse.schemas import EnrichedCall, decode_record

__all__ = ["register_heavy"]


def register_heavy(app: WorkerApp, topics: Topics, step: ProcessingStep, outputs: Outputs,
                   executor: Executor) -> None:
    """Add the ``llmpulse-heavy`` agent: pending calls -> ``step.heavy`` -> finished."""
    batching = step.enricher.batching
    size = max((b.size for b in batching.values()), default=32)
    within = min((b.max_wait_s for b in batching.values()), default=1.0)

    @app.agent(topics.pending, name="llmpulse-heavy")
    async def heavy(stream: Any) -> None:
        loop = asyncio.get_running_loop()
        async for values in stream.take(size, within=within):
            calls: list[EnrichedCall] = []
            for value in values:
                record = decode_record(value, step.limits)
                calls.extend(e for e in record.events if isinstance(e, EnrichedCall))
            if calls:
                scored = await loop.run_in_executor(executor, step.heavy, calls)
                await outputs.finish(scored)
