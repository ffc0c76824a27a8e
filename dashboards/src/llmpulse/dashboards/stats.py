"""Two-sample comparison statistics: is B different from A, metric by metric?

Plain Python over numpy and scipy, no store: ``compare_samples`` takes per-call samples
of each metric for A and B (prompt versions, or the variants of a replay run) and gives,
for each metric, both values, the difference B - A with a confidence interval, a p-value
from the test that fits the metric, and a verdict after correcting for testing many
metrics at once (Holm by default, Benjamini-Hochberg on request).

Tests by kind:

* ``PROPORTION`` (0/1 per call: thumbs up, toxic, refused, error): two-proportion z-test,
  Fisher's exact test when an expected count is under 5; Newcombe's hybrid score
  interval for the difference.
* ``MEAN`` (scores, tokens, cost): Welch's t-test and interval; below 30 samples a side,
  a permutation test and a bootstrap interval instead (no normal approximation).
* ``ORDINAL`` (1-5 ratings): Mann-Whitney U (distributions); bootstrap interval of the
  difference in means.
* ``QUANTILE`` (latency p50, p95): permutation test of the difference in the quantile,
  bootstrap percentile interval (no closed form fits a quantile difference).
* ``RATIO`` (a rate over sub-units, e.g. tool errors over the tool calls of agent traces):
  one numerator and one denominator per unit (a trace); the value is sum / sum. Units,
  not sub-units, are permuted and resampled, so calls clustered in a trace do not pass
  for independent ones (permutation test, bootstrap percentile interval).

Every random draw comes from ``numpy.random.default_rng(seed)``.

Example:
    >>> from llmpulse.dashboards.stats import MetricKind, MetricSamples, compare_samples
    >>> a = [MetricSamples("thumbs_up", MetricKind.PROPORTION, [1] * 45 + [0] * 55, higher_is_better=True)]
    >>> b = [MetricSamples("thumbs_up", MetricKind.PROPORTION, [1] * 60 + [0] * 40, higher_is_better=True)]
    >>> result = compare_samples(a, b).metric("thumbs_up")
    >>> round(result.difference, 2), round(result.p_value, 4), result.test
    (0.15, 0.0337, 'two-proportion z')
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
from scipy import stats as sps

__all__ = [
    "Comparison",
    "MetricComparison",
    "MetricKind",
    "MetricSamples",
    "adjust_p_values",
    "as_floats",
    "compare_metric",
    "compare_samples",
]


_WELCH_MIN = 30
"""Below this many values a side, means are compared by permutation, not Welch's t."""


class MetricKind(StrEnum):
    """How a metric is compared (which test, which interval)."""

    PROPORTION = "proportion"
    MEAN = "mean"
    ORDINAL = "ordinal"
    QUANTILE = "quantile"
    RATIO = "ratio"


@dataclass(frozen=True)
class MetricSamples:
    """One metric's per-call values on one side.

    Attributes:
        name: ``thumbs_up_rate``, ``latency_p95_ms`` ...
        kind: how to compare it.
        values: one value per call (0/1 for proportions); NaN and None are dropped.
        quantile: the quantile compared, for ``QUANTILE`` (0.95 for p95).
        higher_is_better: True, False, or None when neither (e.g. tokens); sets the verdict.
        unit: for display (``ms``, ``USD``, ``%``...).
        description: what one value is.
        denominators: for ``RATIO``, one per value (``values`` are the numerators).
        group: which part of the comparison shows it (``call``: per call; ``agent``: per
            agent trace).
    """

    name: str
    kind: MetricKind
    values: Sequence[float] | np.ndarray
    quantile: float | None = None
    higher_is_better: bool | None = None
    unit: str = ""
    description: str = ""
    denominators: Sequence[float] | np.ndarray | None = None
    group: str = "call"

    def array(self) -> np.ndarray:
        """The values as a float array, NaN and None removed; for ``RATIO``, an ``(n, 2)``
        array of (numerator, denominator) per unit, units with a zero denominator removed."""
        raw = as_floats(self.values)
        if self.kind is not MetricKind.RATIO:
            kept: np.ndarray = raw[~np.isnan(raw)]
            return kept
        if self.denominators is None:
            raise ValueError(f"{self.name}: a ratio needs its denominators")
        below = as_floats(self.denominators)
        usable = ~np.isnan(raw) & ~np.isnan(below) & (below > 0)
        return np.column_stack([raw[usable], below[usable]])


