"""Idempotency on event_id: three ways to keep a redelivery from counting twice.

Each strategy stores the same enriched calls in batches, then receives a redelivery of
the last 20 % of them (a consumer that restarts from an older offset: other batch
boundaries), and, for the token strategy, also a retry of the very same batches.

* ``ledger`` (what the sink does): the writer drops events whose id is in the
  ``event_ids`` ledger (filled by a view in the same INSERT), so duplicates never reach a
  table; dashboards read the per-minute rollups.
* ``replacing``: ``calls`` is a ReplacingMergeTree whose key ends with event_id; the
  same writer without the ledger lookup inserts every row, and merges remove duplicates
  some time later. Views fire on insert, so the rollups count duplicates: dashboards
  must read raw rows with FINAL.
* ``token``: (calls only, no verdict rows) every INSERT carries
  ``insert_deduplication_token`` (a hash of its ids); ClickHouse drops a block it has
  seen, including in the views (``deduplicate_blocks_in_dependent_materialized_views``).

For each: insert rows/s, stored rows and rollup count after the redelivery (expected:
the number of calls), and the time of the version-comparison dashboard query read the
way that strategy needs (rollup, or raw rows with FINAL). Prints JSON.

    uv run python benchmarks/sink_idempotency.py [--calls 60000] [--batch 5000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from sink_timing import bench_folder

from llmpulse.schemas import EnrichedCall
from llmpulse.sinks import rows as r
from llmpulse.sinks.queries import DASHBOARD_QUERIES
from llmpulse.sinks.store import Store
from llmpulse.sinks.testing import sample_calls
from llmpulse.sinks.writer import Sourced, Writer

RAW_COMPARISON = """
    SELECT prompt_id, prompt_version, model, count() AS n_calls, countIf(error_type != '') AS n_errors,
           sum(input_tokens) AS tokens, quantiles(0.5, 0.9, 0.95, 0.99)(latency_ms) AS latency_quantiles
    FROM calls {final} WHERE app = {{app:String}}
    GROUP BY prompt_id, prompt_version, model ORDER BY prompt_id, prompt_version, model"""


SCALE_INSERT = """
    INSERT INTO calls (event_id, call_id, occurred_at, processed_at, app, environment, prompt_id,
                       prompt_version, model, latency_ms, input_tokens, output_tokens, error_type, complete)
    SELECT generateUUIDv7(number), concat('gen-', toString(number)),
           now64(6) - toIntervalSecond(number % (7 * 86400)), now64(6), 'support-bot', 'production', 'answer',
           toString(number % 2 + 1), ['gpt-4o-mini', 'llama-3-8b'][number % 2 + 1],
           100 + (number * 7919) % 2000, number % 2000, number % 300, if(number % 20 = 0, 'Timeout', ''), 1
    FROM numbers({n:UInt64})"""


def _batches(calls: Sequence[EnrichedCall], size: int, start: int = 0) -> list[Sequence[EnrichedCall]]:
    return [calls[i:i + size] for i in range(start, len(calls), size)]


def _time_query(store: Store, sql: str, repeat: int = 5) -> float:
    best = float("inf")
    params = {"app": "support-bot", "start": "2000-01-01 00:00:00", "end": "2100-01-01 00:00:00"}
    for _ in range(repeat):
        started = time.perf_counter()
        store.query(sql, params)
        best = min(best, time.perf_counter() - started)
    return best * 1000


def _counts(store: Store) -> dict[str, int]:
    return {"stored_rows": int(store.query("SELECT count() FROM calls").scalar()),
            "stored_rows_final": int(store.query("SELECT count() FROM calls FINAL").scalar())
            if "Replacing" in str(store.query("SELECT engine FROM system.tables WHERE database = "
                                              "currentDatabase() AND name = 'calls'").scalar()) else None,
            "rollup_calls": int(store.query("SELECT sum(calls) FROM calls_1m").scalar())}


def _insert_rows(store: Store, batch: Sequence[EnrichedCall], settings: dict[str, Any] | None = None) -> None:
    rows = [r.call_row(c) for c in batch]
    store.client.insert("calls", list(zip(*rows, strict=True)), column_names=list(r.CALL_COLUMNS),
                        column_oriented=True, settings=settings or {})


def _as_replacing(store: Store) -> None:
    """Rebuild ``calls`` as a ReplacingMergeTree keyed by event_id (views re-created on it)."""
    views = store.query("SELECT name, create_table_query FROM system.tables "
                        "WHERE database = currentDatabase() AND engine = 'MaterializedView' "
                        "AND create_table_query LIKE '% FROM %.calls%'").rows
    for name, _ in views:
        store.command(f"DROP VIEW {name}")
    store.command("CREATE TABLE calls_r AS calls ENGINE = ReplacingMergeTree(processed_at) "
                  "PARTITION BY toYYYYMM(occurred_at) "
                  "ORDER BY (app, environment, prompt_id, prompt_version, model, occurred_at, event_id)")
    store.command("DROP TABLE calls")
    store.command("RENAME TABLE calls_r TO calls")
    for _, ddl in views:
        store.command(ddl)


def run(strategy: str, store: Store, calls: list[EnrichedCall], batch: int,
        scale_rows: int) -> dict[str, Any]:
    replay_from = int(len(calls) * 0.8)
    token: Callable[[Sequence[EnrichedCall]], dict[str, Any]] = lambda b: {  # noqa: E731
        "insert_deduplication_token": hashlib.sha256(b"".join(c.event_id.bytes for c in b)).hexdigest(),
        "deduplicate_blocks_in_dependent_materialized_views": 1}
    if strategy == "replacing":
        _as_replacing(store)
    if strategy == "token":
        for table in ("calls", "calls_1m", "event_ids", "call_index"):
            store.command(f"ALTER TABLE {table} MODIFY SETTING non_replicated_deduplication_window = 1000")
    writer = Writer(store, deduplicate=strategy == "ledger")  # replacing: the same writer, no lookup
    started = time.perf_counter()
    for part in _batches(calls, batch):
        if strategy != "token":
            writer.write([Sourced(c) for c in part])
        else:
            _insert_rows(store, part, token(part) if strategy == "token" else None)
    rate = len(calls) / (time.perf_counter() - started)
    result: dict[str, Any] = {"insert_rows_per_s": round(rate)}
    if strategy == "token":  # a retry of the very same batches: what tokens are made for
        for part in _batches(calls, batch)[-max(1, (len(calls) - replay_from) // batch):]:
            _insert_rows(store, part, token(part))
        result["after_same_batch_retry"] = _counts(store)
    shifted = _batches(calls[replay_from - batch // 3:], batch)  # the redelivery: other boundaries
    started = time.perf_counter()
    for part in shifted:
        if strategy != "token":
            writer.write([Sourced(c) for c in part])
        else:
            _insert_rows(store, part, token(part) if strategy == "token" else None)
    result["redelivery_rows_per_s"] = round(sum(map(len, shifted)) / (time.perf_counter() - started))
    result["after_redelivery"] = _counts(store)
    if strategy == "replacing":
        store.command("OPTIMIZE TABLE calls FINAL")
        result["after_merge"] = _counts(store)
    if scale_rows:  # the dashboards' view of a long range: many more rows, made by the server
        store.command(SCALE_INSERT, {"n": scale_rows})
        store.command(SCALE_INSERT, {"n": scale_rows // 10})  # a later part, as new data would be
    result["query_rows"] = int(store.query("SELECT count() FROM calls").scalar())
    result["query_ms"] = {
        "rollup": round(_time_query(store, DASHBOARD_QUERIES["calls_by_prompt_version"]), 2),
        "raw": round(_time_query(store, RAW_COMPARISON.format(final="")), 2),
    }
    if strategy == "replacing":
        result["query_ms"]["raw_final"] = round(_time_query(store, RAW_COMPARISON.format(final="FINAL")), 2)
    result["correct_read"] = {"ledger": "rollup", "replacing": "raw_final", "token": "none for redelivery"}[
        strategy]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=60_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--scale-rows", type=int, default=2_000_000,
                        help="rows the server adds before the query timings (0: none)")
    args = parser.parse_args()
    calls = sample_calls(args.calls, seed=21, spread_s=6 * 3600)
    report: dict[str, Any] = {"benchmark": "sink_idempotency", "calls": args.calls, "batch": args.batch,
                              "redelivered": args.calls - int(args.calls * 0.8) + args.batch // 3}
    with bench_folder() as folder:
        for strategy in ("ledger", "replacing", "token"):
            with Store.open(f"chdb://{folder}?database={strategy}_{uuid.uuid4().hex[:6]}") as store:
                store.migrate()
                report[strategy] = run(strategy, store, calls, args.batch, args.scale_rows)
    ledger = report["ledger"]["query_ms"]["rollup"]
    report["ratio_replacing_final_query_to_ledger_rollup"] = round(
        report["replacing"]["query_ms"]["raw_final"] / ledger, 2)
    report["ratio_ledger_insert_to_replacing_insert"] = round(
        report["ledger"]["insert_rows_per_s"] / report["replacing"]["insert_rows_per_s"], 3)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
