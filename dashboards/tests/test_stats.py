"""The comparison statistics against known cases, and their calibration and power by simulation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from llmpulse.dashboards.stats import (
    MetricKind,
    MetricSamples,
    adjust_p_values,
    compare_metric,
    compare_samples,
)


def _prop(name: str, ones: int, n: int, better: bool | None = True) -> MetricSamples:
    return MetricSamples(
        name, MetricKind.PROPORTION, [1.0] * ones + [0.0] * (n - ones), higher_is_better=better
    )


def test_two_proportion_z_and_newcombe_interval_match_published_values() -> None:
    # Newcombe (1998), Statistics in Medicine 17:873, example (a): 56/70 vs 48/80, method 10.
    result = compare_metric(_prop("x", 48, 80), _prop("x", 56, 70))
    assert result.test == "two-proportion z"
    assert result.difference == pytest.approx(0.2)
    assert (round(result.ci_low, 4), round(result.ci_high, 4)) == (0.0524, 0.3339)
    # Textbook z-test: 45/100 vs 60/100, pooled p 0.525, z = 2.124.
    assert compare_metric(_prop("x", 45, 100), _prop("x", 60, 100)).p_value == pytest.approx(0.0337, abs=1e-4)


def test_small_counts_use_fishers_exact_test() -> None:
    result = compare_metric(_prop("x", 1, 10), _prop("x", 6, 10), min_samples=5)
    assert result.test == "Fisher exact"
    assert result.p_value == pytest.approx(0.05728, abs=1e-5)


def test_welch_interval_matches_scipy() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(10, 2, 80), rng.normal(11, 5, 120)
    result = compare_metric(MetricSamples("m", MetricKind.MEAN, a), MetricSamples("m", MetricKind.MEAN, b))
    reference = sps.ttest_ind(b, a, equal_var=False)
    interval = reference.confidence_interval(0.95)
    assert result.test == "Welch t"
    assert result.p_value == pytest.approx(reference.pvalue)
    assert (result.ci_low, result.ci_high) == pytest.approx((interval.low, interval.high))


def test_tests_by_kind_and_sample_size() -> None:
    rng = np.random.default_rng(5)
    small = compare_metric(
        MetricSamples("m", MetricKind.MEAN, rng.normal(0, 1, 20)),
        MetricSamples("m", MetricKind.MEAN, rng.normal(0, 1, 25)),
        min_samples=10,
    )
    assert small.test == "permutation (bootstrap CI)"  # below 30 a side no normal approximation
    ratings = compare_metric(
        MetricSamples("r", MetricKind.ORDINAL, rng.integers(1, 6, 200)),
        MetricSamples("r", MetricKind.ORDINAL, rng.integers(2, 6, 200)),
    )
    assert ratings.test == "Mann-Whitney U" and ratings.p_value < 0.05 and ratings.ci_low > 0
    latency = compare_metric(
        MetricSamples("p95", MetricKind.QUANTILE, rng.lognormal(6, 0.5, 400), quantile=0.95),
        MetricSamples("p95", MetricKind.QUANTILE, rng.lognormal(6.3, 0.5, 400), quantile=0.95),
    )
    assert latency.test == "permutation (bootstrap CI)" and latency.p_value < 0.01
    assert latency.ci_low < latency.difference < latency.ci_high


def test_holm_and_benjamini_hochberg() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    assert adjust_p_values(p, "holm") == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert adjust_p_values(p, "bh") == pytest.approx([0.02, 0.04, 0.04, 0.02])
    with pytest.raises(ValueError, match="unknown correction"):
        adjust_p_values(p, "bonferroni-ish")


def test_too_few_samples_are_reported_not_judged() -> None:
    comparison = compare_samples([_prop("up", 2, 10)], [_prop("up", 9, 10)])
    metric = comparison.metric("up")
    assert metric.verdict == "insufficient data" and not metric.significant
    assert "too few samples" in metric.warning and comparison.warnings
    tail = compare_metric(
        MetricSamples("p95", MetricKind.QUANTILE, np.arange(60.0), quantile=0.95),
        MetricSamples("p95", MetricKind.QUANTILE, np.arange(60.0) + 50, quantile=0.95),
    )
    assert "needs at least 100" in tail.warning  # 5 values beyond p95
    empty = compare_metric(
        MetricSamples("m", MetricKind.MEAN, []), MetricSamples("m", MetricKind.MEAN, [1.0])
    )
    assert empty.verdict == "insufficient data" and empty.p_value is None


def test_verdict_follows_the_direction_that_is_better() -> None:
    comparison = compare_samples(
        [
            _prop("thumbs_up", 300, 600),
            _prop("errors", 30, 600, better=False),
            _prop("tokens", 100, 600, None),
        ],
        [
            _prop("thumbs_up", 400, 600),
            _prop("errors", 80, 600, better=False),
            _prop("tokens", 200, 600, None),
        ],
        label_a="v1",
        label_b="v2",
    )
    assert [m.verdict for m in comparison.metrics] == ["B better", "B worse", "B higher"]
    assert comparison.to_dict()["metrics"][0]["relative_difference"] == pytest.approx(1 / 3)


def _identical_sides(rng: np.random.Generator, n: int) -> tuple[list[MetricSamples], list[MetricSamples]]:
    def side() -> list[MetricSamples]:
        return [
            MetricSamples("thumbs_up", MetricKind.PROPORTION, (rng.random(n) < 0.6).astype(float)),
            MetricSamples("toxic", MetricKind.PROPORTION, (rng.random(n) < 0.05).astype(float)),
            MetricSamples("relevance", MetricKind.MEAN, rng.beta(5, 3, n)),
            MetricSamples("cost", MetricKind.MEAN, rng.lognormal(-8, 1.0, n)),
            MetricSamples("rating", MetricKind.ORDINAL, rng.integers(1, 6, n).astype(float)),
            MetricSamples("p50", MetricKind.QUANTILE, rng.lognormal(6, 0.5, n), quantile=0.5),
            MetricSamples("p95", MetricKind.QUANTILE, rng.lognormal(6, 0.5, n), quantile=0.95),
        ]

    return side(), side()


def test_identical_distributions_are_not_declared_different_beyond_alpha() -> None:
    seeds, alpha = 100, 0.05
    raw_rejections = family_rejections = 0
    per_metric: dict[str, int] = {}
    for seed in range(seeds):
        a, b = _identical_sides(np.random.default_rng(seed), 250)
        comparison = compare_samples(a, b, resamples=300, seed=seed, alpha=alpha)
        for metric in comparison.metrics:
            hit = metric.p_value < alpha
            raw_rejections += hit
            per_metric[metric.name] = per_metric.get(metric.name, 0) + hit
        family_rejections += bool(comparison.significant)
    tests = seeds * len(per_metric)
    # Each test alone: about alpha (700 tests: expected 35, 99.9% band about 17-56).
    assert 17 <= raw_rejections <= 56, (raw_rejections, per_metric)
    assert max(per_metric.values()) <= 13, per_metric  # Binomial(100, 0.05): P(>13) < 0.001
    # The family after Holm: at most alpha of the comparisons declare any difference.
    assert family_rejections <= 12, family_rejections
    print(f"false positives: {raw_rejections}/{tests} single tests, {family_rejections}/{seeds} families")


def test_a_real_difference_is_found() -> None:
    found: dict[str, int] = {}
    seeds = 30
    for seed in range(seeds):
        rng = np.random.default_rng(1000 + seed)
        a = [
            MetricSamples("thumbs_up", MetricKind.PROPORTION, (rng.random(400) < 0.55).astype(float)),
            MetricSamples("relevance", MetricKind.MEAN, rng.normal(0.62, 0.15, 400)),
            MetricSamples("p50", MetricKind.QUANTILE, rng.lognormal(6.0, 0.45, 400), quantile=0.5),
            MetricSamples("toxic", MetricKind.PROPORTION, (rng.random(400) < 0.07).astype(float)),
        ]
        b = [
            MetricSamples("thumbs_up", MetricKind.PROPORTION, (rng.random(400) < 0.72).astype(float)),
            MetricSamples("relevance", MetricKind.MEAN, rng.normal(0.74, 0.15, 400)),
            MetricSamples("p50", MetricKind.QUANTILE, rng.lognormal(6.25, 0.45, 400), quantile=0.5),
            MetricSamples("toxic", MetricKind.PROPORTION, (rng.random(400) < 0.07).astype(float)),
        ]
        for metric in compare_samples(a, b, resamples=300, seed=seed).metrics:
            found[metric.name] = found.get(metric.name, 0) + metric.significant
    assert found["thumbs_up"] >= 28 and found["relevance"] == seeds and found["p50"] >= 28, found
    assert found["toxic"] <= 3, found
    print(f"detected in {seeds} seeds: {found}")


def test_same_seed_same_answer() -> None:
    rng = np.random.default_rng(9)
    a = [MetricSamples("p95", MetricKind.QUANTILE, rng.lognormal(6, 0.5, 300), quantile=0.95)]
    b = [MetricSamples("p95", MetricKind.QUANTILE, rng.lognormal(6.1, 0.5, 300), quantile=0.95)]
    first, second = (compare_samples(a, b, seed=4).metrics[0] for _ in range(2))
    assert (first.p_value, first.ci_low, first.ci_high) == (second.p_value, second.ci_low, second.ci_high)
