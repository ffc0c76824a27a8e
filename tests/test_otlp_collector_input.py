"""The real OpenTelemetry Collector (built from its Go modules, deploy/otelcol.yaml) at the
door: which credentials it lets in with a tokens file the OTLP stage accepts, and what it
answers to broken JSON, garbage protobuf, a body over its limit and gRPC without a token.
Nothing it refuses reaches Kafka."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator

import grpc
import pytest
from kafka_broker import KafkaBroker
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from otel_collector import OtelCollector, end_offsets, otlp_json, post, records_since, trace_ids
from otlp_spans import traces
from waiting import wait_until

from llmpulse.cli.topics import ensure_topics
from llmpulse.processors.otlp import TokenBindings, TokensFileError
from llmpulse.schemas.topics import OTLP_SPANS

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SPAN = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m",
        "gen_ai.usage.input_tokens": 3, "gen_ai.usage.output_tokens": 2}
EMPTY = b'{"resourceSpans": []}'
LIMIT = 8 * 1024 * 1024  # deploy/otelcol.yaml: max_request_body_size


@pytest.fixture(scope="module")
def strict_collector(kafka_broker: KafkaBroker, tmp_path_factory: pytest.TempPathFactory
                     ) -> Iterator[OtelCollector]:
    """A Collector of its own, on a tokens file the stage accepts, with every form the stage
    lets through: blank lines, lines of spaces and tabs, tabs between fields, CRLF, '*'."""
    collector = OtelCollector(tmp_path_factory.mktemp("otelcol-strict"), kafka_broker.bootstrap,
                              prefix="strict.")
    collector.tokens = {"support": secrets.token_urlsafe(24), "admin": secrets.token_urlsafe(24)}
    collector.tokens_file.write_text(
        f"\n  \n{collector.tokens['support']}\tsupport-bot, faq-bot \r\n\t\n"
        f"{collector.tokens['admin']} *\r\n\n", encoding="utf-8")
    assert len(TokenBindings.load(collector.tokens_file)) == 2
    collector.start()
    try:
        yield collector
    finally:
        collector.stop()


NOT_TOKENS = ["Bearer #", "Bearer //", "Bearer ", "Bearer", "", "#", "Bearer \t",
              "Bearer support-bot", "Bearer *", "Bearer faq-bot"]


def test_a_tokens_file_the_stage_accepts_lets_in_only_its_tokens(
        strict_collector: OtelCollector) -> None:
    for header in NOT_TOKENS:
        assert post(strict_collector, EMPTY, None, authorization=header) == 401, header
    for token in strict_collector.tokens.values():
        assert post(strict_collector, EMPTY, token) == 200


def test_the_comment_line_the_stage_refuses_is_a_credential_to_the_collector(
        strict_collector: OtelCollector) -> None:
    """Why the stage refuses comment lines: with the old documented file (a '# <token> <app>'
    line first), the real Collector lets 'Bearer #' in. If a later bearertokenauth skips such
    lines, this fails, and the refusal may be relaxed."""
    file = strict_collector.tokens_file
    kept = file.read_text(encoding="utf-8")
    commented = f"# <token> <app>[,<app>...]     (\"*\": any app)\n{kept}"
    with pytest.raises(TokensFileError, match="line 1:"):
        TokenBindings.parse(commented)
    try:
        file.write_text(commented, encoding="utf-8")  # the Collector re-reads it on change
        wait_until(lambda: post(strict_collector, EMPTY, None, authorization="Bearer #") == 200,
                   what="the Collector re-reading the commented tokens file")
    finally:
        file.write_text(kept, encoding="utf-8")
    wait_until(lambda: post(strict_collector, EMPTY, None, authorization="Bearer #") == 401,
               what="the Collector re-reading the restored tokens file")


@pytest.fixture(scope="module")
def spans_topic(otel_collector: OtelCollector) -> str:
    ensure_topics(otel_collector.bootstrap, prefix=otel_collector.prefix, partitions=2)
    return f"{otel_collector.prefix}{OTLP_SPANS}"


def _none_refused_reaches_kafka(collector: OtelCollector, topic: str, before: dict[int, int],
                                refused: set[str]) -> None:
    """Send one good request last and read the topic until it arrives: none of the refused
    requests' trace ids came before it (the topic is the session's, so other tests' spans may
    be there too: only the refused ids are looked for)."""
    marker = uuid.uuid4().hex
    assert post(collector, otlp_json("input-probe", marker, SPAN), collector.tokens["support"]) == 200
    seen = trace_ids(records_since(collector.bootstrap, topic, before, bytes.fromhex(marker)))
    assert marker in seen
    assert not refused & seen


def test_broken_json_garbage_protobuf_and_an_oversized_body_are_400(
        otel_collector: OtelCollector, spans_topic: str) -> None:
    token = otel_collector.tokens["support"]
    before = end_offsets(otel_collector.bootstrap, spans_topic)
    cut, big = uuid.uuid4().hex, uuid.uuid4().hex
    valid = otlp_json("input-probe", cut, SPAN)
    assert post(otel_collector, valid[: len(valid) // 2], token) == 400
    assert post(otel_collector, b'{"resourceSpans": [{"scopeSpans": 7}]}', token) == 400
    assert post(otel_collector, b"\xff" * 64, token, content_type="application/x-protobuf") == 400
    assert post(otel_collector, b"not OTLP", token, content_type="application/x-protobuf") == 400
    oversized = otlp_json("input-probe", big, dict(SPAN, pad="x" * LIMIT))
    assert len(oversized) > LIMIT
    # What the Collector v0.165 answers (measured here, as by the audit): 400, not 413.
    assert post(otel_collector, oversized, token) == 400
    _none_refused_reaches_kafka(otel_collector, spans_topic, before, {cut, big})


def test_grpc_without_a_token_or_with_a_wrong_one_is_unauthenticated(
        otel_collector: OtelCollector, spans_topic: str) -> None:
    before = end_offsets(otel_collector.bootstrap, spans_topic)
    trace_id = uuid.uuid4().bytes
    request = ExportTraceServiceRequest.FromString(traces(
        {"attrs": SPAN, "trace_id": trace_id}, resource={"service.name": "input-probe"},
    ).SerializeToString())
    with grpc.insecure_channel(otel_collector.grpc_endpoint) as channel:
        stub = TraceServiceStub(channel)  # type: ignore[no-untyped-call]
        for metadata in [(), (("authorization", "Bearer not-a-token"),),
                         (("authorization", "Bearer #"),)]:
            with pytest.raises(grpc.RpcError) as refused:
                stub.Export(request, metadata=metadata, timeout=30)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED, metadata
        # The same request with the token goes through, once: the refusals were the token's.
        token = otel_collector.tokens["support"]
        stub.Export(request, metadata=(("authorization", f"Bearer {token}"),), timeout=30)
    seen = records_since(otel_collector.bootstrap, spans_topic, before, trace_id)
    assert trace_id.hex() in trace_ids(seen)  # the session's topic: other tests' spans too
    assert sum(record.count(trace_id) for record in seen) == 1  # the refusals' never came


def test_the_sending_queue_has_the_documented_bound(otel_collector: OtelCollector) -> None:
    """deploy/otelcol.yaml's queue bound is what the running Collector applies: 1.5 GiB of
    queued OTLP protobuf (sizer: bytes), as docs/SEND_OPENTELEMETRY.md says."""
    assert otel_collector.metric("otelcol_exporter_queue_capacity") == 1.5 * 2**30
