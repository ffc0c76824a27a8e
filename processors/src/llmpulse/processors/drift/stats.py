"""The per-window drift tests, on plain arrays (milliseconds, not Evidently's seconds).

- numeric: two-sample Kolmogorov-Smirnov (``ks``), ``scipy.stats.ks_2samp`` exactly as
  Evidently's ``ks_stat_test`` calls it (its default for numeric columns);
- binary: the pooled two-proportion z-test (``z``), Evidently's ``z_stat_test`` formula,
  when every expected count is 50 or more; else Fisher's exact test (``fisher_exact``):
  for a rare event (3% refusals) the z-test's normal tail is far too heavy at the levels
  Bonferroni asks for (p ~ 1e-4);
- categorical (``drift.categorical``, its names re-exported here): the chi-square test of
  homogeneity on the 2 x K table (``chisquare``), its p-value by Monte Carlo over tables of
  the same margins when a cell is sparse. Evidently's
  ``chisquare`` is a goodness-of-fit test against the reference's proportions, which
  ignores the reference's own sampling noise (too many alarms with a small reference) and
  is infinite for a category the reference lacks;
- tails of numeric features: the shares beyond the pooled sample's upper and lower
  quantile (``tail_fisher``): a label-blind cut, then Fisher's exact test, so an exact
  permutation test of a tail quantile. KS looks at the largest gap of the CDFs, which a
  change in 5% of the calls barely moves; the tail test sees it when that change is extreme;
- rates of rare events (``rate_scan_<k>w``): a scan over the last windows, a windowed
  CUSUM. For every span of the last 1..K windows, the one-sided binomial likelihood ratio
  of its rate against the reference's; the statistic is the largest, and its p-value is
  exact: the same maximum over the events re-dealt at random among the reference's and the
  windows' calls (Monte Carlo, a conditional permutation test), so looking at K spans costs
  no false alarms. A rate rising in 10% of the calls hardly shows in one window of 200 (two
  events where one is usual) and needs the windows since it began, whose number no one
  knows in advance;
- topics: the embeddings of both samples pooled cut into ``k`` clusters (k-means, a
  label-blind choice, fixed seed), each call's cluster a category, then the chi-square test
  above (``topic_chisquare``): a new kind of question shows as a cluster the reference lacks;
- embeddings: Hotelling's T² (``hotelling_pca``) on the first principal components of
  both samples pooled, an analytic p-value from the F distribution (a permutation MMD such as
  Evidently's ``empirical_mmd`` with 100 permutations cannot give p-values below 0.01,
  too coarse once the level is split over 18 features).

``decide`` applies Holm's step-down procedure over the F tests of a window: the smallest
p-value is held to ``alpha / F``, the next to ``alpha / (F - 1)`` (once the first is
below its level) and so on, so a window of unchanged traffic is called drifted with
probability at most ``alpha`` whatever the tests' dependence, a little more often than
with Bonferroni when a shift moves several features. With weights (Holm's weighted
version) test i is held to ``alpha * w_i / W``, W the weights of the tests not yet
rejected: the same guarantee, with more of the budget where it is wanted.

Example:
    >>> import numpy as np
    >>> from llmpulse.processors.drift.stats import ks_test
    >>> rng = np.random.default_rng(0)
    >>> ks_test(rng.normal(size=500), rng.normal(1.0, size=200)).p_value < 1e-6
    True
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
from scipy import stats as sps
from scipy.special import xlogy

from llmpulse.processors.drift.categorical import bayes_factor_bound, categorical_test, topic_test
from llmpulse.processors.drift.outcome import TestOutcome
from llmpulse.schemas import FeatureDrift

__all__ = ["TestOutcome", "bayes_factor_bound", "categorical_test", "decide", "hotelling_test",
           "increase_test", "ks_test", "principal_basis", "proportion_test", "rate_scan_test",
           "single_threaded", "tail_test", "topic_test"]


_controller: Any = None


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """BLAS on one thread: these matrices are small, and on a busy machine OpenBLAS's
    threads cost 4x the time (a 288 x 384 PCA: 5 ms alone, 21 ms threaded, measured here)."""
    global _controller
    if _controller is None:
        try:
            from threadpoolctl import ThreadpoolController

            _controller = ThreadpoolController()
        except ImportError:
            _controller = False
    if not _controller:
        yield
        return
    with _controller.limit(limits=1, user_api="blas"):
        yield


def ks_test(reference: np.ndarray, current: np.ndarray) -> TestOutcome:
    """Kolmogorov-Smirnov on two samples (NaNs must already be removed)."""
    result = sps.ks_2samp(reference, current)
    return TestOutcome("ks", float(result.statistic), float(result.pvalue))


def proportion_test(ref_hits: int, ref_n: int, cur_hits: int, cur_n: int) -> TestOutcome:
    """Did the share of 1s change? The pooled z-test, or Fisher's exact test on small counts."""
    total_hits, total = ref_hits + cur_hits, ref_n + cur_n
    if ref_n == 0 or cur_n == 0 or total_hits in (0, total):
        return TestOutcome("z", 0.0, 1.0)
    smallest = min(ref_n, cur_n) * min(total_hits, total - total_hits) / total
    if smallest < 50:  # the normal tail is too heavy for rare events at Bonferroni levels
        table = [[ref_hits, ref_n - ref_hits], [cur_hits, cur_n - cur_hits]]
        _odds, p = sps.fisher_exact(table)
        return TestOutcome("fisher_exact", float(cur_hits / cur_n - ref_hits / ref_n), float(p))
    pooled = total_hits / total
    z = (ref_hits / ref_n - cur_hits / cur_n) / math.sqrt(pooled * (1 - pooled) * (1 / ref_n + 1 / cur_n))
    return TestOutcome("z", float(z), float(2 * sps.norm.sf(abs(z))))


