"""CPU cost of drift: one window's evaluation per window size, and the extra CPU per event.

- ``evaluation``: closing one window of 500, 2,000 and 10,000 sampled calls against a
  reference of as many (at least 2,000): every feature's test (KS and tails, rates as
  ``rate_test: auto`` picks their test: the scan against these short references,
  categories), the embedding and topic tests on cached vectors. Goal without embeddings:
  a 2,000-call window under 0.1 s of CPU. The embedding of a window's sample by MiniLM
  (64 prompts + 64 answers, a fixed cost whatever the window's size) is measured on its
  own, cold.
- ``evaluation_after_6_windows``: the same for a 2,000-call window that closes the rate
  tests' 6 windows (5 closed before it), on unchanged traffic and when errors rose in 30%
  of the calls of the last 3, with the rates' CUSUM (``rate_test: cusum``);
  ``..._scan``: the same with the GLR scan (``rate_test: scan``, whose p-values then resolve
  small values: 20,000 deals), and the ratio of the two.
- ``evaluation_drifted``: the 2,000-call window of ``evaluation`` (no embeddings: this key is
  only written with ``--no-embeddings``), but drifted: 30% of its calls on another topic
  (lengths and words move) and 10% in French (a sparse language appears in both language
  features), so the sparse language tables' p-values must resolve below the level instead of
  stopping early; ``evaluation_drifted_vs_stationary`` is its CPU over the stationary window's
  and ``categorical_rejected`` names the categorical tests that rejected.
  ``evaluation_drifted_monte_carlo``: the same window with the enumeration of small sparse
  tables and the closed-form bound switched off (``EXACT_TABLES = 0``, ``BAYES_FACTOR_FIRST``
  False: every sparse table by Monte Carlo, as before either);
  ``evaluation_drifted_vs_monte_carlo`` the ratio of the two.
- ``categorical_drifted``: one drifted sparse ``categorical_test`` at the lowest level of a
  window without embeddings (3.9e-5: 5 / level = 128,206 tables by Monte Carlo), a language
  shift (4 categories: enumerated) and a 25-category mix (too many tables to enumerate: Monte
  Carlo either way), CPU and p-value with and without the enumeration.
- ``categorical_drifted``'s ``bound_*``: the same tests as the monitor now runs them, a table
  whose closed-form ``categorical.bayes_factor_bound`` is below the level answered by it (the other
  two columns: with it off, as before).
- ``evaluation_drifted_many_categories``: a 2,000-call window whose tool mix (25 tools, 20 of
  them rare, five times as frequent in the window) drifted and nothing else, CPU of its
  closing; ``..._monte_carlo`` the same with the bound off (every draw, as before).
- ``per_event``: ``DriftMonitor.observe`` per call, windows closing included, when every
  call of a window is described (window 1,000 = sample 1,000) and when traffic is 10x the
  sample (time windows on a busy key: most calls are rejected on their hash).
- baselines measured in the same run: decoding the call from JSON (what every consumer
  pays) and the enricher's light path (``Enricher.light``) per call; the figures are also
  given as ratios to them.

    uv run python benchmarks/drift_cost.py [--no-embeddings] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time

import msgspec
import numpy as np

from llmpulse.processors.config import EmbeddingConfig, load_config
from llmpulse.processors.drift import (
    CachedEmbedder,
    DriftConfig,
    DriftMonitor,
    TrafficGenerator,
    categorical,
)
from llmpulse.processors.drift.compare import is_rate_test
from llmpulse.processors.drift.features import prompt_text, response_text
from llmpulse.processors.pipeline import Enricher
from llmpulse.schemas import DriftResult, EnrichedCall, ToolCall, decode_event, encode_event


def _cpu(fn, repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def evaluation_cost(size: int, embedder, repeat: int) -> dict[str, float]:
    cfg = DriftConfig(window_calls=size, window_seconds=None, sample_size=size,
                      reference_calls=max(2000, size), embeddings=embedder is not None)
    times = []
    for r in range(repeat):
        monitor = DriftMonitor(cfg, embedder=embedder)
        gen = TrafficGenerator(seed=100 + r)
        monitor.observe(gen.calls(cfg.reference_calls))
        calls = gen.calls(size)
        monitor.observe(calls[:-1])
        if embedder is not None:  # warm the cache with this window's texts: time the tests only
            embedder.embed([prompt_text(c) for c in calls] + [t for c in calls if (t := response_text(c))])
        start = time.process_time()
        [result] = monitor.observe(calls[-1:])
        times.append(time.process_time() - start)
    return {"window_size": size, "features": len(result.features), "cpu_s": round(min(times), 4)}


Traffic = tuple[list[EnrichedCall], list[EnrichedCall]]
"""A reference's calls and a window's."""


def _drifted_window(size: int, repeat: int, traffic) -> tuple[DriftResult, float]:
    """The result and least CPU of closing a ``size``-call window, no embeddings, of the traffic
    ``traffic(generator, r, reference_calls)`` gives: ``(reference calls, window calls)``."""
    cfg = DriftConfig(window_calls=size, window_seconds=None, sample_size=size,
                      reference_calls=max(2000, size), embeddings=False)
    times = []
    for r in range(repeat):
        monitor = DriftMonitor(cfg)
        reference, calls = traffic(TrafficGenerator(seed=100 + r), r, cfg.reference_calls)
        monitor.observe(reference)
        monitor.observe(calls[:-1])
        start = time.process_time()
        [result] = monitor.observe(calls[-1:])
        times.append(time.process_time() - start)
    return result, round(min(times), 4)


def drifted_evaluation_cost(size: int, repeat: int) -> dict[str, object]:
    def traffic(gen: TrafficGenerator, _r: int, reference: int) -> Traffic:
        return gen.calls(reference), (gen.calls(size // 2, shift="topic_change", share=0.6)
                                      + gen.calls(size - size // 2, shift="language_change", share=0.2))

    result, cpu = _drifted_window(size, repeat, traffic)
    return {"window_size": size, "features": len(result.features), "drifted": result.drifted,
            "drifted_features": sorted(f.feature for f in result.features if f.drifted),
            "categorical_rejected": sorted(f.feature for f in result.features
                                        if f.drifted and "chisquare" in f.test),
            "cpu_s": cpu}


TOOL_SHARES = np.r_[np.full(5, 0.196), np.full(20, 0.02 / 20)]
"""A tool mix of 25 categories: five common, twenty rare (0.1% each)."""
TOOL_SHARES_MOVED = np.r_[np.full(5, 0.18), np.full(20, 0.1 / 20)]
"""The same, drifted: the rare tools five times as frequent."""


def categorical_drifted_cost(repeat: int) -> list[dict[str, object]]:
    rng = np.random.default_rng(11)
    mix = rng.multinomial(2000, TOOL_SHARES)
    moved = rng.multinomial(2000, TOOL_SHARES_MOVED)
    cases = {"language_shift": ({"en": 1992, "de": 5, "es": 3}, {"en": 1795, "de": 2, "es": 3, "fr": 200}),
             "mix_25_categories": ({f"c{i}": int(c) for i, c in enumerate(mix)},
                                   {f"c{i}": int(c) for i, c in enumerate(moved)})}
    rows: list[dict[str, object]] = []
    for name, (ref, cur) in cases.items():
        row: dict[str, object] = {"case": name, "categories": len(set(ref) | set(cur))}
        for label, exact, bound in (("enumerated", True, False), ("monte_carlo", False, False),
                                    ("bound", True, True)):
            first, categorical.BAYES_FACTOR_FIRST = categorical.BAYES_FACTOR_FIRST, bound
            try:
                outcome = categorical.categorical_test(ref, cur, level=3.9e-5, exact=exact)
                row[f"{label}_p"] = float(f"{outcome.p_value:.3g}")
                row[f"{label}_test"] = outcome.test
                row[f"{label}_cpu_s"] = round(_cpu(lambda r=ref, c=cur, e=exact: categorical.categorical_test(  # type: ignore[misc]
                    r, c, level=3.9e-5, exact=e), repeat), 4)
            finally:
                categorical.BAYES_FACTOR_FIRST = first
        rows.append(row)
    return rows


def _with_tools(calls: list[EnrichedCall], shares: np.ndarray, seed: int) -> list[EnrichedCall]:
    """The calls, each answer calling one tool drawn from ``shares`` (tool ``t0`` .. ``t24``)."""
    picks = np.random.default_rng(seed).choice(len(shares), size=len(calls), p=shares / shares.sum())
    return [msgspec.structs.replace(call, response=msgspec.structs.replace(
        call.response, tool_calls=[ToolCall(name=f"t{int(pick)}")])) if call.response is not None else call
        for call, pick in zip(calls, picks, strict=True)]


def many_categories_drifted_cost(size: int, repeat: int) -> dict[str, object]:
    """One 2,000-call window whose tool mix (25 categories, 20 rare) drifted, the rest not."""
    def traffic(gen: TrafficGenerator, r: int, reference: int) -> Traffic:
        return (_with_tools(gen.calls(reference), TOOL_SHARES, r),
                _with_tools(gen.calls(size), TOOL_SHARES_MOVED, 50 + r))

    result, cpu = _drifted_window(size, repeat, traffic)
    tools = next(f for f in result.features if f.feature == "tool_calls")
    return {"window_size": size, "features": len(result.features), "drifted": result.drifted,
            "drifted_features": sorted(f.feature for f in result.features if f.drifted),
            "tool_calls_test": tools.test, "tool_calls_p": float(f"{tools.p_value:.3g}"), "cpu_s": cpu}


def scan_history_cost(size: int, repeat: int, shift: str | None,
                      rate_test: str = "cusum") -> dict[str, object]:
    cfg = DriftConfig(window_calls=size, window_seconds=None, sample_size=size, reference_calls=size,
                      embeddings=False, rate_test=rate_test)  # type: ignore[arg-type]
    times = []
    for r in range(repeat):
        monitor = DriftMonitor(cfg)
        gen = TrafficGenerator(seed=200 + r)
        monitor.observe(gen.calls(size * 3))  # the reference, then 2 windows
        monitor.observe(gen.calls(size * 3 - size // 2, shift=shift, share=0.3))
        calls = gen.calls(size // 2, shift=shift, share=0.3)
        monitor.observe(calls[:-1])
        start = time.process_time()
        [result] = monitor.observe(calls[-1:])
        times.append(time.process_time() - start)
    scans = sorted({f.test for f in result.features if is_rate_test(f.test)})
    return {"window_size": size, "shift": shift, "rate_test": rate_test, "features": len(result.features),
            "drifted": result.drifted, "scans": scans, "cpu_s": round(min(times), 4)}


def per_event_cost(n: int, *, traffic_to_sample: int, embedder) -> float:
    cfg = DriftConfig(window_calls=1000 * traffic_to_sample, window_seconds=None, sample_size=1000,
                      reference_calls=2000, embeddings=embedder is not None)
    monitor = DriftMonitor(cfg, embedder=embedder)
    gen = TrafficGenerator(seed=7)
    monitor.observe(gen.calls(2000))
    calls, feedback = gen.traffic(n)
    return _cpu(lambda: monitor.observe(calls, feedback)) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-embeddings", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--events", type=int, default=6000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    embedder = None
    out: dict[str, object] = {"python": platform.python_version(), "cpus": os.cpu_count()}
    if not args.no_embeddings:
        from llmpulse.processors.scoring.embeddings import EmbeddingScorer

        scorer = EmbeddingScorer(EmbeddingConfig(threads=1))
        scorer.load()
        embedder = CachedEmbedder(scorer)
        gen = TrafficGenerator(seed=999)
        sample = gen.calls(64)
        texts = [prompt_text(c) for c in sample] + [t for c in sample if (t := response_text(c))]
        out["embedding_sample_cold_cpu_s"] = round(_cpu(lambda: scorer.embed(texts)), 4)
        out["embedding_sample_texts"] = len(texts)
    pipeline = Enricher(load_config(environ={}), batched_scorers=[])
    calls = TrafficGenerator(seed=5).calls(2000)
    pairs = TrafficGenerator(seed=5).pairs(2000)
    blobs = [encode_event(c) for c in calls]
    clock = calls[-1].occurred_at  # the generated traffic is of 2025: decode against its clock
    decode_us = _cpu(lambda: [decode_event(b, now=clock) for b in blobs], 3) / len(blobs) * 1e6
    light_us = _cpu(lambda: pipeline.light(pairs), 3) / len(pairs) * 1e6
    out["baseline_decode_us_per_event"] = round(decode_us, 1)
    out["baseline_light_enrich_us_per_event"] = round(light_us, 1)
    out["evaluation"] = [evaluation_cost(size, embedder, args.repeat) for size in (500, 2000, 10_000)]
    if embedder is None:  # the same 2,000-call window, drifted (#19's budget holds for it too)
        drifted = drifted_evaluation_cost(2000, args.repeat)
        out["evaluation_drifted"] = drifted
        stationary = next(e for e in out["evaluation"] if e["window_size"] == 2000)  # type: ignore[union-attr]
        out["evaluation_drifted_vs_stationary"] = round(
            float(drifted["cpu_s"]) / float(stationary["cpu_s"]), 2)  # type: ignore[arg-type]
        exact_tables, categorical.EXACT_TABLES = categorical.EXACT_TABLES, 0  # the baseline: Monte Carlo only
        first, categorical.BAYES_FACTOR_FIRST = categorical.BAYES_FACTOR_FIRST, False
        try:
            out["evaluation_drifted_monte_carlo"] = drifted_evaluation_cost(2000, args.repeat)
        finally:
            categorical.EXACT_TABLES, categorical.BAYES_FACTOR_FIRST = exact_tables, first
        out["evaluation_drifted_vs_monte_carlo"] = round(float(drifted["cpu_s"]) / float(
            out["evaluation_drifted_monte_carlo"]["cpu_s"]), 2)  # type: ignore[index]
        out["categorical_drifted"] = categorical_drifted_cost(args.repeat)
        out["evaluation_drifted_many_categories"] = many_categories_drifted_cost(2000, args.repeat)
        first, categorical.BAYES_FACTOR_FIRST = categorical.BAYES_FACTOR_FIRST, False  # before the bound
        try:
            out["evaluation_drifted_many_categories_monte_carlo"] = many_categories_drifted_cost(
                2000, args.repeat)
        finally:
            categorical.BAYES_FACTOR_FIRST = first
    out["evaluation_after_6_windows"] = [scan_history_cost(2000, args.repeat, shift)
                                         for shift in (None, "errors_up")]
    # the same with the rates tested by the GLR scan (rate_test: scan, Monte Carlo p-values)
    out["evaluation_after_6_windows_scan"] = [scan_history_cost(2000, args.repeat, shift, "scan")
                                              for shift in (None, "errors_up")]
    out["evaluation_after_6_windows_cusum_vs_scan"] = [
        round(c["cpu_s"] / s["cpu_s"], 2) for c, s in zip(  # type: ignore[operator]
            out["evaluation_after_6_windows"], out["evaluation_after_6_windows_scan"], strict=True)]
    for name, ratio in (("all_calls_described", 1), ("traffic_10x_sample", 10)):
        us = per_event_cost(args.events * ratio, traffic_to_sample=ratio, embedder=embedder) * 1e6
        out[f"per_event_{name}_us"] = round(us, 1)
        out[f"per_event_{name}_vs_decode"] = round(us / decode_us, 2)
        out[f"per_event_{name}_vs_light_enrich"] = round(us / light_us, 2)
    if "embedding_sample_cold_cpu_s" in out:  # templated test traffic hits the cache; real traffic may not
        out["per_event_embedding_cold_amortized_us_window_1000"] = round(
            float(out["embedding_sample_cold_cpu_s"]) / 1000 * 1e6, 1)  # type: ignore[arg-type]
    goal = next(e for e in out["evaluation"] if e["window_size"] == 2000)  # type: ignore[union-attr]
    out["goal_2000_under_1s_cpu"] = goal["cpu_s"] < 1.0
    if embedder is None:  # #19: every test of a 2,000-call window, no embeddings, under 0.1 s
        out["goal_2000_under_0.1s_cpu_no_embeddings"] = goal["cpu_s"] < 0.1
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
