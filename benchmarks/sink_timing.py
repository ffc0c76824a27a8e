"""Benchmark helper: the sink's writer timed on a fresh, migrated chDB database.

``sink_insert.py`` and ``sink_spans.py`` time ``Writer.write`` the same way: a new database
in the same chDB folder (so every run starts empty), the events in batches as the sink
takes them, every row checked in its table afterwards (outside the clock).

    from sink_timing import writer_rate
    rows_per_s = writer_rate(folder, calls, batch=10_000, table="calls")
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

from llmpulse.schemas import Event
from llmpulse.sinks.store import Store
from llmpulse.sinks.writer import Sourced, Writer


def writer_rate(folder: str, events: Sequence[Event], batch: int, table: str, *,
                deduplicate: bool = True) -> float:
    """Rows per second of ``Writer.write`` on ``events`` in batches of ``batch`` events,
    into a fresh migrated database under ``folder``; raises if a row was rejected or
    ``table`` does not then hold exactly one row per event."""
    store = Store.open(f"chdb://{folder}?database=w{uuid.uuid4().hex[:8]}")
    store.migrate()
    try:
        writer = Writer(store, deduplicate=deduplicate)
        started = time.perf_counter()
        for start in range(0, len(events), batch):
            result = writer.write([Sourced(e) for e in events[start:start + batch]])
            assert not result.rejected, result.rejected[:1]
        rate = len(events) / (time.perf_counter() - started)
        stored = store.query(f"SELECT count() FROM {table}").scalar()
        assert stored == len(events), f"{stored} rows in {table} for {len(events)} events"
    finally:
        store.close()
    return rate
