"""Train the learned tiers of the ``prompt_injection`` rule and choose their thresholds by
leave-one-split-out cross-validation, then write the shipped weights.

Two learned tiers, over the corpus's injection cases of the training splits (every split is
"burned": the patterns were tuned on it):

- **n-gram** (light path, ``guardrails.ngram``): a logistic regression on hashed character
  3-5-grams of the de-obfuscated text. Flags a text whose probability reaches its threshold.
- **stack** (model tier, where MiniLM runs; ``classifier: minilm-stack``): a small logistic
  regression over three features: the n-gram model's log-odds, the MiniLM logistic head's
  log-odds (``guardrails.embedding_head``) and the best cosine similarity to the attack
  exemplars. The pattern tier's hit is not an input: the patterns were tuned on every split,
  so there it looks perfect and the stack would learn to trust nothing else.

Cross-validation mimics the blind setting: each split is held out in turn, every model is
trained on the others (the stack on the base models' out-of-fold scores within them), and the
held-out split is scored. The thresholds are the lowest of a grid at which the pooled held-out
false-positive rate of the whole rule (patterns OR n-gram [OR stack]) stays <= ``--max-fpr``;
``nested`` repeats the choice inside each training fold (the threshold never sees the held-out
split), the stricter figure. The pattern tier was tuned on every split, so its share of these
figures is optimistic (its blind recall was 0.48-0.76 on each new holdout).

``--evaluate SPLIT`` instead measures the shipped rule (weights and thresholds as written,
through ``InjectionRule``) on one split of the corpus: the figure for a blind holdout.

Prints JSON.

    uv run python benchmarks/train_injection_stack.py [--write] [--max-fpr 0.02]
    uv run python benchmarks/train_injection_stack.py --evaluate holdout6 [--corpus FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from llmpulse.processors.guardrails.embedding_head import attack_probability, fit_logistic
from llmpulse.processors.guardrails.evaluation import Case, default_policy, found_by_policy, load_corpus
from llmpulse.processors.guardrails.ngram import fit_sparse_logistic, ngram_features

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "processors" / "tests" / "data" / "guardrails_corpus.jsonl"
DATA = ROOT / "processors" / "src" / "llmpulse" / "processors" / "guardrails" / "data"
EVERYDAY = ROOT / "processors" / "tests" / "data" / "everyday_benign.jsonl"
SPLITS = ["tune", "holdout2", "holdout3", "holdout4", "holdout5", "holdout6", "holdout7", "holdout8"]
WHERE = ("prompt", "context", "tool")
CALIBRATION = ["holdout5", "holdout6", "everyday"]
"""The benign cases the thresholds are held to --max-fpr on: the splits the patterns were
measured on blind (their false alarms there are their real ones) and the everyday set."""
_PLACE = {"prompt": "prompt", "context": "context", "tool": "tool_result"}
"""A case's ``where`` as the policy names the place."""
GRID = tuple(round(0.30 + 0.005 * i, 3) for i in range(140))


def _fold_of(case: Case) -> str:
    """The cross-validation fold of a case: its corpus split; an everyday case joins the
    corpus split its ``group`` hashes to, so a group (one package's README, docstrings and
    search snippets) is never in two folds."""
    if case.split != "everyday":
        return case.split
    if not case.group:
        raise ValueError(f"everyday case {case.id} has no group: cross-validation needs one")
    return SPLITS[int(hashlib.sha256(case.group.encode()).hexdigest()[:8], 16) % len(SPLITS)]


def _sigmoid(z: Any) -> Any:
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))


