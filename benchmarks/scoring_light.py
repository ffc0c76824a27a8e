"""Cost of the light path: join + light scorers + the default guardrail policy, per call.

The worker's goal is 3,000 calls/s, so this path must stay well under ~150 us a call on
the reference CPU. The baseline, measured in the same run, is what the worker pays anyway
for each call: decoding its prompt and response events from JSON (msgspec, validated).
Times are the process's CPU time (the machine is shared), best of ``--repeat``. Prints JSON.

    uv run python benchmarks/scoring_light.py [--n 4000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(__file__))

from scoring_corpus import make_pairs

from llmpulse.processors.config import load_config
from llmpulse.processors.guardrails.policy import GuardrailPolicy
from llmpulse.processors.pipeline import Enricher, join
from llmpulse.processors.scoring import OperationsScorer, QualityScorer
from llmpulse.schemas import decode_event, encode_event

BUDGET_US = 150.0


def best_us(fn: Callable[[], object], n: int, repeat: int) -> float:
    """The best of ``repeat`` runs, in microseconds per call."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    pairs = make_pairs(args.n)
    encoded = [(encode_event(p.prompt), encode_event(p.response)) for p in pairs]  # type: ignore[arg-type]
    config = load_config(environ={})
    enricher = Enricher(config, batched_scorers=[])
    policy = enricher.policy
    assert policy is not None
    pure = GuardrailPolicy.load(use_hyperscan=False)
    calls = [join(p) for p in pairs]
    ops, quality = OperationsScorer(), QualityScorer()
    enricher.light(pairs[:200])  # warm caches (system prompt, price lookups)
    pure.evaluate(calls[0])

    decode = best_us(lambda: [(decode_event(a), decode_event(b)) for a, b in encoded], args.n, args.repeat)
    light = best_us(lambda: enricher.light(pairs), args.n, args.repeat)
    parts = {
        "join": best_us(lambda: [join(p) for p in pairs], args.n, args.repeat),
        "operations": best_us(lambda: [ops.score_one(c) for c in calls], args.n, args.repeat),
        "quality": best_us(lambda: [quality.score_one(c) for c in calls], args.n, args.repeat),
        "policy": best_us(lambda: [policy.evaluate(c) for c in calls], args.n, args.repeat),
        "policy_pure_python_gates": best_us(lambda: [pure.evaluate(c) for c in calls], args.n, args.repeat),
    }
    verdicts = sum(len(c.verdicts) for c in enricher.light(pairs))
    print(json.dumps({
        "benchmark": "scoring_light",
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "calls": args.n,
        "policy_version": policy.version,
        "gate_backend": policy.gate_backend,
        "verdicts_per_call": round(verdicts / args.n, 3),
        "light_us_per_call": round(light, 1),
        "light_calls_per_s": round(1e6 / light),
        "budget_us_per_call": BUDGET_US,
        "within_budget": light < BUDGET_US,
        "baseline_decode_us_per_call": round(decode, 1),
        "light_vs_decode_ratio": round(light / decode, 2),
        "parts_us_per_call": {k: round(v, 1) for k, v in parts.items()},
        "hyperscan_gate_speedup": round(parts["policy_pure_python_gates"] / parts["policy"], 2),
    }, indent=2))


if __name__ == "__main__":
    main()
