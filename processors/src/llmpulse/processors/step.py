"""One processing step: records in; enriched calls, spans, verdicts, dead letters and drift out.

Plain Python, no Kafka: decode and validate each record (``llmpulse.schemas``), dead-letter
what fails, join prompt and response (``CallJoiner``), score and guard (``Enricher``:
light, then the model scorers), then watch drift (``DriftMonitor``) and raise alerts
(``AlertEngine``). Spans (records of ``llm.spans``: tool executions, agent steps) need no
join: ``trace`` checks them against their trace (``TraceMonitor``: invalid tool arguments,
tool errors, loops) and guards their tool arguments and results (``Enricher.guard_span``).
The Faust worker, the embedded demo and replay are adapters around it: the worker runs the
stages in separate agents (``take``, ``light``, ``heavy``, ``watch``; ``take`` and
``trace`` for spans), the demo runs them all at once (``process``), replay takes and joins
with it and scores with two enrichers.

Example:
    >>> from llmpulse.processors.config import load_config
    >>> from llmpulse.processors.pipeline import Enricher
    >>> from llmpulse.processors.step import ProcessingStep, Record
    >>> from llmpulse.schemas import PromptEvent, ResponseEvent, encode_event
    >>> step = ProcessingStep(Enricher(load_config(environ={}), batched_scorers=[]))
    >>> out = step.process([
    ...     Record("llm.prompts", encode_event(PromptEvent(call_id="c1", app="shop"))),
    ...     Record("llm.responses", encode_event(ResponseEvent(call_id="c1", app="shop",
    ...                                                         text="hi", latency_ms=3.0))),
    ...     Record("llm.prompts", b'{"type":"prompt","app":"shop"}', offset=9)], now=0.0)
    >>> [c.call_id for c in out.calls], [(d.reason, d.source_offset) for d in out.dead_letters]
    (['c1'], [('missing_field', 9)])
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from llmpulse.processors.agents import TraceMonitor
from llmpulse.processors.join import CallJoiner, StoredHalf
from llmpulse.processors.pipeline import CallPair, Enricher
from llmpulse.schemas import (
    DLQ_PAYLOAD_MAX_BYTES,
    Alert,
    DeadLetter,
    DecodedRecord,
    DriftResult,
    EnrichedCall,
    FeedbackEvent,
    GuardrailVerdict,
    Limits,
    PromptEvent,
    ResponseEvent,
    SpanEvent,
    dead_letter,
    dead_letters,
    decode_record,
    encode_event,
)
from llmpulse.schemas.topics import SPANS

__all__ = ["Decoded", "Drifted", "ProcessingStep", "Record", "StepOutput", "Taken", "Traced"]

Half = PromptEvent | ResponseEvent
logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Record:
    """One record as read from a topic (or handed over in process)."""

    topic: str
    value: bytes
    partition: int = 0
    offset: int | None = None
    key: bytes | None = None
    source: Any = None
    """The adapter's handle on the record (the worker's Faust event): while one of its
    halves lingers in the join, the adapter keeps it unacknowledged."""


@dataclass
class Decoded:
    """What one record held: the halves to join (with their partition), the feedback (when
    the step takes feedback), the spans, its dead letters, and how many events were decoded."""

    record: Record
    halves: list[tuple[Half, int]] = field(default_factory=list)
    feedback: list[FeedbackEvent] = field(default_factory=list)
    spans: list[SpanEvent] = field(default_factory=list)
    letters: list[DeadLetter] = field(default_factory=list)
    events: int = 0


@dataclass
class Taken:
    """What ``take`` made of a batch of records: the joined pairs, the feedback (when the
    step takes feedback), the spans, the records with dead letters, and how many events
    were decoded."""

    pairs: list[CallPair] = field(default_factory=list)
    feedback: list[FeedbackEvent] = field(default_factory=list)
    spans: list[SpanEvent] = field(default_factory=list)
    rejected: list[Decoded] = field(default_factory=list)
    events: int = 0

    @property
    def dead_letters(self) -> list[DeadLetter]:
        return [letter for r in self.rejected for letter in r.letters]


@dataclass
class Drifted:
    """Drift windows that closed, and the alerts that changed state."""

    results: list[DriftResult] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)


@dataclass
class Traced:
    """Spans checked and guarded (their redactions applied), and their verdicts."""

    spans: list[SpanEvent] = field(default_factory=list)
    verdicts: list[GuardrailVerdict] = field(default_factory=list)


@dataclass
class StepOutput:
    """Everything one ``process`` call produced."""

    calls: list[EnrichedCall] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    feedback: list[FeedbackEvent] = field(default_factory=list)
    drift: Drifted = field(default_factory=Drifted)
    traced: Traced = field(default_factory=Traced)
    """The spans and their verdicts."""
    events: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    """Time spent in each stage (join, light, heavy, drift, spans)."""

    @property
    def verdicts(self) -> list[GuardrailVerdict]:
        """The verdicts of the calls, then those of the spans."""
        return [*(v for c in self.calls for v in c.verdicts), *self.traced.verdicts]

    @property
    def drift_input(self) -> list[EnrichedCall | FeedbackEvent]:
        """What the drift monitor takes: the calls, then the feedback."""
        return [*self.calls, *self.feedback]


class ProcessingStep:
    """Decode, validate, join, enrich and watch drift, with one configuration.

    Args:
        enricher: scores and guards calls (default: ``Enricher()``, the configuration).
        joiner: where lonely halves wait (default: a ``CallJoiner`` over a dict).
        drift: a ``DriftMonitor`` (None: no drift windows).
        alerts: an ``AlertEngine`` (None: no alerts).
        take_feedback: feedback events are drift input (the demo reads every topic); else
            a feedback event is an unexpected one.
        reject_unexpected: an event that does not belong on its topic becomes an
            ``unknown_type`` dead letter (the worker's input topics carry only prompts and
            responses, ``llm.spans`` only spans); else it is skipped (a span is taken
            wherever it came from).
        traces: the agent checks of spans (default: a ``TraceMonitor`` of the enricher's
            ``agents`` section, None when it is disabled).
        payload_max: the cap on the rejected bytes a dead letter keeps.
        limits: the bounds validation applies (default: ``Limits.from_env()``, the
            ``LLMPULSE_LIMIT_*`` variables, as the sink reads them): every adapter decodes
            with the step's ``limits``, so the worker, the demo and replay accept what the
            sink accepts.

    Attributes:
        counts: events decoded, dead letters by reason (``dlq:<reason>``), incomplete
            calls, join-table writes.
    """

    def __init__(self, enricher: Enricher | None = None, *, joiner: CallJoiner | None = None,
                 drift: Any = None, alerts: Any = None, take_feedback: bool = False,
                 reject_unexpected: bool = True, traces: TraceMonitor | None = None,
                 payload_max: int = DLQ_PAYLOAD_MAX_BYTES, limits: Limits | None = None) -> None:
        self.limits = limits if limits is not None else Limits.from_env()
        self.enricher = enricher if enricher is not None else Enricher()
        self.joiner = joiner if joiner is not None else CallJoiner()
        self.drift = drift
        self.alerts = alerts
        self.take_feedback = take_feedback
        self.reject_unexpected = reject_unexpected
        self.payload_max = payload_max
        self.counts: Counter[str] = Counter()
        agents = self.enricher.config.agents
        if traces is None and agents.enabled:
            traces = TraceMonitor(agents, counts=self.counts)
        self.traces = traces

    # -- the stages ------------------------------------------------------------------------

    def take(self, records: Sequence[Record], *, now: float) -> Taken:
        """Decode and validate each record, dead-letter what fails, and join the halves.

        Records with a ``source`` are joined one by one with it (a half may linger,
        holding its record); the others in one go.
        """
        taken = Taken()
        decoded = [self.decode(record) for record in records]
        for one in decoded:
            taken.feedback.extend(one.feedback)
            taken.spans.extend(one.spans)
            taken.events += one.events
            if one.letters:
                taken.rejected.append(one)
        if any(record.source is not None for record in records):
            for one in decoded:
                taken.pairs.extend(self.join(one.halves, now=now, source=one.record.source))
        else:
            taken.pairs = self.join([h for one in decoded for h in one.halves], now=now)
        return taken

    def decode(self, record: Record) -> Decoded:
        """Decode and validate one record; what fails becomes a dead letter."""
        decoded = decode_record(record.value, self.limits)
        out = Decoded(record, events=len(decoded.events))
        out.letters = dead_letters(decoded.failures, source_topic=record.topic,
                                   source_partition=record.partition,
                                   source_offset=record.offset, payload_max=self.payload_max)
        spans_topic = record.topic.endswith(SPANS)
        for index, event in enumerate(decoded.events):
            if self._keep(out, event, spans_topic):
                continue
            if self.reject_unexpected:
                at = _batch_position(decoded, index) if decoded.batched else None
                out.letters.append(dead_letter(
                    "unknown_type", f"a {type(event).__name__} does not belong on {record.topic}",
                    error_field="$.type", source_topic=record.topic,
                    source_partition=record.partition, source_offset=record.offset,
                    batch_index=at, payload=encode_event(event), payload_max=self.payload_max))
        self.counts["events"] += out.events
        for letter in out.letters:
            self.counts[f"dlq:{letter.reason}"] += 1
        return out

    def _keep(self, out: Decoded, event: Any, spans_topic: bool) -> bool:
        """Put an event where it goes in ``out``; False when it does not belong here (only
        spans belong on ``llm.spans``, and spans nowhere else, unless the step is lenient)."""
        lenient = not self.reject_unexpected
        if isinstance(event, SpanEvent):
            if spans_topic or lenient:
                out.spans.append(event)
                return True
            return False
        if spans_topic and not lenient:
            return False
        if isinstance(event, PromptEvent | ResponseEvent):
            out.halves.append((event, out.record.partition))
            return True
        if self.take_feedback and isinstance(event, FeedbackEvent):
            out.feedback.append(event)
            return True
        return False

    def join(self, halves: Iterable[tuple[Half, int]], *, now: float,
             source: Any = None) -> list[CallPair]:
        """Pair halves by call id; a half whose partner is not here waits in the joiner."""
        pairs = self.joiner.add_many(halves, now=now, source=source)
        self.counts["join_table_writes"] = self.joiner.stored
        return pairs

    def expire(self, *, now: float, timeout_s: float,
               accept: Callable[[StoredHalf], bool] | None = None) -> list[CallPair]:
        """Halves whose partner did not come within ``timeout_s``, as incomplete pairs."""
        expired = self.joiner.expire(now=now, timeout_s=timeout_s, accept=accept)
        if expired:
            self.counts["incomplete"] += len(expired)
        return expired

    def light(self, pairs: Sequence[CallPair]) -> list[EnrichedCall]:
        """Join each pair into a call, run the light scorers and the guardrails' text rules."""
        return self.enricher.light(pairs)

    def heavy(self, calls: Sequence[EnrichedCall]) -> list[EnrichedCall]:
        """The model scorers and the score rules, on a micro-batch of light calls."""
        return self.enricher.heavy(calls) if calls else list(calls)

    def trace(self, spans: Sequence[SpanEvent]) -> Traced:
        """Check each span against its trace (``TraceMonitor``) and guard its tool arguments
        and result (``Enricher.guard_span``). A span whose checks raise still goes on, as
        it came, counted in ``span_errors``."""
        out = Traced()
        for span in spans:
            try:
                verdicts: list[GuardrailVerdict] = []
                if self.traces is not None:
                    span, verdicts = self.traces.check(span)
                span, guarded = self.enricher.guard_span(span)
                verdicts.extend(guarded)
            except Exception:  # one bad span must not stop the stream
                self.counts["span_errors"] += 1
                logger.exception("checking span %s of trace %s failed", span.span_id, span.trace_id)
                verdicts = []
            out.spans.append(span)
            out.verdicts.extend(verdicts)
        self.counts["spans"] += len(out.spans)
        return out

    def watch(self, calls: Iterable[EnrichedCall] = (), feedback: Iterable[FeedbackEvent] = ()
              ) -> Drifted:
        """Feed the drift monitor; the windows that closed and the alerts that changed."""
        calls, feedback = list(calls), list(feedback)
        results = self.drift.observe(calls, feedback) if self.drift is not None else []
        raised = self._evaluate(results, calls, feedback)
        return Drifted(results, raised)

    def tick(self, now: datetime | None = None) -> Drifted:
        """Close the drift windows whose time ended (the worker's timer)."""
        if self.drift is None:
            return Drifted()
        results = self.drift.tick(now)
        return Drifted(results, self._evaluate(results) if results else [])

    def flush(self) -> Drifted:
        """Close every open drift window (the end of a demo run)."""
        if self.drift is None or not hasattr(self.drift, "flush"):
            return Drifted()
        results = self.drift.flush()
        return Drifted(results, self._evaluate(results))

    def _evaluate(self, results: list[DriftResult], calls: list[EnrichedCall] | None = None,
                  feedback: list[FeedbackEvent] | None = None) -> list[Alert]:
        if self.alerts is None:
            return []
        if calls is None:  # a timer: only the closed windows are new
            return list(self.alerts.evaluate(drift_results=results))
        return list(self.alerts.evaluate(drift_results=results, calls=calls,
                                         feedback=feedback or []))

    # -- all at once -----------------------------------------------------------------------

    def process(self, records: Sequence[Record], *, now: float | None = None) -> StepOutput:
        """Every stage on a batch of records, in process (the demo)."""
        clock = time.perf_counter
        t0 = clock()
        taken = self.take(records, now=time.time() if now is None else now)
        t1 = clock()
        calls = self.light(taken.pairs)
        t2 = clock()
        calls = self.heavy(calls)
        t3 = clock()
        drifted = self.watch(calls, taken.feedback)
        t4 = clock()
        traced = self.trace(taken.spans)
        t5 = clock()
        return StepOutput(calls=calls, dead_letters=taken.dead_letters, feedback=taken.feedback,
                          drift=drifted, traced=traced, events=taken.events,
                          seconds={"join": t1 - t0, "light": t2 - t1, "heavy": t3 - t2,
                                   "drift": t4 - t3, "spans": t5 - t4})


def _batch_position(decoded: DecodedRecord, index: int) -> int:
    """The position in its batch record of the ``index``-th valid event (the failed
    events before it count too)."""
    failed = sorted(f.index for f in decoded.failures if f.index is not None)
    position = index
    for at in failed:
        if at > position:
            break
        position += 1
    return position

