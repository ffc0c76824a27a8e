"""Replay: a range of SDK-recorded calls re-run through a stricter policy or a candidate
prompt version, written to the evaluation tables, resumable without duplicates."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from chat_server import ChatServer
from click.testing import CliRunner

import llmpulse.producers as sdk
from llmpulse.cli.main import main as cli_main
from llmpulse.cli.topics import ensure_topics
from llmpulse.processors.config import load_config
from llmpulse.processors.guardrails.policy import GuardrailPolicy
from llmpulse.processors.pipeline import Enricher
from llmpulse.processors.replay import (
    CandidatePrompt,
    ChatModel,
    ReplaySource,
    replay,
    topics_for,
)
from llmpulse.producers.prompts import PromptRegistry
from llmpulse.sinks.store import Store

pytestmark = pytest.mark.kafka

LIGHT = """
scoring:
  toxicity: {enabled: false}
  embeddings: {enabled: false}
  readability: {enabled: false}
"""
STRICT = """
version: "strict-1"
rules:
  - {id: no-refunds, kind: banned_terms, applies_to: response, terms: [refund], severity: high, action: block}
"""
PROMPT = 'model = "m"\n[[messages]]\nrole = "user"\ncontent = "Answer briefly: {question}"\n'


@dataclass
class Recorded:
    bootstrap: str
    prefix: str
    before: list[str]
    inside: list[str]
    after: list[str]
    start: datetime
    end: datetime
    config: Path

    @property
    def all(self) -> list[str]:
        return self.before + self.inside + self.after

    def source(self, **kw: object) -> ReplaySource:
        return ReplaySource(self.bootstrap, topics_for(self.prefix), **kw)  # type: ignore[arg-type]


def _calls(n: int, tag: str) -> list[str]:
    ids = []
    for i in range(n):
        call_id = f"{tag}-{i}-{uuid.uuid4().hex[:6]}"
        answer = "You can ask for a refund within 30 days." if i % 2 else "It ships today."
        question = f"Where is parcel {i}?"
        with sdk.call(call_id=call_id, prompt_id="answer", prompt_version="v1", model="m",
                      messages=[{"role": "user", "content": question}],
                      template_variables={"question": question}) as c:
            c.record_response(answer, input_tokens=5, output_tokens=6)
        ids.append(call_id)
    assert sdk.flush(10)
    return ids


@pytest.fixture(scope="module")
def recorded(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    """Calls before, inside and after a time range, made by the SDK (one prefix per module)."""
    tmp = tmp_path_factory.mktemp("replay")
    prefix = f"r{uuid.uuid4().hex[:8]}."
    ensure_topics(kafka_bootstrap, prefix=prefix, partitions=2)
    sdk.init(app="replayed", bootstrap_servers=kafka_bootstrap, topic_prefix=prefix,
             spool_dir=tmp / "spool", flush_interval_s=0.05)
    try:
        before = _calls(3, "before")
        time.sleep(1.0)
        start = datetime.now(UTC)
        inside = _calls(6, "inside")
        end = datetime.now(UTC)
        time.sleep(1.0)
        after = _calls(2, "after")
    finally:
        sdk.shutdown(5)
    config = tmp / "light.yaml"
    config.write_text(LIGHT)
    yield Recorded(kafka_bootstrap, prefix, before, inside, after, start, end, config)


def _enricher(recorded: Recorded, policy: str | None = None) -> Enricher:
    return Enricher(load_config(recorded.config),
                    policy=GuardrailPolicy.from_yaml(policy) if policy else None)


def _rows(store: Store, run_id: str) -> list[dict]:
    return store.query("SELECT * FROM eval_results WHERE run_id = {run:String} ORDER BY variant, call_id",
                       {"run": run_id}).dicts()


def test_a_time_range_replays_exactly_the_calls_of_that_range(recorded: Recorded, store: Store) -> None:
    t0 = time.monotonic()
    result = replay(store, recorded.source(start=recorded.start, end=recorded.end),
                    candidate=_enricher(recorded, STRICT), run_id="range")
    assert result.status == "done", result
    assert time.monotonic() - t0 < 30
    rows = _rows(store, "range")
    assert sorted({r["call_id"] for r in rows}) == sorted(recorded.inside)
    assert all(r["variant"] == "candidate" for r in rows) and len(rows) == len(recorded.inside)
    for r in rows:  # each row names its source record
        assert r["source_topic"] in topics_for(recorded.prefix)
        assert r["source_partition"] in (0, 1) and r["source_offset"] >= 0
    run = store.query("SELECT * FROM eval_runs FINAL WHERE run_id = 'range'").dicts()[0]
    assert run["status"] == "done" and run["calls"] == len(recorded.inside)
    assert run["range_start"] is not None and "strict-1" in run["candidate"]


def test_a_stricter_policy_finds_what_the_production_policy_let_pass(recorded: Recorded, store: Store,
                                                                     store_url: str) -> None:
    (recorded.config.parent / "strict.yaml").write_text(STRICT)
    runner = CliRunner()
    out = runner.invoke(
        cli_main,
        ["replay", "--bootstrap-servers", recorded.bootstrap, "--prefix", recorded.prefix,
         "--from-offset", "0", "--config", str(recorded.config),
         "--policy", str(recorded.config.parent / "strict.yaml"),
         "--baseline-config", str(recorded.config), "--run-id", "strict", "--clickhouse", store_url])
    assert out.exit_code == 0, out.output
    rows = _rows(store, "strict")
    base = {r["call_id"]: r for r in rows if r["variant"] == "baseline"}
    cand = {r["call_id"]: r for r in rows if r["variant"] == "candidate"}
    assert set(base) == set(cand) == set(recorded.all)
    caught = {c for c, r in cand.items() if "no-refunds" in r["guardrail_rules"]}
    refunds = {c for c in recorded.all if int(c.split("-")[1]) % 2}
    assert caught == refunds and all(cand[c]["guardrail_blocked"] for c in caught)
    assert not any("no-refunds" in base[c]["guardrail_rules"] for c in caught)  # production let them pass
    assert cand[next(iter(caught))]["scorer_versions"]["policy"].startswith("strict-1+")
    assert all(r["quality"] is not None for r in rows)


def test_a_candidate_prompt_answered_by_a_local_model_gives_comparable_rows(
        recorded: Recorded, store: Store, tmp_path: Path) -> None:
    (tmp_path / "answer.toml").write_text(PROMPT)
    template = PromptRegistry(tmp_path).resolve("answer")
    with ChatServer() as server:
        model = ChatModel(server.base_url, api_key="test", rate=100)
        result = replay(store, recorded.source(start=recorded.start, end=recorded.end),
                        candidate=_enricher(recorded), baseline=_enricher(recorded),
                        prompt=CandidatePrompt(template, model), run_id="prompt")
        model.close()
        assert len(server.requests) == len(recorded.inside)
    assert result.status == "done" and result.model_errors == 0
    rows = _rows(store, "prompt")
    base = {r["call_id"]: r for r in rows if r["variant"] == "baseline"}
    cand = {r["call_id"]: r for r in rows if r["variant"] == "candidate"}
    assert set(base) == set(cand) == set(recorded.inside)
    for call_id, row in cand.items():
        assert row["response_text"].startswith("Echo: Answer briefly: Where is parcel")
        assert row["prompt_version"] == template.version and base[call_id]["prompt_version"] == "v1"
        assert row["output_tokens"] > 0 and row["error_type"] == ""
        assert row["quality"] is not None and base[call_id]["quality"] is not None
        assert row["source_offset"] == base[call_id]["source_offset"]


def test_an_interrupted_replay_resumes_without_duplicates(recorded: Recorded, store: Store) -> None:
    source = recorded.source(from_offset=0)
    first = replay(store, source, candidate=_enricher(recorded, STRICT), baseline=_enricher(recorded),
                   run_id="resume", max_calls=4)
    assert first.status == "interrupted" and first.calls == 4
    assert store.query("SELECT status FROM eval_runs FINAL WHERE run_id = 'resume'").scalar() == "interrupted"
    second = replay(store, source, candidate=_enricher(recorded, STRICT), baseline=_enricher(recorded),
                    run_id="resume")
    assert second.status == "done"
    assert second.calls == len(recorded.all) - 4 and second.skipped >= 4
    counts = store.query("SELECT variant, count(), uniqExact(call_id) FROM eval_results "
                         "WHERE run_id = 'resume' GROUP BY variant ORDER BY variant").rows
    n = len(recorded.all)
    assert [tuple(r) for r in counts] == [("baseline", n, n), ("candidate", n, n)]
    run = store.query("SELECT status, calls FROM eval_runs FINAL WHERE run_id = 'resume'").rows[0]
    assert tuple(run) == ("done", n)


def test_compare_runs_shows_the_stricter_policy_blocks_more(recorded: Recorded, store: Store,
                                                            store_url: str) -> None:
    replay(store, recorded.source(from_offset=0), candidate=_enricher(recorded, STRICT),
           baseline=_enricher(recorded), run_id="cmp")
    out = CliRunner().invoke(cli_main, ["compare", "--run", "cmp:baseline", "--run", "cmp:candidate",
                                    "--format", "json", "--clickhouse", store_url])
    assert out.exit_code == 0, out.output
    assert "guardrail_block_rate" in out.output and "cmp/baseline" in out.output


def test_replay_on_a_store_never_migrated_migrates_it_and_shows_progress(recorded: Recorded,
                                                                          tmp_path: Path) -> None:
    """As a new user runs it: the entry point, a fresh chDB folder, progress on stderr."""
    (tmp_path / "strict.yaml").write_text(STRICT)
    url = f"chdb://{tmp_path / 'fresh'}"
    llmpulse = str(Path(sys.executable).parent / "llmpulse")
    done = subprocess.run(
        [llmpulse, "replay", "--bootstrap-servers", recorded.bootstrap, "--prefix", recorded.prefix,
         "--from-offset", "0", "--config", str(recorded.config), "--policy",
         str(tmp_path / "strict.yaml"), "--no-baseline", "--run-id", "fresh", "--clickhouse", url],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert f"replay: {len(recorded.all)} calls evaluated" in done.stderr, done.stderr
    assert "INFO llmpulse.processors.replay" in done.stderr and "replay reads" in done.stderr  # its log
    assert f"{len(recorded.all)} call(s) evaluated" in done.stdout
    status = subprocess.run([llmpulse, "db", "status", "--clickhouse", url], capture_output=True,
                            text=True, timeout=300, cwd=tmp_path)
    lines = [line for line in status.stdout.splitlines()[1:] if line.strip()]
    assert lines and all(line.startswith("applied") for line in lines), status.stdout
