"""Categorical drift tests: chi-square homogeneity of a 2xK table with an exact conditional
p-value where cells are sparse (enumerated or Monte Carlo), the closed-form bound that answers
a far-drifted table, and topics (k-means clusters as categories). Re-exported by ``stats``.

The switches ``EXACT_TABLES``, ``BAYES_FACTOR_FIRST`` and ``BOUND_SHARE`` are this module's
(set them here, not on ``stats``).

Example:
    >>> from llmpulse.processors.drift.categorical import categorical_test
    >>> categorical_test({"en": 400, "fr": 4}, {"en": 150, "fr": 50}).p_value < 1e-10
    True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import stats as sps
from scipy.special import gammaln

from llmpulse.processors.drift.outcome import TestOutcome

__all__ = ["BAYES_FACTOR_FIRST", "BOUND_SHARE", "EXACT_TABLES", "bayes_factor_bound", "categorical_test",
           "topic_test"]


EXACT_TABLES = 200_000
"""Enumerate a sparse table's every same-margin table when there are at most this many."""


def _exact_tail(total: np.ndarray, n_cur: int, at_least: float, statistic: Any) -> float | None:
    """The exact conditional p-value P(statistic >= ``at_least``) of a 2xK table, or None.

    Every table with the margins ``total`` and ``n_cur`` is enumerated (the largest category
    takes what the others leave) with its multivariate hypergeometric probability: the value
    the Monte Carlo estimates, with no simulation error, at the cost of ``EXACT_TABLES`` at most.
    """
    last = int(np.argmax(total))
    others = np.delete(total, last)
    if math.prod(min(int(t), n_cur) + 1 for t in others) > EXACT_TABLES:
        return None
    grid = np.indices([min(int(t), n_cur) + 1 for t in others]).reshape(len(others), -1).T
    tables = np.insert(grid, last, n_cur - grid.sum(axis=1), axis=1)
    tables = tables[(tables[:, last] >= 0) & (tables[:, last] <= total[last])]
    log_choose = gammaln(total + 1) - gammaln(tables + 1) - gammaln(total - tables + 1)
    log_p = log_choose.sum(axis=1) - (gammaln(total.sum() + 1) - gammaln(n_cur + 1)
                                     - gammaln(total.sum() - n_cur + 1))
    tail = statistic(tables.astype(np.float64)) >= at_least
    return float(min(1.0, np.exp(log_p[tail]).sum()))


BAYES_FACTOR_FIRST = True
"""A sparse table whose ``bayes_factor_bound`` is below ``BOUND_SHARE`` times the lowest level
is answered by it (False: by the enumeration or the Monte Carlo alone, the p-value undivided;
benchmarks compare the two)."""
BOUND_SHARE = 0.01
"""The share of each level the bound spends (``categorical_test``): the bound is held to
``BOUND_SHARE * u`` and the exact or simulated p-value to ``(1 - BOUND_SHARE) * u``."""
_SPREADS = (1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0)
"""The Dirichlet concentrations ``bayes_factor_bound``'s alternative mixes, evenly."""


def bayes_factor_bound(total: np.ndarray, current: np.ndarray) -> float:
    """A valid p-value for a 2xK table's homogeneity, in closed form: ``p0(c) / q(c)``.

    ``p0`` is the multivariate hypergeometric probability of the current row ``c`` given the
    margins (what the chi-square's exact conditional p-value is taken under), ``q`` an
    alternative that depends on the margins alone: the current row Dirichlet-multinomial,
    centred on the pooled shares ``(total + 1/2) / (N + K/2)``, an even mixture over the
    concentrations ``_SPREADS`` (from a new category to a mild reshuffle). Under the null,
    ``q(c) / p0(c)`` has mean ``sum q <= 1`` (q restricted to the tables the margins allow),
    so by Markov's inequality ``P(p0 / q <= u) <= u``: a valid conditional p-value on its own.
    It is NOT a bound on the chi-square's exact p-value: it orders the tables by likelihood
    ratio, not by the chi-square statistic, so it is usually larger (a Bayes factor's Occam
    price, about ``N^((K-1)/2)``) but can be far smaller (reference ``{a: 1600, r0..r9: 18}``,
    window ``{a: 200}``: 1.5e-8 against 0.022). So taking the smaller of the two is no
    level-``u`` test; ``categorical_test`` splits each level between them (``BOUND_SHARE``).

    Args:
        total: each category's count, both rows together.
        current: the current row's counts (same order).

    Example:
        >>> bayes_factor_bound(np.array([1992, 5, 3, 0]) + np.array([1795, 2, 3, 200]),
        ...                    np.array([1795, 2, 3, 200])) < 1e-50  # French appeared
        True
    """
    t = np.asarray(total, dtype=np.float64)
    c = np.asarray(current, dtype=np.float64)
    n, n_cur = float(t.sum()), float(c.sum())
    log_p0 = float((gammaln(t + 1) - gammaln(c + 1) - gammaln(t - c + 1)).sum()
                   - (gammaln(n + 1) - gammaln(n_cur + 1) - gammaln(n - n_cur + 1)))
    shares = (t + 0.5) / (n + 0.5 * len(t))
    log_q = []
    for spread in _SPREADS:
        a = spread * shares
        log_q.append(float(gammaln(n_cur + 1) + gammaln(spread) - gammaln(n_cur + spread)
                           + (gammaln(c + a) - gammaln(c + 1) - gammaln(a)).sum()))
    top = max(log_q)
    log_mix = top + math.log(sum(math.exp(x - top) for x in log_q) / len(log_q))
    return math.exp(min(0.0, log_p0 - log_mix))


