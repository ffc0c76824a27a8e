"""Export a range of history to JSONL and Parquet, import it back, and it is the same."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from kafka_events import read_events

import llmpulse.producers as llmpulse
from llmpulse.cli.main import main
from llmpulse.cli.topics import ensure_topics

pytestmark = pytest.mark.kafka


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_a_dataset_round_trips_through_a_file(kafka_bootstrap: str, tmp_path: Path,
                                              suffix: str) -> None:
    source, target = f"x{uuid.uuid4().hex[:8]}.", f"y{uuid.uuid4().hex[:8]}."
    ensure_topics(kafka_bootstrap, prefix=source, partitions=2)
    ensure_topics(kafka_bootstrap, prefix=target, partitions=3)
    llmpulse.init(app="dataset", bootstrap_servers=kafka_bootstrap, topic_prefix=source,
                  spool_dir=tmp_path / "spool", flush_interval_s=0.05)
    try:
        for i in range(15):
            with llmpulse.call(prompt_id="p", messages=[{"role": "user", "content": f"q{i}"}],
                               template_variables={"n": str(i)}) as c:
                c.record_response(f"a{i}", input_tokens=i)
        llmpulse.feedback(c.call_id, thumbs="up")
        assert llmpulse.flush(10)
    finally:
        llmpulse.shutdown(2)
    out = tmp_path / f"day{suffix}"
    runner = CliRunner()
    result = runner.invoke(main, ["export", "--bootstrap-servers", kafka_bootstrap, "--prefix",
                                  source, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "exported 31 events" in result.stdout
    assert "export: 31 events" in result.stderr  # the progress line, finished
    result = runner.invoke(main, ["import", "--bootstrap-servers", kafka_bootstrap, "--prefix",
                                  target, str(out)])
    assert result.exit_code == 0, result.output
    assert "import: 31 events" in result.stderr
    topics = [f"{target}llm.prompts", f"{target}llm.responses", f"{target}llm.feedback"]
    back = read_events(kafka_bootstrap, topics, expected=31)
    originals = read_events(kafka_bootstrap, [t.replace(target, source) for t in topics],
                            expected=31)
    assert {e.event.event_id for e in back} == {e.event.event_id for e in originals}
    from llmpulse.schemas import encode_event, partition_for

    def wire(events: list) -> list[bytes]:  # type: ignore[type-arg]
        return sorted(encode_event(e.event) for e in events)

    assert wire(back) == wire(originals)  # every field kept

    assert all(e.partition == partition_for(e.event.call_id, 3) for e in back)
