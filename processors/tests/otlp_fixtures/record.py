"""Re-record the OTLP fixtures of the mapper tests from real instrumentation.

The real ``openai`` client, instrumented by OpenLLMetry's
``opentelemetry-instrumentation-openai``, calls the local chat server
(``tests/chat_server.py``); the finished spans are encoded by the OpenTelemetry SDK's own
OTLP encoder into the protobuf an OTLP exporter sends (an ``ExportTraceServiceRequest``,
the same bytes as the ``TracesData`` the Collector writes to Kafka).

    uv run python processors/tests/otlp_fixtures/record.py
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2] / "tests"))

import openai  # noqa: E402
from chat_server import ChatServer  # noqa: E402
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans  # noqa: E402
from opentelemetry.instrumentation.openai import OpenAIInstrumentor  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402


def main() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({
        "service.name": "support-bot", "deployment.environment.name": "staging"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    tracer = provider.get_tracer("fixture-app")
    with ChatServer() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)
        with tracer.start_as_current_span("POST /ask"):  # a non-GenAI parent span
            client.chat.completions.create(
                model="gpt-4o-mini", temperature=0.2, max_tokens=64,
                messages=[{"role": "system", "content": "You are terse."},
                          {"role": "user", "content": "Where is my order?"}])
        stream = client.chat.completions.create(
            model="gpt-4o-mini", stream=True, stream_options={"include_usage": True},
            messages=[{"role": "user", "content": "Stream a greeting"}])
        for _ in stream:
            pass
        with contextlib.suppress(openai.InternalServerError):
            client.chat.completions.create(model="gpt-4o-mini",
                                           messages=[{"role": "user", "content": "FAIL"}])
    provider.shutdown()
    request = encode_spans(exporter.get_finished_spans())
    out = HERE / "openllmetry_chat.binpb"
    out.write_bytes(request.SerializeToString())
    print(f"{out}: {len(exporter.get_finished_spans())} spans")


if __name__ == "__main__":
    main()
