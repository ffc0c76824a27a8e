"""The prompt registry: files, content versions, labels, rendering, tagging, publishing."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from kafka_events import read_events

import llmpulse.producers as llmpulse
from llmpulse.cli.main import main
from llmpulse.cli.topics import ensure_topics
from llmpulse.producers.prompts import PromptError, PromptRegistry, PromptVariableError
from llmpulse.schemas import PromptEvent, PromptLabel, PromptVersion

ANSWER = '''
description = "Answer a support question"
model = "gpt-4o-mini"
[model_settings]
temperature = 0.2
[[messages]]
role = "system"
content = "You answer for {company}."
[[messages]]
role = "user"
content = "{question}"
'''


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "answer.toml").write_text(ANSWER)
    (tmp_path / "yaml-one.yaml").write_text(
        "model: m\nmessages:\n  - role: user\n    content: 'Summarise {text}'\n")
    return tmp_path


def test_versions_follow_content_and_labels_move(folder: Path) -> None:
    registry = PromptRegistry(folder)
    v1 = registry.current("answer").version
    assert registry.current("answer").version == v1, "the same content, the same version"
    registry.publish()
    registry.set_label("answer", "production", v1)
    (folder / "answer.toml").write_text(ANSWER.replace("You answer", "You kindly answer"))
    v2 = registry.current("answer").version
    assert v2 != v1
    (folder / "answer.toml").write_text(ANSWER.replace('description = "Answer', 'description = "Reply'))
    assert registry.current("answer").version == v1, "metadata is not content"
    (folder / "answer.toml").write_text(ANSWER.replace("You answer", "You kindly answer"))
    registry.publish()
    assert registry.versions("answer") == [v1, v2]
    assert registry.get("answer", label="production").version == v1
    registry.set_label("answer", "production", v2)
    registry.set_label("answer", "v1", v1)
    assert registry.get("answer", label="production").version == v2
    assert registry.get("answer", version=v1).messages[0]["content"] == "You answer for {company}."
    assert "kindly" in registry.diff("answer@v1", "answer@production")
    with pytest.raises(PromptError, match="no label 'staging'"):
        registry.get("answer", label="staging")
    with pytest.raises(PromptError, match="no version"):
        registry.set_label("answer", "staging", "000000000000")
    assert registry.current("yaml-one").variables == ["text"]


def test_rendering_checks_variables(folder: Path) -> None:
    template = PromptRegistry(folder).current("answer")
    assert template.variables == ["company", "question"]
    rendered = template.render(company="ACME", question="Where is my parcel?", unused="x")
    assert rendered.messages == [{"role": "system", "content": "You answer for ACME."},
                                 {"role": "user", "content": "Where is my parcel?"}]
    assert rendered.variables == {"company": "ACME", "question": "Where is my parcel?"}
    with pytest.raises(PromptVariableError, match=r"\['question'\]"):
        template.render(company="ACME")
    (folder / "broken.toml").write_text("model = 'm'\n")
    with pytest.raises(PromptError, match="messages"):
        PromptRegistry(folder).current("broken")


@pytest.mark.kafka
def test_calls_made_with_a_rendered_prompt_are_tagged_and_publish_reaches_kafka(
        folder: Path, kafka_bootstrap: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    ensure_topics(kafka_bootstrap, prefix=prefix, partitions=2)
    monkeypatch.setenv("LLMPULSE_PROMPTS_DIR", str(folder))
    runner = CliRunner()
    assert runner.invoke(main, ["prompts", "publish"]).exit_code == 0
    version = PromptRegistry(folder).current("answer").version
    result = runner.invoke(main, ["prompts", "label", "answer", "production", version])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["prompts", "publish", "--bootstrap-servers", kafka_bootstrap,
                                  "--prefix", prefix])
    assert result.exit_code == 0, result.output
    assert "production=" + version in runner.invoke(main, ["prompts", "list"]).output

    llmpulse.init(app="tagged", bootstrap_servers=kafka_bootstrap, topic_prefix=prefix,
                  spool_dir=tmp_path / "spool", flush_interval_s=0.05)
    try:
        template = llmpulse.prompts.get("answer", label="production")
        rendered = template.render(company="ACME", question="Refund?")
        with llmpulse.call(messages=rendered.messages, model=rendered.model) as c:
            c.record_response("Yes.")
        assert llmpulse.flush(10)
    finally:
        llmpulse.shutdown(2)
    prompts = read_events(kafka_bootstrap, [f"{prefix}llm.prompts"], expected=1)
    event: PromptEvent = prompts[0].event
    assert (event.prompt_id, event.prompt_version) == ("answer", version)
    assert event.template_variables == {"company": "ACME", "question": "Refund?"}
    registry_events = read_events(kafka_bootstrap, [f"{prefix}llm.prompt-versions"], expected=3)
    versions = [e for e in registry_events if isinstance(e.event, PromptVersion)]
    labels = [e for e in registry_events if isinstance(e.event, PromptLabel)]
    assert {e.key for e in versions} == {f"answer@{version}".encode(),
                                         f"yaml-one@{PromptRegistry(folder).current('yaml-one').version}".encode()}
    assert labels[0].key == b"answer#production" and labels[0].event.version == version