def increase_test(ref_hits: int, ref_n: int, cur_hits: int, cur_n: int) -> TestOutcome:
    """Did the share of 1s go up? One-sided Fisher's exact test (the statistic: the rise)."""
    if ref_n == 0 or cur_n == 0 or cur_hits == 0:
        return TestOutcome("fisher_exact_increase", 0.0, 1.0)
    table = [[cur_hits, cur_n - cur_hits], [ref_hits, ref_n - ref_hits]]
    _odds, p = sps.fisher_exact(table, alternative="greater")
    return TestOutcome("fisher_exact_increase", float(cur_hits / cur_n - ref_hits / ref_n), float(p))


def _rise_ratio(hits: np.ndarray, n: np.ndarray, ref_hits: np.ndarray | float, ref_n: int) -> np.ndarray:
    """The one-sided log likelihood ratio of two binomials: 0 unless ``hits / n`` is above
    ``ref_hits / ref_n``, else how much better two rates explain the counts than one."""
    pooled = (hits + ref_hits) / (n + ref_n)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate, ref_rate = hits / n, ref_hits / ref_n
        ratio = (xlogy(hits, rate) + xlogy(n - hits, 1 - rate) + xlogy(ref_hits, ref_rate)
                 + xlogy(ref_n - ref_hits, 1 - ref_rate) - xlogy(hits + ref_hits, pooled)
                 - xlogy(n + ref_n - hits - ref_hits, 1 - pooled))
    found: np.ndarray = np.where((n > 0) & (rate > ref_rate), ratio, 0.0)
    return found


def _tuned_ratio(hits: np.ndarray, n: np.ndarray, ref_hits: np.ndarray | float, ref_n: int,
                 rise: float) -> np.ndarray:
    """A Bernoulli CUSUM's increment summed over a span: the log likelihood ratio of the rate
    ``rise`` times the reference's against the reference's (0 when negative)."""
    base = np.clip((np.asarray(ref_hits, dtype=np.float64) + 0.5) / (ref_n + 1.0), 1e-9, 0.999 / rise)
    stay = np.log((1 - rise * base) / (1 - base))
    found: np.ndarray = np.maximum(0.0, hits * math.log(rise) + (n - hits) * stay)
    return found


