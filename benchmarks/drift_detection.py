"""Detection delay and false-alarm rate of drift, per kind of shift and share, on generated traffic.

For each shift (answers twice as long, a topic change, toxicity up, relevance down, a
different language) and each seed: stationary windows, then the shift injected half-way
through a window. Reported per shift (``shifts``, the whole traffic shifted, pinned
reference): the false alarms among the stationary windows, the delay (1 = the window the
shift began in was called drifted; 2 = the next one), the shifted calls seen by then, and
when the drift alert (default rule) fired.

``partial``: every shift of ``SHIFTS`` (the rates too: errors, refusals, thumbs down) sent
through a share q = 0.1, 0.2, 0.3 and 1.0 of the calls, per reference (pinned: the first
``--reference-windows`` windows; trailing: the last as many), with the delay and the
misses (not detected within ``--windows-after`` windows) per shift and q. ``goals``
checks the issue's: q = 0.3 within 2 windows for every shift, the rates at q = 0.1 within
5, false alarms at most 1% of the stationary windows.

``partial_history``: the rate shifts (toxicity, errors, refusals, thumbs down) the same
way after ``--history-windows`` stationary windows instead of 2, so the rates' long baseline
(``rate_reference_calls``) has absorbed windows (pinned) or trails them (trailing);
``goals_history`` checks the rate goals there.

A long stationary run per seed (pinned reference and trailing baseline; at least 300
windows in all) gives the false-alarm rate of windows and of alerts. Embeddings are the
real MiniLM (``--no-embeddings`` to leave them out). Prints JSON.

Each partial cell gives the delay of every seed (``delay_windows``, None: missed), their
``median`` (a miss counts as later than any delay; None when half or more missed), the
worst (``max``) and the ``missed``.

The whole run takes ~20 minutes on a busy machine; it splits into rounds, each a part of
it (``--parts``, ``--shifts``, ``--shares``, ``--modes``), whose JSON outputs ``--merge``
joins into one (the goals computed again on the whole)::

    uv run python benchmarks/drift_detection.py --no-embeddings [--window 200] [--seeds 3]
    uv run python benchmarks/drift_detection.py --no-embeddings --parts partial --modes pinned > a.json
    uv run python benchmarks/drift_detection.py --merge a.json b.json ...
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from collections import Counter

from bench_cli import names

from llmpulse.processors.drift import DRIFT_SHIFTS, RATE_SHIFTS, SHIFTS, CachedEmbedder, DriftConfig
from llmpulse.processors.drift.compare import family_size, shares
from llmpulse.processors.drift.evaluation import measure_detection
from llmpulse.processors.drift.features import FeatureSet

SHARES = (0.1, 0.2, 0.3, 1.0)
HISTORY_SHIFTS = (*RATE_SHIFTS, "feedback_collapse")


def _summary(values: list[int | None]) -> dict[str, object]:
    found = [v for v in values if v is not None]
    return {"all": values, "max": max(found) if len(found) == len(values) else None,
            "mean": round(statistics.mean(found), 2) if found else None, "missed": len(values) - len(found)}


def _median(values: list[int | None]) -> float | None:
    """The median delay, a miss counted as later than any delay (None: half or more missed)."""
    ranked = sorted(values, key=lambda v: float("inf") if v is None else v)
    middle = ranked[(len(ranked) - 1) // 2:len(ranked) // 2 + 1]
    return None if not ranked or None in middle else statistics.mean(middle)  # type: ignore[type-var]


def _within(entry: dict[str, object], windows: int) -> bool:
    return entry["missed"] == 0 and entry["max"] is not None and int(entry["max"]) <= windows  # type: ignore[call-overload]


def _goals(partial: dict[str, dict[str, dict[str, object]]], out: dict[str, object],
           names: tuple[str, ...] = SHIFTS) -> dict[str, object]:
    """The issue's goals, per reference: which shifts miss them."""
    goals: dict[str, object] = {}
    for mode, shifts in partial.items():
        if any("0.3" not in shifts.get(s, {}) for s in names) or \
                any("0.1" not in shifts.get(s, {}) for s in RATE_SHIFTS) or f"stationary_{mode}" not in out:
            continue  # a round of a part of the run: the goals are checked on the merged whole
        late_03 = [s for s in names if not _within(shifts[s]["0.3"], 2)]  # type: ignore[arg-type]
        late_rates = [s for s in RATE_SHIFTS if not _within(shifts[s]["0.1"], 5)]  # type: ignore[arg-type]
        rate = out[f"stationary_{mode}"]["false_alarm_rate"]  # type: ignore[index]
        goals[mode] = {"q0.3_within_2_windows": not late_03, "q0.3_late": late_03,
                       "rates_q0.1_within_5_windows": not late_rates, "rates_q0.1_late": late_rates,
                       "false_alarms_at_most_1pct": rate <= 0.01}
    return goals


Table = dict[str, dict[str, dict[str, object]]]


