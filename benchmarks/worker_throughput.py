"""Calls per second through one worker (validate + join + light scorers + guardrails), as a
ratio to a Faust agent that only counts the same records, and two workers against one.

The input is made once by the SDK (batch records, as apps send them): N calls, so N
prompt and N response events, on a topic prefix of its own. Each run reads it from the
start in a fresh consumer group:

1. ``count-only``: a Faust agent that decodes nothing and counts records (Faust's own
   per-record ceiling on this machine).
2. ``worker x1``: ``llmpulse worker --no-heavy`` until N enriched calls are out.
3. ``worker x2``: two worker processes in one group, one partition each.
4. ``worker x1`` and ``x2`` again, each worker in its own CPU cgroup limited to
   ``--worker-cpus`` cores (where cgroups can be written): the scaling a deployment with
   a core budget per worker sees. On a 2-core machine, two unlimited workers share the
   cores with the broker, so step 3 measures the machine, not the design.

Each run also reports the workers' CPU seconds (``/proc``) and calls per worker CPU second.

``--agent-share 0.3``: that share of the calls belong to agent runs, made by the SDK as an
agent makes them: ``trace()`` (an ``invoke_agent`` span), a call whose answer is a tool
call, the tool's execution (``tool_span``: arguments and a JSON result, on ``llm.spans``),
and a call that answers. Per agent run, two calls and two spans; a run's clock stops once
every call and every span is on ``llm.enriched``. ``calls`` stays the LLM calls.

Prints JSON. ``uv run python benchmarks/worker_throughput.py [--calls 30000] [--worker-cpus 0.5]
[--agent-share 0.3]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import llmpulse.producers as llmpulse  # noqa: E402
from llmpulse.cli.topics import ensure_topics  # noqa: E402

INPUTS = ("llm.prompts", "llm.responses", "llm.spans")
"""The worker's input topics the benchmark makes and copies."""

COUNTER = textwrap.dedent("""
    import os, sys, time, faust
    bootstrap, prefix, expected, datadir = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    sys.argv = [sys.argv[0], "worker", "-l", "warn"]
    app = faust.App("count-" + prefix, broker="kafka://" + bootstrap, value_serializer="raw",
                    key_serializer="raw", web_enabled=False, consumer_auto_offset_reset="earliest",
                    broker_session_timeout=6, broker_heartbeat_interval=0.5,
                    broker_rebalance_timeout=6, stream_recovery_delay=0, datadir=datadir)
    topic = app.topic(prefix + "llm.prompts", prefix + "llm.responses", prefix + "llm.spans",
                      value_type=bytes, key_type=bytes, value_serializer="raw", key_serializer="raw")
    seen = {"records": 0, "t0": None}

    @app.agent(topic)
    async def count(stream):
        async for value in stream:
            if seen["t0"] is None:
                seen["t0"] = time.monotonic()
            seen["records"] += 1
            if seen["records"] >= expected:
                with open(datadir + ".result", "w") as f:
                    f.write(f"{seen['records']} {time.monotonic() - seen['t0']}")
                os._exit(0)

    app.main()
""")


def _count_enriched(bootstrap: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4()}"})
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        total = 0
        for p in meta.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            total += high - low
        return total
    finally:
        consumer.close()


def _enriched_calls(bootstrap: str, topic: str, want: int, timeout_s: float,
                    want_spans: int = 0) -> float:
    """Seconds from now until ``want`` enriched calls (and ``want_spans`` spans) are on the
    topic (reads the events)."""
    from llmpulse.schemas import SpanEvent, decode_record

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    t0 = time.monotonic()
    seen: set[str] = set()
    spans: set[str] = set()
    try:
        while (len(seen) < want or len(spans) < want_spans) and time.monotonic() - t0 < timeout_s:
            for msg in consumer.consume(500, 0.2):
                if not msg.error():
                    for e in decode_record(msg.value()).events:
                        (spans if isinstance(e, SpanEvent) else seen).add(e.call_id)
    finally:
        consumer.close()
    if len(seen) < want or len(spans) < want_spans:
        raise TimeoutError(f"only {len(seen)} of {want} calls and {len(spans)} of {want_spans} "
                           f"spans enriched in {timeout_s}s")
    return time.monotonic() - t0