def as_floats(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Values as a float array, None as NaN (an array is converted as it is)."""
    if isinstance(values, np.ndarray):
        return values.astype(float)
    return np.asarray([np.nan if v is None else float(v) for v in values], dtype=float)


@dataclass
class MetricComparison:
    """A metric compared: values, difference B - A with its interval, p-values, verdict."""

    name: str
    kind: str
    test: str
    n_a: int
    n_b: int
    value_a: float | None
    value_b: float | None
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    p_adjusted: float | None = None
    significant: bool = False
    verdict: str = "not tested"
    warning: str | None = None
    higher_is_better: bool | None = None
    unit: str = ""
    description: str = ""
    group: str = "call"

    @property
    def relative_difference(self) -> float | None:
        """(B - A) / |A|, when A is not zero."""
        if self.difference is None or not self.value_a:
            return None
        return self.difference / abs(self.value_a)


@dataclass
class Comparison:
    """Every metric of A against B, with the correction for multiple testing applied."""

    label_a: str
    label_b: str
    alpha: float
    correction: str
    metrics: list[MetricComparison] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)
    """Per metric group, what its units are (``agent``: how many traces each side has)."""

    def metric(self, name: str) -> MetricComparison:
        """The comparison of one metric."""
        for metric in self.metrics:
            if metric.name == name:
                return metric
        raise KeyError(f"no metric {name!r}")

    @property
    def significant(self) -> list[MetricComparison]:
        """The metrics that differ after the correction."""
        return [m for m in self.metrics if m.significant]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN becomes None)."""

        def clean(value: Any) -> Any:
            if isinstance(value, float) and not math.isfinite(value):
                return None
            return value

        return {
            "a": self.label_a,
            "b": self.label_b,
            "alpha": self.alpha,
            "correction": self.correction,
            "warnings": list(self.warnings),
            "notes": dict(self.notes),
            "metrics": [
                {k: clean(v) for k, v in asdict(m).items()}
                | {"relative_difference": clean(m.relative_difference)}
                for m in self.metrics
            ],
        }


# -- intervals and tests ---------------------------------------------------------------------


def _wilson(successes: float, n: int, z: float) -> tuple[float, float]:
    p = successes / n
    denominator = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return center - half, center + half


def _proportion(a: np.ndarray, b: np.ndarray, alpha: float) -> tuple[str, float, float, float]:
    """(test, p-value, ci_low, ci_high) for p_b - p_a."""
    na, nb = len(a), len(b)
    xa, xb = float(a.sum()), float(b.sum())
    pa, pb = xa / na, xb / nb
    z = sps.norm.ppf(1 - alpha / 2)
    la, ua = _wilson(xa, na, z)
    lb, ub = _wilson(xb, nb, z)
    diff = pb - pa
    low = diff - math.sqrt((pb - lb) ** 2 + (ua - pa) ** 2)
    high = diff + math.sqrt((ub - pb) ** 2 + (pa - la) ** 2)
    pooled = (xa + xb) / (na + nb)
    expected = min(pooled * na, (1 - pooled) * na, pooled * nb, (1 - pooled) * nb)
    if expected < 5:
        ka, kb = round(xa), round(xb)
        table = [[kb, nb - kb], [ka, na - ka]]
        return "Fisher exact", float(sps.fisher_exact(table).pvalue), low, high
    se = math.sqrt(pooled * (1 - pooled) * (1 / na + 1 / nb))
    p_value = 1.0 if se == 0 else float(2 * sps.norm.sf(abs(diff) / se))
    return "two-proportion z", p_value, low, high


def _welch(a: np.ndarray, b: np.ndarray, alpha: float) -> tuple[str, float, float, float]:
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    diff = float(b.mean() - a.mean())
    se = math.sqrt(va + vb)
    if se == 0:
        return "Welch t", 1.0 if diff == 0 else 0.0, diff, diff
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    t = sps.t.ppf(1 - alpha / 2, df)
    p_value = float(sps.ttest_ind(b, a, equal_var=False).pvalue)
    return "Welch t", p_value, diff - t * se, diff + t * se


def _statistic(values: np.ndarray, kind: MetricKind, quantile: float | None, axis: int = -1) -> Any:
    if kind is MetricKind.RATIO:  # (..., units, 2): sum of numerators / sum of denominators
        return values[..., 0].sum(axis=-1) / values[..., 1].sum(axis=-1)
    if kind is MetricKind.QUANTILE:
        return np.quantile(values, quantile if quantile is not None else 0.5, axis=axis)
    return values.mean(axis=axis)


def _bootstrap_ci(
    a: np.ndarray,
    b: np.ndarray,
    kind: MetricKind,
    quantile: float | None,
    alpha: float,
    rng: np.random.Generator,
    rounds: int,
) -> tuple[float, float]:
    """Percentile bootstrap interval of stat(B) - stat(A), resampling each side."""
    diffs = []
    for start in range(0, rounds, 500):
        size = min(500, rounds - start)
        sa = a[rng.integers(0, len(a), (size, len(a)))]
        sb = b[rng.integers(0, len(b), (size, len(b)))]
        diffs.append(_statistic(sb, kind, quantile) - _statistic(sa, kind, quantile))
    all_diffs = np.concatenate(diffs)
    return float(np.quantile(all_diffs, alpha / 2)), float(np.quantile(all_diffs, 1 - alpha / 2))


def _permutation_p(
    a: np.ndarray,
    b: np.ndarray,
    kind: MetricKind,
    quantile: float | None,
    rng: np.random.Generator,
    rounds: int,
) -> float:
    """Two-sided permutation p-value of |stat(B) - stat(A)| under exchangeable labels."""
    observed = abs(_statistic(b, kind, quantile) - _statistic(a, kind, quantile))
    pooled = np.concatenate([a, b])
    extreme = 0
    for start in range(0, rounds, 500):
        size = min(500, rounds - start)
        if pooled.ndim == 2:  # ratio units: permute whole rows (numerator with its denominator)
            order = rng.permuted(np.broadcast_to(np.arange(len(pooled)), (size, len(pooled))), axis=1)
            shuffled = pooled[order]
        else:
            shuffled = rng.permuted(np.broadcast_to(pooled, (size, len(pooled))), axis=1)
        diffs = np.abs(
            _statistic(shuffled[:, len(a) :], kind, quantile)
            - _statistic(shuffled[:, : len(a)], kind, quantile)
        )
        extreme += int((diffs >= observed - 1e-12 * max(1.0, abs(observed))).sum())
    return (extreme + 1) / (rounds + 1)


def _min_samples(kind: MetricKind, quantile: float | None, min_samples: int) -> int:
    """Fewest values a side needs; a tail quantile needs enough values beyond it."""
    if kind is MetricKind.QUANTILE and quantile is not None:
        tail = min(quantile, 1 - quantile)
        return max(min_samples, math.ceil(5 / tail)) if tail > 0 else min_samples
    return min_samples


def compare_metric(
    a: MetricSamples,
    b: MetricSamples,
    *,
    alpha: float = 0.05,
    min_samples: int = 30,
    resamples: int = 2000,
    seed: int = 0,
) -> MetricComparison:
    """Compare one metric (no multiple-testing correction; ``compare_samples`` applies it).

    Raises:
        ValueError: the two sides are different metrics or kinds.
    """
    if a.name != b.name or a.kind != b.kind:
        raise ValueError(f"cannot compare {a.name} ({a.kind}) with {b.name} ({b.kind})")
    xa, xb = a.array(), b.array()
    na, nb = len(xa), len(xb)
    kind = a.kind
    result = MetricComparison(
        a.name,
        kind.value,
        "",
        na,
        nb,
        None,
        None,
        None,
        None,
        None,
        None,
        higher_is_better=a.higher_is_better,
        unit=a.unit,
        description=a.description,
        group=a.group,
    )
    if na:
        result.value_a = float(_statistic(xa, kind, a.quantile))
    if nb:
        result.value_b = float(_statistic(xb, kind, a.quantile))
    needed = _min_samples(kind, a.quantile, min_samples)
    if na < 2 or nb < 2:
        result.warning = f"A has {na} and B {nb} values: nothing to compare"
        result.verdict = "insufficient data"
        return result
    result.difference = float(result.value_b - result.value_a)  # type: ignore[operator]
    rng = np.random.default_rng(seed)
    if kind is MetricKind.PROPORTION:
        result.test, result.p_value, result.ci_low, result.ci_high = _proportion(xa, xb, alpha)
    elif kind is MetricKind.MEAN and min(na, nb) >= _WELCH_MIN:
        result.test, result.p_value, result.ci_low, result.ci_high = _welch(xa, xb, alpha)
    elif kind is MetricKind.ORDINAL:
        result.test = "Mann-Whitney U"
        result.p_value = float(sps.mannwhitneyu(xb, xa, alternative="two-sided").pvalue)
        result.ci_low, result.ci_high = _bootstrap_ci(xa, xb, kind, None, alpha, rng, resamples)
    else:
        result.test = "permutation (bootstrap CI)"
        result.p_value = _permutation_p(xa, xb, kind, a.quantile, rng, resamples)
        result.ci_low, result.ci_high = _bootstrap_ci(xa, xb, kind, a.quantile, alpha, rng, resamples)
    if min(na, nb) < needed:
        result.warning = (
            f"too few samples to say anything: A has {na}, B has {nb}; "
            f"{a.name} needs at least {needed} a side"
        )
    return result


def adjust_p_values(p_values: Sequence[float], method: str = "holm") -> list[float]:
    """Holm's step-down (family-wise error) or Benjamini-Hochberg (false discovery rate)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    if method == "holm":
        running = 0.0
        for rank, index in enumerate(order):
            running = max(running, min(1.0, (m - rank) * p_values[index]))
            adjusted[index] = running
    elif method in ("bh", "fdr_bh", "benjamini-hochberg"):
        running = 1.0
        for rank in range(m - 1, -1, -1):
            index = order[rank]
            running = min(running, min(1.0, m / (rank + 1) * p_values[index]))
            adjusted[index] = running
    else:
        raise ValueError(f"unknown correction {method!r}: use holm or bh")
    return adjusted


def _verdict(metric: MetricComparison) -> str:
    if not metric.significant or metric.difference is None:
        return "no significant difference"
    higher = metric.difference > 0
    if metric.higher_is_better is None:
        return "B higher" if higher else "B lower"
    return "B better" if higher == metric.higher_is_better else "B worse"


def compare_samples(
    a: Iterable[MetricSamples] | Mapping[str, MetricSamples],
    b: Iterable[MetricSamples] | Mapping[str, MetricSamples],
    *,
    label_a: str = "A",
    label_b: str = "B",
    alpha: float = 0.05,
    correction: str = "holm",
    min_samples: int = 30,
    resamples: int = 2000,
    seed: int = 0,
) -> Comparison:
    """Compare every metric present on both sides, then correct for testing them all.

    Args:
        a: A's samples, per metric (a list, or a ``name -> samples`` mapping).
        b: B's samples, per metric.
        label_a: how A is named in the output (``answer v1``).
        label_b: how B is named.
        alpha: the significance level of the family.
        correction: ``holm`` (family-wise error rate) or ``bh`` (false discovery rate).
        min_samples: fewer values than this on a side and the metric is not interpreted.
        resamples: bootstrap and permutation rounds.
        seed: seeds every random draw (each metric gets its own stream from it).
    """
    side_a = dict(a) if isinstance(a, Mapping) else {s.name: s for s in a}
    side_b = dict(b) if isinstance(b, Mapping) else {s.name: s for s in b}
    comparison = Comparison(label_a, label_b, alpha, correction)
    for index, name in enumerate(n for n in side_a if n in side_b):
        comparison.metrics.append(
            compare_metric(
                side_a[name],
                side_b[name],
                alpha=alpha,
                min_samples=min_samples,
                resamples=resamples,
                seed=seed * 1_000 + index,
            )
        )
    for name in sorted(set(side_a) ^ set(side_b)):
        comparison.warnings.append(f"{name} is measured on one side only; not compared")
    tested = [m for m in comparison.metrics if m.p_value is not None and m.warning is None]
    for metric, adjusted in zip(
        tested,
        adjust_p_values([m.p_value for m in tested], correction),  # type: ignore[misc]
        strict=True,
    ):
        metric.p_adjusted = adjusted
        metric.significant = adjusted < alpha
        metric.verdict = _verdict(metric)
    for metric in comparison.metrics:
        if metric.warning is not None:
            metric.verdict = "insufficient data"
            comparison.warnings.append(f"{metric.name}: {metric.warning}")
    return comparison
