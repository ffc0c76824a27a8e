"""The writer's Python per call, part by part, without the engine's statements.

What ``Writer.write`` spends in Python on a batch of enriched calls, measured apart from
the INSERTs (``sink_insert.py`` times the whole): the ``Sourced`` wrappers the sink makes,
the routing and in-batch dedupe, the ledger's ids as an Arrow column, the ``calls``
columns (``call_columns``), their Arrow table, and the verdicts' rows and table. CPU time
of this process (``time.process_time``), best of ``--repeat``, in microseconds a call, so
other jobs on the machine move it less than wall time. Prints JSON.

    uv run python benchmarks/sink_python.py [--calls 10000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from collections.abc import Callable

from llmpulse.sinks import rows as r
from llmpulse.sinks.arrow import to_arrow, uuid_array
from llmpulse.sinks.store import Store
from llmpulse.sinks.testing import sample_calls
from llmpulse.sinks.writer import TABLE_ORDER, Sourced, Writer, WriteResult, _columns, _Pending


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    calls = sample_calls(args.calls, seed=7)
    store = Store.open(f"chdb://{tempfile.mkdtemp(prefix='llmpulse-bench-')}?database=python_parts")
    store.migrate()
    call_types, verdict_types = store.column_types("calls"), store.column_types("guardrail_verdicts")
    writer = Writer(store)
    items = [Sourced(c) for c in calls]

    def route() -> dict[str, _Pending]:
        pending = {table: _Pending() for table in TABLE_ORDER}
        seen: set[int] = set()
        result = WriteResult()
        for item in items:
            writer._route(item, pending, seen, result)
        return pending

    pending = route()
    ids = [i for batch in pending.values() for i in batch.ids]
    columns = r.call_columns(calls)
    pairs = pending["guardrail_verdicts"].sources
    parts: dict[str, Callable[[], object]] = {
        "sourced": lambda: [Sourced(c) for c in calls],
        "route": route,
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
    store.close()
    print(json.dumps({
        "benchmark": "sink_python", "calls": args.calls, "repeat": args.repeat,
        "verdicts": len(pairs), "us_per_call": us, "us_per_call_total": round(sum(us.values()), 3),
        "python": platform.python_version(), "machine": platform.machine(),
    }, indent=2))


if __name__ == "__main__":
    main()
