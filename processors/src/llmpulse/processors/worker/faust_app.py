"""Everything the worker asks of Faust beyond agents and timers, in one place.

- ``WorkerApp``: Faust's ``App`` with the worker's one override (``before_wait_empty``).
- ``DeclaredTables``: Faust's table manager without its one-second wait at start.
- ``TableStore``: a Faust table as the join's ``JoinStore`` (and the drift state's), read
  and written through the table's ``data`` and ``send_changelog`` directly.
- ``create_app``: the app with its settings and topics (``Topics``).
- ``batches``: events as batch records for ``topic.send``.

Nothing else in the worker touches Faust's internals; a Faust upgrade is checked here
(``faust-streaming`` is pinned below its next minor in ``pyproject.toml``).

Example (not a doctest: Faust apps want a running loop and a broker)::

    app, topics = create_app(WorkerSettings("127.0.0.1:9092"))
    for key, value in batches(calls):
        await topics.enriched.send(key=key, value=value)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import faust
from faust.tables import TableManager

from llmpulse.processors.worker.settings import WorkerSettings
from llmpulse.schemas import Event, encode_batch, encode_event, event_key
from llmpulse.schemas.topics import (
    ALERTS,
    DLQ,
    DRIFT,
    DRIFT_INPUT,
    ENRICHED,
    ENRICHED_PENDING,
    FEEDBACK,
    PROMPTS,
    RESPONSES,
    SPANS,
)

__all__ = ["DeclaredTables", "TableStore", "Topics", "WorkerApp", "batches", "consumer_lag",
           "create_app"]


class WorkerApp(faust.App):
    """Faust's App with one hook: ``before_wait_empty`` runs before Faust waits for every
    record to be acknowledged (on a rebalance and on stop), so the join can store and
    acknowledge the records it holds instead of waiting forever for them."""

    before_wait_empty: Callable[[], Awaitable[None]] | None = None

    async def _consumer_wait_empty(self, consumer: Any, logger: Any) -> None:
        if self.before_wait_empty is not None:
            await self.before_wait_empty()
        await super()._consumer_wait_empty(consumer, logger)


class DeclaredTables(TableManager):
    """Faust's table manager, started without Faust's fixed one-second sleep (its
    ``on_start`` sleeps before it registers the tables' changelogs, for tables an app might
    declare while it starts). Ours declare every table before the app starts (``build_app``,
    the OTLP stage), so the wait only delayed every start, a worker's and each test's."""

    async def on_start(self) -> None:
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()


class TableStore:
    """A Faust table as a ``JoinStore``. Writes go to the table's data and its changelog
    partition directly: a micro-batch mixes partitions, so Faust's "current event" does not
    name the right one (and a timer has none)."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def get(self, key: str) -> bytes | None:
        return self.table.data.get(key.encode())  # type: ignore[no-any-return]

    def put(self, key: str, value: bytes, partition: int) -> None:
        self.table.data[key.encode()] = value
        self.table.send_changelog(partition, key.encode(), value)

    def remove(self, key: str, partition: int) -> None:
        self.table.data.pop(key.encode(), None)
        self.table.send_changelog(partition, key.encode(), None)

    def items(self) -> list[tuple[str, bytes]]:
        return [(k.decode() if isinstance(k, bytes) else k, v)
                for k, v in list(self.table.data.items()) if v is not None]

    def __len__(self) -> int:
        return len(self.table.data)


@dataclass(frozen=True)
class Topics:
    """The worker's topics (raw bytes keys and values), named with the settings' prefix."""

    inputs: Any
    """``llm.prompts`` and ``llm.responses``, read together by the join."""
    enriched: Any
    pending: Any
    """Light calls waiting for the model scorers (internal, keyed like the inputs)."""
    alerts: Any
    dlq: Any
    drift_input: Any
    """Calls and feedback for the drift agent (one partition)."""
    drift_out: Any
    feedback: Any
    spans: Any
    """``llm.spans``: tool executions and agent steps, keyed by trace id."""