def _partial(modes: dict[str, DriftConfig], shifts: tuple[str, ...], windows_before: int,
             args: argparse.Namespace, embedder: CachedEmbedder | None) -> Table:
    """Every shift at every share q, per reference, after ``windows_before`` stationary windows."""
    partial: Table = {}
    for mode, cfg in modes.items():
        partial[mode] = {}
        for shift in shifts:
            partial[mode][shift] = {}
            for q in args.shares:
                runs = [measure_detection(cfg, shift, seed=seed, windows_before=windows_before,
                                          windows_after=args.windows_after, share=q, embedder=embedder)
                        for seed in range(args.seeds)]
                delays = _summary([r.delay_windows for r in runs])
                partial[mode][shift][str(q)] = {
                    "delay_windows": delays["all"], "median": _median(delays["all"]),  # type: ignore[arg-type]
                    "max": delays["max"], "missed": delays["missed"],
                    "false_alarms": sum(r.false_alarms for r in runs),
                    "features_first_detecting": sorted({f for r in runs for f in r.drifted_features})[:6],
                }
            print(f"partial {mode} {shift} (after {windows_before} windows): done", file=sys.stderr)
    return partial


PARTS = ("shifts", "partial", "history", "stationary")


_ROUND_KEYS = ("parts", "shifts_run", "shares", "modes")
"""What may differ between rounds of one run (every other setting must be the same)."""


def _merge(paths: list[str]) -> dict[str, object]:
    """Rounds' JSON outputs joined: their tables merged cell by cell, the goals checked again
    on the whole (``goals_incomplete`` names a reference whose cells are not all there), the
    walls added. Rounds run with other settings (window, seeds, references, embeddings) are
    refused, and so is a cell two rounds both measured.

    Raises:
        SystemExit: the rounds do not belong to one run.
    """
    out: dict[str, object] = {}
    walls: list[float] = []
    settings: dict[str, object] | None = None
    for path in paths:
        with open(path) as handle:
            part = json.load(handle)
        config = {k: v for k, v in part.get("config", {}).items() if k not in _ROUND_KEYS}
        if settings is not None and config != settings:
            differ = sorted(k for k in config.keys() | settings.keys() if config.get(k) != settings.get(k))
            raise SystemExit(f"{path}: run with other settings than the rounds before ({', '.join(differ)})")
        settings = config
        for key in ("partial", "partial_history"):
            for mode, shifts in part.get(key, {}).items():
                for shift, cells in shifts.items():
                    have = out.get(key, {}).get(mode, {}).get(shift, {})  # type: ignore[union-attr]
                    if twice := sorted(set(cells) & set(have)):
                        raise SystemExit(f"{path}: {key} {mode} {shift} q={','.join(twice)} "
                                         "measured by an earlier round too")
        walls.append(float(part.pop("wall_s", 0.0)))
        part.pop("goals", None)
        part.pop("goals_history", None)
        for key, value in part.items():
            if key in ("partial", "partial_history"):
                table = out.setdefault(key, {})
                for mode, shifts in value.items():
                    for shift, cells in shifts.items():
                        table.setdefault(mode, {}).setdefault(shift, {}).update(cells)  # type: ignore[union-attr]
            elif key == "shifts":
                out.setdefault(key, {}).update(value)  # type: ignore[union-attr]
            elif key == "config":
                out.setdefault("config", value)
                out.setdefault("rounds", []).append(  # type: ignore[union-attr]
                    {k: value.get(k) for k in ("parts", "shifts_run", "shares", "modes")})
            else:
                out[key] = value
    _add_goals(out)
    out["wall_s"] = round(sum(walls), 1)
    out["round_walls_s"] = walls
    return out


def _add_goals(out: dict[str, object]) -> None:
    for table, goals, judged in (("partial", "goals", SHIFTS),
                                ("partial_history", "goals_history", HISTORY_SHIFTS)):
        if table in out:
            out[goals] = _goals(out[table], out, judged)  # type: ignore[arg-type]
            if missing := sorted(set(out[table]) - set(out[goals])):  # type: ignore[arg-type]
                out[f"{goals}_incomplete"] = missing  # (a reference without every cell)


