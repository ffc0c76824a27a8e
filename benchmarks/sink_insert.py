"""Insert throughput of enriched calls through the sink's writer, against bare chDB.

Both sides write the same rows into the same schema (the ``calls`` table with its
materialized views) on the same chDB engine, in the same run:

* ``writer``: ``Writer.write`` on batches of decoded ``EnrichedCall`` events: the
  column mapping, the ledger lookup, the Arrow table, the insert and the views (what the
  sink does per batch).
* ``native_encoder``: the same columns as Python values (``call_values``) inserted through
  clickhouse-connect's Python Native encoder (``client.insert``), the writer's path before
  it moved to Arrow, for reference.
* ``bare chDB`` (``bare_python_arrow``): the same calls rows, already in an Arrow table,
  inserted with chDB's own ``Python()`` table function on a raw ``chdb.connect`` handle (no
  Python per row), with the engine's default settings, as the writer's INSERT.
* ``bare_python_arrow_same_rows``: the same, plus the guardrail verdicts the calls carry
  (~10% of calls have one) inserted into ``guardrail_verdicts`` as the writer does: every
  row the writer stores, in the same two statements a batch, without the ledger lookup.

Prints JSON. The ratio is writer / fastest bare insert; ``ratio_writer_to_bare_per_repeat``
gives each repeat's writer over the same repeat's bare insert (the spread under load).
``writer_serial`` and ``ratio_writer_serial_to_bare``, kept from when the writer could
pipeline its statements (reverted in 9e29a8f), are the writer's own figures: it is serial.
``ratio_writer_to_bare_same_rows`` compares with the bare insert of the calls and their
verdicts. Rates count calls (events) on every side. Each side first writes
``WARM_UP_CALLS`` calls once, untimed, into a database of its own (``_warm_up``). Then the
set-up's heap (the imported modules, the warm-up) is frozen out of the cycle collector's
walks with ``freeze_start_heap``, as the sink does before it consumes
(``gc_frozen_objects``). The timed calls are made after that: like a batch the sink decoded,
they stay live and every full collection walks them. ``writer_full_collections`` and
``writer_full_collections_ms`` count the full collections during the writer runs (each
run's fresh store and its migrations included), and their time. ``writer_statement_ms``:
the median wall time of each statement a ``writer`` batch issues (the ledger lookup, before
any INSERT, and each table's INSERT, Arrow table excluded).

    uv run python benchmarks/sink_insert.py [--calls 20000] [--batch 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import chdb
import pyarrow as pa
from sink_timing import (
    FullCollections,
    StatementTimes,
    bare_frame,
    bare_sql,
    bench_folder,
    fresh_store,
    verdicts_frame,
    writer_rate,
)

from llmpulse.schemas import EnrichedCall
from llmpulse.schemas.runtime import freeze_start_heap
from llmpulse.sinks import rows as r
from llmpulse.sinks.store import Store
from llmpulse.sinks.testing import sample_calls

WARM_UP_CALLS = 500
"""Calls each side writes once, untimed, before the timed runs (``_warm_up``)."""


Frames = list[tuple[pa.Table, pa.Table | None]]
"""Each batch's calls and its verdicts (None: none), as the bare inserts take them."""


def _bare_frames(store: Store, calls: list[EnrichedCall], batch: int) -> Frames:
    """``calls`` in batches of ``batch``, as ``Frames``."""
    return [(bare_frame(store, r.call_values(calls[s:s + batch])), verdicts_frame(store, calls[s:s + batch]))
            for s in range(0, len(calls), batch)]


def _warm_up(folder: str, calls: list[EnrichedCall]) -> None:
    """Every side once on a few calls, untimed, into databases of their own: the first
    statement of a process imports and sets up what later ones reuse (pyarrow's dataset
    module for chDB's ``Python()`` reader, the first ledger lookup), which a long-running
    sink pays once, not per batch."""
    writer_rate(folder, calls, len(calls), "calls")
    with fresh_store(folder, "u") as store:
        store.client.insert("calls", r.call_values(calls), column_names=list(r.CALL_COLUMNS),
                            column_oriented=True)
    with fresh_store(folder, "u") as store:
        _bare_rate(store, folder, _bare_frames(store, calls, len(calls)), len(calls))


