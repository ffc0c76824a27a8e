"""The code examples of producers/README.md run, against the real broker and a local
server speaking the OpenAI and Anthropic protocols."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import anthropic
import openai
import pytest
from chat_server import ChatServer
from kafka_events import read_events

import llmpulse.producers as llmpulse
from llmpulse.cli.topics import ensure_topics

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


@pytest.mark.kafka
def test_every_python_example_runs(kafka_bootstrap: str, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = _python_blocks()
    assert len(blocks) >= 9
    prefix = f"t{uuid.uuid4().hex[:8]}."
    ensure_topics(kafka_bootstrap, prefix=prefix, partitions=2)
    monkeypatch.setenv("LLMPULSE_TOPIC_PREFIX", prefix)
    monkeypatch.setenv("LLMPULSE_SDK_SPOOL_DIR", str(tmp_path))
    with ChatServer(chunk_delay_s=0) as server:
        namespace = {"KAFKA": kafka_bootstrap, "BASE_URL": server.base_url, "openai": openai,
                     "ANTHROPIC_URL": server.anthropic_url, "anthropic": anthropic}
        try:
            for block in blocks:
                exec(compile(block, str(README), "exec"), namespace)
        finally:
            llmpulse.shutdown(2)  # the last init replaced the first client, which was flushed
    assert namespace["text"] == namespace["claude_text"] == "Echo: hello"
    assert namespace["told"] == "Once upon a time."
    topics = [f"{prefix}llm.prompts", f"{prefix}llm.responses", f"{prefix}llm.feedback",
              f"{prefix}llm.spans"]
    got = read_events(kafka_bootstrap, topics, expected=20)
    kinds = sorted(type(e.event).__name__ for e in got)
    assert kinds.count("PromptEvent") == 8 and kinds.count("ResponseEvent") == 8
    assert kinds.count("FeedbackEvent") == 1 and kinds.count("SpanEvent") == 3
    spans = {e.event.name: e.event for e in got if type(e.event).__name__ == "SpanEvent"}
    assert {s.trace_id for s in spans.values()} == {namespace["run_trace_id"]}
    assert spans["lookup_order"].parent_span_id == spans["support-agent"].span_id
