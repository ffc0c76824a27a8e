"""The embedded pipeline: the workers' processing step, run in-process on what the SDK
captured.

It does what the Kafka stack does, with the same code: ``ProcessingStep`` decodes and
validates each record, joins prompt and response, scores and guards (light, then the model
scorers), checks and guards the spans of agent runs against their trace, watches drift and
raises and resolves alerts; everything is written through the sink's idempotent
``Writer`` into the store.

Example:
    >>> from llmpulse.cli.demo.pipeline import EmbeddedPipeline   # doctest: +SKIP
    >>> pipeline = EmbeddedPipeline(store)                          # doctest: +SKIP
    >>> llmpulse.producers.init(app="bot", deliver_to=pipeline.accept)  # doctest: +SKIP
    >>> pipeline.process()                                          # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from llmpulse.processors.pipeline import Enricher
from llmpulse.processors.step import Drifted, ProcessingStep, Record, Traced
from llmpulse.schemas import Alert, DeadLetter, EnrichedCall, FeedbackEvent
from llmpulse.sinks.store import Store
from llmpulse.sinks.writer import Sourced, Writer

logger = logging.getLogger(__name__)


@dataclass
class PipelineTotals:
    """What went through, for the closing summary."""

    events: int = 0
    calls: int = 0
    feedback: int = 0
    spans: int = 0
    verdicts: int = 0
    drift_results: int = 0
    drifted_windows: int = 0
    alerts: list[Alert] = field(default_factory=list)
    dead_letters: Counter[str] = field(default_factory=Counter)
    seconds: Counter[str] = field(default_factory=Counter)


class EmbeddedPipeline:
    """Receives the SDK's encoded events (``accept``) and processes them in batches."""

    def __init__(self, store: Store, *, enricher: Enricher | None = None, drift: Any = None,
                 alerts: Any = None) -> None:
        self.store = store
        self.writer = Writer(store)
        self.step = ProcessingStep(enricher, drift=drift, alerts=alerts, take_feedback=True,
                                   reject_unexpected=False)
        self.inbox: list[tuple[str, bytes, bytes]] = []
        self.totals = PipelineTotals()

    def accept(self, topic: str, key: bytes, value: bytes) -> None:
        """The SDK's ``deliver_to``: cheap, on the app's thread."""
        self.inbox.append((topic, key, value))

    def process(self) -> None:
        """Process everything received so far."""
        inbox, self.inbox = self.inbox, []
        if not inbox:
            return
        out = self.step.process([Record(topic, value, key=key) for topic, key, value in inbox])
        totals = self.totals
        totals.events += out.events
        totals.dead_letters.update(letter.reason for letter in out.dead_letters)
        totals.seconds.update(out.seconds)
        self._write(out.calls, out.feedback, out.drift, out.dead_letters, out.traced)
        totals.calls += len(out.calls)
        totals.feedback += len(out.feedback)

    def finish(self) -> None:
        """Process what is left, and close what the drift monitor still holds open."""
        self.process()
        self._write([], [], self.step.flush(), [], Traced())

    def _write(self, calls: list[EnrichedCall], feedback: list[FeedbackEvent], drifted: Drifted,
               letters: list[DeadLetter], traced: Traced) -> None:
        t0 = time.perf_counter()
        totals = self.totals
        verdicts = [v for c in calls for v in c.verdicts] + traced.verdicts
        totals.spans += len(traced.spans)
        totals.verdicts += len(verdicts)
        totals.drift_results += len(drifted.results)
        totals.drifted_windows += sum(1 for d in drifted.results if d.drifted)
        totals.alerts.extend(drifted.alerts)
        items = [Sourced(e) for e in (*calls, *traced.spans, *verdicts, *feedback, *drifted.results,
                                      *drifted.alerts, *letters)]
        if items:
            result = self.writer.write(items)
            for rejected in result.rejected:
                totals.dead_letters["rejected_by_store"] += 1
                logger.warning("store refused a row: %s", rejected)
        totals.seconds["write"] += time.perf_counter() - t0