def rate_scan_test(hits: Sequence[int], calls: Sequence[int], ref_hits: int, ref_calls: int, *,
                   min_calls: int = 1, draws: int = 20_000, seed: int = 0,
                   rise: float | None = None) -> TestOutcome:
    """Did a rate go up over the last windows? A scan of every span, with an exact p-value.

    For k = 1..K the last k windows together (``hits[-k:]`` of ``calls[-k:]``) against the
    reference; the statistic is the largest one-sided log likelihood ratio over the spans
    with at least ``min_calls`` calls (a windowed CUSUM that estimates both the rate after
    the change and when it began). Under no change every call of the reference and of the
    windows is alike, so given the total of events their deal among them is uniform
    (multivariate hypergeometric): the p-value is the share of random deals whose scan
    reaches the one observed (1,000 deals, ``draws`` when that share is below 0.02), an
    exact conditional test whatever K. The test's name gives the span that scored best
    (``rate_scan_3w``: the last 3 windows); the statistic is that span's rise of the rate.

    Args:
        hits: the events of each window, oldest first (the window being closed last).
        calls: the calls (or thumbs) each window's rate is of, same order.
        ref_hits: the reference's events.
        ref_calls: the reference's calls.
        min_calls: spans with fewer calls are not scored.
        draws: the most random deals.
        seed: their seed (the same counts give the same p-value).
        rise: None: each span's rate estimated from it (a GLR scan, what the monitor runs);
            a number: a CUSUM tuned to that rise (each span scored by the likelihood ratio
            of ``rise`` times the reference's rate), same exact p-value. Measured no better
            than the GLR in ``benchmarks/drift_rate_power.py`` (``cusum`` there).

    Example:
        >>> rate_scan_test([2, 1, 6, 9], [200] * 4, 16, 1600).p_value < 1e-3  # up for 2 windows
        True
    """
    newest = np.cumsum(np.asarray(hits, dtype=np.float64)[::-1])
    sizes = np.cumsum(np.asarray(calls, dtype=np.float64)[::-1])
    scored = sizes >= max(1, min_calls)
    if ref_calls <= 0 or not scored.any():
        return TestOutcome("rate_scan", 0.0, 1.0)

    def score(spans: np.ndarray, ref: np.ndarray | float) -> np.ndarray:
        if rise is None:
            return _rise_ratio(spans, sizes, ref, ref_calls)
        return _tuned_ratio(spans, sizes, ref, ref_calls, rise)

    observed = np.where(scored, score(newest, float(ref_hits)), 0.0)
    best = int(observed.argmax())
    name = f"rate_scan_{best + 1}w"
    went_up = float(newest[best] / sizes[best] - ref_hits / ref_calls)
    top = float(observed[best])
    total = int(newest[-1]) + ref_hits
    if top <= 0 or total == 0:
        return TestOutcome(name, max(0.0, went_up), 1.0)
    blocks = [int(c) for c in reversed(calls)]  # newest first, as the spans add them
    rng = np.random.default_rng(seed)
    exceed = done = 0
    for size in (1000, draws - 1000):
        if size <= 0 or (done and (exceed + 1) / (done + 1) >= 0.02):
            break
        left, pool = np.full(size, total, dtype=np.int64), ref_calls + sum(blocks)
        dealt = np.empty((size, len(blocks)), dtype=np.float64)
        for j, block in enumerate(blocks):  # one block at a time: hypergeometric given the rest
            got = rng.hypergeometric(left, pool - left, block) if block else np.zeros(size, np.int64)
            dealt[:, j] = got
            left, pool = left - got, pool - block
        scans = np.where(scored, score(np.cumsum(dealt, axis=1), left[:, None].astype(np.float64)), 0.0)
        exceed += int((scans.max(axis=1) >= top * (1 - 1e-9)).sum())
        done += size
    return TestOutcome(name, went_up, (exceed + 1) / (done + 1))