class Features:
    """The per-case inputs: pattern hits, n-gram matrix, MiniLM embeddings, exemplar similarity."""

    def __init__(self, cases: list[Case], bits: int, cache: Path | None) -> None:
        self.cases = cases
        self.y = np.array([c.label is not None for c in cases], dtype=np.float64)
        self.split = np.array([c.split for c in cases])
        self.where = np.array([c.where for c in cases])
        self.prompt = self.where == "prompt"
        self.fold = np.array([_fold_of(c) for c in cases])
        self.ngrams = ngram_features([c.text for c in cases], bits)
        key = hashlib.sha256("\x00".join(f"{c.where}\x01{c.text}" for c in cases).encode()).hexdigest()[:16]
        path = cache / f"injection-features-{key}.npz" if cache is not None else None
        if path is not None and path.exists():
            saved = np.load(path)
            self.patterns, self.embeddings = saved["patterns"], saved["embeddings"]
            self.similarity = saved["similarity"]
            self.embedding_backend = str(saved["backend"])
            return
        self._compute()
        if path is not None:
            np.savez(path, patterns=self.patterns, embeddings=self.embeddings, similarity=self.similarity,
                     backend=self.embedding_backend)

    def _compute(self) -> None:
        from llmpulse.processors.scoring.embeddings import EmbeddingScorer, load_exemplars

        policy = default_policy(ngram=False)
        print(f"train_injection_stack: pattern tier on {len(self.cases)} cases...", file=sys.stderr)
        self.patterns = np.array([bool(found_by_policy(policy, c)) for c in self.cases], dtype=np.float64)
        scorer = EmbeddingScorer()
        if scorer.load() is None:
            sys.exit(f"train_injection_stack: no embedding model: {scorer._missing}")
        self.embedding_backend = scorer.backend
        print(f"train_injection_stack: embedding {len(self.cases)} cases with {scorer.backend}...",
              file=sys.stderr)
        self.embeddings = np.asarray(scorer.embed([c.text for c in self.cases]), dtype=np.float64)
        exemplars = np.asarray(scorer.embed(load_exemplars(None)), dtype=np.float64)
        self.similarity = (self.embeddings @ exemplars.T).max(axis=1)


class Config:
    def __init__(self, ngram_c: float, head_c: float, stack_c: float) -> None:
        self.ngram_c, self.head_c, self.stack_c = ngram_c, head_c, stack_c

    def as_dict(self) -> dict[str, float]:
        return {"ngram_C": self.ngram_c, "head_C": self.head_c, "stack_C": self.stack_c}


_FITTED: dict[tuple[Any, ...], tuple[Any, float, Any, float]] = {}


def _base_models(f: Features, train: Any, cfg: Config) -> tuple[Any, float, Any, float]:
    """The n-gram and MiniLM-head regressions trained on the ``train`` cases (each set of
    training splits is fitted once)."""
    key = (tuple(sorted(set(f.fold[train]))), cfg.ngram_c, cfg.head_c)
    if key not in _FITTED:
        w, b = fit_sparse_logistic(f.ngrams[train], f.y[train], c=cfg.ngram_c)
        hw, hb = fit_logistic(f.embeddings[train], f.y[train], c=cfg.head_c)
        _FITTED[key] = (w, b, hw, hb)
    return _FITTED[key]


def _base_scores(f: Features, train: Any, test: Any, cfg: Config) -> tuple[Any, Any]:
    """The n-gram and MiniLM-head log-odds of the ``test`` cases, trained on ``train``."""
    w, b, hw, hb = _base_models(f, train, cfg)
    return f.ngrams[test] @ w + b, f.embeddings[test] @ hw + hb


def _stack_inputs(f: Features, rows: Any, ngram: Any, head: Any) -> Any:
    """The stack's inputs. Not the pattern tier's hit: the patterns were tuned on every
    training split, so on them it looks perfect and would drown the learned scores."""
    return np.column_stack([ngram, head, f.similarity[rows]])


