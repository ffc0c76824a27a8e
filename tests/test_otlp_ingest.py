"""OpenTelemetry in, end to end with real parts: an instrumented app -> the real OpenTelemetry
Collector (built from its Go modules) -> Kafka -> the OTLP stage -> the worker -> the sink ->
ClickHouse (chDB). Also the Collector's bearer-token auth and the token -> app binding."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from chat_server import ChatServer
from kafka_broker import free_port
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.instrumentation.openai import OpenAIInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from otel_collector import (
    OtelCollector,
    end_offsets,
    otlp_json,
    post,
    records_since,
    trace_ids,
)
from sink_thread import running_sink
from store_rows import wait_rows
from worker_process import WorkerProcess

from llmpulse.cli.topics import ensure_topics
from llmpulse.schemas.topics import OTLP_SPANS
from llmpulse.sinks.store import Store

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


class OtlpStage(WorkerProcess):
    """``llmpulse otlp run --fast`` as a real process (the worker helper's start/stop)."""

    def __init__(self, collector: OtelCollector, workdir: Path, partitions: int) -> None:
        super().__init__(collector.bootstrap, collector.prefix, workdir, role="otlp")
        self.health = f"http://127.0.0.1:{free_port()}"
        self.args = [self.args[0], "-m", "llmpulse.cli.main", "otlp", "run", "--fast",
                     "--bootstrap-servers", collector.bootstrap, "--prefix", collector.prefix,
                     "--partitions", str(partitions), "--tokens", str(collector.tokens_file),
                     "--datadir", str(workdir / "data-otlp"),
                     "--health-address", self.health.removeprefix("http://")]


@pytest.fixture(scope="module")
def stage(otel_collector: OtelCollector, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[OtlpStage]:
    """The OTLP stage (``llmpulse otlp run``) on the Collector's topic prefix."""
    ensure_topics(otel_collector.bootstrap, prefix=otel_collector.prefix, partitions=2)
    with OtlpStage(otel_collector, tmp_path_factory.mktemp("otlp-stage"), partitions=2) as running:
        yield running


@pytest.fixture(scope="module")
def pipeline(otel_collector: OtelCollector, stage: OtlpStage, chdb_dir: Path,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """A worker and a sink behind the OTLP stage, on the Collector's topic prefix."""
    work = tmp_path_factory.mktemp("otlp-pipeline")
    store = Store.open(f"chdb://{chdb_dir}?database=otlp_{uuid.uuid4().hex[:8]}")
    store.migrate()
    try:
        with running_sink(otel_collector.bootstrap, otel_collector.prefix, store), \
                WorkerProcess(otel_collector.bootstrap, otel_collector.prefix, work, partitions=2):
            yield store
    finally:
        store.close()


class _Exporters(SpanExporter):
    """One instrumented TracerProvider for the module (OpenLLMetry instruments a client
    library once per process); each test points it at the exporter it is about."""

    def __init__(self) -> None:
        self.target: SpanExporter | None = None

    def export(self, spans: Any) -> SpanExportResult:
        assert self.target is not None
        return self.target.export(spans)

    def shutdown(self) -> None:
        pass


@pytest.fixture(scope="module")
def instrumented() -> Iterator[tuple[TracerProvider, _Exporters]]:
    exporters = _Exporters()
    provider = TracerProvider(resource=Resource.create(
        {"service.name": "support-bot", "deployment.environment.name": "e2e"}))
    provider.add_span_processor(BatchSpanProcessor(exporters, schedule_delay_millis=100))
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    yield provider, exporters
    instrumentor.uninstrument()
    provider.shutdown()


CALLS_OF_APP = "SELECT count() FROM calls WHERE app = {app:String}"


def test_openllmetry_over_otlp_http_lands_scored_and_guarded(
        otel_collector: OtelCollector, pipeline: Store,
        instrumented: tuple[TracerProvider, _Exporters]) -> None:
    provider, exporters = instrumented
    exporters.target = HttpExporter(endpoint=f"{otel_collector.http_endpoint}/v1/traces",
                                    headers={"Authorization": f"Bearer {otel_collector.tokens['support']}"})
    questions = [f"Where is order {n}?" for n in range(4)] + ["Mail me at jane.doe@example.com"]
    with ChatServer() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)
        for question in questions:
            client.chat.completions.create(model="gpt-4o-mini", temperature=0.1,
                                           messages=[{"role": "user", "content": question}])
    assert provider.force_flush(30_000)
    assert wait_rows(pipeline, CALLS_OF_APP + " AND environment = 'e2e'", len(questions), 120,
                     {"app": "support-bot"}) == len(questions)
    rows = pipeline.query(
        "SELECT call_id, model, provider, input_tokens, output_tokens, latency_ms, "
        "prompt_messages, response_text, finish_reason, complete, quality, scorer_set_version, "
        "guardrail_rules, guardrail_flagged, trace_id FROM calls WHERE app = 'support-bot' "
        "AND environment = 'e2e' ORDER BY occurred_at", {}).dicts()
    stored = [json.loads(r["prompt_messages"])[-1]["content"] for r in rows]
    assert stored[:4] == questions[:4]
    # The guardrails acted: the e-mail address is redacted in what is stored.
    assert stored[4] == "Mail me at [EMAIL]"
    for row, question in zip(rows[:4], questions[:4], strict=True):
        assert row["response_text"] == f"Echo: {question}"
    for row in rows:
        assert (row["model"], row["provider"], row["finish_reason"]) == ("gpt-4o-mini", "openai", "stop")
        assert row["input_tokens"] > 0 and row["output_tokens"] > 0 and row["latency_ms"] > 0
        assert row["complete"] and row["scorer_set_version"]
        assert row["call_id"] == f"otel-{row['trace_id']}-{row['call_id'][-16:]}"
    assert rows[0]["quality"] is not None
    assert rows[-1]["guardrail_flagged"] and rows[-1]["guardrail_rules"], rows[-1]
    # Verdicts travel on their own topic (llm.alerts) and reach the store in their own batch,
    # possibly after the call's row: wait for them as for the calls.
    assert wait_rows(pipeline, "SELECT count() FROM guardrail_verdicts WHERE call_id = {c:String}",
                     1, 120, {"c": rows[-1]["call_id"]}) >= 1


def test_grpc_exporter_and_streaming(otel_collector: OtelCollector, pipeline: Store,
                                     instrumented: tuple[TracerProvider, _Exporters]) -> None:
    provider, exporters = instrumented
    exporters.target = GrpcExporter(
        endpoint=otel_collector.grpc_endpoint, insecure=True,
        headers=(("authorization", f"Bearer {otel_collector.tokens['support']}"),))
    with ChatServer() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)
        for chunk in client.chat.completions.create(
                model="gpt-4o-mini", stream=True, stream_options={"include_usage": True},
                messages=[{"role": "user", "content": "Stream the opening hours"}]):
            del chunk
    assert provider.force_flush(30_000)
    streamed = "SELECT count() FROM calls WHERE app = {app:String} AND streamed"
    assert wait_rows(pipeline, streamed, 1, 120, {"app": "support-bot"}) == 1
    row = pipeline.query("SELECT response_text, streamed, time_to_first_token_ms, latency_ms "
                         "FROM calls WHERE app = 'support-bot' AND streamed", {}).dicts()[0]
    assert row["response_text"] == "Echo: Stream the opening hours"
    assert row["streamed"] and 0 < row["time_to_first_token_ms"] <= row["latency_ms"]


CURRENT = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
           "gen_ai.request.model": "claude-x", "gen_ai.prompt.name": "refunds",
           "gen_ai.prompt.version": "v7", "gen_ai.conversation.id": "conv-1",
           "gen_ai.input.messages": [{"role": "user", "parts": [
               {"type": "text", "content": "Can I return shoes?"}]}],
           "gen_ai.output.messages": [{"role": "assistant", "finish_reason": "stop", "parts": [
               {"type": "text", "content": "Yes, within 30 days."}]}],
           "gen_ai.usage.input_tokens": 11, "gen_ai.usage.output_tokens": 6,
           "gen_ai.usage.cache_read.input_tokens": 4}


