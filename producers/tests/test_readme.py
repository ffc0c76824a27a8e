"""The code examples of producers/README.md run, against the real broker and a local
OpenAI-compatible server."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

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
    assert len(blocks) >= 7
    prefix = f"t{uuid.uuid4().hex[:8]}."
    ensure_topics(kafka_bootstrap, prefix=prefix, partitions=2)
    monkeypatch.setenv("LLMPULSE_TOPIC_PREFIX", prefix)
    monkeypatch.setenv("LLMPULSE_SDK_SPOOL_DIR", str(tmp_path))
    with ChatServer(chunk_delay_s=0) as server:
        namespace = {"KAFKA": kafka_bootstrap, "BASE_URL": server.base_url, "openai": openai}
        try:
            for block in blocks:
                exec(compile(block, str(README), "exec"), namespace)
        finally:
            llmpulse.shutdown(2)  # the last init replaced the first client, which was flushed
    assert namespace["text"] == "Echo: hello"
    topics = [f"{prefix}llm.prompts", f"{prefix}llm.responses", f"{prefix}llm.feedback"]
    got = read_events(kafka_bootstrap, topics, expected=9)
    kinds = sorted(type(e.event).__name__ for e in got)
    assert kinds.count("PromptEvent") == 4 and kinds.count("ResponseEvent") == 4
    assert kinds.count("FeedbackEvent") == 1
