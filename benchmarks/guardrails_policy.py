"""Cost of the default guardrail policy per call, against a bare ``re.search`` pass.

Every text of each call (messages, retrieved documents, answer) goes through the default
policy, with the Hyperscan gate and with pure-Python gates. The baseline, measured in the
same run on the same texts, is one ``re.search`` of a plain e-mail pattern per text: the
least any regex guardrail can cost. Times are the process's CPU time, best of ``--repeat``.
Prints JSON.

    uv run python benchmarks/guardrails_policy.py [--n 4000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(__file__))

from scoring_corpus import make_pairs

from llmpulse.processors.guardrails.policy import GuardrailPolicy, segments
from llmpulse.processors.pipeline import join

EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")


def best_s(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    calls = [join(p) for p in make_pairs(args.n)]
    texts = [s.text for c in calls for s in segments(c)]
    kilobytes = sum(len(t.encode()) for t in texts) / 1024
    fast = GuardrailPolicy.load()
    pure = GuardrailPolicy.load(use_hyperscan=False)
    fast.evaluate(calls[0])
    pure.evaluate(calls[0])

    baseline = best_s(lambda: [EMAIL.search(t) for t in texts], args.repeat)
    hyperscan = best_s(lambda: [fast.evaluate(c) for c in calls], args.repeat)
    python = best_s(lambda: [pure.evaluate(c) for c in calls], args.repeat)
    verdicts = [v for c in calls for v in fast.evaluate(c).verdicts]
    by_rule: dict[str, int] = {}
    for v in verdicts:
        by_rule[v.rule_id] = by_rule.get(v.rule_id, 0) + 1
    print(json.dumps({
        "benchmark": "guardrails_policy",
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "calls": args.n,
        "texts": len(texts),
        "mean_kb_per_call": round(kilobytes / args.n, 2),
        "policy_version": fast.version,
        "rules": len(fast.rules),
        "verdicts_by_rule": by_rule,
        "hyperscan_gate_us_per_call": round(hyperscan / args.n * 1e6, 1),
        "hyperscan_gate_us_per_kb": round(hyperscan / kilobytes * 1e6, 1),
        "pure_python_gates_us_per_call": round(python / args.n * 1e6, 1),
        "baseline_one_re_search_us_per_call": round(baseline / args.n * 1e6, 1),
        "ratio_hyperscan_to_baseline": round(hyperscan / baseline, 2),
        "ratio_pure_python_to_baseline": round(python / baseline, 2),
        "hyperscan_speedup": round(python / hyperscan, 2),
    }, indent=2))


if __name__ == "__main__":
    main()