def categorical_test(reference: Mapping[str, int], current: Mapping[str, int], *,
                     draws: int = 20_000, seed: int = 0, level: float | None = None,
                     exact: bool = True, screen_draws: int = 1000) -> TestOutcome:
    """Chi-square test of homogeneity of two category counts.

    With every expected count 5 or more, the chi-square distribution's p-value. Else (sparse
    cells: a rare language, a new topic) the same statistic's exact conditional p-value: the
    first ``screen_draws`` tables with the same margins, drawn from the multivariate
    hypergeometric, answer a p-value of 0.05 or more (most windows: cheaper than any
    enumeration, and no level a Holm step uses is that high; 0: no screen); below that, a table
    whose closed-form ``bayes_factor_bound`` B is below ``BOUND_SHARE * level`` (or of
    ``1 / (draws + 1)``) is answered by ``B / BOUND_SHARE`` (``chisquare_bayes_factor``: below
    any Holm step's level, and a drifted table with many categories would otherwise take all
    ``5 / level`` draws: drifted tables give B ~ 1e-50); else the p-value E below is reported
    as ``min(B / BOUND_SHARE, E / (1 - BOUND_SHARE))`` (at most 1). Valid: B and E are each
    valid p-values, so ``P(min(...) <= u) <= P(B <= BOUND_SHARE * u)
    + P(E <= (1 - BOUND_SHARE) * u) <= u``, and what is reported is never below that minimum
    (the shortcut reports ``B / BOUND_SHARE``, its first term). E is computed
    exactly by enumerating every table with the same margins when there are at most
    ``EXACT_TABLES`` of them (``exact``; a new language next to a few rare ones: hundreds to
    thousands of tables, cheaper than the draws a drifted table needs), else by Monte Carlo: the
    draws go on to ``draws`` while the p-value is below 0.05 (so it resolves 1/``draws``); with
    ``level`` (the lowest level the test may be held to), up to ``5 / level`` draws, in rounds
    of 20,000 until the p-value would stay above the level whatever the rest gave, so it can
    fall below the level (a floor of 1/20,001 would make a test held to 5e-5 unable ever to
    reject; the Monte Carlo resolves ``(1 - BOUND_SHARE) * level``, the level E is held to).
    Both are valid conditional p-values (the same level); the enumerated one has no
    simulation error and no floor. ``BAYES_FACTOR_FIRST`` off: E alone, undivided.
    A sparse cell is neither pooled away (a new category of 10 calls in 200 must count) nor
    trusted to the chi-square tail (far too light there at Holm's levels).
    """
    keys = sorted(k for k in set(reference) | set(current)
                  if reference.get(k, 0) + current.get(k, 0) > 0)
    ref = np.array([reference.get(k, 0) for k in keys], dtype=np.int64)
    cur = np.array([current.get(k, 0) for k in keys], dtype=np.int64)
    n_ref, n_cur = int(ref.sum()), int(cur.sum())
    if n_ref == 0 or n_cur == 0 or len(keys) < 2:
        return TestOutcome("chisquare", 0.0, 1.0)
    total = ref + cur
    n = n_ref + n_cur

    def statistic(cur_counts: np.ndarray) -> np.ndarray:
        expected_cur = total * n_cur / n
        expected_ref = total * n_ref / n
        ref_counts = total - cur_counts
        values: np.ndarray = (((cur_counts - expected_cur) ** 2 / expected_cur).sum(axis=-1)
                              + ((ref_counts - expected_ref) ** 2 / expected_ref).sum(axis=-1))
        return values

    observed = float(statistic(cur.astype(np.float64)))
    if (total * min(n_ref, n_cur) / n).min() >= 5:
        return TestOutcome("chisquare", observed, float(sps.chi2.sf(observed, len(keys) - 1)))
    rng = np.random.default_rng(seed)
    bound, share = 1.0, 0.0  # the closed form's p-value and the share of the level it spends
    if BAYES_FACTOR_FIRST:
        bound, share = bayes_factor_bound(total, cur), BOUND_SHARE
    shortcut = share * (level or 1.0 / (draws + 1))
    level = level * (1 - share) if level else None  # what E is held to

    def combined(p_exact: float) -> TestOutcome:  # the bound's name when its term is the smaller
        if share and bound / share < p_exact / (1 - share):
            return TestOutcome("chisquare_bayes_factor", observed, min(1.0, bound / share))
        return TestOutcome("chisquare", observed, min(1.0, p_exact / (1 - share)))

    wanted = max(draws, math.ceil(5 / level)) if level else draws
    exceed = done = 0
    if screen_draws:  # the same first round the Monte Carlo below would draw
        done = min(screen_draws, wanted)
        tables = rng.multivariate_hypergeometric(total, n_cur, size=done).astype(np.float64)
        exceed = int((statistic(tables) >= observed * (1 - 1e-12)).sum())
        if (exceed + 1) / (done + 1) >= 0.05:
            return combined((exceed + 1) / (done + 1))
    if bound < shortcut:
        return TestOutcome("chisquare_bayes_factor", observed, bound / share)  # below any Holm level
    if exact and (p := _exact_tail(total, n_cur, observed * (1 - 1e-12), statistic)) is not None:
        return combined(p)
    while done < wanted:
        if done and ((exceed + 1) / (done + 1) >= 0.05
                     or (done >= draws and (exceed + 1) / (wanted + 1) > (level or 0.0))):
            break  # past draws: above the level even if no later table reached it
        size = min(wanted - done, 1000 if not done else draws - done if done < draws else 20_000)
        tables = rng.multivariate_hypergeometric(total, n_cur, size=size).astype(np.float64)
        exceed += int((statistic(tables) >= observed * (1 - 1e-12)).sum())
        done += size
    return combined((exceed + 1) / (done + 1))


