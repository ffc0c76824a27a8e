"""The Kafka -> ClickHouse sink: batched writes, commits after durable writes, backpressure.

The sink consumes ``llm.enriched``, ``llm.feedback``, ``llm.alerts``, ``llm.drift`` and
``llm.dlq``, buffers events until ``batch_rows`` or ``batch_seconds``, writes them with the
idempotent ``Writer``, sends refused rows to the dead-letter topic, and only then commits
the offsets. When the store is down it pauses its partitions, keeps the batch and retries
with exponential backoff; when the store comes back it writes the batch and catches up.

Example:
    >>> import threading
    >>> from llmpulse.sinks.sink import Sink, SinkConfig
    >>> from llmpulse.sinks.store import Store
    >>> store = Store.open("chdb:///tmp/llmpulse-doc.chdb"); store.migrate()  # doctest: +SKIP
    >>> sink = Sink(SinkConfig(bootstrap_servers="127.0.0.1:9092"), store)   # doctest: +SKIP
    >>> thread = threading.Thread(target=sink.run); thread.start()          # doctest: +SKIP
    >>> sink.stop(); thread.join()                                          # doctest: +SKIP
"""

from __future__ import annotations

import functools
import logging
import os
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from llmpulse.schemas import DeadLetter, EnrichedCall, Limits, dead_letter, decode_record, encode_event
from llmpulse.schemas import environment as env
from llmpulse.schemas.health import PipelineMetrics
from llmpulse.schemas.topics import (
    ALERTS,
    DLQ,
    DRIFT,
    ENRICHED,
    FEEDBACK,
    PROMPT_VERSIONS,
    topic_name,
)
from llmpulse.sinks.errors import SinkError, StoreUnavailable
from llmpulse.sinks.store import Store
from llmpulse.sinks.writer import Sourced, Writer, WriteResult

__all__ = ["SINK_TOPICS", "Sink", "SinkConfig", "SinkStats"]

logger = logging.getLogger(__name__)

SINK_TOPICS = (ENRICHED, FEEDBACK, ALERTS, DRIFT, DLQ, PROMPT_VERSIONS)
"""The catalogue topics the sink stores (before the prefix)."""

STATS_LOG_INTERVAL_S = 30.0


