"""What the fixture recorders share: an in-memory OpenTelemetry SDK pipeline, the three
chat calls both instrumentations are recorded making, and the spans written as the
protobuf an OTLP exporter sends (the OpenTelemetry SDK's own encoder: an
``ExportTraceServiceRequest``, the same bytes as the ``TracesData`` the Collector writes to
Kafka). Imported by ``record.py`` and ``record_openlit.py`` (each run as a script, from this
folder).

Example:
    provider, exporter = in_memory_provider()
    ...  # instrument, call
    write_spans(exporter, "openllmetry_chat.binpb")
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import openai
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

HERE = Path(__file__).resolve().parent


def in_memory_provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    """A TracerProvider of app ``support-bot`` in ``staging`` whose finished spans stay in
    the returned exporter."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({
        "service.name": "support-bot", "deployment.environment.name": "staging"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def three_calls(client: openai.OpenAI,
                first_call: contextlib.AbstractContextManager[object] | None = None) -> None:
    """A chat call with a system message and request parameters (inside ``first_call``,
    e.g. a non-GenAI parent span), a streamed call with usage, and a failed call (the chat
    server's HTTP 500)."""
    with first_call or contextlib.nullcontext():
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


def write_spans(exporter: InMemorySpanExporter, name: str) -> None:
    """The exporter's finished spans to ``name`` in this folder (then cleared)."""
    spans = exporter.get_finished_spans()
    out = HERE / name
    out.write_bytes(encode_spans(spans).SerializeToString())
    exporter.clear()
    print(f"{out}: {len(spans)} spans ({', '.join(s.name for s in spans)})")