def topic_test(reference: np.ndarray, current: np.ndarray, clusters: int = 8, *,
               iterations: int = 10, seed: int = 0, level: float | None = None) -> TestOutcome:
    """Did the mix of topics change? k-means clusters of both samples pooled, chi-square.

    Args:
        reference: one embedding a row.
        current: one embedding a row, same width.
        clusters: k (fewer when the samples are small).
        iterations: Lloyd iterations (the clusters need not be optimal, only label-blind).
        seed: the initial centres' seed.
        level: the lowest level the test may be held to (``categorical_test``).
    """
    both = np.vstack([reference, current]).astype(np.float64)
    k = max(2, min(clusters, len(both) // 10))
    rng = np.random.default_rng(seed)
    squared = (both * both).sum(axis=1)[:, None]
    centres = both[[int(rng.integers(len(both)))]]  # k-means++: far points seed clusters
    nearest = ((both - centres[0]) ** 2).sum(axis=1)
    while len(centres) < k and nearest.sum() > 0:
        pick = both[int(rng.choice(len(both), p=nearest / nearest.sum()))]
        centres = np.vstack([centres, pick])
        nearest = np.minimum(nearest, ((both - pick) ** 2).sum(axis=1))
    k = len(centres)
    labels = np.zeros(len(both), dtype=np.int64)
    for _ in range(iterations):
        distances = squared - 2 * both @ centres.T + (centres * centres).sum(axis=1)[None, :]
        labels = distances.argmin(axis=1)
        for j in range(k):
            members = both[labels == j]
            if len(members):
                centres[j] = members.mean(axis=0)
    n1 = len(reference)
    ref_counts = np.bincount(labels[:n1], minlength=k)
    cur_counts = np.bincount(labels[n1:], minlength=k)
    outcome = categorical_test({str(j): int(c) for j, c in enumerate(ref_counts)},
                               {str(j): int(c) for j, c in enumerate(cur_counts)}, level=level)
    return outcome._replace(test="topic_chisquare")