def _fold(f: Features, train_splits: list[str], held: str, cfg: Config) -> dict[str, Any]:
    """Train every model on ``train_splits`` (the stack on the base models' out-of-fold
    scores within them); score the ``held`` split and, out of fold, the training cases."""
    train = np.isin(f.fold, train_splits)
    test = f.fold == held
    oof_ngram = np.zeros(len(f.y))
    oof_head = np.zeros(len(f.y))
    for inner in train_splits:
        inner_train = train & (f.fold != inner)
        inner_test = f.fold == inner
        oof_ngram[inner_test], oof_head[inner_test] = _base_scores(f, inner_train, inner_test, cfg)
    inputs = _stack_inputs(f, train, oof_ngram[train], oof_head[train])
    sw, sb = fit_logistic(inputs, f.y[train], c=cfg.stack_c)
    ngram, head = _base_scores(f, train, test, cfg)
    return {"test": test, "ngram": _sigmoid(ngram),
            "stack": np.array(attack_probability(_stack_inputs(f, test, ngram, head), sw, sb)),
            "train": train, "train_ngram": _sigmoid(oof_ngram[train]),
            "train_stack": np.array(attack_probability(inputs, sw, sb))}


def _rates(hit: Any, y: Any) -> dict[str, Any]:
    out = {}
    if (y == 1).any():
        out["recall"] = round(float(hit[y == 1].mean()), 3)
    if (y == 0).any():
        out["false_positive_rate"] = round(float(hit[y == 0].mean()), 3)
    return out


def _lowest(thresholds: tuple[float, ...], fpr: Any) -> float:
    """The lowest threshold whose false-positive rate is within the limit (the grid's top else)."""
    return next((t for t in thresholds if fpr(t)), thresholds[-1])


def _fpr(hit: Any, negatives: Any) -> float:
    return float(hit[negatives].mean())


Thresholds = dict[str, float]
"""A tier's threshold for each ``where`` (prompt, context, tool)."""


def _at(scores: Any, where: Any, thresholds: Thresholds) -> Any:
    """Which scores reach their ``where``'s threshold."""
    limit = np.array([thresholds[w] for w in where])
    return scores >= limit


def _choose(patterns: Any, ngram: Any, stack: Any, y: Any, where: Any, calibration: Any, max_fpr: float,
            per_where: bool) -> tuple[Thresholds, Thresholds]:
    """The n-gram thresholds (patterns OR n-gram within ``max_fpr`` on the ``calibration``
    benign cases of each ``where``, or of all of them when not ``per_where``), then the
    stack's (the whole rule within ``max_fpr``)."""
    groups = {w: where == w for w in WHERE} if per_where else {w: np.ones(len(y), dtype=bool) for w in WHERE}
    light: Thresholds = {}
    full: Thresholds = {}
    for w, rows in groups.items():
        neg = rows & (y == 0) & calibration
        light[w] = _lowest(GRID, lambda t, neg=neg: _fpr((patterns > 0) | (ngram >= t), neg) <= max_fpr)
        base = (patterns > 0) | (ngram >= light[w])
        full[w] = _lowest(GRID, lambda t, neg=neg, base=base: _fpr(base | (stack >= t), neg) <= max_fpr)
    return light, full


