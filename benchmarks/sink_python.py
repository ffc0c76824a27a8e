"""The writer's Python per call, part by part, beside the bare insert of the same rows.

What ``Writer.write`` spends in Python on a batch of enriched calls, measured apart from
the INSERTs (``sink_insert.py`` times the whole): the ``Sourced`` wrappers the sink makes,
the routing and in-batch dedupe, the ledger's ids as an Arrow column, the ``calls``
columns (``call_columns``), their Arrow table, and the verdicts' rows and table. The
baseline, in the same run: the bare chDB insert of the same rows (``INSERT … SELECT *
FROM Python(arrow)`` of the prepared calls, then of their verdicts, as ``sink_insert.py``'s
``bare_python_arrow_same_rows``), each repeat into a fresh database;
``ratio_python_to_bare_insert`` is the writer's Python over it (0.5x the bare insert's
speed leaves the Python at most ~1x the bare insert minus the writer's other statements).
CPU time of this process (``time.process_time``, the engine's threads included for the
insert), best of ``--repeat``, in microseconds a call, so other jobs on the machine move it
less than wall time. The inputs are made before the set-up heap is frozen, so they are
frozen with it: a part's figure leaves out full collections walking a live batch, which
``sink_insert.py`` (calls made after its freeze, as the sink's batches are) includes.
Prints JSON.

    uv run python benchmarks/sink_python.py [--calls 10000] [--repeat 7]
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable

import chdb
from sink_timing import bare_frame, bare_sql, bench_store, fresh_store, sink_arguments, verdicts_frame

from llmpulse.schemas.runtime import freeze_start_heap
from llmpulse.sinks import rows as r
from llmpulse.sinks.arrow import to_arrow, uuid_array
from llmpulse.sinks.writer import Pending, Sourced, WriteResult, _columns, route


def main() -> None:
    args, calls = sink_arguments(__doc__ or "", calls=10_000, repeat=7)
    with bench_store("python_parts") as (folder, store):
        call_types, verdict_types = store.column_types("calls"), store.column_types("guardrail_verdicts")
        items = [Sourced(c) for c in calls]

        def routed() -> dict[str, Pending]:
            return route(items, WriteResult())

        pending = routed()
        ids = [i for batch in pending.values() for i in batch.ids]
        columns = r.call_columns(calls)
        pairs = pending["guardrail_verdicts"].sources
        frame = bare_frame(store, r.call_values(calls))  # noqa: F841 - read by name by chDB's Python()
        verdicts = verdicts_frame(store, calls)  # noqa: F841 - the same
        raw = chdb.connect(folder)  # a bare handle on the same engine, as sink_insert.py's
        freeze_start_heap()  # the set-up's heap and the inputs: see the doc

        def bare_insert(database: str) -> float:
            started = time.process_time()
            raw.query(bare_sql(database))
            raw.query(bare_sql(database, "guardrail_verdicts", "verdicts"))
            return time.process_time() - started

        def bare_insert_fresh() -> float:
            with fresh_store(folder, "bare") as fresh:
                return bare_insert(fresh.database)

        parts: dict[str, Callable[[], object]] = {
            "sourced": lambda: [Sourced(c) for c in calls],
            "route": routed,
            "ledger_ids_arrow": lambda: uuid_array(ids, python_table=True),
            "call_columns": lambda: r.call_columns(calls),
            "calls_arrow": lambda: to_arrow(call_types, r.CALL_COLUMNS, columns, python_table=True),
            "verdicts_rows_arrow": lambda: to_arrow(verdict_types, r.VERDICT_COLUMNS,
                                                    _columns("guardrail_verdicts", pairs), python_table=True),
        }
        us: dict[str, float] = {}
        for name, part in parts.items():
            best = float("inf")
            for _ in range(args.repeat):
                started = time.process_time()
                part()
                best = min(best, time.process_time() - started)
            us[name] = round(best * 1e6 / len(calls), 3)
        bare_us = round(min(bare_insert_fresh() for _ in range(args.repeat)) * 1e6 / len(calls), 3)
        raw.close()
    total = round(sum(us.values()), 3)
    print(json.dumps({
        "benchmark": "sink_python", "calls": args.calls, "repeat": args.repeat,
        "verdicts": len(pairs), "us_per_call": us, "us_per_call_total": total,
        "bare_insert_us_per_call": bare_us, "ratio_python_to_bare_insert": round(total / bare_us, 3),
        "python": platform.python_version(), "machine": platform.machine(),
    }, indent=2))


if __name__ == "__main__":
    main()
