"""False alarms of each kind of reference on traffic whose mix follows the hour of the day.

The traffic: French questions are 10% of the calls at 08:00 UTC and 30% at 20:00 (a cosine
in between), nothing else changes. Windows of 200 calls (at 0.05 calls a second, about
21 windows a day). Each reference is run for ``--days`` days per seed:

- ``pinned``: the first 1,600 calls (the first morning) forever;
- ``trailing``: the last ``--trailing-windows`` windows (``trailing_2``: the last 2);
- ``seasonal``: the last ``--seasonal-windows`` windows that began in the same hour of
  earlier days (24 slots a day).

Reported per reference: windows tested, drifted (false alarms: there is no shift), the
false-alarm rate, the hours of the day the alarms fell in and the features that fired;
then, after the stationary days, a shift of a share of the calls (``--shift`` at
``--share``) and the windows each reference needed to see it (its delay). Prints JSON.

    uv run python benchmarks/drift_seasonality.py [--days 8] [--seeds 2] [--modes pinned,trailing]

(``--modes``: a round of some references, to keep each run short; their outputs' reference
keys join into one.)
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import sys
import time
from datetime import UTC, datetime

from llmpulse.processors.drift import DriftConfig, DriftMonitor, TrafficGenerator

MODES = ("pinned", "trailing", "trailing_2", "seasonal")


def run(mode: str, seed: int, args: argparse.Namespace) -> dict[str, object]:
    """One reference, one seed: stationary seasonal days, then the shift."""
    windows = {"trailing": args.trailing_windows, "seasonal": args.seasonal_windows}.get(mode, 4)
    if mode == "trailing_2":
        mode, windows = "trailing", 2
    cfg = DriftConfig(window_calls=args.window, window_seconds=None, reference=mode,  # type: ignore[arg-type]
                      reference_calls=args.reference_calls, reference_windows=windows,
                      season_seconds=86_400, season_slots=24, embeddings=False, sentiment=False)
    monitor = DriftMonitor(cfg)
    gen = TrafficGenerator(seed=seed, locale_cycle=(0.1, 0.3), calls_per_second=args.rate,
                           start=datetime(2025, 1, 6, 6, 0, tzinfo=UTC))
    stationary = round(args.days * 86_400 * args.rate)
    results = []
    done = 0
    while done < stationary:
        calls, feedback = gen.traffic(min(500, stationary - done))
        done += len(calls)
        results.extend(monitor.observe(calls, feedback))
    hours: collections.Counter[int] = collections.Counter()
    fired: collections.Counter[str] = collections.Counter()
    for r in results:
        if r.drifted:
            hours[r.window_start.hour] += 1
            fired.update(f.feature for f in r.features if f.drifted)
    delay = None
    for index in range(1, args.windows_after + 1):
        calls, feedback = gen.traffic(args.window, shift=args.shift, share=args.share)
        if any(r.drifted for r in monitor.observe(calls, feedback)):
            delay = index
            break
    return {"tested": len(results), "drifted": sum(r.drifted for r in results),
            "alarm_hours": dict(sorted(hours.items())), "features": dict(fired.most_common(5)),
            "delay_windows": delay}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=8.0)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--window", type=int, default=200)
    parser.add_argument("--rate", type=float, default=0.05, help="calls per second")
    parser.add_argument("--reference-calls", type=int, default=1600)
    parser.add_argument("--trailing-windows", type=int, default=8)
    parser.add_argument("--seasonal-windows", type=int, default=3)
    parser.add_argument("--shift", default="toxicity_up")
    parser.add_argument("--share", type=float, default=0.3)
    parser.add_argument("--windows-after", type=int, default=6)
    parser.add_argument("--modes", default=",".join(MODES), help="the references to run")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    out: dict[str, object] = {"config": {**vars(args), "locale_cycle": [0.1, 0.3],
                                         "alpha": DriftConfig().alpha}}
    for mode in [m for m in MODES if m in args.modes.split(",")]:
        runs = [run(mode, 500 + seed, args) for seed in range(args.seeds)]
        tested = sum(int(r["tested"]) for r in runs)  # type: ignore[call-overload]
        drifted = sum(int(r["drifted"]) for r in runs)  # type: ignore[call-overload]
        out[mode] = {"windows": tested, "drifted_windows": drifted,
                     "false_alarm_rate": round(drifted / tested, 4) if tested else None,
                     "delay_windows": [r["delay_windows"] for r in runs], "per_seed": runs}
        print(f"{mode}: done", file=sys.stderr)
    out["wall_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