def _copy(bootstrap: str, source: str, target: str) -> None:
    """Copy the input records (same partitions) from ``source`` to ``target`` topics, in
    the order the SDK produced them (prompt and response records interleave, as they do
    when apps send them), so the join sees what it sees in production."""
    from confluent_kafka import Producer

    records: list[tuple[int, int, str, int, bytes | None, bytes | None]] = []
    for base in INPUTS:
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"copy-{uuid.uuid4()}",
                             "enable.auto.commit": False})
        topic = source + base
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        for p in parts:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            consumer.assign([TopicPartition(topic, p, low)])
            got = 0
            while got < high - low:
                for msg in consumer.consume(500, 1.0):
                    if not msg.error():
                        records.append((msg.timestamp()[1], msg.offset(), base, p, msg.key(),
                                        msg.value()))
                        got += 1
        consumer.close()
    records.sort(key=lambda r: (r[0], r[2] != "llm.prompts", r[1]))
    producer = Producer({"bootstrap.servers": bootstrap, "message.max.bytes": 8 * 1024 * 1024,
                         "linger.ms": 5})
    for _, _, base, p, key, value in records:
        producer.produce(target + base, value, key, partition=p)
    producer.flush(60)


def _cpu_budget(name: str, cpus: float) -> Path | None:
    """A CPU cgroup limited to ``cpus`` cores (CFS quota), or None where cgroups cannot be
    written (not root, no cpu controller)."""
    period = 100_000
    try:
        v2 = Path("/sys/fs/cgroup/cgroup.controllers")
        if v2.exists() and "cpu" in v2.read_text().split():
            group = Path("/sys/fs/cgroup") / name
            group.mkdir(exist_ok=True)
            (group / "cpu.max").write_text(f"{int(cpus * period)} {period}")
        else:
            group = Path("/sys/fs/cgroup/cpu") / name
            group.mkdir(exist_ok=True)
            (group / "cpu.cfs_period_us").write_text(str(period))
            (group / "cpu.cfs_quota_us").write_text(str(int(cpus * period)))
        return group
    except OSError:
        return None


def _workers(bootstrap: str, source: str, n: int, tmp: Path, calls: int,
             cpus: float | None = None, spans: int = 0) -> dict[str, float] | None:
    """n workers on a fresh prefix; once every one is ready, the input is copied in (a
    fraction of a second), so the clock runs only while they all work. With ``cpus``,
    each worker runs in its own cgroup limited to that many cores (None if impossible)."""
    from worker_process import WorkerProcess

    prefix = f"w{uuid.uuid4().hex[:6]}."
    groups = [_cpu_budget(f"llmpulse-bench-{prefix}{i}", cpus) for i in range(n)] if cpus else []
    if cpus and None in groups:
        return None
    ensure_topics(bootstrap, prefix=prefix, partitions=2)
    procs = [WorkerProcess(bootstrap, prefix, tmp / f"w{n}-{i}", partitions=2,
                           cgroup=groups[i] if groups else None) for i in range(n)]
    t0 = time.monotonic()
    try:
        for p in procs:
            p.start(timeout_s=240)
        ready = time.monotonic() - t0
        time.sleep(8)  # the group settles: every worker holds its partition
        cpu0 = [p.cpu_seconds() for p in procs]
        _copy(bootstrap, source, prefix)
        elapsed = _enriched_calls(bootstrap, f"{prefix}llm.enriched", calls, timeout_s=900,
                                  want_spans=spans)
        cpu = [round(p.cpu_seconds() - c, 2) for p, c in zip(procs, cpu0, strict=True)]
    finally:
        for p in procs:
            p.stop()
        for group in groups:
            if group is not None:
                group.rmdir()
    return {"ready_s": round(ready, 1), "elapsed_s": round(elapsed, 2),
            "calls_per_s": round(calls / elapsed), "worker_cpu_s": cpu,
            "calls_per_worker_cpu_s": round(calls / sum(cpu))}


def _agent_run(i: int) -> None:
    """One agent run, as an agent recorded by the SDK makes it: two calls, two spans."""
    order = f"A-{i}"
    with llmpulse.trace(name="support-agent", session_id=f"s-{i % 500}"):
        question = [{"role": "user", "content": f"Where is my parcel {order}?"}]
        with llmpulse.call(prompt_id="agent", prompt_version="1", model="gpt-4o-mini",
                           messages=question) as c:
            c.record_response(None, tool_calls=[("call_1", "lookup_order", f'{{"order_id": "{order}"}}')],
                              input_tokens=40, output_tokens=12)
        with llmpulse.tool_span("lookup_order", {"order_id": order}, tool_call_id="call_1") as tool:
            tool.record_result({"order_id": order, "status": "shipped", "carrier": "DHL",
                                "eta": "2026-12-03", "items": [{"sku": "SHOE-41", "qty": 1}]})
        with llmpulse.call(prompt_id="agent", prompt_version="1", model="gpt-4o-mini",
                           messages=question) as c:
            c.record_response(f"Parcel {order} shipped with DHL; it arrives on December 3.",
                              input_tokens=90, output_tokens=16)


