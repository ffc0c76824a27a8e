"""Quality and cost of the default guardrail policy: the labelled corpus, the light path,
and the worst case of every rule on pathological input.

1. **Corpus** (``processors/tests/data/guardrails_corpus.jsonl``): precision, recall and the
   false-positive rate on benign cases per class (injection, pii, secret), per language,
   per label and per split (``tune``: the rules were corrected on it, and it holds the first
   holdout since it was measured; ``holdout2``: written before its author read the rules,
   its figure before any change is the honest one, see docs/FIGURES.md; ``holdout3``: written
   blind after the rules were tuned and measured once, tuned on since; ``holdout4``: written
   blind after the rules of 8e3afb5 and measured once, tuned on since; ``holdout5``: written
   blind after the rules of be6fd22 and measured once, see docs/FIGURES.md; ``holdout6``:
   written blind, appended after the learned tiers of 640d884 were frozen and measured once
   with ``benchmarks/train_injection_stack.py --evaluate holdout6``; ``holdout7``: the same
   after the retrained tiers of 3f23e58 (tuned on since); ``holdout8``: the same after the
   rules and tiers of f34bbed (tuned on since); ``holdout9``: the same after those of guard11
   (f76195b); ``holdout10``: the same after those of guard14 (d7badfa); the ``holdout`` key stays
   in the tiers' output, empty).
2. **Cost per call** of the policy and of the whole light path (join, light scorers, the
   policy, redaction), measured in the same run on the same calls
   (``scoring_corpus.make_pairs``); the worker's goal is 3,000 calls/s, so the light path
   must stay under ~333 us a call. Process CPU time, best of ``--repeat``; the light path
   with the injection rule's n-gram tier on (off by default) is measured in the same run
   (the ratio).
3. **Worst case per rule**: each text rule of the default policy on texts built to hurt
   regular expressions (a megabyte without spaces, 100k repeated ``ignore``, deeply nested
   markup, mixed scripts, a megabyte of digits, of ``eyJ``, of letters before one ``@``),
   whole and unbounded (``rule.find``); then the policy's own bound (``max_scan_chars``)
   on the same texts.
4. With ``--similarity``: the embedding tier (MiniLM, ``injection_similarity`` >= the rule's
   threshold) on the injection cases placed in user messages, labelled by its backend.
5. With ``--classifier NAME``: the classifier tier (the ``prompt_injection`` rule's
   ``classifier``, a model fetched into ``--models-dir`` / ``$LLMPULSE_MODELS_DIR`` with
   ``llmpulse models fetch NAME``) on every injection case where it was written (prompt or
   context), recall and false-positive rate per split and language at ``--classifier-threshold``,
   labelled by its backend; ``status`` names the model when it is missing.

Prints JSON.

    uv run python benchmarks/guardrails_quality.py [--n 2000] [--repeat 3] [--similarity]
        [--classifier deberta-injection [--models-dir DIR] [--classifier-threshold 0.9]]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import string
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))

from guardrails_policy import best_s
from scoring_corpus import make_pairs

from llmpulse.processors.config import load_config
from llmpulse.processors.guardrails.base import Rule
from llmpulse.processors.guardrails.evaluation import Case, default_policy, evaluate, load_corpus
from llmpulse.processors.guardrails.policy import GuardrailPolicy
from llmpulse.processors.pipeline import Enricher, join

CORPUS = Path(__file__).resolve().parent.parent / "processors" / "tests" / "data" / "guardrails_corpus.jsonl"
MB = 1 << 20
SPLITS = ("tune", "holdout", "holdout2", "holdout3", "holdout4", "holdout5", "holdout6", "holdout7",
          "holdout8", "holdout9", "holdout10", "all")
"""The corpus splits each figure is given for (``all``: every case)."""


def pathological() -> dict[str, str]:
    rng = random.Random(7)
    alphabet = string.ascii_letters + string.digits + "+/"
    return {
        "1mb_without_spaces": "".join(rng.choice(alphabet) for _ in range(MB)),
        "100k_ignore": "ignore " * 100_000,
        "nested_markup": "<system><user><div>" * 50_000 + "</div></user></system>" * 1000,
        "mixed_scripts": "a\u0430 o\u043e e\u0435 \u03b9i \u03c1p " * (MB // 15),
        "1mb_digits_and_dashes": "1-2 3.4-5 6/7 " * (MB // 14),
        "letters_then_at": "a" * MB + "@example.com",
        "repeated_eyJ": "eyJ" * (MB // 3),
        "repeated_password_eq": "password=" * (MB // 9),
    }


def worst_case(policy: GuardrailPolicy) -> dict[str, Any]:
    texts = pathological()
    per_rule: dict[str, dict[str, float]] = {}
    for rule in policy.rules:
        if type(rule).find is Rule.find:  # a score rule: no text to scan
            continue
        per_rule[rule.id] = {}
        for name, text in texts.items():
            start = time.process_time()
            rule.find(text, None, None)
            per_rule[rule.id][name] = round((time.process_time() - start) / (len(text) / MB) * 1000, 1)
    bounded: dict[str, float] = {}
    for name, text in texts.items():
        start = time.process_time()
        for where, role in (("prompt", "user"), ("context", None), ("response", None)):
            policy.check_text(text, where, role)
        bounded[name] = round((time.process_time() - start) * 1000, 1)
    worst = {rule: max(v.items(), key=lambda kv: kv[1]) for rule, v in per_rule.items()}
    return {
        "unbounded_ms_per_mb_by_rule": per_rule,
        "worst_ms_per_mb_by_rule": {rule: {"input": k, "ms_per_mb": v} for rule, (k, v) in worst.items()},
        "bounded_policy_ms_per_text_all_three_places": bounded,
        "max_scan_chars": policy.max_scan_chars,
    }


def cost(n: int, repeat: int) -> dict[str, Any]:
    pairs = make_pairs(n)
    enricher = Enricher(load_config(environ={}), batched_scorers=[])
    policy = enricher.policy
    assert policy is not None
    calls = [join(p) for p in pairs]
    enricher.light(pairs[:200])
    light = best_s(lambda: enricher.light(pairs), repeat) / n * 1e6
    evaluate_s = best_s(lambda: [policy.evaluate(c) for c in calls], repeat) / n * 1e6
    # The same light path with the injection rule's n-gram tier on (off by default), side by side.
    ngram = Enricher(load_config(environ={}), batched_scorers=[], policy=default_policy(ngram=True))
    ngram.light(pairs[:200])
    light_ngram = best_s(lambda: ngram.light(pairs), repeat) / n * 1e6
    return {
        "calls": n,
        "gate_backend": policy.gate_backend,
        "policy_us_per_call": round(evaluate_s, 1),
        "light_path_us_per_call": round(light, 1),
        "light_path_calls_per_s": round(1e6 / light),
        "light_path_goal_calls_per_s": 3000,
        "policy_share_of_light_path": round(evaluate_s / light, 2),
        "light_path_calls_per_s_with_ngram": round(1e6 / light_ngram),
        "ngram_tier_throughput_ratio": round(light / light_ngram, 3),
    }


def similarity(policy: GuardrailPolicy, cases: list[Case]) -> dict[str, Any]:
    from llmpulse.processors.config import EmbeddingConfig
    from llmpulse.processors.scoring.embeddings import EmbeddingScorer

    scorer = EmbeddingScorer(EmbeddingConfig(threads=1))
    if scorer.load() is None:
        return {"backend": None, "status": f"model missing: {scorer._missing}"}
    rule = next(r for r in policy.rules if r.kind == "prompt_injection")
    threshold = rule.params.similarity_threshold
    prompts = [c for c in cases if c.cls == "injection" and c.where == "prompt"]
    calls = [join(p) for p in make_pairs(1)]
    base = calls[0]
    assert base.prompt is not None
    import msgspec

    from llmpulse.schemas import ChatMessage

    batch = [msgspec.structs.replace(base, prompt=msgspec.structs.replace(
        base.prompt, messages=[ChatMessage(role="user", content=c.text)])) for c in prompts]
    scores = scorer.score(batch)
    values = [next(s.value for s in r if s.name == "injection_similarity") for r in scores]
    backend = next(s.backend for s in scores[0] if s.name == "injection_similarity")
    out: dict[str, Any] = {"backend": backend, "threshold": threshold}
    for split in SPLITS:
        chosen = [(c, v) for c, v in zip(prompts, values, strict=True) if split in ("all", c.split)]
        pos = [v for c, v in chosen if c.label]
        neg = [v for c, v in chosen if not c.label]
        out[split] = {
            "positives": len(pos), "benign": len(neg),
            "recall": round(sum(v >= threshold for v in pos) / len(pos), 3) if pos else None,
            "false_positive_rate": round(sum(v >= threshold for v in neg) / len(neg), 3) if neg else None,
        }
    by_lang: dict[str, dict[str, Any]] = {}
    for lang in sorted({c.lang for c in prompts}):
        pos = [v for c, v in zip(prompts, values, strict=True) if c.lang == lang and c.label]
        by_lang[lang] = {"recall": round(sum(v >= threshold for v in pos) / len(pos), 3) if pos else None}
    out["by_language"] = by_lang
    return out


def _rates(chosen: list[tuple[Case, bool]]) -> dict[str, Any]:
    pos = [hit for c, hit in chosen if c.label]
    neg = [hit for c, hit in chosen if not c.label]
    return {"positives": len(pos), "benign": len(neg),
            "recall": round(sum(pos) / len(pos), 3) if pos else None,
            "false_positive_rate": round(sum(neg) / len(neg), 3) if neg else None}


def classifier(cases: list[Case], model: str, models_dir: str | None, threshold: float) -> dict[str, Any]:
    """The classifier tier alone, through the policy's ``evaluate_models``, on each case as a
    user message or a retrieved document (where the corpus placed it)."""
    from llmpulse.schemas import ChatMessage, EnrichedCall, PromptEvent, RetrievedDocument

    policy = GuardrailPolicy.from_yaml(json.dumps({"rules": [{
        "id": "classifier", "kind": "prompt_injection", "applies_to": ["prompt", "context"],
        "roles": ["user", "tool"], "builtin_patterns": False, "deobfuscate": False,
        "similarity_threshold": None, "classifier": model, "classifier_threshold": threshold,
        "classifier_models_dir": models_dir}]}))
    backend = policy.load_models()["classifier"]
    if policy.models_missing:
        missing = policy.models_missing["classifier"]
        return {"model": model, "backend": None, "status": f"model missing: {missing}"}
    chosen = [c for c in cases if c.cls == "injection"]
    calls = []
    for i, c in enumerate(chosen):
        doc = c.where == "context"
        prompt = PromptEvent(call_id=str(i), app="bench",
                             messages=[] if doc else [ChatMessage(role="user", content=c.text)],
                             retrieved_context=[RetrievedDocument(id="d0", content=c.text)] if doc else [])
        calls.append(EnrichedCall(call_id=str(i), app="bench", prompt=prompt))
    start = time.perf_counter()
    results = policy.evaluate_models(calls)
    elapsed = time.perf_counter() - start
    hits = [bool(r.verdicts) for r in results]
    out: dict[str, Any] = {"model": model, "backend": backend, "threshold": threshold,
                           "ms_per_text": round(elapsed * 1000 / max(1, len(calls)), 2)}
    for split in SPLITS:
        out[split] = _rates([(c, h) for c, h in zip(chosen, hits, strict=True) if split in ("all", c.split)])
    out["by_language"] = {lang: _rates([(c, h) for c, h in zip(chosen, hits, strict=True) if c.lang == lang])
                          for lang in sorted({c.lang for c in chosen})}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--similarity", action="store_true", help="also score the MiniLM similarity tier")
    parser.add_argument("--skip-worst-case", action="store_true")
    parser.add_argument("--classifier", metavar="NAME", help="also score the classifier tier with this model "
                        "of the models folder (llmpulse models fetch NAME)")
    parser.add_argument("--models-dir", default=None, help="the models folder (default $LLMPULSE_MODELS_DIR)")
    parser.add_argument("--classifier-threshold", type=float, default=0.9)
    args = parser.parse_args()
    print("guardrails_quality: corpus...", file=sys.stderr)
    policy = GuardrailPolicy.load()
    cases = load_corpus(CORPUS)
    report = evaluate(policy, cases)
    print("guardrails_quality: cost per call...", file=sys.stderr)
    out: dict[str, Any] = {
        "benchmark": "guardrails_quality",
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "policy_version": policy.version,
        "corpus_cases": len(cases),
        "corpus": report,
        "cost": cost(args.n, args.repeat),
    }
    if not args.skip_worst_case:
        print("guardrails_quality: worst case per rule...", file=sys.stderr)
        out["worst_case"] = worst_case(policy)
    if args.similarity:
        print("guardrails_quality: similarity tier...", file=sys.stderr)
        out["similarity_tier"] = similarity(policy, cases)
    if args.classifier:
        print(f"guardrails_quality: classifier tier ({args.classifier})...", file=sys.stderr)
        out["classifier_tier"] = classifier(cases, args.classifier, args.models_dir,
                                            args.classifier_threshold)
    print(json.dumps(out, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
