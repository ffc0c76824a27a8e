"""How often a rare rate's rise can be detected at all: the rate scan against an oracle.

Counts only, at the settings of ``drift_detection.py`` (windows of 200 calls, a reference
of 8 windows, the shift from half-way through the first window, a share q of the calls
shifted), with the base and shifted rates of ``TrafficGenerator``'s rate shifts:
errors 1% -> 20%, refusals 3% -> 30%, guardrail flags (``toxicity_up``) 1% -> 25%, thumbs
down 13.5% -> 51% of the ~60 thumbs a window (``feedback_collapse``).

For each, the share of runs detected within w windows (w = 1..6) by

- ``scan``: ``stats.rate_scan_test`` (what ``DriftMonitor`` runs) at ``--level``, by
  default the level weighted Holm gives a rate in the benchmark's family when it has the
  smallest p-value (alpha 0.005 x 3 / 43: 25 other tests of weight 1, 6 rates of 3; the
  tool-mix category, one more test, makes it 3 / 44);
- ``scan_long``: the same scan against the rates' long baseline of
  ``--long-reference-windows`` windows (default 100: ``rate_reference_calls`` 20,000 at
  windows of 200; the short reference's calls and as many more), as a pinned key has once
  it absorbed that many stationary windows;
- ``oracle``: an exact one-sided binomial test of the calls since the shift began, at the
  same level, with the base rate *known* and the change's start *known*: no test that must
  estimate either from the data can do better.

So where the oracle stays below 1, the goal is beyond the evidence in the windows, not a
weakness of the test. Prints JSON.

    uv run python benchmarks/drift_rate_power.py [--sims 150] [--level 3.49e-4]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from scipy import stats as sps

from llmpulse.processors.drift.stats import rate_scan_test

RATES = {  # name: (base rate, rate of a shifted call, events' calls per window / window calls)
    "errors_up": (0.01, 0.20, 1.0),
    "refusals_up": (0.03, 0.30, 0.99),
    "toxicity_up (guardrail flags)": (0.01, 0.25, 1.0),
    "feedback_collapse (thumbs down)": (0.1347, 0.507, 0.3),
}


def _detected_within(first: list[int | None], windows: int) -> list[float]:
    return [round(sum(1 for d in first if d is not None and d <= w) / len(first), 3)
            for w in range(1, windows + 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=150)
    parser.add_argument("--window", type=int, default=200)
    parser.add_argument("--reference-windows", type=int, default=8)
    parser.add_argument("--scan-windows", type=int, default=6)
    parser.add_argument("--windows-after", type=int, default=6)
    parser.add_argument("--long-reference-windows", type=int, default=100)
    parser.add_argument("--level", type=float, default=0.005 * 3 / 43)
    args = parser.parse_args()
    started = time.perf_counter()
    out: dict[str, object] = {"config": vars(args), "rates": {}}
    for name, (base, shifted, per_call) in RATES.items():
        size = round(args.window * per_call)
        ref_n = args.reference_windows * size
        out["rates"][name] = {}  # type: ignore[index]
        for q in (0.1, 0.3):
            rate = base + q * (shifted - base)
            rng = np.random.default_rng(7)
            scan: list[int | None] = []
            scan_long: list[int | None] = []
            oracle: list[int | None] = []
            for sim in range(args.sims):
                ref = int(rng.binomial(ref_n, base))
                long_n = args.long_reference_windows * size
                ref_long = ref + int(rng.binomial(max(0, long_n - ref_n), base))
                half = size // 2
                before = [int(rng.binomial(size, base)) for _ in range(2)]
                shift_hits = [int(rng.binomial(size - half, rate))]
                windows = [*before, int(rng.binomial(half, base)) + shift_hits[0]]
                for _ in range(args.windows_after - 1):
                    shift_hits.append(int(rng.binomial(size, rate)))
                    windows.append(shift_hits[-1])
                found_scan = found_oracle = found_long = None
                for w in range(1, args.windows_after + 1):
                    upto = windows[:2 + w][-args.scan_windows:]
                    if found_scan is None and rate_scan_test(
                            upto, [size] * len(upto), ref, ref_n, seed=sim * 16 + w).p_value < args.level:
                        found_scan = w
                    if found_long is None and rate_scan_test(
                            upto, [size] * len(upto), ref_long, max(long_n, ref_n),
                            seed=sim * 16 + w).p_value < args.level:
                        found_long = w
                    hits, calls = sum(shift_hits[:w]), (size - half) + (w - 1) * size
                    if found_oracle is None and sps.binom.sf(hits - 1, calls, base) < args.level:
                        found_oracle = w
                scan.append(found_scan)
                scan_long.append(found_long)
                oracle.append(found_oracle)
            out["rates"][name][str(q)] = {  # type: ignore[index]
                "rate": [base, round(rate, 4)],
                "scan_detected_within_w": _detected_within(scan, args.windows_after),
                "oracle_detected_within_w": _detected_within(oracle, args.windows_after),
                "scan_long_detected_within_w": _detected_within(scan_long, args.windows_after),
            }
    out["wall_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