def test_hand_made_current_convention_span_via_otlp_json(otel_collector: OtelCollector,
                                                         pipeline: Store) -> None:
    trace_id = uuid.uuid4().hex
    body = otlp_json("support-bot", trace_id, CURRENT)
    assert post(otel_collector, body, otel_collector.tokens["support"]) == 200
    sql = "SELECT count() FROM calls WHERE trace_id = {t:String}"
    assert wait_rows(pipeline, sql, 1, 120, {"t": trace_id}) == 1
    row = pipeline.query("SELECT prompt_id, prompt_version, session_id, provider, "
                         "cached_input_tokens, response_text FROM calls WHERE trace_id = {t:String}",
                         {"t": trace_id}).dicts()[0]
    assert row == {"prompt_id": "refunds", "prompt_version": "v7", "session_id": "conv-1",
                   "provider": "anthropic", "cached_input_tokens": 4,
                   "response_text": "Yes, within 30 days."}


TYPESCRIPT_APP = Path(__file__).resolve().parent.parent / "examples" / "otel-typescript"


def test_a_typescript_app_with_the_otlp_proto_exporter(otel_collector: OtelCollector,
                                                       pipeline: Store) -> None:
    """The TypeScript example of docs/SEND_OPENTELEMETRY.md, compiled with tsc against the
    locked @opentelemetry packages and run on Node: its span is stored as a call."""
    assert (TYPESCRIPT_APP / "node_modules").is_dir(), \
        "scripts/setup.sh installs the example's npm packages (npm ci)"
    subprocess.run(["npm", "run", "--silent", "build"], cwd=TYPESCRIPT_APP, check=True,
                   capture_output=True, timeout=300)
    env = {**os.environ, "LLMPULSE_OTLP_URL": f"{otel_collector.http_endpoint}/v1/traces",
           "LLMPULSE_TOKEN": otel_collector.tokens["support"]}
    ran = subprocess.run(["node", "dist/app.js"], cwd=TYPESCRIPT_APP, env=env, check=True,
                         capture_output=True, text=True, timeout=120)
    trace_id = ran.stdout.strip().splitlines()[-1]
    assert len(trace_id) == 32, ran.stdout
    sql = "SELECT count() FROM calls WHERE trace_id = {t:String}"
    assert wait_rows(pipeline, sql, 1, 120, {"t": trace_id}) == 1, ran.stderr
    row = pipeline.query("SELECT app, prompt_id, prompt_version, model, input_tokens, "
                         "output_tokens, response_text FROM calls WHERE trace_id = {t:String}",
                         {"t": trace_id}).dicts()[0]
    assert row == {"app": "support-bot", "prompt_id": "order-status", "prompt_version": "ts1",
                   "model": "gpt-4o-mini", "input_tokens": 3, "output_tokens": 2,
                   "response_text": "Hello!"}


