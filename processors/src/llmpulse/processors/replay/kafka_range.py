"""Reading a range of topics' history from Kafka, for replay and dataset export.

The range is read with a consumer group of its own and partitions assigned explicitly (no
subscribe, no commits), so the production consumer groups never see it. A range is a time
span (record timestamps) or an offset span in every partition.

Example (not a doctest: it needs a broker)::

    from llmpulse.processors.replay import ReplaySource, read_events, topics_for

    source = ReplaySource("127.0.0.1:9092", topics_for(""), from_offset=0, to_offset=5000)
    for event, ref in read_events(source, group_id="llmpulse-export-1"):
        print(ref.topic, ref.partition, ref.offset, type(event).__name__)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from llmpulse.processors.errors import missing_dependency
from llmpulse.processors.step import Record
from llmpulse.schemas import Limits, PromptEvent, ResponseEvent, decode_record
from llmpulse.schemas.errors import LlmpulseError
from llmpulse.schemas.topics import PROMPTS, RESPONSES, topic_name

__all__ = [
    "Progress",
    "ReplayError",
    "ReplaySource",
    "SourceRef",
    "read_events",
    "read_range",
    "read_records",
    "topics_for",
]

logger = logging.getLogger(__name__)


class ReplayError(LlmpulseError):
    """A replay cannot start: a bad range, a missing topic, an unknown run."""


@dataclass(frozen=True)
class ReplaySource:
    """A range of topics' history: by time (``start``/``end``, record timestamps) or by
    offsets (``from_offset`` inclusive, ``to_offset`` exclusive, in every partition)."""

    bootstrap_servers: str
    topics: Sequence[str]
    start: datetime | None = None
    end: datetime | None = None
    from_offset: int | None = None
    to_offset: int | None = None
    kafka_config: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return ",".join(self.topics)


@dataclass(frozen=True)
class SourceRef:
    """Where an event was read."""

    topic: str
    partition: int
    offset: int

    @classmethod
    def of(cls, record: Record) -> SourceRef:
        return cls(record.topic, record.partition, record.offset or 0)


def _ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


class Progress:
    """Records read against the range's size, logged every ``every_s`` seconds."""

    def __init__(self, total_records: int, every_s: float, label: str) -> None:
        self.total = max(total_records, 1)
        self.records = 0
        self.calls = 0
        self.every_s = every_s
        self.label = label
        self.t0 = time.monotonic()
        self.last = self.t0

    def tick(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < self.every_s:
            return
        self.last = now
        elapsed = now - self.t0
        share = min(self.records / self.total, 1.0)
        eta = elapsed * (1 - share) / share if share > 0 else float("nan")
        logger.info("replay %s: %d/%d records (%.0f%%), %d calls, %.1f calls/s, ETA %.0fs",
                    self.label, self.records, self.total, share * 100, self.calls,
                    self.calls / elapsed if elapsed > 0 else 0.0, eta)


def _consumer(source: ReplaySource, group_id: str) -> Any:
    from confluent_kafka import Consumer

    config = {"bootstrap.servers": source.bootstrap_servers, "group.id": group_id,
              "enable.auto.commit": False, "enable.auto.offset.store": False,
              "auto.offset.reset": "earliest", "enable.partition.eof": True}
    config.update(source.kafka_config)
    return Consumer(config)


def _plan(consumer: Any, source: ReplaySource) -> dict[tuple[str, int], tuple[int, int]]:
    """``(topic, partition) -> (start offset, end offset exclusive)`` for each partition."""
    from confluent_kafka import TopicPartition

    metadata = consumer.list_topics(timeout=10)
    plan: dict[tuple[str, int], tuple[int, int]] = {}
    wanted: list[Any] = []
    for topic in source.topics:
        info = metadata.topics.get(topic)
        if info is None or info.error is not None:
            raise ReplayError(f"topic {topic!r} does not exist")
        for partition in sorted(info.partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            if source.from_offset is not None or source.start is None:
                first = max(low, source.from_offset or 0)
                last = high if source.to_offset is None else min(high, source.to_offset)
                plan[(topic, partition)] = (first, max(first, last))
            else:
                plan[(topic, partition)] = (low, high)
                wanted.append(TopicPartition(topic, partition, _ms(source.start)))
    if wanted:
        for tp in consumer.offsets_for_times(wanted, timeout=10):
            _, high = plan[(tp.topic, tp.partition)]
            start = tp.offset if tp.offset >= 0 else high  # -1: no record at or after start
            plan[(tp.topic, tp.partition)] = (start, high)
    return plan


def read_range(source: ReplaySource, *, group_id: str,
               progress: Progress | None = None, poll_s: float = 0.5
               ) -> Iterator[tuple[PromptEvent | ResponseEvent, SourceRef]]:
    """The prompts and responses of the range (see ``read_events``)."""
    for event, ref in read_events(source, group_id=group_id, progress=progress, poll_s=poll_s):
        if isinstance(event, PromptEvent | ResponseEvent):
            yield event, ref


def read_events(source: ReplaySource, *, group_id: str,
                progress: Progress | None = None, poll_s: float = 0.5,
                limits: Limits | None = None) -> Iterator[tuple[Any, SourceRef]]:
    """Every valid event of the range, with where it was read (see ``read_records``);
    undecodable events are logged and skipped. ``limits``: what validation accepts
    (default: ``Limits.from_env()``, as the worker and the sink)."""
    limits = limits if limits is not None else Limits.from_env()
    for record in read_records(source, group_id=group_id, progress=progress, poll_s=poll_s):
        decoded = decode_record(record.value, limits)
        ref = SourceRef.of(record)
        if decoded.failures:
            log_skipped(len(decoded.failures), ref)
        for event in decoded.events:
            yield event, ref


def log_skipped(count: int, ref: SourceRef) -> None:
    """Say that ``count`` events of a record could not be decoded and were skipped."""
    logger.warning("replay: %d undecodable event(s) in %s[%d]@%d skipped",
                   count, ref.topic, ref.partition, ref.offset)


def read_records(source: ReplaySource, *, group_id: str,
                 progress: Progress | None = None, poll_s: float = 0.5) -> Iterator[Record]:
    """Every record of the range, undecoded, with where it was read.

    Partitions are assigned (never subscribed) and nothing is committed. A partition is
    done at its end offset (the high watermark when the read started) or at its first
    record stamped after ``source.end``.
    """
    try:
        from confluent_kafka import KafkaError, TopicPartition
    except ImportError:
        raise missing_dependency("confluent-kafka", "reading a Kafka range", extra="replay") from None

    consumer = _consumer(source, group_id)
    try:
        plan = _plan(consumer, source)
        if progress is not None:
            progress.total = max(sum(e - s for s, e in plan.values()), 1)
        open_parts = {key for key, (s, e) in plan.items() if s < e}
        logger.info("replay reads %d partition(s) of %s (%d records at most), group %s",
                    len(open_parts), source.describe(), sum(e - s for s, e in plan.values()), group_id)
        if not open_parts:
            return
        consumer.assign([TopicPartition(t, p, plan[(t, p)][0]) for t, p in sorted(open_parts)])
        end_ms = _ms(source.end) if source.end is not None else None
        while open_parts:
            msg = consumer.poll(poll_s)
            if msg is None:
                continue
            key = (msg.topic(), msg.partition())
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF and key in open_parts:
                    if msg.offset() >= plan[key][1]:
                        open_parts.discard(key)
                        consumer.pause([TopicPartition(*key)])
                    continue
                logger.warning("replay read error on %s[%d]: %s", *key, msg.error())
                continue
            if key not in open_parts:
                continue
            offset = msg.offset()
            _, ts_ms = msg.timestamp()
            if offset >= plan[key][1] or (end_ms is not None and ts_ms > end_ms):
                open_parts.discard(key)
                consumer.pause([TopicPartition(*key)])
                continue
            if progress is not None:
                progress.records += 1
            if offset + 1 >= plan[key][1]:
                open_parts.discard(key)
                consumer.pause([TopicPartition(*key)])
            yield Record(key[0], msg.value(), partition=key[1], offset=offset, key=msg.key())
    finally:
        consumer.close()


def topics_for(prefix: str, names: Iterable[str] | None = None) -> list[str]:
    """The topic names (default: prompts and responses) with the deployment's prefix."""
    return [topic_name(n, prefix) for n in (names or [PROMPTS, RESPONSES])]