def tail_test(reference: np.ndarray, current: np.ndarray, quantile: float = 0.98) -> TestOutcome:
    """Did more (or fewer) values land in a tail? Both tails, Fisher's exact test each.

    The cuts are the pooled sample's ``quantile`` and ``1 - quantile`` (label-blind, so the
    2 x 2 table's margins are fixed under the null and the test is exact); the p-value is
    the smaller tail's, doubled. The statistic is the change of that tail's share.
    """
    pooled = np.concatenate([reference, current])
    if len(pooled) == 0:
        return TestOutcome("tail_fisher", 0.0, 1.0)
    upper, lower = np.quantile(pooled, [quantile, 1 - quantile])
    best = TestOutcome("tail_fisher", 0.0, 1.0)
    n1, n2 = len(reference), len(current)
    for ref_hits, cur_hits in ((int((reference > upper).sum()), int((current > upper).sum())),
                               (int((reference < lower).sum()), int((current < lower).sum()))):
        if ref_hits + cur_hits == 0:
            continue
        _odds, p = sps.fisher_exact([[ref_hits, n1 - ref_hits], [cur_hits, n2 - cur_hits]])
        if p < best.p_value:
            best = TestOutcome("tail_fisher", cur_hits / n2 - ref_hits / n1, float(p))
    return best._replace(p_value=min(1.0, 2 * best.p_value))


class EmbeddingOutcome(NamedTuple):
    """Hotelling's T² on principal components, and how far the mean embedding moved."""

    outcome: TestOutcome
    cosine_distance: float


def principal_basis(centred: np.ndarray, components: int) -> np.ndarray:
    """The first principal directions of centred rows (d x k), by a randomized range
    finder with a fixed seed: milliseconds where a full SVD of 256 x 384 takes 100 ms here."""
    n, d = centred.shape
    k = max(1, min(components, n - 1, d))
    rng = np.random.default_rng(0)
    y = centred @ rng.standard_normal((d, min(d, k + 10)))
    for _ in range(2):
        y, _ = np.linalg.qr(y)
        y = centred @ (centred.T @ y)
    q, _ = np.linalg.qr(y)
    b = q.T @ centred
    values, vectors = np.linalg.eigh(b @ b.T)
    order = np.argsort(values)[::-1][:k]
    scale = np.sqrt(np.maximum(values[order], 1e-12))
    basis: np.ndarray = ((vectors[:, order].T @ b) / scale[:, None]).T
    return basis