OPENLIT_APP = Path(__file__).resolve().parent.parent / "examples" / "openlit"
OPENLIT_PYTHON = OPENLIT_APP.parent.parent / ".venv-openlit" / "bin" / "python"


def test_an_openlit_instrumented_app_over_otlp_http(otel_collector: OtelCollector,
                                                    pipeline: Store) -> None:
    """OpenLIT's own instrumentation of the real openai client (in an environment of its
    own: OpenLIT's releases need openai<3), exporting OTLP/HTTP to the Collector."""
    assert OPENLIT_PYTHON.exists(), "scripts/setup.sh makes .venv-openlit"
    marker = uuid.uuid4().hex[:8]
    questions = [f"Where is order {marker}-{n}?" for n in range(3)]
    with ChatServer() as server:
        ran = subprocess.run([str(OPENLIT_PYTHON), str(OPENLIT_APP / "app.py"),
                              otel_collector.http_endpoint, otel_collector.tokens["support"],
                              server.base_url, *questions],
                             capture_output=True, text=True, timeout=180)
    assert ran.returncode == 0, ran.stderr[-3000:]
    where = " FROM calls WHERE app = 'support-bot' AND environment = 'openlit'"
    assert wait_rows(pipeline, "SELECT count()" + where + " AND position(prompt_messages, {m:String}) > 0",
                     len(questions), 120, {"m": marker}) == len(questions), ran.stderr[-3000:]
    rows = pipeline.query("SELECT model, provider, input_tokens, output_tokens, latency_ms, "
                          "prompt_messages, response_text, complete" + where +
                          " AND position(prompt_messages, {m:String}) > 0 ORDER BY occurred_at",
                          {"m": marker}).dicts()
    assert [json.loads(r["prompt_messages"])[-1]["content"] for r in rows] == questions
    for row, question in zip(rows, questions, strict=True):
        assert row["response_text"] == f"Echo: {question}"
        assert (row["model"], row["provider"]) == ("gpt-4o-mini", "openai"), row
        assert row["input_tokens"] > 0 and row["output_tokens"] > 0 and row["latency_ms"] > 0
        assert row["complete"]


