"""Create llmpulse's topics idempotently (``llmpulse topics create``).

Example:
    >>> from llmpulse.producers.topics import ensure_topics
    >>> report = ensure_topics("127.0.0.1:9092", partitions=6)  # doctest: +SKIP
    >>> [(t.name, t.status) for t in report]                     # doctest: +SKIP
    [('llm.prompts', 'created'), ('llm.responses', 'exists'), ...]
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from llmpulse.schemas.errors import LlmpulseError
from llmpulse.schemas.topics import TopicSpec, catalogue

__all__ = ["TopicError", "TopicStatus", "ensure_topics"]

logger = logging.getLogger(__name__)


class TopicError(LlmpulseError):
    """A topic could not be created, or exists with a layout that breaks co-partitioning."""


@dataclass(frozen=True)
class TopicStatus:
    """What ``ensure_topics`` found or did for one topic."""

    name: str
    status: str
    """``created`` or ``exists``."""
    partitions: int


def _wait_for_metadata(admin: AdminClient, names: list[str], timeout_s: float) -> dict[str, Any]:
    """Metadata lags a moment behind creation: wait until every topic shows its partitions."""
    deadline = time.monotonic() + timeout_s
    while True:
        metadata = admin.list_topics(timeout=timeout_s).topics
        ready = all(n in metadata and metadata[n].partitions and metadata[n].error is None
                    for n in names)
        if ready or time.monotonic() > deadline:
            return dict(metadata)
        time.sleep(0.1)


def ensure_topics(
    bootstrap_servers: str,
    *,
    specs: list[TopicSpec] | None = None,
    partitions: int | None = None,
    replication_factor: int = 1,
    prefix: str | None = None,
    timeout_s: float = 30.0,
    kafka_config: dict[str, str] | None = None,
) -> list[TopicStatus]:
    """Create every catalogue topic that is missing; leave existing ones alone.

    Raises:
        TopicError: a topic could not be created, or the co-partitioned topics
            (prompts, responses, feedback) exist with different partition counts.
    """
    specs = specs if specs is not None else catalogue(prefix=prefix, partitions=partitions)
    admin = AdminClient({"bootstrap.servers": bootstrap_servers, **(kafka_config or {})})
    existing = admin.list_topics(timeout=timeout_s).topics
    wanted = [
        NewTopic(s.name, num_partitions=s.partitions, replication_factor=replication_factor,
                 config=s.configs())
        for s in specs if s.name not in existing
    ]
    created: set[str] = set()
    if wanted:
        for name, future in admin.create_topics(wanted, request_timeout=timeout_s).items():
            try:
                future.result(timeout=timeout_s)
                created.add(name)
                logger.info("created topic %s", name)
            except KafkaException as exc:
                error = exc.args[0] if exc.args else None
                if isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                    continue  # another process made it between our look and our create
                raise TopicError(f"could not create topic {name}: {exc}") from exc
    metadata = _wait_for_metadata(admin, [s.name for s in specs], timeout_s)
    report = [
        TopicStatus(name=s.name, status="created" if s.name in created else "exists",
                    partitions=len(metadata[s.name].partitions) if s.name in metadata else 0)
        for s in specs
    ]
    co = {t.name: t.partitions for t, s in zip(report, specs, strict=True) if s.co_partitioned}
    if len(set(co.values())) > 1:
        raise TopicError(f"co-partitioned topics disagree on partition counts: {co}; "
                         "a call's prompt, response and feedback would land apart")
    return report
