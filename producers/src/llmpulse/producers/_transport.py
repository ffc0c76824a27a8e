"""Delivery: per-partition batch records, a background flusher, the spool when Kafka is away.

The app's thread does the least it can: it appends the finished call to a list under a
lock. A daemon thread wakes every ``flush_interval_s`` (or when a feedback buffer is
full), builds, redacts and encodes each call's events (``EncodeCall``), finds their partition
(murmur2 of the call id), joins each partition's events into one batch record, and hands
it to librdkafka, which sends from its own C threads. So the app never waits on the
network and pays neither the encoding nor the hashing; the flusher takes the interpreter
lock once per cycle, so a stalled app call is one in a few thousand (measured in
``benchmarks/sdk_overhead.py``). Feedback events are encoded on the app's thread (it is
told at once when one is invalid) and queued with ``enqueue``.

When the broker is down (librdkafka reports all brokers down, a delivery fails or its
queue is full), records go to the on-disk spool instead; the flusher probes the broker
and, once it answers, sends the spool oldest first.
"""

from __future__ import annotations

import bisect
import functools
import logging
import operator
import threading
import time
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, Producer

from llmpulse.producers._delivery import EncodeCall
from llmpulse.producers._spool import Spool, SpooledRecord, safe_name, spool_root
from llmpulse.producers.config import SdkConfig
from llmpulse.producers.stats import SdkStats
from llmpulse.schemas import encode_batch, murmur2, partition_for

logger = logging.getLogger(__name__)

_DOWN_ERRORS = {KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT, KafkaError._MSG_TIMED_OUT,
                KafkaError._TIMED_OUT, KafkaError._RESOLVE}
_PROBE_INTERVAL_S = 1.0
_SEQ = operator.itemgetter(0)  # an event's place in the order the app handed it over

