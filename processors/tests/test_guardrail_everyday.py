"""The everyday benign set of the ``prompt_injection`` rule (``data/everyday_benign.jsonl``,
built by ``benchmarks/everyday_benign.py`` from real text installed on the machine): well
formed, its held-out part never trained on, and the light path's false alarms on it kept at
their measured floors (docs/FIGURES.md)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from llmpulse.processors.guardrails.evaluation import default_policy, evaluate, load_corpus
from llmpulse.processors.guardrails.ngram import load_ngram_model

EVERYDAY = Path(__file__).parent / "data" / "everyday_benign.jsonl"


def _rows() -> list[dict]:
    return [json.loads(line) for line in EVERYDAY.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")]


def test_the_everyday_set_is_benign_sourced_and_spread_over_places_and_languages():
    rows = _rows()
    assert len(rows) >= 500 and all(r["class"] == "injection" and r["label"] is None for r in rows)
    assert all(r["source"] and r["group"] and r["text"].strip() for r in rows)
    assert len({r["text"] for r in rows}) == len(rows)
    assert {r["lang"] for r in rows} >= {"en", "fr", "de", "es", "it", "pt", "nl"}
    places = Counter((r["split"], r["where"]) for r in rows)
    for split in ("everyday", "everyday_heldout"):
        assert places[(split, "context")] >= 100 and places[(split, "tool")] >= 100, places


def test_the_held_out_part_shares_no_source_group_with_what_is_trained_on():
    rows = _rows()
    trained = {r["group"] for r in rows if r["split"] == "everyday"}
    held = {r["group"] for r in rows if r["split"] == "everyday_heldout"}
    assert held and trained and not held & trained
    info = load_ngram_model().info["trained_on"]
    assert "everyday" in info["splits"] and "everyday_heldout" not in info["splits"]


@pytest.mark.parametrize(("ngram", "split", "fpr"), [
    (False, "everyday", 0.0), (False, "everyday_heldout", 0.0), (True, "everyday_heldout", 0.0),
])
def test_false_alarms_on_everyday_traffic_stay_at_their_measured_floor(ngram, split, fpr):
    """The default policy's patterns, and with the n-gram tier on, on real documents and tool
    results: no false alarm on any of them when measured (docs/FIGURES.md)."""
    cases = [c for c in load_corpus(EVERYDAY) if c.split == split]
    report = evaluate(default_policy(ngram=ngram), cases)["injection"]
    assert report["benign"] == len(cases)
    assert report["false_positive_rate"] <= fpr, report["benign_flagged"]
