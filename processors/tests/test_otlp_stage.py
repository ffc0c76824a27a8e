"""The OTLP stage's batching, without Kafka: a micro-batch of Collector records (one trace
each, as the Kafka exporter partitions by trace id) becomes one batch record per output
partition, prompts before responses, each record's dead letters under its own key."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from llmpulse.processors.otlp import TOKEN_HASH_ATTRIBUTE, OtlpMapper, TokensFile, header_sha256
from llmpulse.processors.otlp.stage import OtlpStage
from llmpulse.processors.worker import WorkerSettings
from llmpulse.schemas import DeadLetter, PromptEvent, ResponseEvent, decode_record, partition_for

T0 = (time.time_ns() // 10**9 - 60) * 10**9


def _record(n: int, *, app: str = "support-bot", genai: bool = True,
            token: str | None = None) -> bytes:
    """A record as the Collector writes it: one trace, one span (``token``: the hash of the
    bearer token that sent it, as the Collector's resource processor writes it)."""
    data = TracesData()
    rs = data.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", app
    if token is not None:
        kv = rs.resource.attributes.add()
        kv.key, kv.value.string_value = TOKEN_HASH_ATTRIBUTE, header_sha256(token)
    span = rs.scope_spans.add().spans.add()
    span.trace_id, span.span_id = n.to_bytes(16, "big"), n.to_bytes(8, "big")
    span.name = "chat m" if genai else "GET /orders"
    span.start_time_unix_nano, span.end_time_unix_nano = T0, T0 + 10**9
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m",
             "gen_ai.output.messages": '[{"role": "assistant", "parts": '
                                       f'[{{"type": "text", "content": "answer {n}"}}]}}]'}
    for key, value in (attrs if genai else {"http.request.method": "GET"}).items():
        kv = span.attributes.add()
        kv.key, kv.value.string_value = key, value
    return data.SerializeToString()


@dataclass
class _Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None


@dataclass
class _Event:
    """What the stage reads of a Faust event."""

    message: _Message
    value: bytes


class _Topic:
    def __init__(self, name: str, sent: list[tuple[str, bytes, bytes, int | None]]) -> None:
        self.name, self.sent = name, sent

    async def send(self, *, key: bytes, value: bytes, partition: int | None = None) -> None:
        self.sent.append((self.name, key, value, partition))


def _stage(partitions: int = 3, tokens: TokensFile | None = None
           ) -> tuple[OtlpStage, list[tuple[str, bytes, bytes, int | None]]]:
    sent: list[tuple[str, bytes, bytes, int | None]] = []
    settings = WorkerSettings("127.0.0.1:9", partitions=partitions)
    topics = {name: _Topic(name, sent) for name in ("prompts", "responses", "spans", "dlq")}
    return OtlpStage(settings, OtlpMapper(), topics, tokens=tokens), sent


def _events(values: list[bytes]) -> list[Any]:
    return [_Event(_Message("llm.otlp.spans", n % 2, n, f"k{n}".encode()), value)
            for n, value in enumerate(values)]


def test_a_batch_of_one_span_records_is_one_send_per_output_partition() -> None:
    stage, sent = _stage(partitions=3)
    asyncio.run(stage.map_batch(_events([_record(n) for n in range(1, 61)])))
    topics = [name for name, *_ in sent]
    # Prompts first (a response never reaches the join before its prompt), then responses.
    assert topics == sorted(topics, key=["prompts", "responses"].index)
    for name, kind in (("prompts", PromptEvent), ("responses", ResponseEvent)):
        records = [(key, value, partition) for topic, key, value, partition in sent if topic == name]
        assert len(records) == 3  # 60 calls over 3 partitions: one record per partition
        call_ids = []
        for key, value, partition in records:
            events = decode_record(value).events
            assert all(isinstance(e, kind) for e in events)
            assert {partition_for(e.call_id, 3) for e in events} == {partition}
            assert key == events[0].call_id.encode()
            call_ids += [e.call_id for e in events]
        assert len(set(call_ids)) == 60
    assert stage.counts["records"] == 60
    assert stage.counts["calls"] == 60


