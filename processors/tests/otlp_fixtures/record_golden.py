"""Records the OTLP mapper's golden corpus and what the mapper makes of it
(``test_otlp_golden.py``). Run from the repository's root:
``uv run python processors/tests/otlp_fixtures/record_golden.py [--outcomes-only]``.

The inputs are written once (``--outcomes-only`` keeps them and re-records the outcomes,
for a change of behaviour the commit explains): the recorded fixtures; the benchmark's
chat spans (``benchmarks/otlp_ingest.py``); the mapper tests' hand-made spans (current
conventions and their variants, older forms, message events, steps, bad spans), each also
as OTLP/JSON; and records generated and mutated as ``test_otlp_wire_reader`` makes them
(seeded). Span times are the recording's (an hour before it), held by the bytes.
"""

from __future__ import annotations

import base64
import gzip
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
for folder in ("tests", "processors/tests", "benchmarks"):
    sys.path.insert(0, str(ROOT / folder))

from google.protobuf import json_format  # noqa: E402
from opentelemetry.proto.trace.v1.trace_pb2 import Status, TracesData  # noqa: E402
from otlp_ingest import _span_record  # noqa: E402
from otlp_spans import T0, traces  # noqa: E402
from test_otlp_golden import INPUTS, OUTCOMES, digests  # noqa: E402
from test_otlp_mapper import CURRENT  # noqa: E402
from test_otlp_wire_reader import _mutated, _record  # noqa: E402

HERE = Path(__file__).resolve().parent


def _otlp_json(data: TracesData) -> bytes:
    """OTLP/JSON of ``data``: protobuf's JSON mapping with hex ids."""
    document = json_format.MessageToDict(data)
    for rs in document.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return json.dumps(document).encode()