def hotelling_test(reference: np.ndarray, current: np.ndarray, components: int = 8,
                   shrinkage: float = 0.05, *, threshold: float | None = None,
                   max_permutations: int = 200_000, seed: int = 0) -> EmbeddingOutcome:
    """Did the mean embedding move? Hotelling's T² on the first principal components.

    The components are those of both samples pooled: a label-blind choice, so the test
    stays valid, and a shift in a direction the reference hardly varies in (a new topic)
    makes its own component instead of being projected away.

    Embeddings of templated traffic are far from normal (rare answers form tight, distant
    clusters), which makes the F distribution's tail too light. So when its p-value is
    below 0.05 and a ``threshold`` is given, the p-value is taken from a permutation test
    of the same statistic instead (T² with the pooled covariance, which labels do not
    change; enough permutations to resolve ``threshold``, stopping early once the
    p-value would stay above it whatever the remaining permutations gave).

    Args:
        reference: one embedding a row.
        current: one embedding a row, same width.
        components: principal components kept (fewer when the samples are small).
        shrinkage: share of the average variance added to the covariance's diagonal
            (keeps near-singular covariances, e.g. from templated prompts, well behaved).
        threshold: the level the p-value will be compared with (enables permutations).
        max_permutations: the most permutations run.
        seed: the permutations' seed (results are reproducible).
    """
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    n1, n2 = len(ref), len(cur)
    n = n1 + n2
    mu_ref, mu_cur = ref.mean(axis=0), cur.mean(axis=0)
    norms = float(np.linalg.norm(mu_ref) * np.linalg.norm(mu_cur))
    cosine = 1.0 - float(mu_ref @ mu_cur) / norms if norms > 0 else 0.0
    both = np.vstack([ref, cur])
    centre = both.mean(axis=0)
    basis = principal_basis(both - centre, min(components, n - 3))
    k = basis.shape[1]
    z = (both - centre) @ basis
    x, y = z[:n1], z[n1:]
    diff = y.mean(axis=0) - x.mean(axis=0)
    within = ((n1 - 1) * np.cov(x, rowvar=False, ddof=1).reshape(k, k)
              + (n2 - 1) * np.cov(y, rowvar=False, ddof=1).reshape(k, k)) / (n - 2)
    within += np.eye(k) * shrinkage * max(float(np.trace(within)) / k, 1e-12)
    t2 = float(n1 * n2 / n * diff @ np.linalg.solve(within, diff))
    dof = n - k - 1
    p = float(sps.f.sf(dof / (k * (n - 2)) * t2, k, dof))
    if threshold is None or p >= 0.05:
        return EmbeddingOutcome(TestOutcome("hotelling_pca", t2, p), max(0.0, cosine))
    total = np.cov(z, rowvar=False, ddof=1).reshape(k, k)
    total += np.eye(k) * shrinkage * max(float(np.trace(total)) / k, 1e-12)
    white = z @ np.linalg.inv(np.linalg.cholesky(total)).T
    grand = white.sum(axis=0)

    def statistic(current_sums: np.ndarray) -> np.ndarray:
        d = current_sums / n2 - (grand - current_sums) / n1
        values: np.ndarray = np.einsum("ij,ij->i", d, d)
        return values

    observed = float(statistic(white[n1:].sum(axis=0)[None, :])[0])
    rng = np.random.default_rng(seed)
    wanted = min(max_permutations, math.ceil(5 / threshold))
    done = exceed = 0
    order = np.tile(np.arange(n), (1000, 1))
    while done < wanted:
        picks = rng.permuted(order, axis=1)[:, :n2]
        exceed += int((statistic(white[picks].sum(axis=1)) >= observed * (1 - 1e-12)).sum())
        done += len(picks)
        if (exceed + 1) / (wanted + 1) > threshold:
            break  # above the threshold even if no later permutation reached it
    p_perm = (exceed + 1) / (done + 1)
    return EmbeddingOutcome(TestOutcome("hotelling_permutation", n1 * n2 / n * observed, p_perm),
                            max(0.0, cosine))


def decide(outcomes: Sequence[tuple[str, TestOutcome]], alpha: float, min_drifted: int = 1,
           weights: Sequence[float] | None = None) -> tuple[list[FeatureDrift], float, bool]:
    """Holm over the tests: ``(features, share_drifted, drifted)``.

    Each feature's ``threshold`` is the level Holm held its p-value to: ``alpha / (F - r)``
    for the r-th smallest p-value (r from 0); it drifted when it and every smaller p-value
    were below their levels. With ``weights`` (one per test, positive), weighted Holm: the
    tests in order of ``p / w``, each held to ``alpha * w / W`` with W the weights of the
    tests from it on; equal weights are plain Holm.
    """
    if not outcomes:
        return [], 0.0, False
    m = len(outcomes)
    w = [1.0] * m if weights is None else [float(x) for x in weights]
    if len(w) != m or min(w) <= 0:
        raise ValueError("decide: one positive weight per test")
    p_values = [1.0 if math.isnan(o.p_value) else o.p_value for _name, o in outcomes]
    order = sorted(range(m), key=lambda i: p_values[i] / w[i])
    thresholds = [0.0] * m
    rejected = [False] * m
    going = True
    left = sum(w)
    for i in order:
        thresholds[i] = alpha * w[i] / left
        going = going and p_values[i] < thresholds[i]
        rejected[i] = going
        left -= w[i]
    features = [FeatureDrift(feature=name, test=o.test, statistic=_finite(o.statistic),
                             p_value=_finite(o.p_value), threshold=thresholds[i], drifted=rejected[i])
                for i, (name, o) in enumerate(outcomes)]
    hits = sum(rejected)
    return features, hits / m, hits >= min_drifted


def _finite(value: float) -> float:
    if math.isnan(value):
        return 0.0
    if math.isinf(value):
        return math.copysign(1e300, value)
    return value
