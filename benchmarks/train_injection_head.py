"""Train the ``minilm-logreg`` injection head (``guardrails/embedding_head.py``) and write its
weights with their provenance to ``guardrails/data/injection_head_minilm.json``.

Embeds the corpus's injection cases of the training splits with MiniLM (the embedding
scorer's model), prints cross-validated figures (train on all training splits but one, test
on that one, at each threshold), then fits the head on all training splits. Deterministic:
the same corpus and model give the same weights. Prints JSON.

    uv run python benchmarks/train_injection_head.py [--splits tune holdout2 holdout3] [--c 3]
        [--threshold 0.8] [--write]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from llmpulse.processors.guardrails.embedding_head import HEAD_NAME, attack_probability, fit_logistic
from llmpulse.processors.guardrails.evaluation import Case, found_by_policy, load_corpus
from llmpulse.processors.guardrails.policy import GuardrailPolicy
from llmpulse.processors.scoring.embeddings import EmbeddingScorer

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "processors" / "tests" / "data" / "guardrails_corpus.jsonl"
WEIGHTS = (ROOT / "processors" / "src" / "llmpulse" / "processors" / "guardrails" / "data"
           / "injection_head_minilm.json")
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)
GRID = tuple(round(0.5 + 0.01 * i, 2) for i in range(50))
MAX_FPR = 0.02


def _rates(p: Any, y: Any, threshold: float) -> dict[str, float]:
    hit = p >= threshold
    return {"recall": round(float(hit[y == 1].mean()), 3),
            "false_positive_rate": round(float(hit[y == 0].mean()), 3)}


def _held_out_probabilities(x: Any, y: Any, split: Any, splits: list[str], c: float) -> Any:
    """Each case's attack probability from the head fitted on every split but its own (one
    fit a fold, shared by both cross-validated figures)."""
    held_p = np.zeros(len(y))
    for held in splits:
        train = split != held
        w, b = fit_logistic(x[train], y[train], c=c)
        held_p[~train] = attack_probability(x[~train], w, b)
    return held_p


def _combined_cross_validation(cases: list[Case], held_p: Any, y: Any, split: Any,
                               splits: list[str]) -> dict[str, Any]:
    """Patterns OR head, each split held out in turn: the lowest threshold of ``GRID`` at which
    every held-out split keeps the combination's false-positive rate <= ``MAX_FPR``, and the
    pooled held-out recall and FPR there against the patterns' alone. (The patterns were tuned
    on every one of these splits, so their recall here is optimistic and the head's gain
    over them is a lower bound of what it adds on new phrasings.)"""
    policy = GuardrailPolicy.load()
    patterns = np.array([bool(found_by_policy(policy, case)) for case in cases])
    def rates(hit: Any, mask: Any) -> dict[str, float]:
        return {"recall": round(float(hit[mask & (y == 1)].mean()), 3),
                "false_positive_rate": round(float(hit[mask & (y == 0)].mean()), 3)}
    every = np.ones(len(cases), dtype=bool)
    chosen = next((t for t in GRID if all(rates(patterns | (held_p >= t), split == s)["false_positive_rate"]
                                          <= MAX_FPR for s in splits)), None)
    out: dict[str, Any] = {"patterns_alone": rates(patterns, every), "max_fpr_per_split": MAX_FPR,
                           "threshold": chosen}
    if chosen is not None:
        hit = patterns | (held_p >= chosen)
        out["patterns_or_head"] = rates(hit, every)
        out["by_split"] = {s: rates(hit, split == s) for s in splits}
        out["raises_recall"] = out["patterns_or_head"]["recall"] > out["patterns_alone"]["recall"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--splits", nargs="+", default=["tune", "holdout2", "holdout3", "holdout4"])
    parser.add_argument("--c", type=float, default=3.0, help="inverse L2 strength")
    parser.add_argument("--threshold", type=float, default=0.8, help="the threshold the file suggests")
    parser.add_argument("--write", action="store_true", help="write the weights file")
    args = parser.parse_args()
    cases = [c for c in load_corpus(CORPUS) if c.cls == "injection" and c.split in args.splits]
    scorer = EmbeddingScorer()
    if scorer.load() is None:
        sys.exit(f"train_injection_head: no embedding model: {scorer._missing}")
    print(f"train_injection_head: embedding {len(cases)} cases with {scorer.backend}...", file=sys.stderr)
    x = np.asarray(scorer.embed([c.text for c in cases]), dtype=np.float64)
    y = np.array([c.label is not None for c in cases], dtype=np.float64)
    split = np.array([c.split for c in cases])
    held_p = _held_out_probabilities(x, y, split, args.splits, args.c)
    cross = {f"train {'+'.join(s for s in args.splits if s != held)}, test {held}": {
        str(t): _rates(held_p[split == held], y[split == held], t) for t in THRESHOLDS}
        for held in args.splits}
    combined = _combined_cross_validation(cases, held_p, y, split, args.splits)
    w, b = fit_logistic(x, y, c=args.c)
    head = {
        "name": HEAD_NAME,
        "embedding_model": "all-MiniLM-L6-v2",
        "embedding_dim": int(x.shape[1]),
        "trained_on": {"corpus": "processors/tests/data/guardrails_corpus.jsonl",
                       "corpus_sha256": hashlib.sha256(CORPUS.read_bytes()).hexdigest(),
                       "class": "injection", "splits": args.splits, "cases": len(cases),
                       "attacks": int(y.sum()), "benign": int(len(y) - y.sum())},
        "fit": {"method": "logistic regression, L2 (|w|^2/2C summed over cases), Newton from zeros",
                "C": args.c, "embedding_backend": scorer.backend},
        "suggested_threshold": args.threshold,
        "cross_validated": cross,
        "cross_validated_with_patterns": combined,
        "bias": round(b, 6),
        "weights": [round(float(v), 6) for v in w],
    }
    if args.write:
        WEIGHTS.write_text(json.dumps(head, indent=1) + "\n", encoding="utf-8")
        print(f"train_injection_head: wrote {WEIGHTS}", file=sys.stderr)
    print(json.dumps({k: v for k, v in head.items() if k != "weights"}, indent=2))


if __name__ == "__main__":
    main()