def _hand_made() -> list[TracesData]:
    indexed = {"gen_ai.system": "az.ai.openai", "llm.request.type": "completion",
               "gen_ai.request.model": "gpt-35", "gen_ai.prompt.0.role": "system",
               "gen_ai.prompt.0.content": "Be brief.", "gen_ai.prompt.1.role": "user",
               "gen_ai.prompt.1.content": "Hi there", "gen_ai.completion.0.role": "assistant",
               "gen_ai.completion.0.content": "Hello!",
               "gen_ai.completion.0.finish_reason": "length",
               "gen_ai.completion.0.tool_calls.0.name": "lookup",
               "gen_ai.completion.0.tool_calls.0.id": "t1",
               "gen_ai.completion.0.tool_calls.0.arguments": '{"q": 1}',
               "gen_ai.usage.prompt_tokens": 9, "gen_ai.usage.completion_tokens": 2,
               "llm.is_streaming": True}
    events = {"attrs": {"gen_ai.system": "openai", "gen_ai.operation.name": "chat"},
              "events": [("gen_ai.system.message", {"content": "Rules."}),
                         ("gen_ai.user.message", {"content": "Question?"}),
                         ("gen_ai.tool.message", {"content": "42", "id": "call_1"}),
                         ("gen_ai.choice", {"gen_ai.event.content": json.dumps(
                             {"index": 0, "finish_reason": "stop",
                              "message": {"role": "assistant", "content": "Answer.",
                                          "tool_calls": [{"id": "c", "function": {
                                              "name": "f", "arguments": "{}"}}]}})}),
                         ("gen_ai.content.completion.chunk", {}),
                         ("exception", {"exception.message": "boom", "exception.type": "E"})]}
    content_events = {"attrs": {"gen_ai.system": "openai"},
                      "events": [("gen_ai.content.prompt", {"gen_ai.prompt": json.dumps(
                          [{"role": "user", "content": "Old prompt"}])}),
                          ("gen_ai.content.completion", {"gen_ai.completion": json.dumps(
                              [{"role": "assistant", "content": "Old answer"}])})]}
    details = {"attrs": {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m",
                         "llmpulse.prompt.id": "greet", "llmpulse.prompt.version": "7"},
               "events": [("gen_ai.client.inference.operation.details", {
                   key: json.dumps(CURRENT[key])
                   for key in ("gen_ai.input.messages", "gen_ai.output.messages")})]}
    tools = [{"role": "assistant", "parts": [
        {"type": "tool_call", "id": "c1", "name": "search", "arguments": {"q": "x"}}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": {"n": 1}}]},
        {"role": "Human", "name": "ann", "parts": [{"type": "text", "content": "a"},
                                                   {"type": "text", "content": "b"}]}]
    variants = [{}, {"gen_ai.response.model": "gpt\x07"}, {"gen_ai.response.id": "r" * 61},
                {"gen_ai.response.finish_reasons": ["stop\x85"]}, {"error.type": "timeout"},
                {"gen_ai.conversation.id": "conv\x1b"}, {"user.id": "u" * 61},
                {"gen_ai.request.model": "m" * 60}, {"gen_ai.request.seed": "s" * 65},
                {"gen_ai.input.messages": json.dumps(tools)}, {"gen_ai.input.messages": tools},
                {"gen_ai.input.messages": "[" * 40 + "]" * 40}, {"gen_ai.input.messages": "{x"},
                {"gen_ai.usage.input_tokens": "12"}, {"gen_ai.usage.input_tokens": 5_000_000_000},
                {"gen_ai.request.max_tokens": -1}, {"gen_ai.request.temperature": "hot"},
                {"gen_ai.operation.name": "text_completion"}, {"llmpulse.app": "app\x00"},
                {"gen_ai.provider.name": "AZ.AI.Inference"}, {"gen_ai.system_instructions":
                                                               "You are terse."}]
    spans = [{"attrs": {**CURRENT, **variant}, "span_id": n.to_bytes(8, "big"),
              "parent": (n + 100).to_bytes(8, "big") if n % 3 else b"",
              **({"status": (Status.STATUS_CODE_ERROR, "failed")} if n % 7 == 0 else {})}
             for n, variant in enumerate(variants, start=1)]
    steps = [{"attrs": {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search",
                        "gen_ai.tool.call.id": "c1", "gen_ai.tool.call.arguments": '{"q": "x"}',
                        "gen_ai.tool.call.result": "r" * 100, "gen_ai.tool.type": "function"}},
             {"attrs": {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner",
                        "gen_ai.output.messages": CURRENT["gen_ai.output.messages"]}},
             {"attrs": {"gen_ai.operation.name": "retrieval", "gen_ai.data_source.id": "kb"}},
             {"name": "GET /health", "attrs": {"http.method": "GET"}},
             {"attrs": {"gen_ai.operation.name": "embeddings", "gen_ai.request.model": "e5"}}]
    return [traces({"attrs": indexed}, events, content_events, details),
            traces(*spans), traces(*steps),
            traces(*spans[:3], resource={"service.name": "svc", "llmpulse.app": "billing",
                                         "llmpulse.environment": "canary"}),
            traces(spans[0], resource={"deployment.environment.name": "x"}),
            traces({"attrs": CURRENT, "trace_id": b"", "span_id": b""},
                   {"attrs": CURRENT, "start": 0}, {"attrs": CURRENT, "start": T0, "end": T0 - 1})]


def _inputs() -> list[tuple[str, bytes]]:
    out = [("protobuf", path.read_bytes()) for path in sorted(HERE.glob("*.binpb"))]
    out.append(("protobuf", _span_record(0, 64)))  # (its ids random: fixed once written)
    for made in _hand_made():
        out += [("protobuf", made.SerializeToString()), ("json", _otlp_json(made))]
    rng = random.Random(2026)
    out += [("protobuf", _record(rng)) for _ in range(400)]
    out += [("protobuf", _mutated(rng, _record(rng))) for _ in range(300)]
    out += [("json", b"{not json"), ("json", b'{"resourceSpans": [{"scopeSpans": [{"spans": '
                                                b'[{"traceId": "zz"}]}]}]}'), ("protobuf", b"")]
    return out


def main() -> None:
    if "--outcomes-only" not in sys.argv:
        with gzip.open(INPUTS, "wt", encoding="utf-8", compresslevel=9) as lines:
            for content_type, data in _inputs():
                lines.write(json.dumps({"content_type": content_type,
                                        "data": base64.b64encode(data).decode()}) + "\n")
    recorded, counts = digests()
    OUTCOMES.write_text(json.dumps({"digests": recorded, "counts": counts}, indent=0) + "\n")
    print(f"{len(recorded['recorded'])} inputs; counts {counts}")


if __name__ == "__main__":
    main()