def _rate_weight(config: DriftConfig) -> float:
    """A rate test's weight in Holm's family as a multiple of another test's (the key before
    ``rate_share``, kept): its share over theirs when every test of ``config`` runs."""
    rate, other = shares(config, *family_size(config, FeatureSet(config)))
    return round(rate / other, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, default=200, help="calls per window")
    parser.add_argument("--reference-windows", type=int, default=8, help="reference size, in windows")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--windows-before", type=int, default=10, help="stationary windows before a shift")
    parser.add_argument("--stationary-windows", type=int, default=100, help="per seed and reference")
    parser.add_argument("--windows-after", type=int, default=6, help="windows watched after a partial shift")
    parser.add_argument("--history-windows", type=int, default=40,
                        help="stationary windows before the shift in partial_history (0: skip it)")
    parser.add_argument("--rate-reference-calls", type=int, default=None,
                        help="the rates' baseline cap (default: DriftConfig's)")
    parser.add_argument("--rate-share", type=float, default=None,
                        help="the rates' tests' share of alpha (default: DriftConfig's)")
    parser.add_argument("--no-embeddings", action="store_true")
    parser.add_argument("--stationary-only", action="store_true",
                        help="only the long stationary runs (false alarms), no shifts (--parts stationary)")
    parser.add_argument("--parts", default="",
                        help=f"a round: these parts only ({','.join(PARTS)}; default all)")
    parser.add_argument("--shifts", default="", help="a round: these shifts only (default all)")
    parser.add_argument("--shares", default=",".join(map(str, SHARES)), help="the shares q of partial shifts")
    parser.add_argument("--modes", default="pinned,trailing",
                        help="the references of the partial and stationary runs")
    parser.add_argument("--merge", nargs="+", metavar="JSON", help="join rounds' outputs and print the whole")
    args = parser.parse_args()
    if args.merge:
        print(json.dumps(_merge(args.merge), indent=2))
        return
    parts = names("stationary" if args.stationary_only else args.parts, PARTS)
    args.shares = tuple(float(q) for q in args.shares.split(","))
    chosen = names(args.shifts, SHIFTS)
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    embedder = None
    if not args.no_embeddings:
        from llmpulse.processors.config import EmbeddingConfig
        from llmpulse.processors.scoring.embeddings import EmbeddingScorer

        embedder = CachedEmbedder(EmbeddingScorer(EmbeddingConfig(threads=1)))
    config = DriftConfig(window_calls=args.window, window_seconds=None, sample_size=max(1000, args.window),
                         reference_calls=args.reference_windows * args.window,
                         embeddings=not args.no_embeddings, embedding_sample=min(64, args.window // 2),
                         reference_embedding_sample=256,
                         **({} if args.rate_reference_calls is None
                            else {"rate_reference_calls": args.rate_reference_calls}),
                         **({} if args.rate_share is None else {"rate_share": args.rate_share}))
    started = time.perf_counter()
    out: dict[str, object] = {
        "config": {"window_calls": args.window, "reference_calls": config.reference_calls,
                   "alpha": config.alpha, "embedding_sample": config.embedding_sample,
                   "reference_embedding_sample": config.reference_embedding_sample,
                   "embeddings": config.embeddings, "seeds": args.seeds, "shift_offset": 0.5,
                   "rate_reference_calls": config.rate_reference_calls, "rate_share": config.rate_share,
                   "rate_weight": _rate_weight(config),
                   "history_windows": args.history_windows, "parts": list(parts),
                   "shifts_run": list(chosen), "shares": list(args.shares), "modes": args.modes},
        "shifts": {},
    }
    for shift in [s for s in DRIFT_SHIFTS if s in chosen] if "shifts" in parts else ():
        runs = [measure_detection(config, shift, seed=seed, windows_before=args.windows_before,
                                  windows_after=3, embedder=embedder) for seed in range(args.seeds)]
        windows = sum(r.windows_before for r in runs)
        alarms = sum(r.false_alarms for r in runs)
        out["shifts"][shift] = {  # type: ignore[index]
            "delay_windows": _summary([r.delay_windows for r in runs]),
            "delay_calls": _summary([r.delay_calls for r in runs]),
            "alert_delay_windows": _summary([r.alert_delay_windows for r in runs]),
            "false_alarm_rate": round(alarms / windows, 4), "stationary_windows": windows,
            "features_first_detecting": sorted({f for r in runs for f in r.drifted_features}),
        }
        print(f"{shift}: done", file=sys.stderr)
    modes = {mode: DriftConfig(**{**{f: getattr(config, f) for f in config.__struct_fields__},
                                  "reference": mode, "reference_windows": args.reference_windows})
             for mode in names(args.modes, ("pinned", "trailing"))}
    if "partial" in parts:
        out["partial"] = _partial(modes, chosen, 2, args, embedder)
    history = tuple(s for s in HISTORY_SHIFTS if s in chosen)
    if args.history_windows and "history" in parts and history:
        out["partial_history"] = _partial(modes, history, args.history_windows, args, embedder)
    for mode, cfg in modes.items() if "stationary" in parts else ():
        runs = [measure_detection(cfg, None, seed=1000 + seed, windows_before=args.stationary_windows,
                                  windows_after=0, embedder=embedder, keep_results=True)
                for seed in range(args.seeds)]
        windows = sum(r.windows_before for r in runs)
        out[f"stationary_{mode}"] = {
            "windows": windows, "drifted_windows": sum(r.false_alarms for r in runs),
            "false_alarm_rate": round(sum(r.false_alarms for r in runs) / windows, 4),
            "false_alerts": sum(r.false_alerts for r in runs),
            "false_alert_rate": round(sum(r.false_alerts for r in runs) / windows, 4),
            "per_seed": [r.false_alarms for r in runs],
            "features_alarming": dict(Counter(f"{f.feature} ({f.test})" for r in runs for x in r.results
                                              if x.drifted for f in x.features if f.drifted)),
        }
        print(f"stationary {mode}: done", file=sys.stderr)
    _add_goals(out)
    out["wall_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