def cross_validate(f: Features, cfg: Config, max_fpr: float, per_where: bool,
                   calibrate_on: list[str]) -> dict[str, Any]:
    """Leave-one-fold-out (a fold: a corpus split with its share of the everyday set): pooled
    held-out scores, thresholds chosen on them, and the nested figure (thresholds chosen
    inside each training fold). The false-positive rate a threshold is held to is that of the
    benign cases of the ``calibrate_on`` splits: those where the pattern tier's own false
    alarms are its blind ones (it was tuned on the others, where it looks perfect)."""
    calibration = np.isin(f.split, calibrate_on)
    folds = sorted(set(f.fold), key=SPLITS.index)
    splits = [s for s in (*SPLITS, "everyday") if s in set(f.split)]
    ngram = np.zeros(len(f.y))
    stack = np.zeros(len(f.y))
    nested_light = np.zeros(len(f.y), dtype=bool)
    nested_full = np.zeros(len(f.y), dtype=bool)
    nested_thresholds = {}
    for held in folds:
        fold = _fold(f, [s for s in folds if s != held], held, cfg)
        test, train = fold["test"], fold["train"]
        ngram[test], stack[test] = fold["ngram"], fold["stack"]
        t_light, t_full = _choose(f.patterns[train], fold["train_ngram"], fold["train_stack"], f.y[train],
                                  f.where[train], calibration[train], max_fpr, per_where)
        nested_thresholds[held] = {"ngram": t_light, "stack": t_full}
        nested_light[test] = (f.patterns[test] > 0) | _at(fold["ngram"], f.where[test], t_light)
        nested_full[test] = nested_light[test] | _at(fold["stack"], f.where[test], t_full)
    t_light, t_full = _choose(f.patterns, ngram, stack, f.y, f.where, calibration, max_fpr, per_where)
    patterns = f.patterns > 0
    light = patterns | _at(ngram, f.where, t_light)
    full = light | _at(stack, f.where, t_full)
    similarity = f.prompt & (f.similarity >= 0.75)

    def per(hit: Any) -> dict[str, Any]:
        return {"all": _rates(hit, f.y), **{s: _rates(hit[f.split == s], f.y[f.split == s]) for s in splits},
                **{f"where={w}": _rates(hit[f.where == w], f.y[f.where == w]) for w in WHERE}}

    return {
        "config": cfg.as_dict(), "max_fpr": max_fpr, "per_where": per_where, "calibrate_on": calibrate_on,
        "thresholds": {"ngram": t_light, "stack": t_full},
        "patterns_alone": per(patterns),
        "ngram_alone": per(_at(ngram, f.where, t_light)),
        "stack_alone": per(_at(stack, f.where, t_full)),
        "light_patterns_or_ngram": per(light),
        "rule_patterns_or_ngram_or_stack": per(full),
        "rule_with_similarity_tier_0.75": per(full | similarity),
        "nested": {"thresholds": nested_thresholds, "light": per(nested_light), "rule": per(nested_full)},
    }


def fit_all(f: Features, cfg: Config) -> dict[str, Any]:
    """The shipped models, trained on every fold (the stack on out-of-fold scores)."""
    folds = sorted(set(f.fold), key=SPLITS.index)
    every = np.ones(len(f.y), dtype=bool)
    oof_ngram = np.zeros(len(f.y))
    oof_head = np.zeros(len(f.y))
    for held in folds:
        test = f.fold == held
        oof_ngram[test], oof_head[test] = _base_scores(f, ~test, test, cfg)
    sw, sb = fit_logistic(_stack_inputs(f, every, oof_ngram, oof_head), f.y, c=cfg.stack_c)
    nw, nb, hw, hb = _base_models(f, every, cfg)
    return {"ngram": (nw, nb), "head": (hw, hb), "stack": (sw, sb)}


def write(f: Features, models: dict[str, Any], cv: dict[str, Any], bits: int, cases: int) -> None:
    trained_on = {"corpus": "processors/tests/data/guardrails_corpus.jsonl",
                  "corpus_sha256": hashlib.sha256(CORPUS.read_bytes()).hexdigest(), "class": "injection",
                  "splits": sorted(set(f.split), key=[*SPLITS, "everyday"].index), "cases": cases,
                  "everyday": "processors/tests/data/everyday_benign.jsonl (split everyday; built by "
                              "benchmarks/everyday_benign.py)",
                  "everyday_sha256": hashlib.sha256(EVERYDAY.read_bytes()).hexdigest(),
                  "attacks": int(f.y.sum()), "benign": int(len(f.y) - f.y.sum())}
    nw, nb = models["ngram"]
    buffer = io.BytesIO()
    np.savez_compressed(buffer, weights=np.asarray(nw, dtype=np.float16))
    (DATA / "injection_ngram.npz").write_bytes(buffer.getvalue())
    (DATA / "injection_ngram.json").write_text(json.dumps({
        "name": "char-ngram-logreg", "bits": bits, "orders": [3, 4, 5], "bias": round(float(nb), 6),
        "threshold": cv["thresholds"]["ngram"], "trained_on": trained_on,
        "fit": {"method": "logistic regression, L2 (|w|^2/2C), L-BFGS from zeros; weights stored as float16",
                "C": cv["config"]["ngram_C"]},
        "cross_validated": {k: cv[k] for k in ("ngram_alone", "light_patterns_or_ngram")},
    }, indent=1) + "\n", encoding="utf-8")
    hw, hb = models["head"]
    sw, sb = models["stack"]
    (DATA / "injection_stack.json").write_text(json.dumps({
        "name": "minilm-stack", "embedding_model": "all-MiniLM-L6-v2", "embedding_dim": len(hw),
        "features": ["ngram_logit", "head_logit", "exemplar_similarity"],
        "threshold": cv["thresholds"]["stack"], "trained_on": trained_on,
        "fit": {"method": "stack: logistic regression on the base models' leave-one-split-out scores; head: "
                          "logistic regression on MiniLM embeddings; L2, Newton from zeros",
                "embedding_backend": f.embedding_backend, **cv["config"]},
        "cross_validated": {k: cv[k] for k in ("stack_alone", "rule_patterns_or_ngram_or_stack", "nested")},
        "stack_weights": [round(float(v), 6) for v in sw], "stack_bias": round(float(sb), 6),
        "head_bias": round(float(hb), 6), "head_weights": [round(float(v), 6) for v in hw],
    }, indent=1) + "\n", encoding="utf-8")
    print(f"train_injection_stack: wrote {DATA}/injection_ngram.npz, .json and injection_stack.json",
          file=sys.stderr)


