"""wrap() on the real openai and anthropic clients against a local server speaking each
wire format (tests/chat_server.py): OpenAI Responses, Anthropic Messages, chat tool calls;
sync, async and streaming. Events go through the embedded transport and are decoded."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from chat_server import CACHE_READ_TOKENS, REASONING_TOKENS, THINKING_TOKENS, ChatServer
from local_events import LocalEvents

import llmpulse.producers as llmpulse
from llmpulse.producers import _responses

TOOLS_OPENAI = [{"type": "function", "name": "lookup_order",
                 "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}}]
TOOLS_CHAT = [{"type": "function", "function": {"name": "lookup_order", "parameters": {}}}]
TOOLS_ANTHROPIC = [{"name": "lookup_order", "input_schema": {"type": "object"}}]


@pytest.fixture
def sink() -> Iterator[LocalEvents]:
    captured = LocalEvents()
    llmpulse.init(app="wire", deliver_to=captured.deliver)
    yield captured
    llmpulse.shutdown()


@pytest.fixture(scope="module")
def server() -> Iterator[ChatServer]:
    with ChatServer(chunk_delay_s=0.002) as s:
        yield s


# -- OpenAI Responses ----------------------------------------------------------------------
def test_responses_create_text_usage_and_function_calls(sink: LocalEvents, server: ChatServer) -> None:
    client = llmpulse.wrap(openai.OpenAI(base_url=server.base_url, api_key="k"), prompt_id="agent")
    first = client.responses.create(model="gpt-5", instructions="Be brief.",
                                    input="where is order 7", tools=TOOLS_OPENAI)
    assert first.output[0].type == "function_call"  # the provider's own object, untouched
    prompt, answer = sink.last()
    assert [(m.role, m.content) for m in prompt.messages] == [
        ("system", "Be brief."), ("user", "where is order 7")]
    assert prompt.prompt_id == "agent" and prompt.request_model == "gpt-5"
    assert answer.text == "" and answer.finish_reason == "tool_calls"
    assert [(t.id, t.name, t.arguments) for t in answer.tool_calls] == [
        ("call_1", "lookup_order", '{"query": "where is order 7"}')]

    second = client.responses.create(
        model="gpt-5", reasoning={"effort": "low"},
        input=[{"role": "user", "content": "where is order 7"}, *first.output,
               {"type": "function_call_output", "call_id": "call_1", "output": "shipped"}])
    assert second.output_text == "Echo: shipped"
    prompt, answer = sink.last()
    assistant, tool = prompt.messages[1], prompt.messages[2]
    assert assistant.role == "assistant" and assistant.tool_calls[0].name == "lookup_order"
    assert (tool.role, tool.tool_call_id, tool.content) == ("tool", "call_1", "shipped")
    assert answer.text == "Echo: shipped" and answer.response_id == "resp_1"
    assert answer.usage is not None
    assert answer.usage.reasoning_tokens == REASONING_TOKENS
    assert answer.usage.output_tokens == 2 + REASONING_TOKENS
    assert answer.usage.cached_input_tokens == answer.usage.input_tokens // 2 > 0
    assert not answer.streamed


def test_responses_stream_assembles_text_and_reads_the_completed_event(
        sink: LocalEvents, server: ChatServer) -> None:
    client = llmpulse.wrap(openai.OpenAI(base_url=server.base_url, api_key="k"))
    stream = client.responses.create(model="gpt-5", input="stream five words please",
                                     stream=True)
    deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
    assert "".join(deltas) == "Echo: stream five words please"
    _, answer = sink.call(stream.llmpulse_call_id)
    assert answer.streamed and answer.text == "Echo: stream five words please"
    assert answer.usage is not None and answer.usage.output_tokens == 5
    assert answer.time_to_first_token_ms is not None
    assert answer.time_to_first_token_ms <= answer.latency_ms
    assert answer.finish_reason == "stop" and answer.response_model == "gpt-5"

    with client.responses.stream(model="gpt-5", input="helper stream",
                                 tools=TOOLS_OPENAI) as helper:
        final = helper.get_final_response()
    assert final.output[0].type == "function_call"
    _, answer = sink.last()
    assert answer.streamed and answer.tool_calls[0].arguments == '{"query": "helper stream"}'


def test_responses_async_plain_stream_and_error(sink: LocalEvents, server: ChatServer) -> None:
    client = llmpulse.wrap(openai.AsyncOpenAI(base_url=server.base_url, api_key="k",
                                              max_retries=0))

    async def run() -> tuple[str, str, str]:
        reply = await client.responses.create(model="m", input="async hello")
        plain = llmpulse.last_call_id()
        stream = await client.responses.create(model="m", input="async stream", stream=True,
                                               tools=TOOLS_OPENAI)
        kinds = [e.type async for e in stream]
        assert kinds[-1] == "response.completed"
        with pytest.raises(openai.InternalServerError):
            await client.responses.create(model="m", input="FAIL")
        assert reply.output_text == "Echo: async hello"
        return str(plain), stream.llmpulse_call_id, str(llmpulse.last_call_id())

    plain, streamed, failed = asyncio.run(run())
    assert sink.call(plain)[1].text == "Echo: async hello"
    answer = sink.call(streamed)[1]
    assert answer.streamed and answer.tool_calls[0].id == "call_1"
    error = sink.call(failed)[1].error
    assert error is not None and error.type == "InternalServerError"


def test_a_capture_failure_is_counted_and_the_result_returned_untouched(
        sink: LocalEvents, server: ChatServer, monkeypatch: pytest.MonkeyPatch) -> None:
    client = llmpulse.wrap(openai.OpenAI(base_url=server.base_url, api_key="k"))

    def broken(response: Any) -> dict[str, Any]:
        raise RuntimeError("reader bug")

    monkeypatch.setattr(client.responses.create, "_fields_of", broken)
    reply = client.responses.create(model="m", input="still works")
    assert reply.output_text == "Echo: still works"
    assert llmpulse.stats()["errors_by_place"] == {"wrap_output": 1}
    _, answer = sink.last()  # the call is still recorded, as far as it got
    assert answer.text == "" and answer.error is None
    assert _responses.responses_fields(reply)["text"] == "Echo: still works"


# -- Anthropic Messages --------------------------------------------------------------------
def test_anthropic_create_thinking_cache_and_tool_use(sink: LocalEvents, server: ChatServer) -> None:
    client = llmpulse.wrap(anthropic.Anthropic(base_url=server.anthropic_url, api_key="k"))
    system = [{"type": "text", "text": "You are a parcel agent.",
               "cache_control": {"type": "ephemeral"}}]
    first = client.messages.create(model="claude-x", max_tokens=256, system=system,
                                   tools=TOOLS_ANTHROPIC, thinking={"type": "enabled",
                                                                    "budget_tokens": 1024},
                                   messages=[{"role": "user", "content": "where is order 7"}])
    assert first.stop_reason == "tool_use"
    prompt, answer = sink.last()
    assert prompt.provider == "anthropic" and prompt.messages[0].role == "system"
    assert prompt.messages[0].content == "You are a parcel agent." and prompt.max_tokens == 256
    assert [(t.id, t.name, t.arguments) for t in answer.tool_calls] == [  # the input, as JSON
        ("toolu_1", "lookup_order", '{"query":"where is order 7"}')]
    assert answer.finish_reason == "tool_use" and answer.text == ""
    usage = answer.usage
    assert usage is not None
    assert usage.reasoning_tokens == THINKING_TOKENS
    assert usage.cache_creation_input_tokens == 5  # the system's words
    assert usage.cached_input_tokens == CACHE_READ_TOKENS
    assert usage.input_tokens == first.usage.input_tokens + 5 + CACHE_READ_TOKENS

    client.messages.create(model="claude-x", max_tokens=256, messages=[
        {"role": "user", "content": "where is order 7"},
        {"role": "assistant", "content": first.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                      "content": [{"type": "text", "text": "shipped"}]}]}])
    prompt, answer = sink.last()
    assert [m.role for m in prompt.messages] == ["user", "assistant", "tool"]
    assert prompt.messages[1].tool_calls[0].arguments == '{"query":"where is order 7"}'
    assert (prompt.messages[2].tool_call_id, prompt.messages[2].content) == ("toolu_1", "shipped")
    assert answer.text == "Echo: shipped" and answer.finish_reason == "end_turn"


def test_anthropic_streams_sync_raw_and_helper(sink: LocalEvents, server: ChatServer) -> None:
    client = llmpulse.wrap(anthropic.Anthropic(base_url=server.anthropic_url, api_key="k"))
    raw = client.messages.create(model="claude-x", max_tokens=64, stream=True,
                                 thinking={"type": "enabled", "budget_tokens": 1024},
                                 messages=[{"role": "user", "content": "raw stream please"}])
    text = "".join(e.delta.text for e in raw
                   if e.type == "content_block_delta" and e.delta.type == "text_delta")
    assert text == "Echo: raw stream please"
    _, answer = sink.call(raw.llmpulse_call_id)
    assert answer.streamed and answer.text == text and answer.finish_reason == "end_turn"
    assert answer.usage is not None and answer.usage.reasoning_tokens == THINKING_TOKENS
    assert answer.usage.output_tokens == 4 + THINKING_TOKENS
    assert answer.time_to_first_token_ms is not None

    with client.messages.stream(model="claude-x", max_tokens=64,
                                messages=[{"role": "user", "content": "helper text"}]) as s:
        assert "".join(s.text_stream) == "Echo: helper text"
    _, answer = sink.last()
    assert answer.streamed and answer.text == "Echo: helper text"
    assert answer.time_to_first_token_ms is not None and answer.usage is not None

    with client.messages.stream(model="claude-x", max_tokens=64, tools=TOOLS_ANTHROPIC,
                                messages=[{"role": "user", "content": "BADARGS tool"}]) as s:
        message = s.get_final_message()
    assert message.content[0].input == {"query": "BADARGS tool"}
    _, answer = sink.last()  # streamed input_json_delta pieces, put together
    assert answer.tool_calls[0].arguments == '{"query": "BADARGS tool"}'


def test_anthropic_async_create_stream_and_error(sink: LocalEvents, server: ChatServer) -> None:
    client = llmpulse.wrap(anthropic.AsyncAnthropic(base_url=server.anthropic_url, api_key="k",
                                                    max_retries=0))

    async def run() -> tuple[str, str, str]:
        reply = await client.messages.create(model="c", max_tokens=9,
                                             messages=[{"role": "user", "content": "a hi"}])
        plain = llmpulse.last_call_id()
        async with client.messages.stream(model="c", max_tokens=9, messages=[
                {"role": "user", "content": "a stream"}]) as s:
            parts = [t async for t in s.text_stream]
        streamed = llmpulse.last_call_id()
        with pytest.raises(anthropic.InternalServerError):
            await client.messages.create(model="c", max_tokens=9,
                                         messages=[{"role": "user", "content": "FAIL"}])
        assert reply.content[0].text == "Echo: a hi" and "".join(parts) == "Echo: a stream"
        return str(plain), str(streamed), str(llmpulse.last_call_id())

    plain, streamed, failed = asyncio.run(run())
    assert sink.call(plain)[1].text == "Echo: a hi"
    assert sink.call(streamed)[1].text == "Echo: a stream" and sink.call(streamed)[1].streamed
    error = sink.call(failed)[1].error
    assert error is not None and error.type == "InternalServerError"


# -- OpenAI chat tool calls ----------------------------------------------------------------
def test_chat_tool_calls_in_answers_streamed_deltas_and_prompts(
        sink: LocalEvents, server: ChatServer) -> None:
    raw_client = openai.OpenAI(base_url=server.base_url, api_key="k")
    client = llmpulse.wrap(raw_client)
    question = {"role": "user", "content": "where is order 7"}
    reply = client.chat.completions.create(model="m", messages=[question], tools=TOOLS_CHAT)
    _, answer = sink.last()
    assert answer.text == "" and answer.finish_reason == "tool_calls"
    assert [(t.id, t.name, t.arguments) for t in answer.tool_calls] == [
        ("call_1", "lookup_order", '{"query": "where is order 7"}')]

    stream = client.chat.completions.create(model="m", stream=True, tools=TOOLS_CHAT,
                                            messages=[{"role": "user", "content": "BADARGS 7"}])
    chunks = list(stream)
    assert len(chunks) == 4  # three argument pieces and the finish
    _, answer = sink.call(stream.llmpulse_call_id)
    assert [(t.id, t.name, t.arguments) for t in answer.tool_calls] == [
        ("call_1", "lookup_order", "{query: BADARGS 7")]  # not JSON: kept as the model wrote it

    client.chat.completions.create(model="m", messages=[
        question, reply.choices[0].message,  # the SDK's own message object, as apps append it
        {"role": "tool", "tool_call_id": "call_1", "content": "shipped"}])
    prompt, answer = sink.last()
    assert prompt.messages[1].role == "assistant"
    assert prompt.messages[1].tool_calls[0].arguments == '{"query": "where is order 7"}'
    assert (prompt.messages[2].role, prompt.messages[2].tool_call_id) == ("tool", "call_1")
    assert answer.text == "Echo: shipped"
