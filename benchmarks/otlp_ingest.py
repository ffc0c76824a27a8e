"""OpenTelemetry in: the OTLP mapper's cost, and freshness through the real Collector.

1. ``mapper``: CPU time of ``OtlpMapper`` (decode an OTLP record of 512 OpenLLMetry-like
   chat spans, map, validate, encode as batch records per partition) per span, against the
   light path per call measured in the same process on the same calls (decode the prompt
   and response records + join + light scorers + guardrails + encode the enriched calls,
   what one worker does with each call), record by record in turn so that both sides run
   under the same load. The mapper must never be the bottleneck: ``mapper_over_light``
   >= 2 (spans/s per core over calls/s per core). The ``*_warm`` keys leave out each side's
   first record (512 calls), whose one-off costs (first calls into each side's code)
   favour the mapper. Before timing, the set-up does what ``llmpulse worker`` does at
   start: ``Enricher.load_light`` (the price table, the injection rule's gate), then
   ``freeze_start_heap`` (``start_heap_frozen_objects``; ``--no-freeze`` to compare), so
   full collections no longer walk the start-up heap at whichever side's expense;
   ``gc_warm`` counts each side's collections per generation and their CPU seconds.
   ``known_hit_rate``: the share of the spans' attribute values the wire reader's cache
   (``_wire_reader._KNOWN``) served. ``mapper_realistic``: the same measure, in the same
   run, on varied spans (``_realistic_attributes``: unique response, session and user ids,
   token counts and text lengths, five models, drawn parameters), where the benchmark's
   own spans repeat every short value but their response id. It runs second in the same
   process: its warm keys compare with the first measure's, but its one-off costs (imports,
   price table, gates) are already paid, so its non-warm keys (``first_record_cpu_s``,
   ``mapper_over_light``) and ``start_heap_frozen_objects`` (a running total) are not
   comparable with the first measure's.
2. ``freshness`` (skipped with ``--no-pipeline``): a real broker, the Collector built by
   ``scripts/otelcol.sh``, ``llmpulse otlp run``, a worker (light path) and a sink to chDB.
   Phase ``sdk``: ``--rate`` calls/s through our SDK. Phase ``otlp``: ``--rate`` calls/s as
   spans made by the OpenTelemetry SDK (current-convention attributes) and exported over
   OTLP/HTTP to the Collector. For each call, app end time -> the row's ``inserted_at``
   (when a query can first see it); p50/p99 per phase and their ratio. The Collector's and
   the OTLP stage's CPU seconds (``/proc``) over the otlp phase, per 1,000 spans.

Prints JSON. ``uv run python benchmarks/otlp_ingest.py [--rate 500] [--seconds 20] [--spans 20000]``

The pipeline half waits on the sink's metrics until each phase's calls are stored, then stops
the stage, worker and sink (each in its own process group) before reading the chDB store,
which allows one process at a time.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from freshness import _get, _metric, _quantiles  # noqa: E402
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData  # noqa: E402

from llmpulse.processors.otlp import OtlpMapper, _wire_reader  # noqa: E402
from llmpulse.processors.otlp.stage import records_by_partition  # noqa: E402

SPANS_PER_RECORD = 512


_MODELS = [("gpt-4o-mini", "gpt-4o-mini-2024-07-18"), ("gpt-4o", "gpt-4o-2024-08-06"),
           ("gpt-4.1", "gpt-4.1-2025-04-14"), ("gpt-4.1-nano", "gpt-4.1-nano-2025-04-14"),
           ("o3-mini", "o3-mini-2025-01-31")]


def _realistic_attributes(i: int, rnd: random.Random) -> dict[str, Any]:
    """One span's attributes as varied traffic has them: a unique response id, a session
    and a user id, token counts and a question of any size, one of five models, sampling
    parameters and a finish reason drawn from a few values."""
    model, response_model = rnd.choice(_MODELS)
    question = " ".join(rnd.choice(("order", "refund", "late", "address", "card", "box",
                                    "please", "why", "when", "again"))
                        for _ in range(rnd.randint(3, 60)))
    answer = " ".join(rnd.choice(("we", "will", "ship", "it", "today", "sorry", "your", "refund",
                                  "is", "on", "its", "way")) for _ in range(rnd.randint(2, 80)))
    return {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
        "gen_ai.request.model": model, "gen_ai.response.model": response_model,
        "gen_ai.request.temperature": rnd.choice((0.0, 0.2, 0.7, 1.0)),
        "gen_ai.request.max_tokens": rnd.choice((256, 512, 1024, 4096)),
        "server.address": "api.openai.com",
        "gen_ai.response.id": "chatcmpl-" + "".join(rnd.choices(_ID_CHARS, k=29)),
        "gen_ai.conversation.id": str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
        "user.id": f"user-{rnd.randrange(1_000_000)}",
        "gen_ai.input.messages": json.dumps([
            {"role": "system", "parts": [{"type": "text", "content": "You are a support bot."}]},
            {"role": "user", "parts": [{"type": "text", "content": f"{i}: {question}?"}]}]),
        "gen_ai.output.messages": json.dumps([{"role": "assistant", "finish_reason": "stop",
                                               "parts": [{"type": "text", "content": answer}]}]),
        "gen_ai.response.finish_reasons": [rnd.choices(("stop", "length", "tool_calls"),
                                                       (90, 6, 4))[0]],
        "gen_ai.usage.input_tokens": rnd.randint(20, 4_000),
        "gen_ai.usage.output_tokens": rnd.randint(1, 1_200),
    }


_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _span_record(start: int, count: int, *, realistic: bool = False) -> bytes:
    """``count`` chat spans in one OTLP record: the same short values on every span (the
    benchmark's first measure), or (``realistic``) ``_realistic_attributes``' variety."""
    rnd = random.Random(start)
    data = TracesData()
    rs = data.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", "bench-bot"
    scope = rs.scope_spans.add()
    t0 = time.time_ns()
    for i in range(start, start + count):
        span = scope.spans.add()
        span.trace_id = uuid.uuid4().bytes
        span.span_id = os.urandom(8)
        span.name = "openai.chat"
        span.start_time_unix_nano, span.end_time_unix_nano = t0, t0 + 700_000_000
        attrs = _realistic_attributes(i, rnd) if realistic else {
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": "gpt-4o-mini",
            "gen_ai.request.temperature": 0.2, "gen_ai.response.id": f"chatcmpl-{i}",
            "gen_ai.input.messages": json.dumps([
                {"role": "system", "parts": [{"type": "text", "content": "You are a support bot."}]},
                {"role": "user", "parts": [{"type": "text",
                                            "content": f"Where is my order {i}? It was due Monday."}]}]),
            "gen_ai.output.messages": json.dumps([{"role": "assistant", "finish_reason": "stop",
                                                   "parts": [{"type": "text", "content":
                                                              f"Order {i} ships tomorrow, sorry."}]}]),
            "gen_ai.response.finish_reasons": ["stop"],
            "gen_ai.usage.input_tokens": 24, "gen_ai.usage.output_tokens": 7,
        }
        for key, value in attrs.items():
            kv = span.attributes.add()
            kv.key = key
            if isinstance(value, list):
                kv.value.array_value.values.add().string_value = value[0]
            elif isinstance(value, float):
                kv.value.double_value = value
            elif isinstance(value, int):
                kv.value.int_value = value
            else:
                kv.value.string_value = value
    serialized: bytes = data.SerializeToString()
    return serialized


class _CollectorTime:
    """The cycle collector's collections and CPU seconds per generation, charged to the side
    (``"mapper"``, ``"light"``, or None: not counted) that was running when each began."""

    def __init__(self) -> None:
        self.side: str | None = None
        self.counts = {side: [0, 0, 0] for side in ("mapper", "light")}
        self.cpu_s = {side: [0.0, 0.0, 0.0] for side in ("mapper", "light")}
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if self.side is None:
            return
        if phase == "start":
            self._began = time.process_time()
        else:
            self.counts[self.side][info["generation"]] += 1
            self.cpu_s[self.side][info["generation"]] += time.process_time() - self._began

    def report(self) -> dict[str, Any]:
        return {side: {"collections_by_generation": self.counts[side],
                       "cpu_s_by_generation": [round(s, 4) for s in self.cpu_s[side]],
                       "cpu_s": round(sum(self.cpu_s[side]), 4)} for side in self.counts}


def bench_mapper(spans: int, *, freeze: bool = True, realistic: bool = False) -> dict[str, Any]:
    from llmpulse.processors.config import load_config
    from llmpulse.processors.pipeline import CallPair, Enricher
    from llmpulse.schemas import decode_record, encode_batch, encode_event
    from llmpulse.schemas.runtime import freeze_start_heap

    records = [_span_record(i, min(SPANS_PER_RECORD, spans - i), realistic=realistic)
               for i in range(0, spans, SPANS_PER_RECORD)]
    keys = [kv.key for record in records for rs in TracesData.FromString(record).resource_spans
            for ss in rs.scope_spans for span in ss.spans for kv in span.attributes]
    repeating = sum(key in _wire_reader.REPEATING_KEYS for key in keys)
    _wire_reader._KNOWN.clear()  # (each measure starts with an empty value cache)
    reads_before = _wire_reader.known_stats()["reads"]
    mapper = OtlpMapper()
    enricher = Enricher(load_config(None))
    enricher.load_light()  # as ``llmpulse worker`` does at start (the price table, the gate)
    # As the worker and the OTLP stage do once their app is built: the start-up heap leaves
    # the cycle collector's walk (DESIGN: "Faust services freeze their start-up heap").
    frozen = freeze_start_heap() if freeze else 0
    collector = _CollectorTime()
    gc.callbacks.append(collector)
    # Record by record, the mapper and then the light path on what it made: both sides see
    # the same load on a shared machine (the ratio is then one of costs, not of moments).
    mapper_cpu = light_cpu = mapper_first = light_first = 0.0
    calls = 0
    for n, record in enumerate(records):
        collector.side = "mapper" if n else None
        t0 = time.process_time()
        mapped = mapper.map_record(record)
        prompt_values = [v for _, _, v in records_by_partition(mapped.prompts, 6)]
        response_values = [v for _, _, v in records_by_partition(mapped.responses, 6)]
        t1 = time.process_time()
        collector.side = "light" if n else None
        # The light path on the same calls, from the same batch records.
        for prompt_value, response_value in zip(prompt_values, response_values, strict=True):
            prompts = decode_record(prompt_value).events
            responses = {e.call_id: e for e in decode_record(response_value).events}  # type: ignore[union-attr]
            pairs = [CallPair(prompt=p, response=responses[p.call_id])  # type: ignore[union-attr,arg-type]
                     for p in prompts]
            enriched = enricher.light(pairs)
            encode_batch([encode_event(call) for call in enriched])  # what goes on to llm.enriched
            calls += len(enriched)
        t2 = time.process_time()
        collector.side = None
        mapper_cpu += t1 - t0
        light_cpu += t2 - t1
        if n == 0:
            mapper_first, light_first = mapper_cpu, light_cpu
    gc.callbacks.remove(collector)
    reads = _wire_reader.known_stats()["reads"] - reads_before
    assert mapper.counts["calls"] == spans, mapper.counts
    assert calls == spans, calls
    mapper_rate, light_rate = spans / mapper_cpu, calls / light_cpu
    # Warm: both sides without their first record's calls, which carry one-off costs (first
    # calls into the mapper's and the scorers' code). A worker pays them once.
    rest = spans - min(SPANS_PER_RECORD, spans)
    warm = ({"mapper_spans_per_cpu_s_warm": round(rest / (mapper_cpu - mapper_first)),
             "light_calls_per_cpu_s_warm": round(rest / (light_cpu - light_first)),
             "mapper_over_light_warm": round((light_cpu - light_first) / (mapper_cpu - mapper_first), 2),
             "goal_mapper_over_light_warm_at_least_2":
                 (light_cpu - light_first) / (mapper_cpu - mapper_first) >= 2.0,
             "gc_warm": collector.report()}
            if rest else {})
    return {"spans": spans, "mapper_spans_per_cpu_s": round(mapper_rate),
            "light_calls_per_cpu_s": round(light_rate),
            "mapper_over_light": round(mapper_rate / light_rate, 2),
            "goal_mapper_over_light_at_least_2": mapper_rate / light_rate >= 2.0,
            "first_record_cpu_s": {"mapper": round(mapper_first, 3), "light": round(light_first, 3)},
            "start_heap_frozen_objects": frozen,
            # The wire reader's cache of repeating keys' values (``_KNOWN``): the share of
            # the spans' attribute values it served, and how many values it holds at the end.
            "known_hit_rate": round((repeating - reads) / len(keys), 3),
            "known_hit_rate_repeating_keys": round((repeating - reads) / repeating, 4),
            "known_kept": len(_wire_reader._KNOWN),
            **warm}


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _paced(rate: int, seconds: int, one: Any) -> tuple[dict[str, float], float]:
    ended: dict[str, float] = {}
    interval, total = 1.0 / rate, rate * seconds
    start = next_at = time.time()
    for i in range(total):
        now = time.time()
        if now < next_at:
            time.sleep(next_at - now)
        next_at += interval
        ended[one(i)] = time.time()
    return ended, total / (time.time() - start)


class _Group:
    """Child processes, each the leader of its own process group, all ended in ``close``."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, args: list[str], ready: Any, timeout_s: float = 120) -> None:
        """Start ``args`` (output to ``<name>.log``) and wait until ``ready(log_text)``."""
        log = self.tmp / f"{name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                    env={**os.environ, "PYTHONUNBUFFERED": "1"},
                                    start_new_session=True)
        self.procs.append(proc)  # tracked before waiting: a failed start is still ended
        deadline = time.monotonic() + timeout_s
        while not ready(log.read_text(errors="replace")):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
                raise RuntimeError(f"{name} did not start (exit {proc.poll()}):\n{tail}")
            time.sleep(0.2)

    def close(self) -> None:
        """SIGTERM every process group, SIGKILL what has not exited within 30 s."""
        for proc in self.procs:
            self._signal(proc, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                self._signal(proc, signal.SIGKILL)
                proc.wait(30)
        self.procs.clear()

    @staticmethod
    def _signal(proc: subprocess.Popen[bytes], sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)


def _stored_calls(health: str) -> float:
    return float(_metric(_get(f"{health}/metrics")[1], "llmpulse_events_out_total", target="calls"))


def _wait_stored(health: str, want: float, timeout_s: float = 180) -> None:
    """Wait on the sink's metrics until ``want`` calls are stored (a shortfall shows as
    ``stored`` below ``calls_per_phase`` in the output)."""
    deadline = time.monotonic() + timeout_s
    while _stored_calls(health) < want and time.monotonic() < deadline:
        time.sleep(0.2)


def _fresh(store_url: str, app: str, ended: dict[str, float]) -> list[float]:
    """Seconds from each call's end to its row's ``inserted_at`` (the sink must be stopped)."""
    from llmpulse.sinks.store import Store

    store = Store.open(store_url)
    try:
        rows = store.query("SELECT call_id, inserted_at FROM calls WHERE app = {a:String}",
                           {"a": app}).dicts()
    finally:
        store.close()
    out = []
    for row in rows:
        t_end = ended.get(row["call_id"])
        if t_end is not None:
            seen = row["inserted_at"]
            seen = seen if seen.tzinfo else seen.replace(tzinfo=UTC)
            out.append(seen.timestamp() - t_end)
    return out


def bench_pipeline(rate: int, seconds: int) -> dict[str, Any]:
    from kafka_broker import KafkaBroker, free_port
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from otel_collector import OtelCollector
    from worker_process import WorkerProcess

    import llmpulse.producers as llmpulse
    from llmpulse.cli.topics import ensure_topics
    from llmpulse.processors.otlp import call_id_for

    tmp = Path(tempfile.mkdtemp(prefix="llmpulse-otlp-bench-"))
    broker = KafkaBroker(tmp / "kafka", free_port())
    broker.start()
    prefix = "bench."
    collector = OtelCollector(tmp / "otelcol", broker.bootstrap, prefix=prefix)
    store_url = f"chdb://{tmp / 'store'}"
    group = _Group(tmp)
    try:
        ensure_topics(broker.bootstrap, prefix=prefix, partitions=2)
        collector.start()
        collector_pid = int((collector.dir / "otelcol.pid").read_text())

        def faust_ready(text: str) -> bool:
            return "[^Worker]: Ready" in text

        group.start("otlp-stage", [
            sys.executable, "-m", "llmpulse.cli.main", "otlp", "run", "--fast",
            "--bootstrap-servers", broker.bootstrap, "--prefix", prefix, "--partitions", "2",
            "--tokens", str(collector.tokens_file), "--datadir", str(tmp / "data-otlp")],
            faust_ready)
        group.start("worker", WorkerProcess(broker.bootstrap, prefix, tmp / "worker").args,
                    faust_ready)
        health = f"http://127.0.0.1:{free_port()}"
        group.start("sink", [
            sys.executable, "-m", "llmpulse.cli.main", "sink", "--bootstrap-servers",
            broker.bootstrap, "--prefix", prefix, "--clickhouse", store_url, "--group-id",
            f"{prefix}sink", "--batch-seconds", "0.25", "--log-level", "WARNING",
            "--health-address", health.removeprefix("http://")],
            lambda _text: _get(f"{health}/readyz")[0] == 200)
        total = rate * seconds

        llmpulse.init(app="fresh-sdk", bootstrap_servers=broker.bootstrap, topic_prefix=prefix,
                      spool_dir=tmp / "spool", warn_on_drop=False)

        def sdk_call(i: int) -> str:
            with llmpulse.call(prompt_id="fresh", messages=[{"role": "user", "content": f"q{i}"}]) as c:
                c.record_response(f"a{i}", input_tokens=3, output_tokens=2)
            return c.call_id

        sdk_ended, sdk_rate = _paced(rate, seconds, sdk_call)
        llmpulse.flush(30)
        _wait_stored(health, total)

        provider = TracerProvider(resource=Resource.create({"service.name": "fresh-otlp"}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(
            endpoint=f"{collector.http_endpoint}/v1/traces",
            headers={"Authorization": f"Bearer {collector.tokens['admin']}"}),
            schedule_delay_millis=100, max_export_batch_size=512))
        tracer = provider.get_tracer("bench")
        messages = json.dumps([{"role": "user", "parts": [{"type": "text", "content": "q"}]}])

        def otlp_call(i: int) -> str:
            with tracer.start_as_current_span("chat m") as span:
                span.set_attributes({"gen_ai.operation.name": "chat", "gen_ai.request.model": "m",
                                     "gen_ai.input.messages": messages,
                                     "gen_ai.usage.input_tokens": 3, "gen_ai.usage.output_tokens": 2})
                context = span.get_span_context()
            return call_id_for(f"{context.trace_id:032x}", f"{context.span_id:016x}")

        stored_sdk = _stored_calls(health)
        stage_pid = group.procs[0].pid  # the OTLP stage, started first
        cpu0, stage_cpu0 = _cpu_seconds(collector_pid), _cpu_seconds(stage_pid)
        otlp_ended, otlp_rate = _paced(rate, seconds, otlp_call)
        provider.force_flush(30_000)
        _wait_stored(health, stored_sdk + total)
        collector_cpu = _cpu_seconds(collector_pid) - cpu0
        stage_cpu = _cpu_seconds(stage_pid) - stage_cpu0
        provider.shutdown()
        llmpulse.shutdown()
        group.close()  # chDB allows one process per store: the sink lets go before we read
        sdk_fresh = _fresh(store_url, "fresh-sdk", sdk_ended)
        otlp_fresh = _fresh(store_url, "fresh-otlp", otlp_ended)
        sdk_q = _quantiles(sdk_fresh) if sdk_fresh else None
        otlp_q = _quantiles(otlp_fresh) if otlp_fresh else None
        return {
            "rate_target": rate, "seconds": seconds, "calls_per_phase": total,
            "sdk": {"rate_achieved": round(sdk_rate), "stored": len(sdk_fresh), "freshness": sdk_q},
            "otlp": {"rate_achieved": round(otlp_rate), "stored": len(otlp_fresh),
                     "freshness": otlp_q},
            "otlp_p99_over_sdk_p99": round(otlp_q["p99_s"] / sdk_q["p99_s"], 2)
            if sdk_q and otlp_q else None,
            "goal_otlp_p99_under_5s": bool(otlp_q) and otlp_q["p99_s"] < 5.0,  # type: ignore[index]
            "collector_cpu_s": round(collector_cpu, 2),
            "collector_cpu_s_per_1000_spans": round(collector_cpu / total * 1000, 3),
            "otlp_stage_cpu_s": round(stage_cpu, 2),
            "otlp_stage_cpu_s_per_1000_spans": round(stage_cpu / total * 1000, 3),
        }
    finally:
        group.close()
        try:
            collector.stop()
        finally:
            broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spans", type=int, default=20_000)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--no-pipeline", action="store_true")
    parser.add_argument("--no-freeze", action="store_true",
                        help="leave the start-up heap in the cycle collector's walk (as before "
                             "the services froze it), to compare")
    args = parser.parse_args()
    out: dict[str, Any] = {"mapper": bench_mapper(args.spans, freeze=not args.no_freeze)}
    # The same measure on varied spans (``_realistic_attributes``), in the same run.
    out["mapper_realistic"] = bench_mapper(args.spans, freeze=not args.no_freeze, realistic=True)
    if not args.no_pipeline:
        out["freshness"] = bench_pipeline(args.rate, args.seconds)
    out["note"] = ("one process per stage; the broker, Collector, stage, worker, sink and this "
                   "process share the machine's cores")
    out["at"] = datetime.now(UTC).isoformat(timespec="seconds")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
