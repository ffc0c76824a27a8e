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
from llmpulse.processors.guardrails.evaluation import load_corpus
from llmpulse.processors.scoring.embeddings import EmbeddingScorer

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "processors" / "tests" / "data" / "guardrails_corpus.jsonl"
WEIGHTS = (ROOT / "processors" / "src" / "llmpulse" / "processors" / "guardrails" / "data"
           / "injection_head_minilm.json")
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)


def _rates(p: Any, y: Any, threshold: float) -> dict[str, float]:
    hit = p >= threshold
    return {"recall": round(float(hit[y == 1].mean()), 3),
            "false_positive_rate": round(float(hit[y == 0].mean()), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--splits", nargs="+", default=["tune", "holdout2", "holdout3"])
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
    cross: dict[str, Any] = {}
    for held in args.splits:
        train = split != held
        w, b = fit_logistic(x[train], y[train], c=args.c)
        p = np.array(attack_probability(x[~train], w, b))
        cross[f"train {'+'.join(s for s in args.splits if s != held)}, test {held}"] = {
            str(t): _rates(p, y[~train], t) for t in THRESHOLDS}
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
        "bias": round(b, 6),
        "weights": [round(float(v), 6) for v in w],
    }
    if args.write:
        WEIGHTS.write_text(json.dumps(head, indent=1) + "\n", encoding="utf-8")
        print(f"train_injection_head: wrote {WEIGHTS}", file=sys.stderr)
    print(json.dumps({k: v for k, v in head.items() if k != "weights"}, indent=2))


if __name__ == "__main__":
    main()
