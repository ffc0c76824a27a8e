"""Re-record the OTLP fixtures of the mapper tests from real instrumentation.

The real ``openai`` client, instrumented by OpenLLMetry's
``opentelemetry-instrumentation-openai``, calls the local chat server
(``tests/chat_server.py``); the finished spans are encoded by the OpenTelemetry SDK's own
OTLP encoder into the protobuf an OTLP exporter sends (an ``ExportTraceServiceRequest``,
the same bytes as the ``TracesData`` the Collector writes to Kafka).

``openllmetry_chat.binpb``: three chat calls (plain, streamed, failed) under an HTTP span.
``openllmetry_agent.binpb``: an agent run as an app instruments one by the GenAI
conventions: an ``invoke_agent`` span it opens, two chat calls OpenLLMetry records inside it
(the model asks for a tool, then answers from the tool's result), and the ``execute_tool``
span the app opens around the tool (OpenLLMetry does not trace tools).

    uv run python processors/tests/otlp_fixtures/record.py [chat] [agent]   # default: both
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2] / "tests"))

import openai  # noqa: E402
from _recording import in_memory_provider, three_calls, write_spans  # noqa: E402
from chat_server import ChatServer  # noqa: E402
from opentelemetry import trace  # noqa: E402
from opentelemetry.instrumentation.openai import OpenAIInstrumentor  # noqa: E402

TOOLS: Any = [{"type": "function", "function": {
    "name": "lookup_order", "description": "Find an order's status",
    "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}}}]


def record_agent(client: openai.OpenAI, tracer: trace.Tracer) -> None:
    """An agent run: invoke_agent > (chat -> tool call, execute_tool, chat -> answer)."""
    question: Any = {"role": "user", "content": "Where is order 42?"}
    with tracer.start_as_current_span("invoke_agent support", attributes={
            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support",
            "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini"}) as agent:
        first = client.chat.completions.create(model="gpt-4o-mini", tools=TOOLS, messages=[question])
        asked = first.choices[0].message
        if not asked.tool_calls:
            raise SystemExit("the chat server answered without a tool call: the agent fixture "
                             "needs tests/chat_server.py's tool calls")
        call: Any = asked.tool_calls[0]
        with tracer.start_as_current_span(f"execute_tool {call.function.name}", attributes={
                "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": call.function.name,
                "gen_ai.tool.call.id": call.id, "gen_ai.tool.type": "function",
                "gen_ai.tool.call.arguments": call.function.arguments}) as tool:
            result = "order 42 shipped on Monday"
            tool.set_attribute("gen_ai.tool.call.result", result)
        history: Any = [question, asked.model_dump(exclude_none=True),
                        {"role": "tool", "tool_call_id": call.id, "content": result}]
        answer = client.chat.completions.create(model="gpt-4o-mini", tools=TOOLS, messages=history)
        agent.set_attribute("gen_ai.output.messages", json.dumps([{
            "role": "assistant", "parts": [{"type": "text",
                                            "content": answer.choices[0].message.content}]}]))


def main(which: set[str]) -> None:
    provider, exporter = in_memory_provider()
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    tracer = provider.get_tracer("fixture-app")
    with ChatServer() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)
        if "agent" in which:
            record_agent(client, tracer)
            write_spans(exporter, "openllmetry_agent.binpb")
        if "chat" in which:
            three_calls(client, tracer.start_as_current_span("POST /ask"))  # a non-GenAI parent
            write_spans(exporter, "openllmetry_chat.binpb")
    provider.shutdown()


if __name__ == "__main__":
    main(set(sys.argv[1:]) or {"chat", "agent"})
