"""The Enricher: what the Faust agents, replay and the demo get back."""

from __future__ import annotations

import logging

import pytest

from llmpulse.processors.config import BatchSettings, load_config
from llmpulse.processors.pipeline import CallPair, Enricher
from llmpulse.schemas import ScoreResult, decode_event, encode_event

from .conftest import make_pair


class FakeToxicity:
    """A batched scorer standing in for a model: scores by a word, counts its batches."""

    name = "toxicity"
    version = "9"
    produces = ("toxicity",)
    batching = BatchSettings(size=4, max_wait_s=0.1)

    def __init__(self) -> None:
        self.batches: list[int] = []

    def score(self, calls):
        self.batches.append(len(calls))
        return [[ScoreResult(name="toxicity", scorer_version=self.version, backend="fake",
                             value=0.99 if "idiot" in (c.response.text or "") else 0.01)] for c in calls]


@pytest.fixture
def enricher() -> Enricher:
    return Enricher(load_config(environ={}), batched_scorers=[FakeToxicity()])


def test_light_enrichment_scores_guards_and_records_versions(enricher):
    [call] = enricher.light([make_pair("Card 4111 1111 1111 1111, refund it", "Done, refunded.")])
    names = {s.name for s in call.scores}
    assert {"latency_ms", "cost_usd", "refusal", "language_mismatch"} <= names
    assert all(s.scorer_version and s.backend for s in call.scores)
    assert call.scorer_set_version == enricher.scorer_set_version and call.scorer_set_version.startswith("1+")
    assert call.policy_version == enricher.policy.version
    [verdict] = call.verdicts
    assert verdict.rule_id == "pii-prompt" and verdict.policy_version == call.policy_version
    assert call.prompt.messages[0].content == "Card [CREDIT_CARD], refund it"
    assert decode_event(encode_event(call)) == call  # valid against the contract


def test_heavy_runs_batches_then_score_rules_and_is_idempotent(enricher):
    light = enricher.light([make_pair("hi", "you idiot", call_id="a"), make_pair("hi", "hello", call_id="b")])
    fake = enricher.batched_scorers["toxicity"]
    heavy = enricher.heavy(light)
    assert fake.batches == [2]
    rude, kind = heavy
    assert [v.rule_id for v in rude.verdicts] == ["toxic-response"] and kind.verdicts == []
    again = enricher.heavy(heavy)
    assert [s.name for s in again[0].scores].count("toxicity") == 1
    assert [v.rule_id for v in again[0].verdicts] == ["toxic-response"]


def test_sampled_scorers_score_the_same_share_every_time():
    fake = FakeToxicity()
    fake.config = type("Cfg", (), {"sample_rate": 0.25})()  # type: ignore[attr-defined]
    enricher = Enricher(load_config(environ={}), batched_scorers=[fake])
    pairs = [make_pair("hi", "hello", call_id=f"call-{i}") for i in range(400)]
    first = enricher.heavy(enricher.light(pairs))
    statuses = [next(s for s in c.scores if s.name == "toxicity").status for c in first]
    assert 60 < statuses.count("ok") < 140 and sum(fake.batches) == statuses.count("ok")
    skipped = next(s for c in first for s in c.scores if s.name == "toxicity" and s.status != "ok")
    assert skipped.status == "not_applicable" and "sample_rate 0.25" in skipped.detail
    again = enricher.heavy(enricher.light(pairs))
    assert statuses == [next(s for s in c.scores if s.name == "toxicity").status for c in again]


def test_same_call_same_ids(enricher):
    pair = make_pair("mail ada@example.com", "ok")
    first, second = enricher.light([pair])[0], enricher.light([pair])[0]
    assert first.event_id == second.event_id and first.event_id.version == 7
    assert [v.event_id for v in first.verdicts] == [v.event_id for v in second.verdicts]


def test_incomplete_calls(enricher):
    [call] = enricher.light([make_pair("hello?", None)])
    assert call.complete is False and call.incomplete_reason == "response_timeout"
    assert {s.status for s in call.scores if s.name == "refusal"} == {"not_applicable"}
    lone = CallPair(response=make_pair().response, incomplete_reason="prompt_timeout")
    [only_response] = enricher.light([lone])
    assert only_response.incomplete_reason == "prompt_timeout" and only_response.app == "shop"


def test_a_failing_scorer_marks_the_call_and_the_stream_goes_on(enricher, caplog):
    class Broken:
        name, version, produces, batching = "broken", "1", ("x",), None

        def score_one(self, call):
            raise RuntimeError("boom")

    enricher.light_scorers.append(Broken())
    with caplog.at_level(logging.ERROR):
        calls = enricher.light([make_pair("secret question text", "a"), make_pair("q2", "b")])
    assert len(calls) == 2 and enricher.errors == 2
    assert calls[0].scores[0].status == "error" and "boom" in calls[0].scores[0].detail
    assert "secret question text" not in caplog.text


def test_batch_settings_come_from_the_config():
    enricher = Enricher(load_config(environ={"LLMPULSE_SCORING__TOXICITY__BATCH_SIZE": "7",
                                             "LLMPULSE_SCORING__TOXICITY__MAX_WAIT_S": "0.2",
                                             "LLMPULSE_SCORING__READABILITY__ENABLED": "false"}))
    assert enricher.batching["toxicity"] == BatchSettings(size=7, max_wait_s=0.2)
    assert set(enricher.batching) == {"toxicity", "embeddings"}


def test_scorer_set_version_changes_with_a_threshold():
    a = Enricher(load_config(environ={}))
    b = Enricher(load_config(environ={"LLMPULSE_SCORING__QUALITY__LONG_RATIO": "3"}))
    assert a.scorer_set_version != b.scorer_set_version


def test_enrich_with_the_real_fallback_model():
    enricher = Enricher(load_config(environ={"LLMPULSE_SCORING__EMBEDDINGS__ENABLED": "false",
                                             "LLMPULSE_SCORING__READABILITY__ENABLED": "false",
                                             "LLMPULSE_SCORING__TOXICITY__BACKEND": "profanity-check"}))
    [call] = enricher.enrich([make_pair("hello", "shut the fuck up you stupid idiot")])
    toxicity = next(s for s in call.scores if s.name == "toxicity")
    assert toxicity.backend == "profanity-check" and toxicity.value > 0.8
    assert "toxic-response" in [v.rule_id for v in call.verdicts]
