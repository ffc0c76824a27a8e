"""A rate's Bernoulli CUSUM over the last windows, calibrated as a sequential test.

The scan of ``stats.rate_scan_test`` gives each window an exact p-value: the chance that
*this* window's scan reaches what it reached. A sequential test is judged by something
else, how often it alarms on unchanged traffic when it starts again after each alarm (the
monitor's cut, ``RateBaseline``): one high window keeps a scan high for the windows it stays
in, so exceedances come in runs and alarms are rarer than exceedances. Calibrated on that
frequency, the same false alarms per stationary window buy a lower threshold.

``rate_cusum_test``:

- **statistic**: the Bernoulli CUSUM tuned to ``rise`` times the baseline rate, on window
  counts: each window adds the log likelihood ratio of rate ``k p`` against ``p``,
  ``hits log k + (calls - hits) log((1 - k p) / (1 - p))``, counted on a lattice (``cells``):
  a cell is a quarter of an event's weight ``log k - log((1 - k p) / (1 - p))``, an event
  adds 4 cells and a window of ``calls`` calls ``round(calls log((1 - k p) / (1 - p)) / cell)``
  (at most -1), so the statistic takes whole numbers of cells and the chain below is exact
  for it (not an approximation of a real-valued CUSUM). The CUSUM is the largest sum over
  the spans of the last windows (Page's ``S = max(0, S + x)`` for as long as it last left 0
  within them; a rate that fired is restarted by the monitor's cut, ``scan_limits``). The
  test is named by that span: ``rate_cusum_3w``, the last 3 windows;
- **p-value**: the share of stationary windows in which such a CUSUM, restarted at 0
  after each alarm, would reach ``S``: ``1 / ARL0(S)``, the average run length to a false
  alarm of the Markov chain on the cells below ``S`` (one step per window, the binomial
  window counts; Brook and Evans' chain, exact on the lattice; closed form, no simulation).
  The baseline rate ``p`` is estimated: the frequency is averaged over its posterior
  (Jeffreys, ``Beta(hits + 1/2, calls - hits + 1/2)``), so a short reference (1,600 calls: 16
  errors) gets a higher threshold than a long baseline (20,000 calls) and its own noise does
  not raise the false alarms. The average is dominated by the posterior's upper tail (the
  crossing rate grows by orders of magnitude with the true rate), so it is taken at 19
  normal scores of the posterior from -3 to 8 (every 0.5 from -1.5 to 5.5), the rate
  interpolated linearly between them against the normal density (closed-form weights,
  ``_node_weights``), the mass below -3 counted at -3 and above 8 at 8. The rate is convex
  in the score where the mass lies, so this errs high: 0-12% above a 601-score average
  (``test_drift_cusum.py``), never below.

The window-level CUSUM restricted to the last windows is never above the unrestricted one,
so its false alarms stay at or below the frequency its p-value states
(``benchmarks/drift_rate_power.py``, ``stationary``, checks it on stationary streams);
``test_drift_cusum.py`` checks the unrestricted CUSUM's frequency exactly, over the
reference's draws at a fixed true rate: at or below the level.

Example:
    >>> from llmpulse.processors.drift.cusum import crossing_rate, false_alarm_rate, rate_cusum_test
    >>> round(1 / crossing_rate(6.0, 200, 0.03, 0.03, 2.0))  # windows to a false alarm
    2586
    >>> f"{false_alarm_rate(6.0, 200, 600, 20_000, 2.0):.2e}"  # the rate 3% known from 600 of 20,000
    '4.79e-04'
    >>> out = rate_cusum_test([6, 5, 7, 14, 13], [200] * 5, 600, 20_000)  # 3% -> 7%, 2 windows
    >>> out.test, out.p_value < 1e-3
    ('rate_cusum_2w', True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from scipy import stats as sps
from scipy.special import ndtr

from llmpulse.processors.drift.stats import TestOutcome

__all__ = ["crossing_rate", "false_alarm_rate", "lattice", "rate_cusum_test", "window_cells"]

CELLS_PER_EVENT = 4
"""An event's weight in cells (the lattice the statistic is counted on)."""
_MAX_CELLS = 120
"""Larger CUSUM values are priced at this one (30 events' weight, 21 units of log likelihood
ratio at a doubling: a p-value below 1e-8 against a long baseline; the chain's cost grows
with the cube of its cells), which overstates their p-value: safe."""
_NODES = np.concatenate([[-3.0, -2.0], np.arange(-1.5, 5.51, 0.5), [6.5, 8.0]])
"""Normal scores of the posterior quantiles the crossing rate is computed at."""


