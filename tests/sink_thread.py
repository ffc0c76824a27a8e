"""Test helper: the real sink consuming in a thread for the length of a ``with`` block.

Usage::

    with running_sink(bootstrap, prefix, store), WorkerProcess(bootstrap, prefix, work):
        stored = wait_rows(store, "SELECT count() FROM calls", n)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from llmpulse.sinks.sink import Sink, SinkConfig
from llmpulse.sinks.store import Store


@contextmanager
def running_sink(bootstrap: str, prefix: str, store: Store, *, batch_seconds: float = 0.5,
                 group_id: str | None = None) -> Iterator[Sink]:
    """A :class:`Sink` on ``prefix`` writing into ``store`` (group ``{prefix}sink`` unless
    named); on leaving, it is asked to stop (it writes what it holds and commits) and joined."""
    sink = Sink(SinkConfig(bootstrap_servers=bootstrap, prefix=prefix,
                           group_id=group_id or f"{prefix}sink", batch_seconds=batch_seconds), store)
    stop = threading.Event()
    thread = threading.Thread(target=sink.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        stop.set()
        thread.join(60)
