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


# The split written blind after the rules were last frozen, measured once (docs/FIGURES.md): its
# figures are asserted apart, as measured floors, so the tuned floors below stay tuned.
BLIND = ("holdout5", "holdout6", "holdout9", "holdout10")


@pytest.fixture(scope="module")
def report() -> dict:
    return evaluate(GuardrailPolicy.load(), [c for c in load_corpus(CORPUS) if c.split not in BLIND])


@pytest.fixture(scope="module")
def blind_report() -> dict:
    return evaluate(GuardrailPolicy.load(), [c for c in load_corpus(CORPUS) if c.split in BLIND])


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


# Injection: the goal (recall >= 0.90 at <= 2% false positives) is asserted on every case. The
# rules were corrected on "tune" and, after their honest measures (recall 0.484 and 0.762
# before any change for them, docs/FIGURES.md), on "holdout2", "holdout3", "holdout4" (0.638
# measured blind), "holdout7" (0.575 measured blind) and "holdout8" (0.592 measured blind) too:
# these are
# tuned figures, floors against regressions, not estimates for new phrasings (measured 1.0 on
# every tuned split but holdout8, 0.975: its three misses are left, not fitted: a reveal behind
# "like", read as a mention; letters split by dots; a grandmother's story with no persona asked
# for. holdout8 has its own floor 0.975 (those three misses, none more); every other tuned split
# keeps 0.98).
TUNED_RECALL_FLOOR = {"holdout8": 0.975}


def test_injection_recall_and_false_positive_rate(report):
    assert report["injection"]["recall"] >= 0.98, report["injection"]["missed"]
    for split, tally in report["injection"]["by_split"].items():
        assert tally["recall"] >= TUNED_RECALL_FLOOR.get(split, 0.98), (split, report["injection"]["missed"])
        assert tally["false_positive_rate"] <= 0.02, (split, report["injection"]["benign_flagged"])


def test_every_language_is_caught_not_only_english(report):
    for lang in LANGUAGES:
        tally = report["injection"]["by_language"][lang]
        assert tally["recall"] >= 0.9, lang
        assert tally["false_positive_rate"] <= 0.02, lang


# Injection on "holdout5" (105 attacks, 105 benign near-misses, written by an engineer who had
# not read the rules, appended after the rules, head and threshold of be6fd22 were frozen and
# landed, measured once: recall 0.590, FPR 0.019). These are the measured figures as
# regression floors (recall rounded down, FPR up), NOT the goal (recall >= 0.90 at FPR <=
# 0.02), which this split does not meet.
# Injection on "holdout6" (105 attacks, 105 benign, written blind, appended after the learned
# tiers of 640d884 were frozen and landed, measured once): the default policy's pattern tier had
# recall 0.705 at FPR 0.029; the measured figures as floors, NOT the goal.
# Injection on "holdout7" (120 attacks, 120 benign, about 80 of them everyday traffic, written
# blind, appended after the retrained learned tiers of 3f23e58 were frozen and landed, measured
# once): the default policy's pattern tier had recall 0.575 at FPR 0.017. Burned since: the
# rules of the holdout7 families were written from its misses (guard10), so it is a tuned split
# above. The holdout7 rules, checked on holdout5 and holdout6 (not tuned on since they were
# measured), took their recall from 0.590 to 0.619 and from 0.705 to 0.762 with no new false
# alarm: the floors below are those figures.
# Injection on "holdout8" (120 attacks, 120 benign near-misses, written blind, appended after the
# rules and learned tiers of f34bbed were frozen and landed, measured once): the default policy's
# pattern tier had recall 0.592 at FPR 0.025. Burned since: the rules of the holdout8 families
# were written from its misses (guard11), so it is a tuned split above. Checked on holdout5 and
# holdout6 (still not tuned on), the holdout8 rules took their recall from 0.619 to 0.714 and
# from 0.762 to 0.790 with no new false alarm: the floors below are those figures.
# Injection on "holdout9" (120 attacks, 120 benign near-misses, written blind, appended after the
# rules and learned tiers of guard11 (f76195b) were frozen and landed, measured once): the
# default policy's pattern tier had recall 0.683 at FPR 0.042; the measured figures as floors,
# NOT the goal. The same after guard12's post-blind fix (everyday false alarms, a dead pattern):
# 0.683 at 0.042 (5/120). guard13 fixed those five false alarms by their class (post-blind: 0.683 at
# 0, the ceiling below: one false alarm fails).
# Injection on "holdout10" (120 attacks, 120 benign near-misses, written blind at the start of
# the tenth session, before any of its rule changes; measured after guard14 (d7badfa) was frozen
# and landed, and, for the record, on the rules it started from (6543a86): both 0.683 at FPR
# 0.058 (7/120, the ceiling below: one more false alarm fails). Not tuned on yet.
@pytest.mark.parametrize(("split", "cases", "recall", "fpr"), [
    ("holdout5", 105, 0.71, 0.02), ("holdout6", 105, 0.79, 0.03), ("holdout9", 120, 0.68, 0.0),
    ("holdout10", 120, 0.68, 0.059)])
def test_blind_holdouts_keep_their_measured_recall_and_false_positive_rate(blind_report, split, cases, recall,
                                                                           fpr):
    tally = blind_report["injection"]["by_split"][split]
    assert (tally["positives"], tally["benign"]) == (cases, cases)
    assert tally["recall"] >= recall, blind_report["injection"]["missed"]
    assert tally["false_positive_rate"] <= fpr, blind_report["injection"]["benign_flagged"]