def _node_weights(nodes: np.ndarray) -> np.ndarray:
    """Each node's weight when the crossing rate is interpolated linearly between the nodes
    (in normal scores) and integrated against the normal density, the mass below the first
    node counted at the first and above the last at the last (``sum(weights) == 1``)."""
    phi, cdf = sps.norm.pdf(nodes), sps.norm.cdf(nodes)
    weights = np.zeros(len(nodes))
    weights[0] += cdf[0]
    weights[-1] += 1.0 - cdf[-1]
    for j in range(len(nodes) - 1):
        a, b = nodes[j], nodes[j + 1]
        mass, first = cdf[j + 1] - cdf[j], phi[j] - phi[j + 1]  # int phi, int z phi over [a, b]
        rising = (first - a * mass) / (b - a)  # int (z - a) / (b - a) phi
        weights[j] += mass - rising
        weights[j + 1] += rising
    return weights


_WEIGHTS = _node_weights(_NODES)


def _steps(rate: float, rise: float) -> tuple[float, float]:
    """A window's log likelihood ratio per event and per call without one."""
    return math.log(rise), math.log((1 - rise * rate) / (1 - rate))


def lattice(rate: float, rise: float) -> tuple[float, float]:
    """The CUSUM's cell (in units of log likelihood ratio) and a call's weight in cells.

    Args:
        rate: the baseline rate the CUSUM is tuned against.
        rise: the rise it is tuned to (``rise * rate < 1``).

    Returns:
        ``(cell, per_call)``: an event adds ``CELLS_PER_EVENT`` cells and a window of
        ``calls`` calls ``window_cells(calls, per_call)`` (negative).
    """
    event, other = _steps(rate, rise)
    cell = (event - other) / CELLS_PER_EVENT
    return cell, other / cell


def window_cells(calls: np.ndarray | float, per_call: float) -> np.ndarray:
    """A window's drift in cells: its calls' weight rounded, at most -1 (0 for no calls)."""
    calls = np.asarray(calls, dtype=np.float64)
    return np.where(calls > 0, np.minimum(-1, np.rint(calls * per_call)), 0).astype(np.int64)


def _tuning(ref_hits: int, ref_calls: int, rise: float) -> tuple[float, float]:
    """The baseline rate a CUSUM is tuned against (the Jeffreys posterior's mean) and the rise
    it is tuned to: ``rise``, lowered where ``rise * rate`` would reach 0.95."""
    rate = (ref_hits + 0.5) / (ref_calls + 1.0)
    return rate, min(rise, 0.95 / rate)


def _cells(threshold: float, calls: float, rate: float, rise: float) -> tuple[int, int]:
    """On the lattice of a CUSUM tuned to ``rise`` times ``rate``: the cells of a value
    ``threshold`` (the lattice's first value at or above it) and the drift of a window of
    ``calls`` calls."""
    cell, per_call = lattice(rate, rise)
    return math.ceil(threshold / cell - 1e-9), int(window_cells(calls, per_call))


def crossing_rate(threshold: float, calls: int, tuned: float, true: float, rise: float) -> float:
    """The share of windows in which the CUSUM reaches ``threshold`` (restarted at 0 after).

    Args:
        threshold: the level ``h`` in log likelihood ratio (reached: the lattice's value at
            or above it).
        calls: each window's calls.
        tuned: the baseline rate the CUSUM's increments assume.
        true: the rate the windows' events actually have.
        rise: the tuned rise ``k`` (``k * tuned < 1``).

    Returns:
        ``1 / ARL0``: alarms per window in a long stationary run.
    """
    cells, drift = _cells(threshold, calls, tuned, rise)
    return float(_crossing_rates(cells, calls, drift, np.array([true]))[0])


