"""How often a rare rate's rise can be detected at all: the rate scan against an oracle.

Counts only, at the settings of ``drift_detection.py`` (windows of 200 calls, a reference
of 8 windows, the shift from half-way through the first window, a share q of the calls
shifted), with the base and shifted rates of ``TrafficGenerator``'s rate shifts:
errors 1% -> 20%, refusals 3% -> 30%, guardrail flags (``toxicity_up``) 1% -> 25%, thumbs
down 13.5% -> 51% of the ~60 thumbs a window (``feedback_collapse``).

For each, the share of runs detected within w windows (w = 1..6) by

- ``scan``: ``stats.rate_scan_test`` (what ``DriftMonitor``'s ``rate_test: scan`` runs, and
  ``auto`` on a short baseline) at ``--level``, by default the level weighted Holm gives a
  rate in the benchmark's family when it has the smallest p-value (alpha 0.005 x
  ``rate_share`` 0.75 / 6 rates = 6.25e-4; 3.49e-4 before ``rate_share``, when each of the 6
  rates weighed 3 against 1 for each of 25 other tests);
- ``scan_long``: the same scan against the rates' long baseline of
  ``--long-reference-windows`` windows (default 100: ``rate_reference_calls`` 20,000 at
  windows of 200; the short reference's calls and as many more), as a pinned key has once
  it absorbed that many stationary windows;
- ``window_alone``: the per-window test, the window being closed alone (a scan of one
  window) against the long baseline: what testing each window by itself would find;
- ``cusum``: a Bernoulli CUSUM tuned to twice the base rate (``--cusum-rise``) over the
  last ``--cusum-windows`` windows against the long baseline, its p-value exact as the
  scan's (``rate_scan_test(rise=...)``): the sequential test the scan is a GLR version of;
- ``cusum_monitor`` / ``cusum_monitor_long``: what ``DriftMonitor`` now runs
  (``rate_test: cusum``): ``cusum.rate_cusum_test``, a Bernoulli CUSUM tuned to twice the
  baseline rate (and one to eight times, with a tenth of the level) over the last
  ``--scan-windows`` windows, its p-value the share of stationary windows in which it would
  alarm when restarted after each alarm (closed form, averaged over the baseline rate's
  posterior), against the 1,600-call reference and against the long baseline;
- ``auto_monitor`` / ``auto_monitor_long``: what ``DriftMonitor`` runs by default
  (``rate_test: auto``, ``compare.uses_cusum``): the CUSUM where the baseline's calls times
  the rate's ``rate_prior`` reach ``rate_cusum_events`` (300), the scan elsewhere, against the
  1,600-call reference and the long baseline (the ``scan`` or ``cusum_monitor`` columns'
  finding, as the pick says);
- ``cusum_known_rate``: the monitor's CUSUM with the base rate known (a baseline of 1e9
  calls at it): against ``cusum_monitor_long``, what estimating the rate from 20,000 calls
  costs; against ``oracle``, what not knowing the change's start costs;
- ``oracle``: an exact one-sided binomial test of all the calls since the shift began
  (pooled over the windows, not one window alone), at the same level, with the base rate
  *known* and the change's start *known*: no test that must estimate either from the data
  can do better.

``stationary``: the share of stationary windows (``--stationary-windows`` per rate, each
window's scan over the last ``--scan-windows`` against the long baseline, at
``--stationary-level``, larger than the monitor's so that false alarms are frequent enough
to count) the scan rejects, with and without the cut at an alarm the monitor makes (a rate
whose scan fired scans only the windows after it): the sequential test's calibration; and
(``cusum_*``) the share the CUSUM rejects with the cut, against the long baseline and
against short references (``--reference-windows``, a new draw every
``--stationary-run`` windows, so the reference's own noise counts), at
``--stationary-level`` and at ``--stationary-low-level`` (closer to the monitor's level).

``--levels L1,L2,...`` (``by_level``): instead of all that, the monitor's rate test
(``compare.rate_test``, against the 1,600-call reference and the long baseline) and the
oracle at each level, from one run's p-values on the same draws: what a larger share of
alpha buys the rates (``rate_share``).

So where the oracle stays below 1, the goal is beyond the evidence in the windows, not a
weakness of the test. Prints JSON.

    uv run python benchmarks/drift_rate_power.py [--sims 150] [--level 6.25e-4]
        [--stationary-windows 2000] [--stationary-level 0.01] [--levels 3.49e-4,6.25e-4]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from scipy import stats as sps

from llmpulse.processors.drift.baseline import RateBaseline
from llmpulse.processors.drift.compare import rate_test, uses_cusum
from llmpulse.processors.drift.config import DriftConfig
from llmpulse.processors.drift.cusum import rate_cusum_test
from llmpulse.processors.drift.stats import rate_scan_test, single_threaded

RATES = {  # name: (base rate, rate of a shifted call, events' calls per window / window calls,
    #         the monitor's name of the rate)
    "errors_up": (0.01, 0.20, 1.0, "error"),
    "refusals_up": (0.03, 0.30, 0.99, "refusal"),
    "toxicity_up (guardrail flags)": (0.01, 0.25, 1.0, "guardrail"),
    "feedback_collapse (thumbs down)": (0.1347, 0.507, 0.3, "thumbs_down_share"),
}


def _draw(rng: np.random.Generator, base: float, rate: float, size: int,
          args: argparse.Namespace) -> tuple[int, int, list[int], list[int], list[int]]:
    """One run's counts: the reference's events, the long baseline's, the windows (2
    stationary, then the shift from half-way through the third), the shifted calls' events
    of each shifted window, and ``--cusum-windows`` earlier stationary windows."""
    ref_n = args.reference_windows * size
    ref = int(rng.binomial(ref_n, base))
    long_n = args.long_reference_windows * size
    ref_long = ref + int(rng.binomial(max(0, long_n - ref_n), base))
    half = size // 2
    before = [int(rng.binomial(size, base)) for _ in range(2)]
    earlier = [int(rng.binomial(size, base)) for _ in range(args.cusum_windows)]
    shift_hits = [int(rng.binomial(size - half, rate))]
    windows = [*before, int(rng.binomial(half, base)) + shift_hits[0]]
    for _ in range(args.windows_after - 1):
        shift_hits.append(int(rng.binomial(size, rate)))
        windows.append(shift_hits[-1])
    return ref, ref_long, windows, shift_hits, earlier


def _by_level(args: argparse.Namespace, levels: list[float]) -> dict[str, object]:
    """Detection within w windows at each of ``levels``, from one run's p-values (the same
    draws as the columns): the monitor's ``rate_test`` (``auto`` by default) against the
    1,600-call reference and the long baseline, the oracle, and ``oracle_reference``: the start
    known but the base rate not, the shifted calls against the reference and the windows before
    the shift (one-sided Fisher, knowing the change point): a reference line for what that
    reference allows, not a bound on what any test can find. A window's test is run until a
    p-value falls below the smallest level (a run found then is found at all)."""
    cfg = DriftConfig()
    out: dict[str, object] = {}
    for name, (base, shifted, per_call, rate_name) in RATES.items():
        if args.only not in name:
            continue
        size = round(args.window * per_call)
        ref_n = args.reference_windows * size
        long_n = max(args.long_reference_windows, args.reference_windows) * size
        out[name] = {}
        for q in (0.1, 0.3):
            rate = base + q * (shifted - base)
            rng = np.random.default_rng(7)
            first: dict[str, list[list[float]]] = {"auto": [], "auto_long": [], "oracle": [],
                                                   "oracle_reference": []}
            for sim in range(args.sims):
                ref, ref_long, windows, shift_hits, _earlier = _draw(rng, base, rate, size, args)
                runs: dict[str, list[float]] = {column: [] for column in first}
                for w in range(1, args.windows_after + 1):
                    upto = windows[:2 + w][-args.scan_windows:]
                    for column, (hits, calls) in (("auto", (ref, ref_n)), ("auto_long", (ref_long, long_n))):
                        if min(runs[column], default=1.0) >= min(levels):
                            runs[column].append(rate_test(cfg, rate_name, upto, [size] * len(upto), hits,
                                                          calls, seed=sim * 16 + w).p_value)
                    pooled = (size - size // 2) + (w - 1) * size
                    runs["oracle"].append(float(sps.binom.sf(sum(shift_hits[:w]) - 1, pooled, base)))
                    known = [[sum(shift_hits[:w]), pooled - sum(shift_hits[:w])],  # start known, the
                             [ref + sum(windows[:2]), ref_n + 2 * size - ref - sum(windows[:2])]]  # rate not
                    runs["oracle_reference"].append(float(sps.fisher_exact(known, alternative="greater")[1]))
                for column, p_values in runs.items():
                    first[column].append(p_values)
            out[name][str(q)] = {  # type: ignore[index]
                f"{level:.3g}": {f"{column}_detected_within_w": _detected_within(
                    [next((w + 1 for w, p in enumerate(ps) if p < level), None) for ps in runs_p],
                    args.windows_after) for column, runs_p in first.items()}
                for level in levels}
    return out


def _detected_within(first: list[int | None], windows: int) -> list[float]:
    return [round(sum(1 for d in first if d is not None and d <= w) / len(first), 3)
            for w in range(1, windows + 1)]


def _stationary(base: float, size: int, args: argparse.Namespace) -> dict[str, object]:
    """False alarms of the scan over a run of unchanged windows, with and without the cut
    (the monitor's own: ``RateBaseline.scan_limits`` / ``passed``)."""
    rng = np.random.default_rng(11)
    long_n = args.long_reference_windows * size
    ref = int(rng.binomial(long_n, base))
    hits = rng.binomial(size, base, size=args.stationary_windows).tolist()
    plain = cut = 0
    state = RateBaseline()  # the cut scan's: the windows since it last fired
    for t in range(1, len(hits) + 1):
        upto = hits[:t][-args.scan_windows:]
        p_plain = rate_scan_test(upto, [size] * len(upto), ref, long_n, seed=t).p_value
        plain += p_plain < args.stationary_level
        kept = hits[:t][-state.scan_limits().get("rate", args.scan_windows):]
        p_cut = p_plain if kept == upto else rate_scan_test(kept, [size] * len(kept), ref, long_n,
                                                            seed=t).p_value
        fired = p_cut < args.stationary_level
        cut += fired
        state.passed(["rate"] if fired else [], args.scan_windows)
    n = len(hits)
    out: dict[str, object] = {"windows": n, "level": args.stationary_level,
                              "scan_false_alarm_rate": round(plain / n, 4),
                              "scan_cut_false_alarm_rate": round(cut / n, 4)}
    out["cusum_long_false_alarm_rate"] = _cusum_alarms(hits, size, [(ref, long_n)],
                                                       args.stationary_level, args.scan_windows)[0]
    short_n = args.reference_windows * size
    for label, level in (("", args.stationary_level), ("_low", args.stationary_low_level)):
        runs = args.stationary_windows * (1 if not label else args.stationary_low_factor)
        many = rng.binomial(size, base, size=runs).tolist()
        refs = [(int(rng.binomial(short_n, base)), short_n) for _ in range(0, runs, args.stationary_run)]
        rate, count = _cusum_alarms(many, size, refs, level, args.scan_windows, run=args.stationary_run)
        out[f"cusum_short{label}_false_alarm_rate"] = rate
        out[f"cusum_short{label}_windows"] = runs
        out[f"cusum_short{label}_alarms"] = count
    out["low_level"] = args.stationary_low_level
    return out


def _cusum_alarms(hits: list[int], window: int, refs: list[tuple[int, int]], level: float,
                  scan_windows: int, *, run: int = 0) -> tuple[float, int]:
    """The share of windows (of ``window`` calls) the CUSUM fires on, restarted after each
    alarm (the monitor's cut); a new reference and a fresh start every ``run`` windows (0: one
    reference throughout)."""
    alarms, state, seen = 0, RateBaseline(), 0
    for t in range(len(hits)):
        if run and t % run == 0:
            state, seen = RateBaseline(), 0
        ref, ref_n = refs[t // run if run else 0]
        seen += 1
        kept = hits[t + 1 - min(seen, state.scan_limits().get("rate", scan_windows)):t + 1]
        fired = rate_cusum_test(kept, [window] * len(kept), ref, ref_n).p_value < level
        alarms += fired
        state.passed(["rate"] if fired else [], scan_windows)
    return round(alarms / len(hits), 5), alarms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=150)
    parser.add_argument("--window", type=int, default=200)
    parser.add_argument("--reference-windows", type=int, default=8)
    parser.add_argument("--scan-windows", type=int, default=6)
    parser.add_argument("--windows-after", type=int, default=6)
    parser.add_argument("--long-reference-windows", type=int, default=100)
    parser.add_argument("--level", type=float, default=DriftConfig().alpha * DriftConfig().rate_share / 6)
    parser.add_argument("--cusum-rise", type=float, default=2.0)
    parser.add_argument("--cusum-windows", type=int, default=8)
    parser.add_argument("--stationary-windows", type=int, default=2000)
    parser.add_argument("--stationary-level", type=float, default=0.01)
    parser.add_argument("--stationary-low-level", type=float, default=0.002)
    parser.add_argument("--stationary-low-factor", type=int, default=5,
                        help="windows at the low level: this many times --stationary-windows")
    parser.add_argument("--stationary-run", type=int, default=100,
                        help="windows per short reference in the CUSUM's stationary runs")
    parser.add_argument("--only", default="", help="rates whose name contains this (all if empty)")
    parser.add_argument("--levels", default="",
                        help="comma-separated levels: only the monitor's rate test and the oracle at each "
                             "(by_level), not the columns nor the stationary runs")
    args = parser.parse_args()
    started = time.perf_counter()
    single_threaded().__enter__()  # as the monitor runs its tests (small matrices, busy machine)
    out: dict[str, object] = {"config": vars(args), "rates": {}, "stationary": {}}
    if args.levels:
        out["by_level"] = _by_level(args, [float(x) for x in args.levels.split(",")])
        out["wall_s"] = round(time.perf_counter() - started, 1)
        print(json.dumps(out, indent=2))
        return
    for name, (base, shifted, per_call, rate_name) in RATES.items():
        if args.only not in name:
            continue
        size = round(args.window * per_call)
        ref_n = args.reference_windows * size
        out["rates"][name] = {}  # type: ignore[index]
        for q in (0.1, 0.3):
            rate = base + q * (shifted - base)
            rng = np.random.default_rng(7)
            scan: list[int | None] = []
            scan_long: list[int | None] = []
            oracle: list[int | None] = []
            alone: list[int | None] = []
            cusum: list[int | None] = []
            monitor: list[int | None] = []
            monitor_long: list[int | None] = []
            auto: list[int | None] = []
            auto_long: list[int | None] = []
            known: list[int | None] = []
            cfg = DriftConfig()
            for sim in range(args.sims):
                ref, ref_long, windows, shift_hits, earlier = _draw(rng, base, rate, size, args)
                long_n = args.long_reference_windows * size
                half = size // 2
                found_scan = found_oracle = found_long = found_alone = found_cusum = None
                found_mon = found_mon_long = found_known = None
                base_n = max(long_n, ref_n)
                for w in range(1, args.windows_after + 1):
                    upto = windows[:2 + w][-args.scan_windows:]
                    if found_scan is None and rate_scan_test(
                            upto, [size] * len(upto), ref, ref_n, seed=sim * 16 + w).p_value < args.level:
                        found_scan = w
                    if found_long is None and rate_scan_test(
                            upto, [size] * len(upto), ref_long, max(long_n, ref_n),
                            seed=sim * 16 + w).p_value < args.level:
                        found_long = w
                    if found_alone is None and rate_scan_test(
                            upto[-1:], [size], ref_long, base_n, seed=sim * 16 + w).p_value < args.level:
                        found_alone = w
                    longer = [*earlier, *windows[:2 + w]][-args.cusum_windows:]
                    if found_cusum is None and rate_scan_test(
                            longer, [size] * len(longer), ref_long, base_n, seed=sim * 16 + w,
                            rise=args.cusum_rise).p_value < args.level:
                        found_cusum = w
                    if found_mon is None and rate_cusum_test(upto, [size] * len(upto), ref, ref_n
                                                             ).p_value < args.level:
                        found_mon = w
                    if found_mon_long is None and rate_cusum_test(upto, [size] * len(upto), ref_long, base_n
                                                                  ).p_value < args.level:
                        found_mon_long = w
                    if found_known is None and rate_cusum_test(
                            upto, [size] * len(upto), round(base * 1e9), 10**9).p_value < args.level:
                        found_known = w
                    hits, calls = sum(shift_hits[:w]), (size - half) + (w - 1) * size
                    if found_oracle is None and sps.binom.sf(hits - 1, calls, base) < args.level:
                        found_oracle = w
                scan.append(found_scan)
                scan_long.append(found_long)
                oracle.append(found_oracle)
                alone.append(found_alone)
                cusum.append(found_cusum)
                monitor.append(found_mon)
                monitor_long.append(found_mon_long)
                known.append(found_known)
                auto.append(found_mon if uses_cusum(cfg, rate_name, ref_n) else found_scan)
                auto_long.append(found_mon_long if uses_cusum(cfg, rate_name, base_n) else found_long)
            out["rates"][name][str(q)] = {  # type: ignore[index]
                "rate": [base, round(rate, 4)],
                "scan_detected_within_w": _detected_within(scan, args.windows_after),
                "oracle_detected_within_w": _detected_within(oracle, args.windows_after),
                "scan_long_detected_within_w": _detected_within(scan_long, args.windows_after),
                "window_alone_detected_within_w": _detected_within(alone, args.windows_after),
                "cusum_detected_within_w": _detected_within(cusum, args.windows_after),
                "cusum_monitor_detected_within_w": _detected_within(monitor, args.windows_after),
                "cusum_monitor_long_detected_within_w": _detected_within(monitor_long, args.windows_after),
                "auto_monitor_detected_within_w": _detected_within(auto, args.windows_after),
                "auto_monitor_long_detected_within_w": _detected_within(auto_long, args.windows_after),
                "cusum_known_rate_detected_within_w": _detected_within(known, args.windows_after),
            }
        out["stationary"][name] = _stationary(base, size, args)  # type: ignore[index]
    out["wall_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