def _input(bootstrap: str, calls: int, tmp: Path, agent_share: float = 0.0) -> tuple[str, int]:
    """The input topics' prefix, and the spans made (two per agent run)."""
    prefix = f"b{uuid.uuid4().hex[:6]}."
    ensure_topics(bootstrap, prefix=prefix, partitions=2)  # the worker's internal topics too
    llmpulse.init(app="bench", bootstrap_servers=bootstrap, topic_prefix=prefix,
                  spool_dir=tmp / f"spool-{prefix}", warn_on_drop=False)
    made = spans = 0
    while made < calls:
        # agent runs spread evenly: after each run, plain calls until the share is right
        if agent_share > 0 and calls - made >= 2 and (made + 2) * agent_share >= 2 * (spans // 2 + 1):
            _agent_run(made)
            made, spans = made + 2, spans + 2
            continue
        with llmpulse.call(prompt_id="answer", prompt_version="3", model="gpt-4o-mini",
                           messages=[{"role": "user", "content": f"Where is my parcel {made}?"}]) as c:
            c.record_response("It ships tomorrow; tracking comes by email.", input_tokens=12,
                              output_tokens=9)
        made += 1
    llmpulse.flush(60)
    llmpulse.shutdown()
    return prefix, spans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=30_000)
    parser.add_argument("--bootstrap", default=None)
    parser.add_argument("--worker-cpus", type=float, default=0.5,
                        help="CPU budget of each worker in the cgroup runs (cores)")
    parser.add_argument("--agent-share", type=float, default=0.0,
                        help="share of the calls that belong to agent runs (tool calls and spans)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="llmpulse-wbench-"))
    from kafka_broker import broker_unless_given

    bootstrap, broker = broker_unless_given(args.bootstrap, tmp)
    try:
        prefix, spans = _input(bootstrap, args.calls, tmp, args.agent_share)
        out: dict[str, object] = {"calls": args.calls, "events": 2 * args.calls + spans,
                                  "agent_share": args.agent_share, "spans": spans}
        records = sum(_count_enriched(bootstrap, f"{prefix}{base}") for base in INPUTS)
        out["input_records"] = records
        proc = subprocess.run([sys.executable, "-c", COUNTER, bootstrap, prefix, str(records),
                               str(tmp / "count")],
                              capture_output=True, text=True, timeout=600, check=False)
        result_file = Path(str(tmp / "count") + ".result")
        if result_file.exists():
            n, seconds = result_file.read_text().split()
            out["count_only"] = {"records_per_s": round(int(n) / float(seconds)),
                                 "events_per_s": round((2 * args.calls + spans) / float(seconds))}
        else:
            out["count_only"] = {"error": proc.stdout[-2000:] + proc.stderr[-2000:]}
        one = _workers(bootstrap, prefix, 1, tmp, args.calls, spans=spans)
        two = _workers(bootstrap, prefix, 2, tmp, args.calls, spans=spans)
        assert one is not None and two is not None
        out["worker_x1"], out["worker_x2"] = one, two
        count = out["count_only"]
        if "records_per_s" in count:  # type: ignore[operator]
            out["worker_x1_over_count_only_records"] = round(
                one["calls_per_s"] * records / args.calls / count["records_per_s"], 3)  # type: ignore[index]
        out["two_over_one"] = round(two["calls_per_s"] / one["calls_per_s"], 2)
        # The same, each worker held to the same CPU budget (its own cgroup): how two
        # workers scale when each has its share of cores, as on a machine with a core per
        # worker; here 2 x budget plus the broker must fit in 2 cores.
        capped_one = _workers(bootstrap, prefix, 1, tmp, args.calls, cpus=args.worker_cpus,
                              spans=spans)
        capped_two = _workers(bootstrap, prefix, 2, tmp, args.calls, cpus=args.worker_cpus,
                              spans=spans)
        budget: dict[str, object] = {"error": "cannot write a CPU cgroup here"}
        if capped_one is not None and capped_two is not None:
            budget = {"cpus": args.worker_cpus, "worker_x1": capped_one, "worker_x2": capped_two,
                      "two_over_one": round(capped_two["calls_per_s"] / capped_one["calls_per_s"],
                                            2)}
        out["cpu_budget_per_worker"] = budget
        out["goals"] = {"x1 >= 3000 calls/s": one["calls_per_s"] >= 3000,
                        "x2 >= 1.7 x1 (shared cores)": out["two_over_one"] >= 1.7,  # type: ignore[operator]
                        "x2 >= 1.7 x1 (a CPU budget per worker)":
                            float(budget.get("two_over_one", 0)) >= 1.7}  # type: ignore[arg-type]
    finally:
        if broker is not None:
            broker.stop()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