@dataclass
class SinkConfig:
    """How the sink consumes and batches. ``from_env`` reads the ``LLMPULSE_*`` variables.

    Attributes:
        bootstrap_servers: Kafka bootstrap servers.
        group_id: the consumer group (``llmpulse-sink``).
        prefix: topic name prefix (``LLMPULSE_TOPIC_PREFIX``).
        batch_rows: write when this many events are buffered.
        batch_seconds: write when the oldest buffered event has waited this long.
        min_backoff_s: first wait after the store failed; doubles up to ``max_backoff_s``.
        max_backoff_s: longest wait between two attempts while the store is down.
        dlq_payload_bytes: cap on the bytes of a rejected event kept in its dead letter.
        kafka_config: extra librdkafka settings (``LLMPULSE_KAFKA_*``) for both clients.
    """

    bootstrap_servers: str
    group_id: str = "llmpulse-sink"
    prefix: str = ""
    batch_rows: int = 10_000
    batch_seconds: float = 1.0
    min_backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    dlq_payload_bytes: int = 1024 * 1024
    kafka_config: dict[str, str] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)

    @property
    def topics(self) -> list[str]:
        return [topic_name(t, prefix=self.prefix) for t in SINK_TOPICS]

    @property
    def dlq_topic(self) -> str:
        return topic_name(DLQ, prefix=self.prefix)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> SinkConfig:
        """Defaults, then ``LLMPULSE_*`` variables, then ``overrides`` (None values ignored)."""
        source = os.environ if environ is None else environ
        values: dict[str, object] = {
            "bootstrap_servers": source.get(env.BOOTSTRAP_SERVERS, "127.0.0.1:9092"),
            "prefix": source.get(env.TOPIC_PREFIX, ""),
            "limits": Limits.from_env(source),
            "kafka_config": {k[len(env.KAFKA_PREFIX):].lower().replace("_", "."): v
                             for k, v in source.items() if k.startswith(env.KAFKA_PREFIX)},
        }
        for key, var, kind in (("group_id", env.SINK_GROUP_ID, str), ("batch_rows", env.SINK_BATCH_ROWS, int),
                               ("batch_seconds", env.SINK_BATCH_SECONDS, float)):
            if source.get(var):
                try:
                    values[key] = kind(source[var])
                except ValueError:
                    raise ValueError(f"{var}={source[var]!r} is not a valid {kind.__name__}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        config = cls(**values)  # type: ignore[arg-type]
        if config.batch_rows < 1 or config.batch_seconds <= 0:
            raise ValueError("batch_rows and batch_seconds must be positive")
        return config


_UNREACHABLE = frozenset({KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT, KafkaError._RESOLVE})
"""librdkafka's error codes of a broker that does not answer."""


@dataclass
class SinkStats:
    """Counters of a running sink (read them any time; written by the sink's thread)."""

    records: int = 0
    events: int = 0
    written: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    rejected: int = 0
    """Events the store refused (sent to the dead-letter topic)."""
    undecodable: int = 0
    """Records or events that broke the contract (sent to the dead-letter topic)."""
    dead_letters_sent: int = 0
    dead_letters_unrouted: int = 0
    """Refused events that came from the dead-letter topic itself (logged, not re-sent)."""
    batches: int = 0
    commits: int = 0
    store_failures: int = 0
    paused: bool = False
    paused_seconds: float = 0.0
    last_error: str = ""

    @property
    def total_written(self) -> int:
        return sum(self.written.values())


class Sink:
    """Consumes the sink topics into the store until ``stop()``.

    Args:
        config: topics, batching, backoff and Kafka settings.
        store: an open, migrated store.
        writer: defaults to ``Writer(store)``.
    """

    def __init__(self, config: SinkConfig, store: Store, *, writer: Writer | None = None,
                 metrics: PipelineMetrics | None = None) -> None:
        self.config = config
        self.store = store
        self.writer = writer or Writer(store)
        self.stats = SinkStats()
        self.metrics = metrics if metrics is not None else PipelineMetrics("sink")
        """Prometheus metrics (``llmpulse sink`` serves them on ``/metrics``)."""
        self._joined = False
        self._last_loop: float | None = None
        self._stop = threading.Event()
        self._buffer: list[Sourced] = []
        self._letters: list[tuple[DeadLetter, bytes | None]] = []
        self._letter_sources: set[tuple[str | None, int | None, int | None, int | None]] = set()
        self._logged_at = time.monotonic()
        self._offsets: dict[tuple[str, int], int] = {}
        self._first_at: float | None = None
        self._retry_at: float | None = None
        self._attempt = 0
        self._paused_since: float | None = None
        self._consumer: Consumer | None = None
        self._unreachable = False  # warned that the broker does not answer
        self._producer: Producer | None = None

    def stop(self) -> None:
        """Ask ``run`` to write what it holds (if it can), commit and return."""
        self._stop.set()

    def run(self, stop: threading.Event | None = None) -> SinkStats:
        """Consume until ``stop()`` (or ``stop`` is set). Returns the counters."""
        stop_event = stop or self._stop
        base = {"bootstrap.servers": self.config.bootstrap_servers, **self.config.kafka_config}
        self._consumer = Consumer({
            # librdkafka's own lines stop at critical (a missing broker printed ~800 errors a
            # minute) unless the sink logs at debug; its errors come to _on_kafka_error.
            "log_level": 6 if logger.isEnabledFor(logging.DEBUG) else 2, **base,
            "group.id": self.config.group_id,
            "enable.auto.commit": False, "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest", "client.id": "llmpulse-sink",
            "statistics.interval.ms": 5000, "stats_cb": self.metrics.lag_from_statistics,
            "error_cb": self._on_kafka_error})
        self._consumer.subscribe(self.config.topics, on_assign=self._on_assign,
                                 on_revoke=self._on_revoke, on_lost=self._on_revoke)
        logger.info("sink consuming %s into %s", ", ".join(self.config.topics), self.store.url)
        try:
            while not (stop_event.is_set() or self._stop.is_set()):
                self._step()
            self._flush()  # one last attempt; anything unwritten stays uncommitted
        finally:
            self._consumer.close()
            if self._producer is not None:
                self._producer.flush(10)
            self._consumer = self._producer = None
        return self.stats

    # -- the loop -----------------------------------------------------------------------------

    def readiness(self) -> tuple[bool, str]:
        """``/readyz``: consuming (the loop turns, the group is joined) and the store
        takes writes (not backing off after a failure)."""
        last = self._last_loop
        if last is None or time.monotonic() - last > 30.0:
            return False, "the consume loop is not running"
        if not self._joined:
            return False, "not in the consumer group yet"
        if self._retry_at is not None:
            return False, f"store unavailable: {self.stats.last_error}"
        return True, f"consuming; {self.stats.total_written} rows written"

    def _step(self) -> None:
        assert self._consumer is not None
        now = time.monotonic()
        self._last_loop = now
        if self._retry_at is not None:
            self._consumer.poll(max(0.0, min(0.2, self._retry_at - now)))  # keeps the group alive
            if time.monotonic() >= self._retry_at:
                self._flush()
            return
        room = max(1, self.config.batch_rows - len(self._buffer))
        messages = self._consumer.consume(num_messages=min(room, 5_000), timeout=0.05)
        if messages and self._unreachable:
            self._unreachable = False
            logger.warning("Kafka answers again; the sink consumes")
        for message in messages:
            self._accept(message)
        if self._due():
            self._flush()
        if now - self._logged_at >= STATS_LOG_INTERVAL_S:
            self._logged_at = now
            stats = self.stats
            logger.info("sink: %d events read, %d rows written %s, %d duplicates dropped, %d refused, "
                        "%d undecodable", stats.events, stats.total_written, stats.written,
                        stats.duplicates, stats.rejected, stats.undecodable)

    def _on_kafka_error(self, error: KafkaError) -> None:
        """librdkafka's errors (``error_cb``): a broker that does not answer is one warning
        until records flow again (the client keeps retrying); any other error, each time."""
        if error.code() in _UNREACHABLE:
            if not self._unreachable:
                self._unreachable = True
                logger.warning("Kafka at %s does not answer (%s); the sink keeps retrying: start "
                               "the broker, or check --bootstrap-servers",
                               self.config.bootstrap_servers, error.str())
            return
        logger.warning("Kafka error: %s", error)

    def _due(self) -> bool:
        if not self._offsets:
            return False
        if len(self._buffer) >= self.config.batch_rows:
            return True
        return self._first_at is not None and time.monotonic() - self._first_at >= self.config.batch_seconds

    def _accept(self, message: Message) -> None:
        error = message.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                logger.warning("consumer error: %s", error)
                if error.fatal():
                    raise SinkError(f"fatal Kafka error: {error}")
            return
        topic, partition, offset = message.topic() or "", message.partition() or 0, message.offset() or 0
        self.stats.records += 1
        if self._first_at is None:
            self._first_at = time.monotonic()
        self._offsets[(topic, partition)] = offset + 1
        decoded = decode_record(message.value(), self.config.limits)
        for index, event in enumerate(decoded.events):
            at = index if decoded.batched else None
            self._buffer.append(Sourced(event, topic, partition, offset, at, message.key()))
        self.stats.events += len(decoded.events)
        metrics = self.metrics
        metrics.records_in.inc()
        metrics.events_in.inc(len(decoded.events))
        metrics.last_fetch.set(time.time())
        for failure in decoded.failures:
            self.stats.undecodable += 1
            letter = self._letter(failure.error.reason, failure.error.detail, topic, partition, offset,
                                  failure.index, failure.payload, error_field=failure.error.field)
            self._route_letter(letter, message.key())

    def _letter(self, reason: str, detail: str, topic: str | None, partition: int | None,
                offset: int | None, index: int | None, payload: bytes,
                error_field: str | None = None) -> DeadLetter:
        return dead_letter(reason, detail, stage="sink", source_topic=topic,
                           source_partition=partition, source_offset=offset, batch_index=index,
                           error_field=error_field, payload=payload,
                           payload_max=self.config.dlq_payload_bytes)

    def _route_letter(self, letter: DeadLetter, key: bytes | None) -> None:
        if letter.source_topic == self.config.dlq_topic:
            self.stats.dead_letters_unrouted += 1
            logger.error("a record of the dead-letter topic cannot be stored (%s at %s:%s offset %s); "
                         "not re-sent to the dead-letter topic", letter.reason, letter.source_topic,
                         letter.source_partition, letter.source_offset)
            return
        where = (letter.source_topic, letter.source_partition, letter.source_offset, letter.batch_index)
        if where in self._letter_sources:  # the same refusal again, on a retried batch
            return
        self._letter_sources.add(where)
        self._letters.append((letter, key))

    def _flush(self) -> None:
        """Write the buffer, send dead letters, commit. On a store outage, pause and back off."""
        if not self._offsets and not self._letters:
            return
        started = time.perf_counter()
        try:
            result = self.writer.write(self._buffer)
            for rejected in result.rejected:
                item = rejected.item
                self.stats.rejected += 1
                letter = self._letter(rejected.reason, rejected.detail, item.topic, item.partition,
                                      item.offset, item.batch_index, encode_event(item.event))
                self._route_letter(letter, item.key)
            self._send_letters()
        except StoreUnavailable as exc:
            self._back_off(exc)
            return
        for table, count in result.written.items():
            self.stats.written[table] = self.stats.written.get(table, 0) + count
        self.stats.duplicates += result.duplicates
        self.stats.batches += 1
        self._measure(result, time.perf_counter() - started)
        self._commit()
        self._buffer, self._first_at = [], None
        self._letter_sources.clear()
        if self._retry_at is not None:
            self._resume()

    def _send_letters(self) -> None:
        """Produce the pending dead letters and wait until Kafka has them all."""
        if not self._letters:
            return
        if self._producer is None:
            self._producer = Producer({"bootstrap.servers": self.config.bootstrap_servers,
                                       **self.config.kafka_config, "enable.idempotence": True,
                                       "linger.ms": 5, "client.id": "llmpulse-sink-dlq"})
        failed: list[tuple[DeadLetter, bytes | None]] = []

        def on_delivery(pair: tuple[DeadLetter, bytes | None], err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                failed.append(pair)

        for pair in self._letters:
            letter, key = pair
            self._producer.produce(self.config.dlq_topic, value=encode_event(letter), key=key,
                                   on_delivery=functools.partial(on_delivery, pair))
        remaining = self._producer.flush(30)
        if remaining or failed:
            # Same DeadLetter objects (same event_id) next time: the table stores each once.
            self._letters = failed if not remaining else self._letters
            raise StoreUnavailable(f"dead-letter topic unavailable ({remaining or len(failed)} unsent)",
                                   retry_after=2.0)
        self.stats.dead_letters_sent += len(self._letters)
        for letter, _ in self._letters:
            self.metrics.dead_letter(letter.reason)
        self._letters = []

    def _measure(self, result: WriteResult, seconds: float) -> None:
        """Metrics of a written batch, and the freshness of its calls: processed_at -
        occurred_at, and the insert's start (about ``inserted_at``) - processed_at."""
        metrics = self.metrics
        metrics.store_write_seconds.observe(seconds)
        metrics.batch_events.observe(len(self._buffer))
        for table, count in result.written.items():
            metrics.events_out(table, count)
        metrics.duplicates.inc(result.duplicates)
        inserted = (datetime.fromtimestamp(result.insert_started, UTC)
                    if result.insert_started is not None else datetime.now(UTC))
        processed, stored = metrics.freshness_processed, metrics.freshness_inserted
        for item in self._buffer:
            event = item.event
            if type(event) is EnrichedCall:
                processed.observe((event.processed_at - event.occurred_at).total_seconds())
                stored.observe((inserted - event.processed_at).total_seconds())

    def _commit(self) -> None:
        assert self._consumer is not None
        offsets = [TopicPartition(t, p, o) for (t, p), o in self._offsets.items()]
        self._offsets = {}
        if not offsets:
            return
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
            self.stats.commits += 1
        except Exception as exc:  # the rows are stored; a redelivery is dropped as duplicate
            logger.warning("offset commit failed (the batch is stored; a redelivery is harmless): %s", exc)

    def _back_off(self, exc: StoreUnavailable) -> None:
        assert self._consumer is not None
        self._attempt += 1
        self.stats.store_failures += 1
        self.metrics.store_retries.inc()
        self.stats.last_error = str(exc)[:500]
        delay = min(self.config.max_backoff_s,
                    max(exc.retry_after if self._attempt > 1 else 0.0,
                        self.config.min_backoff_s * 2 ** (self._attempt - 1)))
        delay *= random.uniform(0.8, 1.2)
        self._retry_at = time.monotonic() + delay
        if self._paused_since is None:
            self._paused_since = time.monotonic()
            self.stats.paused = True
            self._consumer.pause(self._consumer.assignment())
            logger.warning("store unavailable, %d events held, partitions paused: %s",
                           len(self._buffer), exc)
        logger.info("store attempt %d failed; next in %.1fs", self._attempt, delay)

    def _resume(self) -> None:
        assert self._consumer is not None
        self._consumer.resume(self._consumer.assignment())
        if self._paused_since is not None:
            self.stats.paused_seconds += time.monotonic() - self._paused_since
        logger.warning("store back after %d attempts; partitions resumed", self._attempt)
        self._retry_at, self._paused_since, self._attempt = None, None, 0
        self.stats.paused = False

    # -- rebalancing --------------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._joined = True
        if self._paused_since is not None:
            consumer.assign(partitions)
            consumer.pause(partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Write what we hold before the partitions move; else forget their events (the
        next owner reads them again from the last commit)."""
        if self._offsets and self._retry_at is None:
            self._flush()
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        if self._offsets and revoked:
            self._buffer = [s for s in self._buffer if (s.topic, s.partition) not in revoked]
            self._offsets = {tp: o for tp, o in self._offsets.items() if tp not in revoked}
            self._letters = [(d, k) for d, k in self._letters
                             if (d.source_topic, d.source_partition) not in revoked]
