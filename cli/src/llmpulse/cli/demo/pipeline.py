"""The embedded pipeline: the workers' code, run in-process on what the SDK captured.

It does what the Kafka stack does, with the same pieces: decode and validate each
record (``llmpulse.schemas``), join prompt and response (``CallJoiner``), score and guard
(``Enricher``: light, then the model scorers in batches), watch drift (``DriftMonitor``),
raise and resolve alerts (``AlertEngine``), and write everything through the sink's
idempotent ``Writer`` into the store.

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

from llmpulse.processors.join import CallJoiner
from llmpulse.processors.pipeline import Enricher
from llmpulse.schemas import (
    Alert,
    DeadLetter,
    DriftResult,
    EnrichedCall,
    FeedbackEvent,
    PromptEvent,
    ResponseEvent,
    decode_record,
)
from llmpulse.sinks.store import Store
from llmpulse.sinks.writer import Sourced, Writer

logger = logging.getLogger(__name__)


@dataclass
class PipelineTotals:
    """What went through, for the closing summary."""

    events: int = 0
    calls: int = 0
    feedback: int = 0
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
        self.enricher = enricher if enricher is not None else Enricher()
        self.joiner = CallJoiner()
        self.drift = drift
        self.alerts = alerts
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
        totals = self.totals
        t0 = time.perf_counter()
        halves: list[tuple[PromptEvent | ResponseEvent, int]] = []
        feedback: list[FeedbackEvent] = []
        letters: list[DeadLetter] = []
        for topic, _key, value in inbox:
            record = decode_record(value)
            for failure in record.failures:
                letters.append(DeadLetter(reason=failure.error.reason, detail=failure.error.detail,
                                          source_topic=topic, payload=failure.payload[:4096]))
                totals.dead_letters[failure.error.reason] += 1
            for event in record.events:
                totals.events += 1
                if isinstance(event, PromptEvent | ResponseEvent):
                    halves.append((event, 0))
                elif isinstance(event, FeedbackEvent):
                    feedback.append(event)
        pairs = self.joiner.add_many(halves, now=time.time())
        totals.seconds["join"] += time.perf_counter() - t0
        t1 = time.perf_counter()
        calls = self.enricher.light(pairs)
        totals.seconds["light"] += time.perf_counter() - t1
        t2 = time.perf_counter()
        calls = self.enricher.heavy(calls) if calls else calls
        totals.seconds["heavy"] += time.perf_counter() - t2
        t3 = time.perf_counter()
        drift_results: list[DriftResult] = []
        if self.drift is not None:
            drift_results = self.drift.observe(calls, feedback)
        raised: list[Alert] = []
        if self.alerts is not None:
            raised = list(self.alerts.evaluate(drift_results=drift_results, calls=calls,
                                               feedback=feedback))
        totals.seconds["drift"] += time.perf_counter() - t3
        self._write(calls, feedback, drift_results, raised, letters)
        totals.calls += len(calls)
        totals.feedback += len(feedback)
        totals.drift_results += len(drift_results)
        totals.drifted_windows += sum(1 for d in drift_results if d.drifted)
        totals.alerts.extend(raised)

    def finish(self) -> None:
        """Process what is left, and close what the drift monitor still holds open."""
        self.process()
        if self.drift is not None and hasattr(self.drift, "flush"):
            results = self.drift.flush()
            raised = list(self.alerts.evaluate(drift_results=results, calls=[], feedback=[])) \
                if self.alerts is not None else []
            self._write([], [], results, raised, [])
            self.totals.drift_results += len(results)
            self.totals.drifted_windows += sum(1 for d in results if d.drifted)
            self.totals.alerts.extend(raised)

    def _write(self, calls: list[EnrichedCall], feedback: list[FeedbackEvent],
               drift: list[DriftResult], alerts: list[Alert], letters: list[DeadLetter]) -> None:
        t0 = time.perf_counter()
        verdicts = [v for c in calls for v in c.verdicts]
        self.totals.verdicts += len(verdicts)
        items = [Sourced(e) for e in (*calls, *verdicts, *feedback, *drift, *alerts, *letters)]
        if items:
            result = self.writer.write(items)
            for rejected in result.rejected:
                self.totals.dead_letters["rejected_by_store"] += 1
                logger.warning("store refused a row: %s", rejected)
        self.totals.seconds["write"] += time.perf_counter() - t0