def test_dead_letters_keep_their_records_key_and_skipped_spans_are_counted() -> None:
    stage, sent = _stage()
    values = [_record(1), b"\xff not protobuf", _record(3, genai=False), _record(4)]
    asyncio.run(stage.map_batch(_events(values)))
    letters = [(key, decode_record(value).events[0]) for topic, key, value, _ in sent
               if topic == "dlq"]
    assert len(letters) == 1
    key, letter = letters[0]
    assert isinstance(letter, DeadLetter)
    assert (key, letter.reason, letter.source_offset) == (b"k1", "malformed_otlp", 1)
    calls = sum(len(decode_record(value).events) for topic, _, value, _ in sent
                if topic == "prompts")
    assert calls == 2
    assert stage.counts["skipped"] == 1
    registry = stage.metrics.registry
    assert registry.get_sample_value("llmpulse_spans_skipped_total", {"stage": "otlp"}) == 1
    assert registry.get_sample_value("llmpulse_batch_events_sum", {"stage": "otlp"}) == 2


def test_an_empty_batch_sends_nothing() -> None:
    stage, sent = _stage()
    asyncio.run(stage.map_batch([]))
    assert sent == []


def test_the_stage_follows_the_tokens_file_while_it_runs(tmp_path: Path) -> None:
    """A comment line added by hand makes "Bearer #" a credential to the Collector at once:
    the stage dead-letters what that "token" sends, keeps the token in service, and takes a
    fixed file's new bindings."""
    path = tmp_path / "otel-tokens"
    path.write_text("tok-a support-bot\n")
    clock = [0.0]
    stage, sent = _stage(tokens=TokensFile(path, clock=lambda: clock[0]))

    def outcome(*values: bytes) -> list[tuple[str, str]]:
        sent.clear()
        asyncio.run(stage.map_batch(_events(list(values))))
        return [(topic, event.reason if isinstance(event, DeadLetter) else event.app)
                for topic, _, value, _ in sent if topic in ("prompts", "dlq")
                for event in decode_record(value).events]

    assert outcome(_record(1, token="tok-a"), _record(2, token="#")) == [
        ("dlq", "app_not_allowed"), ("prompts", "support-bot")]
    path.write_text("# tok-a: the support team\ntok-a support-bot\n")
    clock[0] += 1.0
    assert outcome(_record(3, token="tok-a"), _record(4, token="#")) == [
        ("dlq", "app_not_allowed"), ("prompts", "support-bot")]
    letter = next(decode_record(v).events[0] for t, _, v, _ in sent if t == "dlq")
    assert "tokens file is invalid" in letter.detail  # type: ignore[union-attr]
    path.write_text("tok-a billing\ntok-b support-bot\n")
    clock[0] += 1.0  # what the new file adds holds at once, what it takes away at the next look
    assert outcome(_record(5, token="tok-a"), _record(6, token="tok-b")) == [
        ("prompts", "support-bot"), ("prompts", "support-bot")]
    clock[0] += 1.0
    assert outcome(_record(7, token="tok-a"), _record(8, token="tok-b")) == [
        ("dlq", "app_not_allowed"), ("prompts", "support-bot")]
    # A token the Collector took a moment ago: the refused span gets one more look first.
    path.write_text("tok-a billing\ntok-b support-bot\ntok-c support-bot\n")
    spans_before = stage.mapper.counts["spans"]
    clock[0] += 0.1  # (record 8's refusal had the last forced look; at most ten a second)
    assert outcome(_record(9, token="tok-c")) == [("prompts", "support-bot")]
    assert stage.mapper.counts["spans"] == spans_before + 1  # mapped twice, counted once
    assert stage.mapper.counts["dlq:app_not_allowed"] == 3


def test_batch_records_reuse_the_last_partitions_only_for_the_same_keys_and_count() -> None:
    """``records_by_partition`` keeps the last keys' partitions (a record's answers follow
    its prompts, same call ids): every event lands where ``partition_for`` puts its key,
    whether the keys, their order or the partition count changed or not."""
    from llmpulse.processors.otlp.stage import records_by_partition

    first = OtlpMapper().map_record(_record_of(range(1, 41)))
    second = OtlpMapper().map_record(_record_of(range(41, 81)))
    for events, partitions in ((first.prompts, 3), (first.responses, 3), (second.prompts, 3),
                               (second.prompts, 5), (second.responses[::-1], 5),
                               (second.responses, 5)):
        placed = 0
        for partition, key, value in records_by_partition(events, partitions):
            batch = decode_record(value).events
            assert {partition_for(e.call_id, partitions) for e in batch} == {partition}
            assert key == batch[0].call_id.encode()
            placed += len(batch)
        assert placed == len(events) == 40


def _record_of(spans: range) -> bytes:
    """One record holding the spans ``_record`` makes for each of ``spans``."""
    data = TracesData()
    for n in spans:
        data.MergeFromString(_record(n))
    return data.SerializeToString()
