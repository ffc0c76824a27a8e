"""Wait until consumer groups have consumed their topics: a condition, not a sleep.

A group is done with a topic when its committed offset on every partition equals the
partition's end offset. Checked in order (the worker's group, then the sink's), a chain of
groups is drained when each is done at once: a stage sends its outputs before it commits
its inputs, so the end offsets read after an upstream group's commits already include
everything that group made.

Example:
    >>> from llmpulse.cli.demo.drain import records_behind          # doctest: +SKIP
    >>> records_behind("127.0.0.1:9092", "demo.llmpulse-processors",
    ...                ["demo.llm.drift.input"])                     # doctest: +SKIP
    {'demo.llm.drift.input': 0}
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import click
from confluent_kafka import Consumer, TopicPartition

__all__ = ["records_behind", "wait_until_consumed"]


def records_behind(bootstrap: str, group: str, topics: Sequence[str]) -> dict[str, int]:
    """Records of each topic that ``group`` has not committed yet (0: all consumed).

    Reads the group's committed offsets without joining the group.
    """
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(timeout=10)
        partitions = [TopicPartition(t, p) for t in topics if t in metadata.topics
                      for p in metadata.topics[t].partitions]
        behind = dict.fromkeys(topics, 0)
        for tp in consumer.committed(partitions, timeout=10):
            low, high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition),
                                                       timeout=10)
            done = tp.offset if tp.offset >= 0 else low
            behind[tp.topic] += max(0, high - done)
        return behind
    finally:
        consumer.close()


def wait_until_consumed(bootstrap: str, chain: Sequence[tuple[str, Sequence[str]]], *,
                        timeout_s: float, alive: Callable[[], Any] = lambda: None,
                        echo: Callable[[str], Any] = click.echo, poll_s: float = 1.0) -> None:
    """Block until every ``(group, topics)`` of ``chain`` is consumed, checked in order in
    one pass; shows the records left as it goes.

    Args:
        alive: called each round; raise from it to give up (a stage process died).

    Raises:
        click.ClickException: not drained within ``timeout_s`` (names what is behind).
    """
    deadline = time.monotonic() + timeout_s
    shown = ""
    while True:
        alive()
        left = {group: records_behind(bootstrap, group, topics) for group, topics in chain}
        pending = {g: {t: n for t, n in by_topic.items() if n} for g, by_topic in left.items()}
        pending = {g: t for g, t in pending.items() if t}
        if not pending:
            echo("every stage has consumed all its input")
            return
        line = "; ".join(f"{g}: {sum(t.values())} records left" for g, t in pending.items())
        if line != shown:
            echo(f"waiting: {line}")
            shown = line
        if time.monotonic() >= deadline:
            raise click.ClickException(f"not drained after {timeout_s:.0f} s: {pending}")
        time.sleep(poll_s)
