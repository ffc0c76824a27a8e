"""Datasets: export a range of a topic to JSONL or Parquet, and import it back.

A dataset keeps events exactly as they travelled (their contracts, ids and times), with
the topic (without its prefix), partition and offset they were read from. Imported into
a topic again (under any prefix), it can be replayed later like live history.

Example:
    $ llmpulse export --bootstrap-servers 127.0.0.1:9092 --from 2026-11-20T00:00 \\
          --to 2026-11-21T00:00 --out support-day.parquet
    $ llmpulse import --bootstrap-servers 127.0.0.1:9092 --prefix eval. support-day.parquet
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import msgspec

from llmpulse.processors.errors import missing_dependency
from llmpulse.processors.replay import ReplaySource, read_events
from llmpulse.schemas import (
    Event,
    decode_event,
    encode_batch,
    encode_event,
    event_key,
    partition_for,
)

__all__ = ["export_range", "import_dataset", "read_dataset"]

logger = logging.getLogger(__name__)

_PARQUET_COLUMNS = ("topic", "partition", "offset", "type", "call_id", "occurred_at", "event")


def _base(topic: str, prefix: str) -> str:
    return topic[len(prefix):] if prefix and topic.startswith(prefix) else topic


def export_range(source: ReplaySource, out: str | Path, *, prefix: str = "",
                 progress: Callable[[int], None] | None = None) -> int:
    """Write the events of the range to ``out`` (``.jsonl`` or ``.parquet``); the count.

    ``progress(events read so far)`` is called after every event (keep it cheap).
    """
    path = Path(out)
    if path.suffix not in {".jsonl", ".ndjson", ".parquet"}:
        raise ValueError(f"{path}: export to .jsonl or .parquet")
    group = f"llmpulse-export-{uuid.uuid4().hex[:8]}"
    rows = ((_base(ref.topic, prefix), ref.partition, ref.offset, event)
            for event, ref in _counted(read_events(source, group_id=group), progress))
    if path.suffix == ".parquet":
        return _write_parquet(path, rows)
    count = 0
    with path.open("w", encoding="utf-8") as f:
        for topic, partition, offset, event in rows:
            line = {"topic": topic, "partition": partition, "offset": offset,
                    "event": msgspec.json.decode(encode_event(event))}
            f.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
            count += 1
    return count


def _counted(items: Iterable[Any], progress: Callable[[int], None] | None) -> Iterator[Any]:
    if progress is None:
        yield from items
        return
    for count, item in enumerate(items, 1):
        yield item
        progress(count)


def _pyarrow(what: str) -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise missing_dependency("pyarrow", what, extra="replay") from None
    return pq


def _write_parquet(path: Path, rows: Iterable[tuple[str, int, int, Event]]) -> int:
    pq = _pyarrow("writing a Parquet dataset")
    import pyarrow as pa

    columns: dict[str, list[Any]] = {name: [] for name in _PARQUET_COLUMNS}
    for topic, partition, offset, event in rows:
        columns["topic"].append(topic)
        columns["partition"].append(partition)
        columns["offset"].append(offset)
        columns["type"].append(type(event).__struct_config__.tag)
        columns["call_id"].append(getattr(event, "call_id", None))
        columns["occurred_at"].append(event.occurred_at)
        columns["event"].append(encode_event(event).decode())
    pq.write_table(pa.table(columns), path, compression="zstd")
    return len(columns["event"])


def read_dataset(path: str | Path) -> Iterator[tuple[str, Event]]:
    """``(topic, event)`` pairs of a dataset file, validated by the contracts."""
    path = Path(path)
    if path.suffix == ".parquet":
        table = _pyarrow("reading a Parquet dataset").read_table(path, columns=["topic", "event"])
        for topic, raw in zip(table.column("topic").to_pylist(), table.column("event").to_pylist(),
                              strict=True):
            yield topic, decode_event(raw.encode())
        return
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                yield row["topic"], decode_event(json.dumps(row["event"]).encode())
            except (KeyError, ValueError) as exc:
                raise ValueError(f"{path}:{number}: {exc}") from None


def import_dataset(path: str | Path, *, bootstrap_servers: str, prefix: str = "",
                   kafka_config: dict[str, Any] | None = None, batch_events: int = 500,
                   progress: Callable[[int], None] | None = None) -> int:
    """Produce a dataset's events to ``prefix + topic``, as batch records per partition
    (the partition from ``call_id`` with Kafka's hash, like the SDK); the count.

    ``progress(events queued so far)`` is called after every event (keep it cheap).
    """
    count = produce_events(_counted(read_dataset(path), progress), bootstrap_servers=bootstrap_servers,
                           prefix=prefix, kafka_config=kafka_config, batch_events=batch_events)
    logger.info("imported %d events from %s", count, path)
    return count


def produce_events(events: Iterable[tuple[str, Event]], *, bootstrap_servers: str,
                   prefix: str = "", kafka_config: dict[str, Any] | None = None,
                   batch_events: int = 500) -> int:
    """Produce (topic, event) pairs to ``prefix + topic`` as batch records per partition of
    their key (``event_key``: the ``call_id``, a span's ``trace_id``; Kafka's hash, like the
    SDK); the count. Every topic must exist."""
    try:
        from confluent_kafka import Producer
        from confluent_kafka.admin import AdminClient
    except ImportError:
        raise missing_dependency("confluent-kafka", "producing events to Kafka", extra="replay") from None

    admin = AdminClient({"bootstrap.servers": bootstrap_servers, **(kafka_config or {})})
    producer = Producer({"bootstrap.servers": bootstrap_servers, "enable.idempotence": True,
                         "compression.type": "zstd", "message.max.bytes": 8 * 1024 * 1024,
                         **(kafka_config or {})})
    partitions: dict[str, int] = {}
    buffers: dict[tuple[str, int], list[tuple[str, bytes]]] = {}
    count = 0

    def flush(key: tuple[str, int]) -> None:
        items = buffers.pop(key, [])
        if items:
            value = items[0][1] if len(items) == 1 else encode_batch([d for _, d in items])
            producer.produce(key[0], value, items[0][0].encode(), partition=key[1])
            producer.poll(0)

    for topic, event in events:
        name = f"{prefix}{topic}"
        if name not in partitions:
            meta = admin.list_topics(name, timeout=10).topics.get(name)
            if meta is None or meta.error is not None or not meta.partitions:
                raise ValueError(f"topic {name} does not exist: llmpulse topics create --prefix "
                                 f"{prefix!r}")
            partitions[name] = len(meta.partitions)
        key = event_key(event)
        slot = (name, partition_for(key, partitions[name]))
        buffers.setdefault(slot, []).append((key, encode_event(event)))
        if len(buffers[slot]) >= batch_events:
            flush(slot)
        count += 1
    for slot in list(buffers):
        flush(slot)
    if producer.flush(60):
        raise RuntimeError("some imported records were not delivered")
    return count