class Transport:
    """Buffers, batches and delivers encoded events. One per process (re-made after fork)."""

    def __init__(self, config: SdkConfig, stats: SdkStats, encode_call: EncodeCall) -> None:
        self._config = config
        self._stats = stats
        self._encode_call = encode_call
        self._lock = threading.Lock()
        self._build_lock = threading.Lock()  # a flush waits for a build in progress
        # Every call and event gets a sequence number when the app hands it over; a
        # partition's batch is sent in that order, whichever thread built it (the app's
        # when the flusher is behind) and whenever its topic's partitions became known.
        self._seq = 0
        self._calls: list[tuple[int, Any]] = []  # finished calls whose events are not built yet
        self._buffers: dict[tuple[str, int], list[tuple[int, bytes, bytes]]] = {}
        self._pending: list[tuple[str, int, bytes, bytes]] = []  # topic unknown to metadata yet
        self._buffered = 0
        self._partitions: dict[str, int] = {}
        self._topics: set[str] = set()
        self._down = False
        self._last_probe = 0.0
        self._draining: tuple[Path, int] | None = None  # segment being resent, records left
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.spool = Spool(spool_root(config.spool_dir, config.app), config.spool_max_bytes)
        self._producer = Producer(self._producer_config())
        self._thread = threading.Thread(target=self._run, name="llmpulse-flusher", daemon=True)
        self._thread.start()

    def _producer_config(self) -> dict[str, Any]:
        cfg = self._config
        return {
            "bootstrap.servers": cfg.bootstrap_servers,
            "enable.idempotence": True,
            "compression.type": cfg.compression,
            "linger.ms": 5,
            "message.timeout.ms": int(cfg.delivery_timeout_s * 1000),
            "message.max.bytes": 8 * 1024 * 1024,
            "queue.buffering.max.kbytes": 64 * 1024,
            "client.id": f"llmpulse-sdk-{safe_name(cfg.app)}",
            "error_cb": self._on_error,
            "logger": _KafkaLog(),
            **dict(cfg.kafka_config),
        }

    # -- the app's side ----------------------------------------------------------------
    def enqueue_call(self, call: Any) -> bool:
        """Queue a finished call (two events) or span (one), built by the flusher. False
        when full.

        When the flusher has fallen behind (``max_batch_events`` calls wait), the caller
        builds its own call's events: an app capturing faster than the flusher can
        encode pays for its own events, so the queue of calls stays short and nothing is
        lost. (No early wake-up for calls: the flusher builds once per interval, so it
        takes the interpreter lock from the app once per interval.)
        """
        events = call.event_count
        with self._lock:
            full = self._buffered >= self._config.max_buffered_events
            if not full:
                self._buffered += events
                self._seq = seq = self._seq + 1
                behind = len(self._calls) >= self._config.max_batch_events
                if not behind:
                    self._calls.append((seq, call))
        if full:
            self._stats.drop("buffer_full", events)
            return False
        if behind:
            self._place([(seq, call)])
        return True

    def enqueue(self, topic: str, key: str, data: bytes) -> bool:
        """Queue one encoded event. Never blocks on I/O; False when the buffer is full."""
        partitions = self._partitions.get(topic)
        kb = key.encode()
        with self._lock:
            if self._buffered >= self._config.max_buffered_events:
                full = True
            else:
                full = False
                self._buffered += 1
                self._seq = seq = self._seq + 1
                if partitions:
                    part = partition_for(key, partitions)
                    buffer = self._buffers.get((topic, part))
                    if buffer is None:
                        buffer = self._buffers[(topic, part)] = []
                    buffer.append((seq, kb, data))
                    wake = len(buffer) >= self._config.max_batch_events
                else:
                    self._pending.append((topic, seq, kb, data))
                    self._topics.add(topic)
                    wake = False
        if full:
            self._stats.drop("buffer_full")
            return False
        if wake:
            self._wake.set()
        return True

    @property
    def buffered(self) -> int:
        """Events waiting in the SDK's own buffers."""
        return self._buffered

    @property
    def down(self) -> bool:
        """True while Kafka is unreachable and records go to the spool."""
        return self._down

    def in_flight(self) -> int:
        """Records handed to librdkafka and not yet acknowledged."""
        return len(self._producer)

    def status(self) -> dict[str, Any]:
        """Queue depth, the spool's figures and whether the broker answers."""
        return {"queue_depth": self.buffered + self.in_flight(), "spool_events": self.spool.events,
                "spool_bytes": self.spool.size, "spool_evicted": self.spool.evicted_events,
                "connected": not self.down}

    # -- the flusher thread ------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._config.flush_interval_s)
            self._wake.clear()
            try:
                self._cycle()
            except Exception:  # the flusher must outlive any surprise
                self._stats.error("flusher")
                logger.exception("llmpulse: flusher cycle failed")

    def _cycle(self) -> None:
        self._build_calls()
        if self._pending or self._topics - set(self._partitions):
            self._learn_partitions()
            if self._down:
                self._spool_pending()
        self.flush_buffers()
        self._producer.poll(0)
        if self._down:
            self._probe()
        elif self._draining is None:
            self._drain_spool()

    def _build_calls(self) -> None:
        """Build, redact and encode the queued calls' events into the partition buffers."""
        with self._build_lock:
            with self._lock:
                calls, self._calls = self._calls, []
            if calls:
                self._place(calls)

    def _place(self, calls: list[tuple[int, Any]]) -> None:
        """Build the calls' events and append them to their partition's buffer."""
        placed: list[tuple[str, int, int, bytes, bytes]] = []
        partitions = self._partitions
        failed = lost = 0
        for seq, call in calls:
            try:
                key, events = self._encode_call(call)
                kb = key.encode()
                hashed = murmur2(kb) & 0x7FFFFFFF  # once for the call's events (Kafka's choice)
                for topic, data in events:
                    n = partitions.get(topic)
                    placed.append((topic, hashed % n if n else -1, seq, kb, data))
            except Exception:
                failed += 1
                lost += call.event_count
        if failed:
            self._stats.error("build", failed)
            self._stats.drop("encode_error", lost)
        with self._lock:
            self._buffered -= lost
            for topic, part, seq, kb, data in placed:
                if part >= 0:
                    buffer = self._buffers.get((topic, part))
                    if buffer is None:
                        buffer = self._buffers[(topic, part)] = []
                    buffer.append((seq, kb, data))
                else:
                    self._pending.append((topic, seq, kb, data))
                    self._topics.add(topic)

    def _learn_partitions(self) -> None:
        missing = [t for t in self._topics if t not in self._partitions]
        for topic in missing:
            try:
                meta = self._producer.list_topics(topic, timeout=1.0).topics.get(topic)
            except Exception:
                self._down = True
                return
            if meta is not None and meta.error is None and meta.partitions:
                self._partitions[topic] = len(meta.partitions)
        with self._lock:
            pending, self._pending = self._pending, []
            for topic, seq, kb, data in pending:
                n = self._partitions.get(topic)
                if n:
                    part = partition_for(kb.decode(), n)
                    self._buffers.setdefault((topic, part), []).append((seq, kb, data))
                else:
                    self._pending.append((topic, seq, kb, data))

    def _spool_pending(self) -> None:
        """Kafka is away before we learnt a topic's partitions: keep the events on disk; the
        partition is chosen when they are resent."""
        with self._lock:
            pending, self._pending = self._pending, []
            self._buffered -= len(pending)
        self._stats.add("captured", len(pending))
        for topic, _, kb, data in pending:
            self._spool(SpooledRecord(topic, -1, kb, data, 1))

    def flush_buffers(self) -> None:
        """Turn every buffer into batch records and hand them to Kafka (or the spool)."""
        with self._lock:
            buffers, self._buffers = self._buffers, {}
            floor = self._calls[0][0] if self._calls else None
        # Calls still queued for the flusher were handed over before anything the app built
        # itself while the flusher was behind: what came after the oldest of them waits for
        # the next cycle, so no event of a partition is ever sent before an older one.
        held: dict[tuple[str, int], list[tuple[int, bytes, bytes]]] = {}
        for where, items in buffers.items():
            items.sort(key=_SEQ)  # stable (a call's prompt stays before its response) and
            if floor is not None:  # about linear: the items are nearly in order already
                cut = bisect.bisect_left(items, floor, key=_SEQ)
                if cut < len(items):
                    held[where] = items[cut:]
                    del items[cut:]
        taken = sum(len(b) for b in buffers.values())
        with self._lock:
            for where, items in held.items():
                self._buffers[where] = items + self._buffers.get(where, [])
            self._buffered -= taken
        self._stats.add("captured", taken)
        max_events, max_bytes = self._config.max_batch_events, self._config.max_batch_bytes
        for (topic, partition), items in buffers.items():
            start = 0
            while start < len(items):
                end, size = start, 0
                while end < len(items) and end - start < max_events and (
                        end == start or size + len(items[end][2]) < max_bytes):
                    size += len(items[end][2]) + 1
                    end += 1
                chunk = items[start:end]
                value = chunk[0][2] if len(chunk) == 1 else encode_batch([d for _, _, d in chunk])
                self._send(SpooledRecord(topic, partition, chunk[0][1], value, len(chunk)))
                start = end

    def _send(self, record: SpooledRecord, *, from_spool: bool = False) -> None:
        if self._down and not from_spool:
            self._spool(record)
            return
        try:
            self._producer.produce(
                record.topic, value=record.value, key=record.key, partition=record.partition,
                on_delivery=functools.partial(self._on_delivery, record, from_spool))
        except BufferError:
            self._down = True
            self._spool(record)
            if from_spool:
                self._resolve_drained()
        except Exception as exc:  # e.g. a topic or partition the client rejects
            self._stats.drop(f"produce_error:{type(exc).__name__}", record.events)
            if from_spool:
                self._resolve_drained()

    def _on_delivery(self, record: SpooledRecord, from_spool: bool, err: KafkaError | None,
                     _msg: Any) -> None:
        self._delivered(err, record, from_spool)

    def _delivered(self, err: KafkaError | None, record: SpooledRecord, from_spool: bool) -> None:
        if err is None:
            self._stats.add("sent", record.events)
            if from_spool:
                self._stats.add("resent_from_spool", record.events)
            if self._down:
                self._down = False
        else:
            self._stats.add("failed", record.events)
            if err.retriable() or err.code() in _DOWN_ERRORS:
                self._down = True
                self._spool(record)
            else:
                self._stats.drop(f"rejected:{err.name()}", record.events)
                logger.warning("llmpulse: broker rejected a record of %d events: %s",
                               record.events, err.str())
        if from_spool:
            self._resolve_drained()

    def _spool(self, record: SpooledRecord) -> None:
        if self.spool.append(record):
            self._stats.add("spooled", record.events)
        else:
            self._stats.drop("spool_write_failed", record.events)

    def _on_error(self, err: KafkaError) -> None:
        if err.code() in _DOWN_ERRORS:
            if not self._down:
                logger.info("llmpulse: Kafka unreachable (%s); spooling to %s", err.name(),
                            self.spool.dir)
            self._down = True

    def _probe(self) -> None:
        now = time.monotonic()
        if now - self._last_probe < _PROBE_INTERVAL_S:
            return
        self._last_probe = now
        try:
            meta = self._producer.list_topics(timeout=0.5)
        except Exception:
            return
        if meta.brokers:
            logger.info("llmpulse: Kafka is back; sending the spool")
            self._down = False

    def _drain_spool(self) -> None:
        taken = self.spool.take_oldest()
        if taken is None:
            return
        path, records = taken
        if not records:
            self.spool.release(path)
            return
        self._draining = (path, len(records))
        for record in records:
            if record.partition < 0:  # spooled before the topic's partitions were known
                n = self._partitions.get(record.topic)
                if not n:
                    self._topics.add(record.topic)
                    self._learn_partitions()
                    n = self._partitions.get(record.topic)
                if n:
                    record = SpooledRecord(record.topic, partition_for(record.key.decode(), n),
                                           record.key, record.value, record.events)
                else:  # still unknown: keep it on disk for a later pass
                    self._spool(record)
                    self._resolve_drained()
                    continue
            self._send(record, from_spool=True)

    def _resolve_drained(self) -> None:
        if self._draining is None:
            return
        path, left = self._draining
        left -= 1
        if left <= 0:
            self.spool.release(path)
            self._draining = None
        else:
            self._draining = (path, left)

    # -- lifecycle -----------------------------------------------------------------------
    def flush(self, timeout_s: float) -> int:
        """Send everything buffered and wait for delivery. Returns records still in flight."""
        deadline = time.monotonic() + timeout_s
        self._build_calls()
        if self._pending:
            self._learn_partitions()
        self.flush_buffers()
        remaining = self._producer.flush(max(0.0, deadline - time.monotonic()))
        return int(remaining)

    def close(self, timeout_s: float) -> None:
        """Stop the flusher, deliver within the deadline, spool whatever is left."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=max(0.1, timeout_s / 4))
        deadline = time.monotonic() + timeout_s
        self.flush(timeout_s)  # waits for a build the flusher may still be doing
        self._thread.join(timeout=max(0.1, deadline - time.monotonic()))
        remaining = self.flush(max(0.1, deadline - time.monotonic()))  # what its cycle left
        if remaining:
            # What librdkafka still holds fails with _PURGE_QUEUE and is spooled.
            self._producer.purge(in_queue=True, in_flight=True, blocking=False)
            self._producer.poll(0.5)
        self._spool_pending()  # the topic's partitions were never learnt
        self.spool.close()
        # Let librdkafka's threads go: a closed transport keeps no connection alive.
        self._producer = _ClosedProducer()  # type: ignore[assignment]

    def abandon_after_fork(self) -> None:
        """In a forked child: drop the parent's buffers, threads and librdkafka handle."""
        self.spool.abandon_after_fork()


class _KafkaLog:
    """librdkafka's log lines, at DEBUG: an unreachable broker is expected and handled (it
    is reported once at INFO, and in ``stats()``), so it must not flood the app's logs."""

    _logger = logging.getLogger("llmpulse.producers.kafka")

    def log(self, level: int, fmt: str, *args: Any) -> None:
        self._logger.debug(fmt, *args)


class _ClosedProducer:
    """Stands in for the producer after close: nothing is produced, nothing is held."""

    def __len__(self) -> int:
        return 0

    def produce(self, *args: Any, **kwargs: Any) -> None:
        raise BufferError("llmpulse transport is closed")

    def poll(self, timeout: float = 0) -> int:
        return 0

    def flush(self, timeout: float = 0) -> int:
        return 0

    def list_topics(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("llmpulse transport is closed")