def evaluate_split(corpus: Path, split: str) -> dict[str, Any]:
    """The shipped rule, tier by tier, on one split: the light path (``InjectionRule.find``:
    patterns and n-gram), the model tier (``classify``: the stack), the similarity tier (the
    embedding scorer's ``injection_similarity`` >= 0.75 on user messages, as the default policy)."""
    from llmpulse.processors.guardrails.rules import build_rule
    from llmpulse.processors.scoring.embeddings import EmbeddingScorer, load_exemplars

    if split.startswith("everyday"):
        corpus = EVERYDAY
    cases = [c for c in load_corpus(corpus) if c.cls == "injection" and c.split == split]
    if not cases:
        sys.exit(f"train_injection_stack: no injection cases of split {split} in {corpus}")
    rule = build_rule({"id": "inj", "kind": "prompt_injection", "classifier": "minilm-stack", "ngram": True,
                       "applies_to": ["prompt", "context", "tool_result"]})
    y = np.array([c.label is not None for c in cases])
    light_found = [rule.find(c.text, None, None, _PLACE[c.where]) for c in cases]
    patterns = np.array([any(m.kind != "ngram_model" for m in found) for found in light_found])
    light = np.array([bool(found) for found in light_found])
    classified = rule.classify([c.text for c in cases], [_PLACE[c.where] for c in cases])
    if classified is None:
        sys.exit(f"train_injection_stack: the stack is missing: {rule.model_missing()}")
    stack = np.array([hit is not None for hit in classified])
    scorer = EmbeddingScorer()
    scorer.load()
    exemplars = np.asarray(scorer.embed(load_exemplars(None)))
    sims = (np.asarray(scorer.embed([c.text for c in cases])) @ exemplars.T).max(axis=1)
    similarity = np.array([c.where == "prompt" for c in cases]) & (sims >= 0.75)

    def group(hit: Any, key: Any) -> dict[str, Any]:
        out = {}
        for k in sorted({key(c) for c in cases}):
            rows = np.array([key(c) == k for c in cases])
            if not y[rows].any():
                out[k] = {"false_positive_rate": round(float(hit[rows].mean()), 3)}
            elif (~y[rows]).any():
                out[k] = _rates(hit[rows], y[rows].astype(float))
            else:
                out[k] = {"recall": round(float(hit[rows].mean()), 3)}
        return out

    out: dict[str, Any] = {"split": split, "cases": len(cases), "attacks": int(y.sum()),
                           "benign": int((~y).sum()), "stack_backend": rule.load_model(),
                           "ngram_threshold": rule.ngram_threshold,
                           "stack_threshold": rule.classifier_threshold}
    configurations = {
        "patterns (default light path)": patterns,
        "patterns_or_similarity_0.75 (default policy with the embedding scorer)": patterns | similarity,
        "patterns_or_ngram (ngram: true)": light,
        "patterns_or_ngram_or_stack (ngram: true, classifier: minilm-stack)": light | stack,
        "patterns_or_ngram_or_stack_or_similarity": light | stack | similarity,
        "ngram_alone": light & ~patterns,
        "stack_alone": stack,
    }
    for name, hit in configurations.items():
        out[name] = _rates(hit, y.astype(float))
    for name, hit in (("learned", light | stack), ("patterns", patterns)):
        out[f"{name}_by_language"] = group(hit, lambda c: c.lang)
        out[f"{name}_by_family"] = group(hit, lambda c: c.label or "benign")
        out[f"{name}_by_where"] = group(hit, lambda c: c.where)
    learned = light | stack
    out["learned_missed"] = [c.id for c, h in zip(cases, learned, strict=True) if c.label and not h]
    out["learned_benign_flagged"] = [c.id for c, h in zip(cases, learned, strict=True) if not c.label and h]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--splits", nargs="+", default=SPLITS)
    parser.add_argument("--bits", type=int, default=16, help="n-gram buckets: 2**bits")
    parser.add_argument("--ngram-c", type=float, nargs="+", default=[10.0])
    parser.add_argument("--head-c", type=float, default=3.0)
    parser.add_argument("--stack-c", type=float, default=1.0)
    parser.add_argument("--max-fpr", type=float, default=0.02)
    parser.add_argument("--write", action="store_true", help="write the weights files (best config)")
    parser.add_argument("--evaluate", metavar="SPLIT", help="measure the shipped rule on this split only")
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--everyday", type=lambda s: Path(s) if s else None, default=EVERYDAY,
                        help="the everyday benign set "
                        "(benchmarks/everyday_benign.py): its split everyday is trained on; "
                        "--everyday '' for none")
    parser.add_argument("--calibrate-on", nargs="+", default=CALIBRATION,
                        help="the splits whose benign cases hold the thresholds to --max-fpr")
    parser.add_argument("--per-where", choices=("no", "yes", "both"), default="both",
                        help="thresholds per where (prompt, context, tool) or one for all; both: try each")
    parser.add_argument("--cache", type=Path, default=None, help="a folder to keep the pattern hits and "
                        "embeddings in between runs (keyed by the cases' texts)")
    args = parser.parse_args()
    if args.evaluate:
        print(json.dumps(evaluate_split(args.corpus, args.evaluate), indent=2))
        return
    cases = [c for c in load_corpus(args.corpus) if c.cls == "injection" and c.split in args.splits]
    if args.everyday is not None:
        cases += [c for c in load_corpus(args.everyday) if c.split == "everyday"]
    f = Features(cases, args.bits, args.cache)
    results = []
    for c in args.ngram_c:
        for per_where in (False, True) if args.per_where == "both" else (args.per_where == "yes",):
            print(f"train_injection_stack: cross-validating n-gram C={c}, per where {per_where}...",
                  file=sys.stderr)
            results.append(cross_validate(f, Config(c, args.head_c, args.stack_c), args.max_fpr, per_where,
                                          args.calibrate_on))
    # Chosen on the nested figure (thresholds never saw the held-out fold), recall first.
    best = max(results, key=lambda r: (r["nested"]["rule"]["all"]["recall"],
                                       r["nested"]["light"]["all"]["recall"]))
    if args.write:
        write(f, fit_all(f, Config(best["config"]["ngram_C"], args.head_c, args.stack_c)), best, args.bits,
              len(cases))
    print(json.dumps({"benchmark": "train_injection_stack", "cases": len(cases), "splits": args.splits,
                      "bits": args.bits, "embedding_backend": f.embedding_backend,
                      "chosen": {**best["config"], "per_where": best["per_where"]},
                      "candidates": results}, indent=2))


if __name__ == "__main__":
    main()
