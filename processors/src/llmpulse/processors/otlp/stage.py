"""The OTLP stage: a thin Faust agent around ``OtlpMapper``.

It reads ``llm.otlp.spans`` (what the OpenTelemetry Collector's Kafka exporter writes),
maps the records, and writes the prompts and responses as batch records on ``llm.prompts``
and ``llm.responses``, one per partition of ``call_id`` (key: the first call id), and the
steps (tool executions, agent invocations, retrievals) on ``llm.spans``, one per partition
of ``trace_id``, exactly as the SDK does, so the join, scorers, guardrails, drift, the
agent checks and the sink run unchanged. Spans that
cannot be kept go to ``llm.dlq`` with their reason; spans that are not GenAI calls are
counted. It runs in its own consumer group (``llmpulse-otlp``), beside the workers.

The Collector's exporter partitions by trace id, so it writes one record per trace: most
records hold one span. The agent therefore takes micro-batches of records (at most
``join_batch_records``, waiting at most ``join_batch_wait_s``) and sends one batch record
per output partition for the whole micro-batch, not two sends per span. Faust acknowledges
the records once the batch is handled and flushes the producer before it commits their
offsets: at least once, and a redelivered span maps to the same event ids.

Example:
    $ llmpulse otlp run --bootstrap-servers 127.0.0.1:9092 --tokens /etc/llmpulse/otel-tokens
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import faust

from llmpulse.processors._partitions import partitions_for
from llmpulse.processors.otlp.auth import TokensFile
from llmpulse.processors.otlp.mapper import OtlpMapper
from llmpulse.processors.worker import WorkerSettings
from llmpulse.processors.worker.faust_app import configured_app
from llmpulse.processors.worker.health import WorkerHealth
from llmpulse.schemas import (
    Event,
    PromptEvent,
    ResponseEvent,
    encode_batch,
    encode_event,
    event_key,
)
from llmpulse.schemas.health import PipelineMetrics
from llmpulse.schemas.topics import DLQ, OTLP_SPANS, PROMPTS, RESPONSES, SPANS

__all__ = ["OtlpStage", "build_otlp_app", "records_by_partition"]

logger = logging.getLogger(__name__)

APP_ID = "llmpulse-otlp"
MAX_BATCH_EVENTS = 500


_last_partitions: list[Any] = [[], 0, []]
"""The last keys, partition count and partitions (``records_by_partition`` of a record's
answers follows that of its prompts, with the same call ids in the same order)."""


def records_by_partition(events: Sequence[Event], partitions: int
                         ) -> Iterator[tuple[int, bytes, bytes]]:
    """(partition, key, value) batch records: the events of each partition of their key
    (``event_key``: the ``call_id``, a span's ``trace_id``), at most ``MAX_BATCH_EVENTS`` per
    record, keyed by the first event's key (as the SDK)."""
    keys = [event_key(event) for event in events]
    last_keys, last_count, last_partitions = _last_partitions
    if keys == last_keys and partitions == last_count:  # (a record's answers: its prompts' keys)
        chosen = last_partitions
    else:
        chosen = partitions_for(keys, partitions)
        _last_partitions[:] = keys, partitions, chosen
    groups: dict[int, list[tuple[str, Event]]] = {}
    for key, event, partition in zip(keys, events, chosen, strict=True):
        groups.setdefault(partition, []).append((key, event))
    for partition, group in groups.items():
        for start in range(0, len(group), MAX_BATCH_EVENTS):
            chunk = group[start:start + MAX_BATCH_EVENTS]
            encoded = [encode_event(e) for _, e in chunk]
            value = encoded[0] if len(encoded) == 1 else encode_batch(encoded)
            yield partition, chunk[0][0].encode(), value


class OtlpStage:
    """Maps micro-batches of ``llm.otlp.spans`` records and sends what they became.

    Args:
        settings: partitions of the outputs, topic names.
        mapper: the pure mapper (its ``counts`` are the spans', calls' and dead letters').
        topics: Faust topics ``prompts``, ``responses``, ``spans`` and ``dlq`` (anything
            with an async ``send(key=, value=, partition=)``).
        tokens: the Collector's tokens file, followed while the stage runs: each batch is
            checked against its bindings of the moment (``mapper.bindings``), and a span
            about to be refused for its token against a fresh look at the file
            (``mapper.refresh_bindings``).
    """

    def __init__(self, settings: WorkerSettings, mapper: OtlpMapper, topics: dict[str, Any],
                 metrics: PipelineMetrics | None = None, tokens: TokensFile | None = None) -> None:
        self.settings = settings
        self.mapper = mapper
        self.tokens = tokens
        if tokens is not None:
            mapper.refresh_bindings = tokens.refresh  # (asked before a span is refused)
        self.topics = topics
        self.counts: Counter[str] = mapper.counts
        self.metrics = metrics if metrics is not None else PipelineMetrics("otlp")
        self.skipped = self.metrics.counter(
            "llmpulse_spans_skipped",
            "Spans that are no GenAI call or agent step (counted, not dead-lettered).")

    async def map_batch(self, events: Sequence[Any]) -> None:
        """Map Faust events (records of ``llm.otlp.spans``) and send the result: each
        record's dead letters under that record's key, then the prompts (a response never
        reaches the join before its prompt's record), the responses and the steps."""
        mapper = self.mapper
        if self.tokens is not None:
            mapper.bindings = self.tokens.bindings()
        prompts: list[PromptEvent] = []
        responses: list[ResponseEvent] = []
        steps: list[Event] = []
        skipped = 0
        for event in events:
            message = event.message
            record = mapper.map_record(event.value or b"", topic=message.topic,
                                       partition=message.partition, offset=message.offset)
            prompts += record.prompts
            responses += record.responses
            steps += record.span_events
            skipped += record.skipped
            for letter in record.dead_letters:
                await self.topics["dlq"].send(key=message.key or str(letter.event_id).encode(),
                                              value=encode_event(letter))
            if record.dead_letters:
                logger.warning("OTLP record %s/%s/%s: %d span(s) dead-lettered (%s)",
                               message.topic, message.partition, message.offset,
                               len(record.dead_letters),
                               ", ".join(sorted({d.reason for d in record.dead_letters})))
        self.counts["records"] += len(events)
        for name, mapped in (("prompts", prompts), ("responses", responses), ("spans", steps)):
            topic = self.topics[name]
            for partition, key, value in records_by_partition(mapped, self.settings.partitions):
                await topic.send(key=key, value=value, partition=partition)
        if skipped:
            self.skipped.inc(skipped)
        if prompts:
            self.metrics.batch_events.observe(len(prompts))


def build_otlp_app(settings: WorkerSettings, mapper: OtlpMapper | None = None,
                   tokens: TokensFile | None = None) -> faust.App:
    """The Faust app of the OTLP stage (``settings.app_id`` names its consumer group); its
    metrics, readiness and watchdog are ``app.llmpulse_health`` (as a worker's). With
    ``tokens``, the mapper's bindings follow that file (see ``OtlpStage``)."""
    mapper = mapper if mapper is not None else OtlpMapper()
    app: faust.App = configured_app(settings, faust.App)
    raw: dict[str, Any] = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw",
           "value_serializer": "raw"}
    spans = app.topic(settings.topic(OTLP_SPANS), **raw)
    stage = OtlpStage(settings, mapper, {name: app.topic(settings.topic(topic), **raw)
                                         for name, topic in (("prompts", PROMPTS),
                                                             ("responses", RESPONSES),
                                                             ("spans", SPANS), ("dlq", DLQ))},
                       tokens=tokens)
    app.llmpulse_counts = stage.counts  # type: ignore[attr-defined]
    health = WorkerHealth(app, stage.counts, topics=frozenset({settings.topic(OTLP_SPANS)}),
                          stall_s=settings.stall_s, metrics=stage.metrics,
                          inputs="spans", outputs=("calls", "steps"))
    health.register()
    app.llmpulse_health = health  # type: ignore[attr-defined]

    @app.agent(spans, name="llmpulse-otlp-map")
    async def map_spans(stream: Any) -> None:
        async for events in stream.take_events(settings.join_batch_records,
                                               within=settings.join_batch_wait_s):
            await stage.map_batch(events)

    @app.timer(interval=30.0)
    async def report() -> None:
        if stage.counts:
            logger.info("llmpulse otlp counts: %s", dict(stage.counts))

    return app
