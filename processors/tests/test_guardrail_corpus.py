"""Quality floors of the default policy on the labelled corpus (issue #17's goals).

These are not timings: they fail when a change to the rules or the detectors loses recall
or raises false alarms on the corpus in ``tests/data/guardrails_corpus.jsonl``."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from llmpulse.processors.guardrails.evaluation import evaluate, load_corpus
from llmpulse.processors.guardrails.policy import GuardrailPolicy

CORPUS = Path(__file__).parent / "data" / "guardrails_corpus.jsonl"
LANGUAGES = {"en", "fr", "de", "es", "it", "pt", "nl"}


@pytest.fixture(scope="module")
def report() -> dict:
    return evaluate(GuardrailPolicy.load(), load_corpus(CORPUS))


def test_the_corpus_is_large_half_benign_and_covers_every_class_and_language():
    cases = load_corpus(CORPUS)
    assert len(cases) >= 400
    benign = sum(c.label is None for c in cases)
    assert 0.4 <= benign / len(cases) <= 0.6
    assert {c.lang for c in cases if c.cls == "injection" and c.label} == LANGUAGES
    assert {c.lang for c in cases if c.cls == "injection" and not c.label} == LANGUAGES
    families = Counter(c.label for c in cases if c.cls == "injection")
    assert {"override", "reveal", "roleplay", "mode", "markup", "exfiltration", "indirect",
            "obfuscation"} <= set(families)
    assert {c.where for c in cases if c.cls == "injection" and c.label} == {"prompt", "context", "tool"}
    pii = {c.label for c in cases if c.cls == "pii"} - {None}
    assert pii == {"email", "phone", "credit_card", "iban", "national_id", "ip_address"}
    secrets = {c.label for c in cases if c.cls == "secret"} - {None}
    assert {"aws_access_key", "azure_storage_key", "password_in_url", "jwt", "slack_token", "stripe_key",
            "github_token", "gitlab_token", "npm_token", "private_key", "credential_assignment"} <= secrets


def test_pii_recall_and_precision(report):
    assert report["pii"]["recall"] >= 0.98, report["pii"]["missed"]
    assert report["pii"]["precision"] >= 0.95, report["pii"]["benign_flagged"]


def test_secrets_recall_and_precision(report):
    assert report["secret"]["recall"] >= 0.95, report["secret"]["missed"]
    assert report["secret"]["precision"] >= 0.98, report["secret"]["benign_flagged"]


# Injection: the goal (recall >= 0.90 at <= 2% false positives) is met on the cases the rules
# were corrected on ("tune", a tuned figure); on "holdout2", written before the rules were read,
# the floor is what was measured there (docs/FIGURES.md), far below the goal.
HOLDOUT2_RECALL_FLOOR = 0.48


def test_injection_recall_and_false_positive_rate_on_the_tuned_cases(report):
    tune = report["injection"]["by_split"]["tune"]
    assert tune["recall"] >= 0.90, report["injection"]["missed"]
    for split, tally in report["injection"]["by_split"].items():
        assert tally["false_positive_rate"] <= 0.02, (split, report["injection"]["benign_flagged"])


def test_injection_recall_on_the_second_holdout_keeps_its_measured_floor(report):
    assert report["injection"]["by_split"]["holdout2"]["recall"] >= HOLDOUT2_RECALL_FLOOR


def test_every_language_is_caught_not_only_english():
    tuned = [c for c in load_corpus(CORPUS) if c.split == "tune"]
    by_language = evaluate(GuardrailPolicy.load(), tuned)["injection"]["by_language"]
    for lang in LANGUAGES:
        assert by_language[lang]["recall"] >= 0.8, lang
