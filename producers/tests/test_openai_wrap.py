"""wrap(openai.OpenAI / AsyncOpenAI): real openai package, local chat-completions server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from chat_server import ChatServer
from kafka_events import read_events

import llmpulse.producers as llmpulse
from llmpulse.cli.topics import ensure_topics
from llmpulse.schemas import PromptEvent, ResponseEvent

pytestmark = pytest.mark.kafka


@pytest.fixture
def setup(kafka_bootstrap: str, tmp_path: Path) -> Iterator[tuple[str, ChatServer]]:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    ensure_topics(kafka_bootstrap, prefix=prefix, partitions=2)
    llmpulse.init(app="chat", bootstrap_servers=kafka_bootstrap, topic_prefix=prefix,
                  spool_dir=tmp_path / "spool", flush_interval_s=0.05)
    with ChatServer(chunk_delay_s=0.02) as server:
        yield prefix, server
    llmpulse.shutdown()


def _calls(kafka_bootstrap: str, prefix: str, expected: int) -> dict[str, dict[str, object]]:
    assert llmpulse.flush(10)
    got = read_events(kafka_bootstrap, [f"{prefix}llm.prompts", f"{prefix}llm.responses"],
                      expected=expected)
    calls: dict[str, dict[str, object]] = {}
    for e in got:
        calls.setdefault(e.event.call_id, {})[type(e.event).__name__] = e.event
    return calls


def test_sync_client_plain_and_streaming(setup: tuple[str, ChatServer], kafka_bootstrap: str) -> None:
    prefix, server = setup
    client = llmpulse.wrap(openai.OpenAI(base_url=server.base_url, api_key="k"),
                           provider="vllm", prompt_id="support", prompt_version="7")
    reply = client.chat.completions.create(
        model="llama-3-8b", messages=[{"role": "user", "content": "hello there"}],
        temperature=0.1, llmpulse={"session_id": "s-9"})
    assert reply.choices[0].message.content == "Echo: hello there"
    plain_id = llmpulse.last_call_id()
    assert reply.llmpulse_call_id == plain_id  # the response carries its call id

    stream = client.chat.completions.create(
        model="llama-3-8b", messages=[{"role": "user", "content": "stream me four words"}],
        stream=True, stream_options={"include_usage": True})
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Echo: stream me four words"
    stream_id = stream.llmpulse_call_id
    assert "llmpulse" not in server.requests[0], "our options must not reach the server"

    calls = _calls(kafka_bootstrap, prefix, expected=4)
    p: PromptEvent = calls[plain_id]["PromptEvent"]
    r: ResponseEvent = calls[plain_id]["ResponseEvent"]
    assert (p.prompt_id, p.prompt_version, p.provider, p.session_id) == ("support", "7", "vllm", "s-9")
    assert p.request_model == "llama-3-8b" and p.temperature == 0.1
    assert r.text == "Echo: hello there" and r.usage.input_tokens == 2 and r.usage.output_tokens == 3
    assert r.finish_reason == "stop" and r.response_id == "chatcmpl-1" and not r.streamed
    s: ResponseEvent = calls[stream_id]["ResponseEvent"]
    assert s.streamed and s.text == "Echo: stream me four words"
    assert s.usage is not None and s.usage.output_tokens == 5
    assert s.time_to_first_token_ms is not None
    assert s.time_to_first_token_ms + 50 < s.latency_ms  # 5 chunks, 20 ms apart
    assert s.finish_reason == "stop"


def test_async_client_streaming_and_errors(setup: tuple[str, ChatServer],
                                           kafka_bootstrap: str) -> None:
    prefix, server = setup
    client = llmpulse.wrap(openai.AsyncOpenAI(base_url=server.base_url, api_key="k", max_retries=0))

    async def run() -> tuple[str, str, str]:
        reply = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "async hi"}])
        first = llmpulse.last_call_id()
        stream = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "async stream"}], stream=True)
        parts = [c.choices[0].delta.content async for c in stream if c.choices]
        assert "".join(p or "" for p in parts) == "Echo: async stream"
        with pytest.raises(openai.InternalServerError):
            await client.chat.completions.create(model="m",
                                                 messages=[{"role": "user", "content": "FAIL"}])
        assert reply.choices[0].message.content == "Echo: async hi"
        return first, stream.llmpulse_call_id, llmpulse.last_call_id()

    first, streamed, failed = asyncio.run(run())
    calls = _calls(kafka_bootstrap, prefix, expected=6)
    assert calls[first]["ResponseEvent"].text == "Echo: async hi"
    assert calls[first]["PromptEvent"].provider == "openai_compatible"
    assert calls[streamed]["ResponseEvent"].streamed
    error = calls[failed]["ResponseEvent"].error
    assert error is not None and error.type == "InternalServerError"
