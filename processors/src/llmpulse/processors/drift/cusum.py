"""A rate's Bernoulli CUSUM over the last windows, calibrated as a sequential test.

The scan of ``stats.rate_scan_test`` gives each window an exact p-value: the chance that
*this* window's scan reaches what it reached. A sequential test is judged by something
else, how often it alarms on unchanged traffic when it starts again after each alarm (the
monitor's cut, ``RateBaseline``): one high window keeps a scan high for the windows it stays
in, so exceedances come in runs and alarms are rarer than exceedances. Calibrated on that
frequency, the same false alarms per stationary window buy a lower threshold.

``rate_cusum_test``:

- **statistic**: the Bernoulli CUSUM tuned to ``rise`` times the baseline rate, on window
  counts: each window adds ``hits log k + (calls - hits) log((1 - k p) / (1 - p))`` (the log
  likelihood ratio of rate ``k p`` against ``p``), and the CUSUM is the largest sum over the
  spans of the last windows (Page's ``S = max(0, S + x)`` for as long as it last left 0
  within them; a rate that fired is restarted by the monitor's cut, ``scan_limits``). The
  test is named by that span: ``rate_cusum_3w``, the last 3 windows;
- **p-value**: the share of stationary windows in which such a CUSUM, restarted at 0
  after each alarm, would cross ``S``: ``1 / ARL0(S)``, the average run length to a false
  alarm from Brook and Evans' Markov chain (the CUSUM's value on a grid of ``states`` cells
  below the threshold, one step per window with the binomial window counts; closed form,
  no simulation). The baseline rate ``p`` is estimated: the frequency is averaged over its
  posterior (Jeffreys, ``Beta(hits + 1/2, calls - hits + 1/2)``, ``points`` quantiles), so a
  short reference (1,600 calls: 48 refusals) gets a higher threshold than a long baseline
  (20,000 calls) and its own noise does not raise the false alarms.

The window-level CUSUM restricted to the last windows is never above the unrestricted one,
so its false alarms stay at or below the frequency its p-value states
(``benchmarks/drift_rate_power.py``, ``stationary``, checks it on stationary streams).

Example:
    >>> from llmpulse.processors.drift.cusum import crossing_rate, rate_cusum_test
    >>> round(1 / crossing_rate(6.0, 200, 0.03, 0.03, 2.0))  # windows to a false alarm
    2002
    >>> out = rate_cusum_test([6, 5, 7, 14, 13], [200] * 5, 600, 20_000)  # 3% -> 7%, 2 windows
    >>> out.test, out.p_value < 1e-3
    ('rate_cusum_2w', True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as sps

from llmpulse.processors.drift.stats import TestOutcome

__all__ = ["crossing_rate", "rate_cusum_test"]

_STATES = 80
_POINTS = 8


def _steps(rate: float, rise: float) -> tuple[float, float]:
    """A window's log likelihood ratio per event and per call without one."""
    return math.log(rise), math.log((1 - rise * rate) / (1 - rate))


def crossing_rate(threshold: float, calls: int, tuned: float, true: float, rise: float, *,
                  states: int = _STATES) -> float:
    """The share of windows in which the CUSUM crosses ``threshold`` (restarted at 0 after).

    Args:
        threshold: the level ``h`` (> 0).
        calls: each window's calls.
        tuned: the baseline rate the CUSUM's increments assume.
        true: the rate the windows' events actually have.
        rise: the tuned rise ``k`` (``k * tuned < 1``).
        states: the grid's cells below ``h`` (Brook and Evans' chain).

    Returns:
        ``1 / ARL0``: alarms per window in a long stationary run.
    """
    if threshold <= 0:
        return 1.0
    event, other = _steps(tuned, rise)
    hits = np.arange(calls + 1)
    mass = sps.binom.pmf(hits, calls, true)
    keep = mass > 1e-13
    hits, mass = hits[keep], mass[keep]
    step = threshold / states
    moves = hits * event + (calls - hits) * other
    after = np.maximum(0.0, np.arange(states)[:, None] * step + moves[None, :])
    cells = np.floor(after / step + 0.5).astype(np.int64)
    inside = (after < threshold) & (cells < states)
    flat = (np.arange(states)[:, None] * states + cells)[inside]
    chain = np.bincount(flat, np.broadcast_to(mass, cells.shape)[inside],
                        minlength=states * states).reshape(states, states)
    run = np.linalg.solve(np.eye(states) - chain, np.ones(states))
    return float(min(1.0, 1.0 / max(run[0], 1.0)))


