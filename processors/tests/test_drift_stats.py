"""The per-window tests: the same numbers as Evidently's, valid levels, and real power."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from llmpulse.processors.drift.stats import categorical_test, decide, hotelling_test, ks_test, proportion_test


def test_ks_matches_evidentlys_default_numeric_test():
    stattests = pytest.importorskip("evidently.legacy.calculations.stattests")
    rng = np.random.default_rng(1)
    ref, cur = rng.normal(size=400), rng.normal(0.2, size=150)
    ours = ks_test(ref, cur)
    theirs = stattests.ks_stat_test(pd.Series(ref), pd.Series(cur), "num", 0.05)
    assert ours.p_value == pytest.approx(theirs.drift_score, rel=1e-12)
    assert ours.test == "ks"


def test_z_test_matches_evidentlys_formula_and_switches_to_fisher_on_small_counts():
    # Fisher below 50 expected: the z-test's tail is too heavy for rare events at p ~ 1e-4
    stattests = pytest.importorskip("evidently.legacy.calculations.stattests")
    ref = np.array([1] * 400 + [0] * 3600)
    cur = np.array([1] * 300 + [0] * 1200)
    ours = proportion_test(400, 4000, 300, 1500)
    theirs = stattests.z_stat_test(pd.Series(ref), pd.Series(cur), "cat", 0.05)
    assert ours.test == "z"
    assert ours.p_value == pytest.approx(theirs.drift_score, rel=1e-9)
    small = proportion_test(12, 800, 8, 200)  # 1.5% vs 4% refusals
    assert small.test == "fisher_exact" and 0.01 < small.p_value < 0.1


def test_chisquare_is_a_homogeneity_test_and_handles_a_new_category():
    same = categorical_test({"en": 380, "fr": 20}, {"en": 95, "fr": 5})
    assert same.p_value > 0.9
    new = categorical_test({"en": 400}, {"en": 50, "de": 50})
    assert new.p_value < 1e-10  # Evidently's goodness-of-fit version is infinite here
    tiny = categorical_test({"en": 400, "xx": 1}, {"en": 100})
    assert tiny.p_value == 1.0  # one rare category alone is pooled away


@pytest.mark.parametrize("shift", [0.0, 1.0])
def test_hotelling_embedding_test(shift):
    rng = np.random.default_rng(3)
    ref = rng.normal(size=(256, 32))
    cur = rng.normal(size=(64, 32))
    cur[:, :4] += shift
    out = hotelling_test(ref, cur, components=8, threshold=1e-3)
    if shift:
        assert out.outcome.p_value < 1e-3  # the permutation test resolves the threshold
        assert out.outcome.test == "hotelling_permutation"
    else:
        assert out.outcome.p_value > 0.01


def test_hotelling_level_holds_on_null_samples():
    rng = np.random.default_rng(4)
    pool = np.vstack([rng.normal(size=(900, 16)), rng.normal(6.0, size=(30, 16))])  # a rare far cluster
    p = []
    for _ in range(200):
        idx = rng.permutation(len(pool))
        p.append(hotelling_test(pool[idx[:200]], pool[idx[200:250]], threshold=0.01,
                                max_permutations=2000).outcome.p_value)
    assert np.mean(np.array(p) < 0.01) <= 0.03


def test_decide_holds_each_feature_to_alpha_over_features():
    outcomes = [("a", ks_test(np.arange(100.0), np.arange(100.0) + 50)), ("b", ks_test(np.arange(50.0),
                                                                                     np.arange(50.0)))]
    features, share, drifted = decide(outcomes, alpha=0.01)
    assert [f.threshold for f in features] == [0.005, 0.005]
    assert [f.drifted for f in features] == [True, False]
    assert share == 0.5 and drifted
    assert decide([], 0.01) == ([], 0.0, False)
