"""The ledger lookup of one writer batch on chDB: the Arrow column against the hex parameter.

``Store.existing_event_ids`` on chDB reads the batch's ids as one Arrow column of 16-byte
UUIDs (``Python()``); a server gets them as one String parameter of 32-digit hex ids
split by the engine (the chDB path before). Both queries run here on the same store,
alternately, for the ids of 10,000 calls and their verdicts, on an empty ledger and with
every id stored. Prints JSON: ms a lookup, best and median of ``--repeat``.

    uv run python benchmarks/sink_ledger.py [--calls 10000] [--repeat 7]
"""

from __future__ import annotations

import json
import statistics
import time
import uuid

from sink_timing import bench_store, sink_arguments

from llmpulse.schemas import EnrichedCall
from llmpulse.sinks.store import Store, _HexIds
from llmpulse.sinks.writer import Sourced, Writer


def main() -> None:
    args, calls = sink_arguments(__doc__ or "", calls=10_000, repeat=7)
    ids: list[uuid.UUID] = [c.event_id for c in calls] + [v.event_id for c in calls for v in c.verdicts]
    with bench_store("ledger") as (_, store):
        report = _lookups(store, calls, ids, args.repeat)
    print(json.dumps({"benchmark": "sink_ledger", "ids": len(ids), "repeat": args.repeat,
                      "lookup": report}, indent=2))


def _lookups(store: Store, calls: list[EnrichedCall], ids: list[uuid.UUID],
             repeat: int) -> dict[str, dict[str, dict[str, float]]]:
    """ms a lookup of ``ids``, both ways, on an empty ledger and with every id stored."""

    def hex_parameter(chunk: list[uuid.UUID]) -> set[uuid.UUID]:
        rows = store.query("SELECT DISTINCT event_id FROM event_ids WHERE event_id IN "
                           "(SELECT toUUID(arrayJoin(splitByChar(',', {ids:String}))))",
                           {"ids": _HexIds(chunk)}).rows
        return {row[0] for row in rows}

    report: dict[str, dict[str, dict[str, float]]] = {}
    for state in ("empty", "all_stored"):
        if state == "all_stored":
            Writer(store).write([Sourced(c) for c in calls])
        runs: dict[str, list[float]] = {"hex_parameter": [], "arrow_column": []}
        for _ in range(repeat):
            for name, lookup in (("hex_parameter", hex_parameter),
                                 ("arrow_column", store.existing_event_ids)):
                started = time.perf_counter()
                found = lookup(ids)
                runs[name].append((time.perf_counter() - started) * 1e3)
                assert len(found) == (0 if state == "empty" else len(ids)), (name, state, len(found))
        report[state] = {name: {"best_ms": round(min(v), 1), "median_ms": round(statistics.median(v), 1)}
                         for name, v in runs.items()}
    return report


if __name__ == "__main__":
    main()
