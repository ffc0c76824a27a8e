"""Benchmark helpers of the sink: the writer timed on a fresh, migrated chDB database, a
store in a temporary folder, and the bare insert every sink benchmark compares with.

``sink_insert.py`` and ``sink_spans.py`` time ``Writer.write`` the same way: a new database
in the same chDB folder (so every run starts empty), the events in batches as the sink
takes them, every row checked in its table afterwards (outside the clock).
``sink_python.py`` and ``sink_ledger.py`` share their setup (``sink_arguments``,
``bench_store``). ``FullCollections`` counts the cycle collector's full collections in a
timed block, ``StatementTimes`` times the writer's statements. Every sink benchmark keeps
its stores in a ``bench_folder`` (removed afterwards).

    from sink_timing import writer_rate
    rows_per_s = writer_rate(folder, calls, batch=10_000, table="calls")
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pyarrow as pa

from llmpulse.schemas import EnrichedCall, Event
from llmpulse.sinks import rows as r
from llmpulse.sinks.arrow import to_arrow
from llmpulse.sinks.store import Store
from llmpulse.sinks.testing import sample_calls
from llmpulse.sinks.writer import Sourced, Writer


def writer_rate(folder: str, events: Sequence[Event], batch: int, table: str, *,
                deduplicate: bool = True) -> float:
    """Rows per second of ``Writer.write`` on ``events`` in batches of ``batch`` events,
    into a fresh migrated database under ``folder``; raises if a row was rejected or
    ``table`` does not then hold exactly one row per event."""
    with fresh_store(folder, "w") as store:
        writer = Writer(store, deduplicate=deduplicate)
        started = time.perf_counter()
        for start in range(0, len(events), batch):
            result = writer.write([Sourced(e) for e in events[start:start + batch]])
            assert not result.rejected, result.rejected[:1]
        rate = len(events) / (time.perf_counter() - started)
        stored = store.query(f"SELECT count() FROM {table}").scalar()
        assert stored == len(events), f"{stored} rows in {table} for {len(events)} events"
    return rate


class FullCollections:
    """The cycle collector's full (generation 2) collections while it is installed
    (``gc.callbacks``): how many, and their wall time in milliseconds."""

    def __init__(self) -> None:
        self.count = 0
        self.ms = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.count += 1
            self.ms += (time.perf_counter() - self._started) * 1e3

    @contextmanager
    def watching(self) -> Iterator[FullCollections]:
        """Count while inside the block (added to what was counted before)."""
        gc.callbacks.append(self)
        try:
            yield self
        finally:
            gc.callbacks.remove(self)


class StatementTimes:
    """Wall time of each statement the writer issues while ``watching``: the ledger lookup
    (``Store.existing_event_ids``) and each table's INSERT (``Store._send``), in ms."""

    def __init__(self) -> None:
        self.ms: dict[str, list[float]] = {}

    def _timed(self, key: Callable[..., str], method: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any) -> Any:
            started = time.perf_counter()
            try:
                return method(*args)
            finally:
                self.ms.setdefault(key(*args), []).append((time.perf_counter() - started) * 1e3)
        return timed

    @contextmanager
    def watching(self, active: bool = True) -> Iterator[StatementTimes]:
        """Time the statements inside the block (added to those timed before) if ``active``."""
        if not active:
            yield self
            return
        lookup, send = Store.existing_event_ids, Store._send
        Store.existing_event_ids = self._timed(lambda *_: "ledger_lookup", lookup)  # type: ignore[method-assign]
        Store._send = self._timed(lambda _store, table, *_: f"insert_{table}", send)  # type: ignore[method-assign]
        try:
            yield self
        finally:
            Store.existing_event_ids, Store._send = lookup, send  # type: ignore[method-assign]

    def medians(self) -> dict[str, float]:
        """Median ms of each statement."""
        return {name: round(statistics.median(values), 1) for name, values in sorted(self.ms.items())}


def sink_arguments(doc: str, *, calls: int, repeat: int) -> tuple[argparse.Namespace, list[EnrichedCall]]:
    """``--calls`` and ``--repeat`` parsed, and that many sample calls (seed 7, as every sink
    benchmark)."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--calls", type=int, default=calls)
    parser.add_argument("--repeat", type=int, default=repeat)
    args = parser.parse_args()
    return args, sample_calls(args.calls, seed=7)


@contextmanager
def bench_folder() -> Iterator[str]:
    """A new temporary folder for chDB stores, removed afterwards (with what is in it):
    close the stores opened in it first."""
    with tempfile.TemporaryDirectory(prefix="llmpulse-bench-", ignore_cleanup_errors=True) as folder:
        yield folder


@contextmanager
def bench_store(database: str) -> Iterator[tuple[str, Store]]:
    """A migrated chDB store in a ``bench_folder`` (``(folder, store)``), closed afterwards."""
    with bench_folder() as folder, Store.open(f"chdb://{folder}?database={database}") as store:
        store.migrate()
        yield folder, store


@contextmanager
def fresh_store(folder: str, prefix: str) -> Iterator[Store]:
    """A new migrated database (``prefix`` and a random suffix) in ``folder``, closed afterwards."""
    with Store.open(f"chdb://{folder}?database={prefix}{uuid.uuid4().hex[:8]}") as store:
        store.migrate()
        yield store


def bare_frame(store: Store, columns: list[list[object]]) -> pa.Table:
    """The ``calls`` columns as Python values (``call_values``) in an Arrow table typed for
    chDB's ``Python()`` reader with pyarrow's own conversions: the bare insert's rows."""
    types = store.column_types("calls")
    arrays = []
    for name, values in zip(r.CALL_COLUMNS, columns, strict=True):
        kind = types[name]
        if kind == "UUID" or kind.startswith("Enum"):
            arrays.append(pa.array([str(v) for v in values], pa.string()))
        elif kind.startswith("Map"):
            value_type = pa.float64() if "Float64" in kind else pa.string()
            arrays.append(pa.array([list(m.items()) for m in values], pa.map_(pa.string(), value_type)))
        elif kind.startswith("Array("):  # typed: a batch of empty lists would infer list<null>
            arrays.append(pa.array(values, pa.list_(pa.string())))
        elif kind.startswith("DateTime64"):
            arrays.append(pa.array(values, pa.timestamp("us", tz="UTC")))
        else:
            arrays.append(pa.array(values))
    return pa.Table.from_arrays(arrays, names=list(r.CALL_COLUMNS))


def verdicts_frame(store: Store, calls: Sequence[EnrichedCall]) -> pa.Table | None:
    """The verdicts ``calls`` carry, as the Arrow table the writer inserts (None: none):
    the bare insert's ``guardrail_verdicts`` rows."""
    rows = [r.verdict_row(verdict, call) for call in calls for verdict in call.verdicts]
    if not rows:
        return None
    return to_arrow(store.column_types("guardrail_verdicts"), r.VERDICT_COLUMNS,
                    [list(column) for column in zip(*rows, strict=True)], python_table=True)


def bare_sql(database: str, table: str = "calls", frame: str = "frame") -> str:
    """The bare insert: ``INSERT … SELECT * FROM Python(frame)`` of ``table``'s written columns."""
    names = {"calls": r.CALL_COLUMNS, "guardrail_verdicts": r.VERDICT_COLUMNS}[table]
    return f"INSERT INTO {database}.{table} ({', '.join(names)}) SELECT * FROM Python({frame})"
