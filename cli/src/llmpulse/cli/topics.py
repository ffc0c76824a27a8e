"""Kafka topic administration: ``llmpulse topics create|list`` and ``ensure_topics``.

Operators and the stack create topics; apps never do, so this lives in the umbrella and
not in the SDK (an app that installs ``llmpulse-producers`` gets no admin client).

Example:
    $ llmpulse topics create --bootstrap-servers 127.0.0.1:9092 --partitions 6
    $ llmpulse topics list --prefix eval.

    >>> from llmpulse.cli.topics import ensure_topics
    >>> report = ensure_topics("127.0.0.1:9092", partitions=6)  # doctest: +SKIP
    >>> [(t.name, t.status) for t in report]                     # doctest: +SKIP
    [('llm.prompts', 'created'), ('llm.responses', 'exists'), ...]
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from llmpulse.schemas import environment as env
from llmpulse.schemas.commandline import broker_unreachable
from llmpulse.schemas.errors import LlmpulseError
from llmpulse.schemas.topics import TopicSpec, catalogue

if TYPE_CHECKING:
    from confluent_kafka.admin import AdminClient

__all__ = ["TopicError", "TopicStatus", "ensure_topics", "kafka_failures", "topics"]

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
    # Imported here: `llmpulse --help` should not load the Kafka client.
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

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


@contextmanager
def kafka_failures(bootstrap_servers: str) -> Iterator[None]:
    """Turn a broker that does not answer into one line for the user (``click.ClickException``)."""
    from confluent_kafka import KafkaException

    try:
        yield
    except KafkaException as exc:
        error = exc.args[0] if exc.args else exc
        reason = error.str() if hasattr(error, "str") else str(error)
        raise click.ClickException(broker_unreachable(bootstrap_servers, reason)) from exc


@click.group()
def topics() -> None:
    """Kafka topics of the catalogue."""


@topics.command("create")
@click.option("--bootstrap-servers", envvar=env.BOOTSTRAP_SERVERS, required=True,
              help=f"Kafka bootstrap servers (or ${env.BOOTSTRAP_SERVERS}).")
@click.option("--partitions", type=click.IntRange(min=1), envvar=env.TOPIC_PARTITIONS,
              default=None, help="Partitions of the call topics (default 6).")
@click.option("--replication-factor", type=click.IntRange(min=1),
              envvar=env.TOPIC_REPLICATION_FACTOR, default=1, show_default=True)
@click.option("--prefix", envvar=env.TOPIC_PREFIX, default="", help="Topic name prefix.")
def topics_create(bootstrap_servers: str, partitions: int | None, replication_factor: int,
                  prefix: str) -> None:
    """Create the missing topics; existing ones are left as they are (idempotent)."""
    try:
        with kafka_failures(bootstrap_servers):
            report = ensure_topics(bootstrap_servers, partitions=partitions,
                                   replication_factor=replication_factor, prefix=prefix)
    except LlmpulseError as exc:
        raise click.ClickException(str(exc)) from exc
    for t in report:
        click.echo(f"{t.status:8} {t.name} ({t.partitions} partitions)")


@topics.command("list")
@click.option("--prefix", envvar=env.TOPIC_PREFIX, default="")
def topics_list(prefix: str) -> None:
    """Print the catalogue: name, key, contract, partitions, retention."""
    for spec in catalogue(prefix=prefix, environ=os.environ):
        kept = "forever" if spec.retention_ms < 0 else f"{spec.retention_ms / 86_400_000:g}d"
        click.echo(f"{spec.name:22} key={spec.key:32} partitions={spec.partitions:<3} "
                   f"retention={kept} {spec.cleanup_policy:8} {spec.value}")