def _crossing_rates(cells: int, calls: int, drift: int, trues: np.ndarray) -> np.ndarray:
    """Alarms per window of the lattice CUSUM ``s -> max(0, s + 4 hits + drift)``, alarm (and
    restart at 0) at ``s >= cells``, for each true rate: ``1 / ARL0`` of the exact chain.

    Solved as a renewal at 0 (every return to 0 and every alarm starts the chain afresh):
    from the states above 0 the chain soon leaves them (to 0 or across), so their system is
    well conditioned even where the run length to an alarm is 1e30 windows, where solving
    for it directly would lose every digit; the chances to cross are binomial tails, never
    ``1 - sum``. The rate is ``P(a cycle ends in an alarm) / E[a cycle's windows]``.
    """
    if cells <= 0:
        return np.ones(len(trues))
    cells = min(cells, _MAX_CELLS)
    # Only the hits between two bounds move the chain differently: at or below ``low`` every
    # state falls to 0 (one column holding their whole mass), above ``high`` even 0 crosses
    # (the binomial tails below). So the chain is cells x cells/2 at any number of calls.
    high = min(calls, (cells - 1 - drift) // CELLS_PER_EVENT)
    low = min(high, max(0, (-drift - (cells - 1)) // CELLS_PER_EVENT))
    hits = np.arange(low, high + 1)
    mass = sps.binom.pmf(hits[None, :], calls, trues[:, None])
    mass[:, 0] = sps.binom.cdf(low, calls, trues)
    states = np.arange(cells)
    after = np.maximum(0, states[:, None] + CELLS_PER_EVENT * hits[None, :] + drift)
    inside = after < cells
    flat = (states[:, None] * cells + after)[inside]
    column = np.broadcast_to(hits - low, after.shape)[inside]
    size = cells * cells
    index = (np.arange(len(trues))[:, None] * size + flat[None, :]).ravel()
    chain = np.bincount(index, mass[:, column].ravel(), minlength=len(trues) * size)
    chain = chain.reshape(len(trues), cells, cells)
    least = -((states - cells + drift) // CELLS_PER_EVENT)  # the hits that cross from each state
    cross = sps.binom.sf(least[None, :] - 1, calls, trues[:, None])
    alarm, length = cross[:, 0], np.ones(len(trues))
    if cells > 1:
        above = np.eye(cells - 1)[None] - chain[:, 1:, 1:]
        rhs = np.stack([cross[:, 1:], np.ones((len(trues), cells - 1))], axis=2)
        ahead = np.linalg.solve(above, rhs)  # per state above 0: P(alarm before 0), windows
        alarm = alarm + np.einsum("js,js->j", chain[:, 0, 1:], ahead[:, :, 0])
        length = length + np.einsum("js,js->j", chain[:, 0, 1:], ahead[:, :, 1])
    rates: np.ndarray = np.clip(alarm / length, 0.0, 1.0)
    return rates


def false_alarm_rate(threshold: float, calls: int, ref_hits: int, ref_calls: int, rise: float) -> float:
    """The p-value of a CUSUM value: its crossing rate averaged over the baseline's posterior.

    Args:
        threshold: the CUSUM's value (log likelihood ratio, on the lattice).
        calls: each window's calls.
        ref_hits: the baseline's events.
        ref_calls: the baseline's calls.
        rise: the rise the CUSUM is tuned to.
    """
    rate, k = _tuning(ref_hits, ref_calls, rise)
    return _posterior_rate(*_cells(threshold, calls, rate, k), calls, ref_hits, ref_calls)


@lru_cache(maxsize=4096)
def _posterior_rate(cells: int, drift: int, calls: int, ref_hits: int, ref_calls: int) -> float:
    """``_crossing_rates`` averaged over ``Beta(ref_hits + 1/2, ref_calls - ref_hits + 1/2)``."""
    if cells <= 0:
        return 1.0
    trues = sps.beta.ppf(ndtr(_NODES), ref_hits + 0.5, ref_calls - ref_hits + 0.5)
    return float(min(1.0, np.dot(_WEIGHTS, _crossing_rates(cells, calls, drift, trues))))


def rate_cusum_test(hits: Sequence[int], calls: Sequence[int], ref_hits: int, ref_calls: int, *,
                    rise: float = 2.0, spike: float = 8.0, min_calls: int = 1) -> TestOutcome:
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

    Returns:
        ``rate_cusum_<k>w`` (the span of the CUSUM that decided, since it last left 0), the
        rise of the rate over that span, and the p-value (see the module).
    """
    counts = np.asarray(hits, dtype=np.int64)
    sizes = np.asarray(calls, dtype=np.int64)
    if ref_calls <= 0 or len(counts) == 0 or sizes.sum() < max(1, min_calls):
        return TestOutcome("rate_cusum", 0.0, 1.0)
    tuned = [(rise, 0.9 if spike > rise else 1.0)] + ([(spike, 0.1)] if spike > rise else [])
    best = TestOutcome("rate_cusum", 0.0, 1.0)
    for k, share in tuned:
        outcome = _one_cusum(counts, sizes, ref_hits, ref_calls, k, min_calls, enough=best.p_value * share)
        p = min(1.0, outcome.p_value / share)
        if p < best.p_value or best.test == "rate_cusum":
            best = outcome._replace(p_value=p)
    return best._replace(statistic=max(0.0, best.statistic - ref_hits / ref_calls))


def _one_cusum(counts: np.ndarray, sizes: np.ndarray, ref_hits: int, ref_calls: int, rise: float,
               min_calls: int, enough: float) -> TestOutcome:
    """One tuned CUSUM: its span, the span's rate (as the statistic) and its crossing rate
    (not computed when the statistic cannot beat ``enough``)."""
    rate, k = _tuning(ref_hits, ref_calls, rise)
    if k <= 1.0:
        return TestOutcome("rate_cusum", 0.0, 1.0)
    _cell, per_call = lattice(rate, k)
    steps = CELLS_PER_EVENT * counts + window_cells(sizes, per_call)
    spans = np.cumsum(steps[::-1])
    spans = np.where(np.cumsum(sizes[::-1]) >= max(1, min_calls), spans, 0)
    best = int(spans.argmax())
    top = int(spans[best])
    span_rate = float(counts[len(counts) - best - 1:].sum() / max(1, sizes[len(sizes) - best - 1:].sum()))
    name = f"rate_cusum_{best + 1}w"
    if top <= 0 or enough <= 1e-12:
        return TestOutcome(name, span_rate, 1.0)
    per_window = max(1, round(float(sizes[sizes > 0].mean())))
    drift = int(window_cells(per_window, per_call))
    return TestOutcome(name, span_rate, _posterior_rate(top, drift, per_window, ref_hits, ref_calls))
