"""Where the worker's agents send what the processing step produced.

- finished calls to ``llm.enriched``, their guardrail verdicts to ``llm.alerts`` and the
  calls on to the drift agent's input;
- light calls to ``llm.enriched.pending`` when the model scorers still have to run;
- checked and guarded spans to ``llm.enriched`` (the store's copy: redactions applied) and
  their verdicts to ``llm.alerts``;
- dead letters to ``llm.dlq``, keyed like the record they came from.

Example (not a doctest: it sends to Kafka)::

    outputs = Outputs(settings, topics, step.counts, heavy_on=True)
    await outputs.hand_on(step.light(pairs), partition=3)
"""

from __future__ import annotations

from collections import Counter

from llmpulse.processors.step import Decoded, Traced
from llmpulse.processors.worker.faust_app import Topics, batches
from llmpulse.processors.worker.settings import WorkerSettings
from llmpulse.schemas import EnrichedCall

__all__ = ["Outputs"]


class Outputs:
    """The sends of the join, heavy and expiry paths, with their counts."""

    def __init__(self, settings: WorkerSettings, topics: Topics, counts: Counter[str], *,
                 heavy_on: bool) -> None:
        self.settings = settings
        self.topics = topics
        self.counts = counts
        self.heavy_on = heavy_on

    async def finish(self, calls: list[EnrichedCall]) -> None:
        """Send finished calls to llm.enriched, their verdicts to llm.alerts, and the calls
        on to the drift agent's input (one partition: drift keys are few, its state is one
        table partition)."""
        topics = self.topics
        for key, value in batches(calls):
            await topics.enriched.send(key=key, value=value)
            if self.settings.drift:
                await topics.drift_input.send(key=key, value=value, partition=0)
        verdicts = [v for c in calls for v in c.verdicts]
        for key, value in batches(verdicts):
            await topics.alerts.send(key=key, value=value)
        self.counts["enriched"] += len(calls)
        self.counts["verdicts"] += len(verdicts)

    async def finish_spans(self, traced: Traced) -> None:
        """Spans to llm.enriched (the sink stores them from there, never the raw llm.spans)
        and their verdicts to llm.alerts."""
        for key, value in batches(traced.spans):
            await self.topics.enriched.send(key=key, value=value)
        for key, value in batches(traced.verdicts):
            await self.topics.alerts.send(key=key, value=value)
        self.counts["span_verdicts"] += len(traced.verdicts)

    async def hand_on(self, calls: list[EnrichedCall], partition: int) -> None:
        """Light calls: to the model scorers (same partition as their input), or finished."""
        if self.heavy_on:
            for key, value in batches(calls):
                await self.topics.pending.send(key=key, value=value, partition=partition)
        else:
            await self.finish(calls)

    async def reject(self, rejected: Decoded) -> None:
        """The dead letters of one record to llm.dlq, under the record's key."""
        for key, value in batches(rejected.letters):
            await self.topics.dlq.send(key=rejected.record.key or key, value=value)