def _health(stage: OtlpStage, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"{stage.health}{path}", timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def _sample(text: str, name: str, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def test_the_stage_serves_health_readiness_and_its_counts(
        otel_collector: OtelCollector, stage: OtlpStage, pipeline: Store) -> None:
    assert _health(stage, "/healthz") == (200, "ok\n")
    deadline = time.monotonic() + 60
    while _health(stage, "/readyz")[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
    code, reason = _health(stage, "/readyz")
    assert code == 200 and "partitions assigned" in reason, reason
    before = _sample(_health(stage, "/metrics")[1], "llmpulse_events_out_total", stage="otlp",
                     target="calls")
    trace_id = uuid.uuid4().hex
    assert post(otel_collector, otlp_json("support-bot", trace_id, CURRENT),
                otel_collector.tokens["support"]) == 200
    assert wait_rows(pipeline, "SELECT count() FROM calls WHERE trace_id = {t:String}", 1, 120,
                     {"t": trace_id}) == 1
    # The metrics are refreshed by a timer: wait until they count the call.
    deadline = time.monotonic() + 60
    text = ""
    while time.monotonic() < deadline:
        text = _health(stage, "/metrics")[1]
        if _sample(text, "llmpulse_events_out_total", stage="otlp", target="calls") > before:
            break
        time.sleep(0.5)
    assert _sample(text, "llmpulse_events_out_total", stage="otlp", target="calls") >= before + 1
    assert _sample(text, "llmpulse_records_in_total", stage="otlp") >= 1
    assert _sample(text, "llmpulse_events_in_total", stage="otlp") >= 1
    lag = f'llmpulse_consumer_lag{{partition="0",stage="otlp",topic="{otel_collector.prefix}{OTLP_SPANS}"}}'
    assert lag in text  # its lag, read from the broker, per partition of llm.otlp.spans


def test_no_token_or_a_wrong_one_is_401_and_nothing_reaches_kafka(
        otel_collector: OtelCollector, pipeline: Store) -> None:
    topic = otel_collector.prefix + OTLP_SPANS
    before = end_offsets(otel_collector.bootstrap, topic)
    refused = uuid.uuid4().hex
    assert post(otel_collector, otlp_json("support-bot", refused, CURRENT), None) == 401
    assert post(otel_collector, otlp_json("support-bot", refused, CURRENT), "not-a-token") == 401
    accepted = uuid.uuid4().hex
    assert post(otel_collector, otlp_json("support-bot", accepted, CURRENT),
                otel_collector.tokens["admin"]) == 200
    # Read everything written since: the accepted request arrives, the refused ones never.
    seen = records_since(otel_collector.bootstrap, topic, before, bytes.fromhex(accepted))
    assert accepted in trace_ids(seen)
    assert refused not in trace_ids(seen)
    for value in seen:  # the token never reaches Kafka, only its hash
        assert otel_collector.tokens["admin"].encode() not in value


def test_a_span_claiming_another_app_is_dead_lettered(otel_collector: OtelCollector,
                                                      pipeline: Store) -> None:
    trace_id = uuid.uuid4().hex
    assert post(otel_collector, otlp_json("billing", trace_id, CURRENT),
                otel_collector.tokens["support"]) == 200
    sql = ("SELECT count() FROM dead_letters WHERE reason = 'app_not_allowed' AND stage = 'otlp' "
           "AND position(payload, unhex({t:String})) > 0")
    assert wait_rows(pipeline, sql, 1, 120, {"t": trace_id}) == 1
    assert int(pipeline.query(CALLS_OF_APP, {"app": "billing"}).scalar()) == 0
    # The admin token may write any app.
    allowed = uuid.uuid4().hex
    assert post(otel_collector, otlp_json("billing", allowed, CURRENT),
                otel_collector.tokens["admin"]) == 200
    assert wait_rows(pipeline, CALLS_OF_APP, 1, 120, {"app": "billing"}) == 1


@pytest.mark.skipif(os.environ.get("LLMPULSE_SKIP_OUTAGE") == "1", reason="asked to skip")
def test_kafka_outage_loses_nothing_within_the_queue_bound(
        otel_collector: OtelCollector, pipeline: Store, kafka_broker: Any) -> None:
    traces = [uuid.uuid4().hex for _ in range(20)]
    kafka_broker.stop()
    try:
        for trace_id in traces:
            assert post(otel_collector, otlp_json("outage-bot", trace_id, CURRENT),
                        otel_collector.tokens["admin"]) == 200
        # The Collector holds them in its persistent queue while Kafka is away.
        deadline = time.monotonic() + 30
        queued = 0.0
        while time.monotonic() < deadline and queued < 1:
            queued = otel_collector.metric("otelcol_exporter_queue_size")
            time.sleep(0.2)
        assert queued >= 1
    finally:
        kafka_broker.start()
    assert wait_rows(pipeline, CALLS_OF_APP, len(traces), 180, {"app": "outage-bot"}) == len(traces)