def _bare_rate(store: Store, folder: str, frames: Frames, calls: int) -> float:
    """Calls per second of bare ``Python()`` inserts of ``frames`` (calls, verdicts or None)."""
    raw = chdb.connect(folder)  # a bare handle on the same engine
    call_sql = bare_sql(store.database)
    verdict_sql = bare_sql(store.database, "guardrail_verdicts", "verdicts")
    try:
        started = time.perf_counter()
        for frame, verdicts in frames:  # noqa: B007 - read by name by chDB's Python() table function
            raw.query(call_sql)
            if verdicts is not None:
                raw.query(verdict_sql)
        rate = calls / (time.perf_counter() - started)
    finally:
        raw.close()
    assert store.query("SELECT count() FROM calls").scalar() == calls
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=10_000, help="events per Writer.write (batch_rows)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side; the best is kept")
    args = parser.parse_args()

    results: dict[str, list[float]] = {"writer": [], "writer_no_dedup": [], "bare_python_arrow": [],
                                       "native_encoder": [], "bare_python_arrow_same_rows": []}
    mapping: list[float] = []
    collections = FullCollections()
    statements = StatementTimes()
    with bench_folder() as folder:
        _warm_up(folder, sample_calls(WARM_UP_CALLS, seed=8))
        frozen = freeze_start_heap()  # the set-up's heap, as the sink freezes its own at start-up
        # Made after the freeze: the calls are a batch the sink decoded, live and walked by any
        # full collection during the writes, as in the sink (it never freezes its batches).
        calls = sample_calls(args.calls, seed=7)
        for _ in range(args.repeat):
            for name, dedup in (("writer", True), ("writer_no_dedup", False)):
                with collections.watching(), statements.watching(name == "writer"):
                    results[name].append(writer_rate(folder, calls, args.batch, "calls", deduplicate=dedup))

            with fresh_store(folder, "n") as store:
                started = time.perf_counter()
                for start in range(0, len(calls), args.batch):
                    store.client.insert("calls", r.call_values(calls[start:start + args.batch]),
                                        column_names=list(r.CALL_COLUMNS), column_oriented=True)
                results["native_encoder"].append(len(calls) / (time.perf_counter() - started))

            with fresh_store(folder, "b") as store:
                started = time.perf_counter()
                for s in range(0, len(calls), args.batch):
                    r.call_columns(calls[s:s + args.batch])
                mapping.append((time.perf_counter() - started) / len(calls) * 1e6)
                frames = _bare_frames(store, calls, args.batch)
                results["bare_python_arrow"].append(
                    _bare_rate(store, folder, [(t, None) for t, _ in frames], len(calls)))

            with fresh_store(folder, "v") as store:
                results["bare_python_arrow_same_rows"].append(_bare_rate(store, folder, frames, len(calls)))

    best = {name: max(values) for name, values in results.items()}
    bare = best["bare_python_arrow"]
    print(json.dumps({
        "benchmark": "sink_insert",
        "calls": args.calls, "batch": args.batch, "repeat": args.repeat,
        "rows_per_s": {**{k: round(v) for k, v in best.items()}, "writer_serial": round(best["writer"])},
        "ratio_writer_to_bare": round(best["writer"] / bare, 3),
        "ratio_writer_serial_to_bare": round(best["writer"] / bare, 3),  # (kept key: see the doc)
        "ratio_writer_no_dedup_to_bare": round(best["writer_no_dedup"] / bare, 3),
        "ratio_native_encoder_to_bare": round(best["native_encoder"] / bare, 3),
        "ratio_writer_to_bare_same_rows": round(best["writer"] / best["bare_python_arrow_same_rows"], 3),
        "mapping_us_per_row": round(min(mapping), 2),
        "runs_rows_per_s": {k: [round(v) for v in values] for k, values in results.items()},
        "ratio_writer_to_bare_per_repeat": [round(w / b, 3) for w, b in zip(
            results["writer"], results["bare_python_arrow"], strict=True)],
        "ratio_writer_to_bare_same_rows_per_repeat": [round(w / b, 3) for w, b in zip(
            results["writer"], results["bare_python_arrow_same_rows"], strict=True)],
        "gc_frozen_objects": frozen,
        "writer_full_collections": collections.count,
        "writer_full_collections_ms": round(collections.ms, 1),
        "writer_statement_ms": statements.medians(),
        "chdb": chdb.__version__, "python": platform.python_version(), "machine": platform.machine(),
    }, indent=2))


if __name__ == "__main__":
    main()