def configured_app(settings: WorkerSettings, app_class: type[faust.App] = WorkerApp) -> Any:
    """A Faust app of ``app_class`` configured from ``settings`` (brokers, consumer-group
    timing, raw bytes, 8 MiB records); the worker's and the OTLP stage's. Its Kafka client
    id is the app id, so a broker's logs and client quotas name the deployment."""
    brokers = [f"kafka://{server.strip()}" for server in settings.bootstrap_servers.split(",")]
    return app_class(
        settings.app_id, broker=brokers, broker_client_id=settings.app_id,
        store="memory://", datadir=settings.datadir,
        key_serializer="raw", value_serializer="raw", topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        consumer_auto_offset_reset="earliest", web_enabled=False,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_s,
        broker_rebalance_timeout=settings.rebalance_timeout_s,
        stream_recovery_delay=settings.recovery_delay_s,
        broker_commit_interval=settings.commit_interval_s,
        table_standby_replicas=settings.standby_replicas,
        producer_max_request_size=8 * 1024 * 1024,
        consumer_max_fetch_size=8 * 1024 * 1024,
        TableManager=DeclaredTables,
    )


def create_app(settings: WorkerSettings) -> tuple[WorkerApp, Topics]:
    """The Faust app configured from ``settings``, and its topics."""
    app: WorkerApp = configured_app(settings)
    raw: dict[str, Any] = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw",
           "value_serializer": "raw"}
    topic = settings.topic
    topics = Topics(
        inputs=app.topic(topic(PROMPTS), topic(RESPONSES), **raw),
        enriched=app.topic(topic(ENRICHED), **raw),
        pending=app.topic(topic(ENRICHED_PENDING), partitions=settings.partitions, **raw),
        alerts=app.topic(topic(ALERTS), **raw),
        dlq=app.topic(topic(DLQ), **raw),
        drift_input=app.topic(topic(DRIFT_INPUT), partitions=1, **raw),
        drift_out=app.topic(topic(DRIFT), **raw),
        feedback=app.topic(topic(FEEDBACK), **raw),
        spans=app.topic(topic(SPANS), **raw),
    )
    return app, topics


def batches(events: Sequence[Event], max_events: int = 500) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) batch records of at most ``max_events``, keyed by the first event's key
    (``event_key``: a span's trace id, else the call id)."""
    for start in range(0, len(events), max_events):
        chunk = events[start:start + max_events]
        key = event_key(chunk[0])
        encoded = [encode_event(e) for e in chunk]
        yield key.encode(), encoded[0] if len(encoded) == 1 else encode_batch(encoded)


async def consumer_lag(app: Any, topics: frozenset[str]) -> dict[tuple[str, int], int]:
    """Records behind on each assigned partition of ``topics``: the end offset, asked of the
    broker by a client of its own (not the last fetch's, and not through Faust's consumer
    thread, so a consumer that fetches nothing still sees its lag grow), minus the offset
    Faust committed."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition

    consumer = app.consumer
    assigned = [tp for tp in consumer.assignment() if tp.topic in topics]
    if not assigned:
        return {}
    client = getattr(app, "_llmpulse_offsets", None)
    if client is None:
        client = AIOKafkaConsumer(bootstrap_servers=_bootstrap(app), enable_auto_commit=False,
                                  client_id="llmpulse-lag")
        await client.start()
        app._llmpulse_offsets = client
    ends = await asyncio.wait_for(
        client.end_offsets([TopicPartition(tp.topic, tp.partition) for tp in assigned]), 10)
    committed = consumer._committed_offset  # Faust's own record of its commits
    return {(tp.topic, tp.partition):
            max(0, int(ends.get(TopicPartition(tp.topic, tp.partition), 0))
                - int(committed.get(tp) or 0))
            for tp in assigned}


def _bootstrap(app: Any) -> str:
    """``host:port,...`` of the app's brokers (``kafka://host:port`` URLs)."""
    return ",".join(f"{url.host}:{url.port or 9092}" for url in app.conf.broker)
