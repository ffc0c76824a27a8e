"""The OTLP stage: a thin Faust agent around ``OtlpMapper``.

It reads ``llm.otlp.spans`` (what the OpenTelemetry Collector's Kafka exporter writes),
maps each record, and writes the prompts and responses as batch records on ``llm.prompts``
and ``llm.responses``, one per partition of ``call_id`` (key: the first call id), and the
steps (tool executions, agent invocations, retrievals) on ``llm.spans``, one per partition
of ``trace_id``, exactly as the SDK does, so the join, scorers, guardrails, drift, the
agent checks and the sink run unchanged. Spans that
cannot be kept go to ``llm.dlq`` with their reason; spans that are not GenAI calls are
counted. It runs in its own consumer group (``llmpulse-otlp``), beside the workers.

Example:
    $ llmpulse otlp run --bootstrap-servers 127.0.0.1:9092 --tokens /etc/llmpulse/otel-tokens
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import faust

from llmpulse.processors.otlp.mapper import MappedRecord, OtlpMapper
from llmpulse.processors.worker import WorkerSettings
from llmpulse.processors.worker.faust_app import configured_app
from llmpulse.schemas import Event, encode_batch, encode_event, event_key, partition_for
from llmpulse.schemas.topics import DLQ, OTLP_SPANS, PROMPTS, RESPONSES, SPANS

__all__ = ["build_otlp_app", "records_by_partition"]

logger = logging.getLogger(__name__)

APP_ID = "llmpulse-otlp"
MAX_BATCH_EVENTS = 500


def records_by_partition(events: Sequence[Event], partitions: int
                         ) -> Iterator[tuple[int, bytes, bytes]]:
    """(partition, key, value) batch records: the events of each partition of their key
    (``event_key``: the ``call_id``, a span's ``trace_id``), at most ``MAX_BATCH_EVENTS`` per
    record, keyed by the first event's key (as the SDK)."""
    groups: dict[int, list[tuple[str, Event]]] = {}
    for event in events:
        key = event_key(event)
        groups.setdefault(partition_for(key, partitions), []).append((key, event))
    for partition, group in groups.items():
        for start in range(0, len(group), MAX_BATCH_EVENTS):
            chunk = group[start:start + MAX_BATCH_EVENTS]
            encoded = [encode_event(e) for _, e in chunk]
            value = encoded[0] if len(encoded) == 1 else encode_batch(encoded)
            yield partition, chunk[0][0].encode(), value


def build_otlp_app(settings: WorkerSettings, mapper: OtlpMapper | None = None) -> faust.App:
    """The Faust app of the OTLP stage (``settings.app_id`` names its consumer group)."""
    mapper = mapper if mapper is not None else OtlpMapper()
    app: faust.App = configured_app(settings, faust.App)
    raw: dict[str, Any] = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw",
           "value_serializer": "raw"}
    spans = app.topic(settings.topic(OTLP_SPANS), **raw)
    prompts = app.topic(settings.topic(PROMPTS), **raw)
    responses = app.topic(settings.topic(RESPONSES), **raw)
    steps = app.topic(settings.topic(SPANS), **raw)
    dlq = app.topic(settings.topic(DLQ), **raw)
    app.llmpulse_counts = mapper.counts  # type: ignore[attr-defined]

    async def emit(record: MappedRecord, key: bytes | None) -> None:
        # Prompts first: a response never reaches the join before its prompt's record.
        batches: tuple[tuple[Any, Sequence[Event]], ...] = (
            (prompts, record.prompts), (responses, record.responses), (steps, record.span_events))
        for topic, events in batches:
            for partition, record_key, value in records_by_partition(events, settings.partitions):
                await topic.send(key=record_key, value=value, partition=partition)
        for letter in record.dead_letters:
            await dlq.send(key=key or str(letter.event_id).encode(), value=encode_event(letter))

    @app.agent(spans, name="llmpulse-otlp-map")
    async def map_spans(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            record = mapper.map_record(event.value or b"", topic=message.topic,
                                       partition=message.partition, offset=message.offset)
            await emit(record, message.key)
            if record.dead_letters:
                logger.warning("OTLP record %s/%s/%s: %d span(s) dead-lettered (%s)",
                               message.topic, message.partition, message.offset,
                               len(record.dead_letters),
                               ", ".join(sorted({d.reason for d in record.dead_letters})))

    return app