def rate_cusum_test(hits: Sequence[int], calls: Sequence[int], ref_hits: int, ref_calls: int, *,
                    rise: float = 2.0, spike: float = 8.0, min_calls: int = 1,
                    points: int = _POINTS) -> TestOutcome:
    """Did a rate go up over the last windows? A Bernoulli CUSUM, sequentially calibrated.

    Two CUSUMs share the level: one tuned to ``rise`` (90% of it), one to ``spike`` (10%;
    a CUSUM tuned to a small rise weighs each event by ``log rise`` only, so alone it is slow
    to see a rate jump tenfold against a short reference); the p-value is the smaller of
    theirs divided by its share (weighted Bonferroni).

    Args:
        hits: the events of each window, oldest first (the window being closed last).
        calls: the calls (or thumbs) each window's rate is of, same order.
        ref_hits: the baseline's events.
        ref_calls: the baseline's calls.
        rise: the rise the main CUSUM is tuned to (the rate ``rise`` times the baseline's).
        spike: the rise the second CUSUM is tuned to (0: none, the main one takes the level).
        min_calls: spans with fewer calls are not scored.
        points: quantiles of the baseline rate's posterior the false alarms are averaged over.

    Returns:
        ``rate_cusum_<k>w`` (the span of the CUSUM that decided, since it last left 0), the
        rise of the rate over that span, and the p-value (see the module).
    """
    counts = np.asarray(hits, dtype=np.float64)
    sizes = np.asarray(calls, dtype=np.float64)
    if ref_calls <= 0 or len(counts) == 0 or sizes.sum() < max(1, min_calls):
        return TestOutcome("rate_cusum", 0.0, 1.0)
    rate = (ref_hits + 0.5) / (ref_calls + 1.0)
    quantiles = sps.beta.ppf((np.arange(points) + 0.5) / points, ref_hits + 0.5, ref_calls - ref_hits + 0.5)
    tuned = [(rise, 0.9 if spike > rise else 1.0)] + ([(spike, 0.1)] if spike > rise else [])
    best = TestOutcome("rate_cusum", 0.0, 1.0)
    for k, share in tuned:
        outcome = _one_cusum(counts, sizes, rate, quantiles, min(k, 0.95 / rate), min_calls,
                             enough=best.p_value * share)
        p = min(1.0, outcome.p_value / share)
        if p < best.p_value or best.test == "rate_cusum":
            best = outcome._replace(p_value=p)
    return best._replace(statistic=max(0.0, best.statistic - ref_hits / ref_calls))


def _one_cusum(counts: np.ndarray, sizes: np.ndarray, rate: float, quantiles: np.ndarray, k: float,
               min_calls: int, enough: float) -> TestOutcome:
    """One tuned CUSUM: its span, the span's rate (as the statistic) and its crossing rate
    (not computed when the statistic cannot beat ``enough``)."""
    if k <= 1.0:
        return TestOutcome("rate_cusum", 0.0, 1.0)
    event, other = _steps(rate, k)
    spans = np.cumsum((counts * event + (sizes - counts) * other)[::-1])
    spans = np.where(np.cumsum(sizes[::-1]) >= max(1, min_calls), spans, 0.0)
    best = int(spans.argmax())
    top = float(spans[best])
    span_rate = float(counts[len(counts) - best - 1:].sum() / max(1.0, sizes[len(sizes) - best - 1:].sum()))
    name = f"rate_cusum_{best + 1}w"
    if top <= 0 or enough <= 1e-12:
        return TestOutcome(name, span_rate, 1.0)
    per_window = max(1, round(float(sizes[sizes > 0].mean())))
    p = float(np.mean([crossing_rate(top, per_window, rate, float(q), k) for q in quantiles]))
    return TestOutcome(name, span_rate, p)
