"""End-to-end freshness: from the SDK call to the row a dashboard query can see.

A steady load of ``--rate`` calls/s for ``--seconds`` goes through the SDK to Kafka, a
worker process (``llmpulse worker``, light path), and a sink process (``llmpulse sink``)
writing to an embedded chDB store. Each call's end time is kept by call id; afterwards
the store's ``inserted_at`` (set by the engine when the row is written, i.e. when a
query can first see it) gives the freshness of every call. The baseline in the same run
is the time until the call's prompt can be read back from Kafka by a plain consumer:
the floor any pipeline built on Kafka pays. Beside its own measure it reads the sink's
Prometheus ``/metrics`` (``llmpulse_freshness_seconds``: processed_at - occurred_at plus
inserted_at - processed_at) and reports whether the two means agree within 10%. It waits
on the sink's ``/readyz`` and on its metrics (every call stored), never a fixed sleep.
Prints JSON.

    uv run python benchmarks/freshness.py [--rate 1000] [--seconds 30]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import llmpulse.producers as llmpulse  # noqa: E402
from llmpulse.cli.topics import ensure_topics  # noqa: E402


def _quantiles(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    n = len(values)
    return {"p50_s": round(values[n // 2], 3), "p99_s": round(values[int(n * 0.99)], 3),
            "max_s": round(values[-1], 3), "n": n}


def _get(url: str) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, ""
    except OSError:
        return 0, ""


def _metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    from prometheus_client.parser import text_string_to_metric_families

    return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def _wait(condition: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"freshness: {what} after {timeout_s:.0f} s")
        time.sleep(0.2)


def _read_kafka(bootstrap: str, topic: str, seen: dict[str, float],
                stop: threading.Event) -> None:
    """The baseline: when each call's prompt can first be read back from Kafka."""
    from confluent_kafka import Consumer

    from llmpulse.schemas import decode_record

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"fresh-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest", "fetch.wait.max.ms": 10})
    consumer.subscribe([topic])
    try:
        while not stop.is_set():
            for msg in consumer.consume(500, 0.05):
                if msg.error():
                    continue
                now = time.time()
                for event in decode_record(msg.value()).events:
                    seen.setdefault(event.call_id, now)
    finally:
        consumer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--bootstrap", default=None)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="llmpulse-fresh-"))
    from kafka_broker import broker_unless_given

    bootstrap, broker = broker_unless_given(args.bootstrap, tmp)
    prefix = f"f{uuid.uuid4().hex[:6]}."
    store_url = f"chdb://{tmp / 'store'}"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        ensure_topics(bootstrap, prefix=prefix, partitions=2)  # the worker's internal topics too
        from worker_process import WorkerProcess

        worker = WorkerProcess(bootstrap, prefix, tmp / "worker")
        worker.start()
        sink_log = open(tmp / "sink.log", "wb")  # noqa: SIM115
        from kafka_broker import free_port

        health = f"http://127.0.0.1:{free_port()}"
        sink = subprocess.Popen([sys.executable, "-m", "llmpulse.cli.main", "sink",
                                 "--bootstrap-servers", bootstrap, "--prefix", prefix,
                                 "--clickhouse", store_url, "--group-id", f"{prefix}sink",
                                 "--batch-seconds", "0.25", "--log-level", "WARNING",
                                 "--health-address", health.removeprefix("http://")],
                                stdout=sink_log, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        procs.append(sink)
        _wait(lambda: _get(f"{health}/readyz")[0] == 200, 120, "the sink is not ready")
        seen_on_kafka: dict[str, float] = {}
        stop_reader = threading.Event()
        reader = threading.Thread(target=_read_kafka, args=(bootstrap, f"{prefix}llm.prompts",
                                                             seen_on_kafka, stop_reader), daemon=True)
        reader.start()
        llmpulse.init(app="fresh", bootstrap_servers=bootstrap, topic_prefix=prefix,
                      spool_dir=tmp / "spool", warn_on_drop=False)
        ended: dict[str, float] = {}
        interval = 1.0 / args.rate
        start = time.time()
        next_at = start
        total = args.rate * args.seconds
        for i in range(total):
            now = time.time()
            if now < next_at:
                time.sleep(next_at - now)
            next_at += interval
            with llmpulse.call(prompt_id="fresh", messages=[{"role": "user", "content": f"q{i}"}]) as c:
                c.record_response(f"a{i}", input_tokens=3, output_tokens=2)
            ended[c.call_id] = time.time()
        achieved = total / (time.time() - start)
        llmpulse.flush(30)
        sdk_stats = llmpulse.stats()
        _wait(lambda: _metric(_get(f"{health}/metrics")[1], "llmpulse_events_out_total",
                              target="calls") >= sdk_stats["sent"] // 2, 300,
              "not every call the SDK sent was stored")
        metrics = _get(f"{health}/metrics")[1]
        stop_reader.set()
        reader.join(30)
        worker.stop()
        sink.terminate()
        sink.wait(60)
        sink_log.close()
        from llmpulse.sinks.store import Store

        store = Store.open(store_url)
        rows = store.query("SELECT call_id, inserted_at FROM calls WHERE app = 'fresh'").dicts()
        store.close()
        fresh = []
        for row in rows:
            t_end = ended.get(row["call_id"])
            if t_end is not None:
                seen = row["inserted_at"]
                if seen.tzinfo is None:
                    seen = seen.replace(tzinfo=UTC)
                fresh.append(seen.timestamp() - t_end)
        counted = _metric(metrics, "llmpulse_freshness_seconds_count", span="processed")
        from_metrics = (_metric(metrics, "llmpulse_freshness_seconds_sum", span="processed")
                        + _metric(metrics, "llmpulse_freshness_seconds_sum", span="inserted")
                        ) / counted if counted else None
        own_mean = sum(fresh) / len(fresh) if fresh else None
        floor = [seen_on_kafka[c] - t for c, t in ended.items() if c in seen_on_kafka]
        out = {"rate_target": args.rate, "rate_achieved": round(achieved), "seconds": args.seconds,
               "calls": total, "stored": len(fresh), "freshness": _quantiles(fresh) if fresh else None,
               "baseline_readable_on_kafka": _quantiles(floor) if floor else None,
               "p99_over_baseline_p99": round(_quantiles(fresh)["p99_s"] / _quantiles(floor)["p99_s"], 2)
               if fresh and floor else None,
               "sdk_sent": sdk_stats["sent"], "sdk_dropped": sdk_stats["dropped"],
               "freshness_mean_s": round(own_mean, 4) if own_mean is not None else None,
               "metrics_freshness_mean_s": round(from_metrics, 4)
               if from_metrics is not None else None,
               "metrics_calls_counted": int(counted),
               "metrics_over_measured": round(from_metrics / own_mean, 3)
               if from_metrics and own_mean else None,
               "metrics_agree_within_10pct": bool(from_metrics and own_mean)
               and abs(from_metrics / own_mean - 1) <= 0.10,
               "goal_p99_under_5s": bool(fresh) and _quantiles(fresh)["p99_s"] < 5.0,
               "note": "worker (light path), sink, SDK, broker and this process share 2 cores",
               "at": datetime.now(UTC).isoformat(timespec="seconds")}
        llmpulse.shutdown()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        if broker is not None:
            broker.stop()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
