"""The family of tests one window gets against its reference, feature by feature.

- numeric features: Kolmogorov-Smirnov on the whole distribution, and (``tails``) Fisher's
  exact test of the shares beyond the pooled 2% and 98% quantiles (``<feature>_tail``);
- rates of bad events (``FeatureSet.rates``: refusals, errors, guardrail flags,
  ``toxicity>=0.5``, ``relevance<0.4``) and the thumbs-down share: one sequential test per
  rate over the last 1..``rate_scan_windows`` windows against the reference's rate: the GLR
  scan (``stats.rate_scan_test``, ``rate_scan_3w``) while the rate's baseline calls times its
  ``rate_prior`` are below ``rate_cusum_events``, a Bernoulli CUSUM (``cusum.rate_cusum_test``,
  ``rate_cusum_3w``) from then on (``rate_test: auto``, ``uses_cusum``; ``scan`` or ``cusum``:
  one only).
  One-sided because a rise is what matters and it halves the p-value of a real rise; a fall
  still shows in the score's KS and tails;
- categorical features (languages): chi-square of homogeneity (Monte Carlo when sparse);
- ratings: KS; embeddings: Hotelling's T² on principal components, and their topic
  clusters as categories (``<side>_topic``).

Every test goes into one family for ``stats.decide`` (weighted Holm at ``alpha``: the rates'
tests hold ``rate_share`` of it together, the other tests the rest, ``weights``), so adding
tests costs each a stricter level, never more false alarms.

Example:
    >>> import numpy as np
    >>> from llmpulse.processors.drift.compare import rate_counts, weights
    >>> from llmpulse.processors.drift.config import DriftConfig
    >>> from llmpulse.processors.drift.features import FeatureSet
    >>> from llmpulse.processors.drift.reference import Summary
    >>> from llmpulse.processors.drift.stats import ks_test, rate_scan_test
    >>> fs = FeatureSet(DriftConfig(descriptors=False, sentiment=False, scores={"toxicity": "numeric"}))
    >>> fs.numeric
    ('toxicity', 'error', 'guardrail')
    >>> window = Summary(calls=3, numeric=np.array([[0.9, 0, 1], [0.1, 0, 0], [np.nan, 1, 0]]),
    ...                  categories=[[], [], []])
    >>> rate_counts(fs, window)
    {'error': [1, 3], 'guardrail': [1, 3], 'toxicity>=0.5': [1, 2], 'thumbs_down_share': [0, 0]}
    >>> weights(DriftConfig(), [("error", rate_scan_test([0, 9], [200, 200], 2, 400)),
    ...                         ("prompt_length", ks_test(np.zeros(40), np.ones(40)))])
    [0.75, 0.25]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from llmpulse.processors._ids import derived_uuid7
from llmpulse.processors.drift.config import DriftConfig
from llmpulse.processors.drift.cusum import rate_cusum_test
from llmpulse.processors.drift.features import FeatureSet
from llmpulse.processors.drift.reference import Summary
from llmpulse.processors.drift.stats import (
    TestOutcome,
    categorical_test,
    decide,
    hotelling_test,
    ks_test,
    proportion_test,
    rate_scan_test,
    tail_test,
    topic_test,
)
from llmpulse.processors.drift.window import DriftKey
from llmpulse.schemas import DriftResult

__all__ = ["RateCounts", "add_counts", "compare_window", "counted_calls", "family_size", "first_level",
           "is_rate_test", "judge_window", "lowest_level", "rate_counts", "rate_test", "shares",
           "uses_cusum", "weights"]

RateCounts = dict[str, list[int]]
"""``{rate name: [events, calls]}`` of one window (or several added)."""

_MIN_FEEDBACK = 20


def rate_counts(fs: FeatureSet, summary: Summary) -> RateCounts:
    """The events and calls of every rate in a window, and its thumbs down of all thumbs: over
    its sample, or over every call a pinned reference counted (``Summary.rate_counts``) when
    that is more (``counted_calls``)."""
    if _counted_every_call(summary):
        counts = {rate.name: list(summary.rate_counts.get(rate.name, (0, 0))) for rate in fs.rates}
    elif len(summary.numeric):
        counts = {rate.name: list(rate.hits(summary.numeric[:, rate.column])) for rate in fs.rates}
    else:
        counts = {rate.name: [0, 0] for rate in fs.rates}
    counts["thumbs_down_share"] = [summary.feedback.down, summary.feedback.thumbs]
    return counts


def _counted_every_call(summary: Summary) -> bool:
    """Whether a pinned reference counted its rates on more calls than its sample holds."""
    return summary.rate_counts is not None and summary.rate_calls > len(summary.numeric)


def counted_calls(summary: Summary) -> int:
    """The calls ``rate_counts`` counted a summary's rates on."""
    return summary.rate_calls if _counted_every_call(summary) else len(summary.numeric)


def add_counts(parts: Sequence[Mapping[str, Sequence[int]]]) -> RateCounts:
    """Several windows' counts added up."""
    total: RateCounts = {}
    for part in parts:
        for name, (hits, n) in part.items():
            held = total.setdefault(name, [0, 0])
            held[0] += hits
            held[1] += n
    return total


def compare_window(cfg: DriftConfig, fs: FeatureSet, current: Summary, reference: Summary, *,
                   seed: int = 0, history: tuple[Sequence[RateCounts], RateCounts] | None = None,
                   scan_limits: Mapping[str, int] | None = None
                   ) -> tuple[list[tuple[str, TestOutcome]], dict[str, Any]]:
    """Every test of a window: ``([(feature, outcome)], attributes)``.

    Args:
        cfg: the settings (``min_samples``, ``tails``, embeddings ...).
        fs: the feature columns.
        current: the window.
        reference: what it is compared with.
        seed: the embedding permutation test's seed.
        history: ``(counts of the last windows, oldest first, this one last; the counts
            of their reference)`` for the rate scans (default: this window alone against
            ``reference``).
        scan_limits: rates whose scan is cut (it fired lately): the last windows each may
            scan, this one included (``RateBaseline.scan_limits``).
    """
    outcomes: list[tuple[str, TestOutcome]] = []
    attributes: dict[str, Any] = {}
    lowest = lowest_level(cfg, fs)
    rate_columns = {rate.column for rate in fs.rates if rate.name in fs.binary}
    for j, name in enumerate(fs.numeric):
        ref = reference.numeric[:, j]
        cur = current.numeric[:, j]
        ref, cur = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
        if len(ref) < cfg.min_samples or len(cur) < cfg.min_samples:
            continue
        if name in fs.binary:
            if j in rate_columns:
                continue  # tested with the rates below
            outcomes.append((name, proportion_test(int((ref >= 0.5).sum()), len(ref),
                                                   int((cur >= 0.5).sum()), len(cur))))
            continue
        outcomes.append((name, ks_test(ref, cur)))
        if cfg.tails:
            outcomes.append((f"{name}_tail", tail_test(ref, cur, cfg.tail_quantile)))
    for j, name in enumerate(fs.categorical):
        ref_counts = Counter(row[j] for row in reference.categories)
        cur_counts = Counter(row[j] for row in current.categories)
        if sum(ref_counts.values()) >= cfg.min_samples and sum(cur_counts.values()) >= cfg.min_samples:
            outcomes.append((name, categorical_test(ref_counts, cur_counts, level=lowest)))
    windows, base = history if history is not None else ([rate_counts(fs, current)],
                                                         rate_counts(fs, reference))
    least = {"thumbs_down_share": _MIN_FEEDBACK}
    for i, name in enumerate([*(rate.name for rate in fs.rates), "thumbs_down_share"]):
        if name == "thumbs_down_share" and not cfg.feedback:
            continue
        need = least.get(name, cfg.min_samples)
        ref_hits, ref_n = base.get(name, (0, 0))
        if ref_n >= need:
            scanned = windows[-(scan_limits or {}).get(name, len(windows)):]
            hits = [w.get(name, (0, 0))[0] for w in scanned]
            calls = [w.get(name, (0, 0))[1] for w in scanned]
            outcomes.append((name, rate_test(cfg, name, hits, calls, ref_hits, ref_n, min_calls=need,
                                             seed=seed * 64 + i)))
    if cfg.feedback:
        rf, cf = reference.feedback, current.feedback
        if rf.rated >= _MIN_FEEDBACK and cf.rated >= _MIN_FEEDBACK:  # ordinal: KS, not chi-square
            outcomes.append(("rating", ks_test(np.repeat(np.arange(1.0, 6.0), rf.ratings),
                                               np.repeat(np.arange(1.0, 6.0), cf.ratings))))
    if cfg.embeddings:
        pairs = [(side, ref_v, cur_v) for side, ref_v, cur_v in
                 (("prompt", reference.prompt_vectors, current.prompt_vectors),
                  ("response", reference.response_vectors, current.response_vectors))
                 if ref_v is not None and cur_v is not None and len(ref_v) >= cfg.min_samples
                 and len(cur_v) >= max(10, cfg.embedding_sample // 2)]
        per_side = 2 if cfg.topic_clusters else 1
        rates = sum(is_rate_test(o.test) for _name, o in outcomes)
        threshold = first_level(cfg, rates, len(outcomes) - rates + per_side * len(pairs))
        for side, ref_v, cur_v in pairs:
            test = hotelling_test(ref_v, cur_v, cfg.embedding_components, threshold=threshold, seed=seed)
            outcomes.append((f"{side}_embedding", test.outcome))
            attributes[f"{side}_embedding_cosine_distance"] = round(test.cosine_distance, 6)
            if cfg.topic_clusters:
                outcomes.append((f"{side}_topic", topic_test(ref_v, cur_v, cfg.topic_clusters, seed=seed,
                                                             level=lowest)))
    return outcomes, attributes


def uses_cusum(cfg: DriftConfig, name: str, ref_calls: int) -> bool:
    """Whether a rate is tested by the CUSUM: ``rate_test: cusum``, or ``auto`` once its
    baseline's calls times its ``rate_prior`` reach ``rate_cusum_events`` (never its events,
    which are random: the pick leaves each test's level exact)."""
    if cfg.rate_test != "auto":
        return cfg.rate_test == "cusum"
    prior = cfg.priors().get(name)
    return prior is not None and ref_calls * prior >= cfg.rate_cusum_events


def rate_test(cfg: DriftConfig, name: str, hits: Sequence[int], calls: Sequence[int], ref_hits: int,
              ref_calls: int, *, min_calls: int = 1, seed: int = 0) -> TestOutcome:
    """A rate's test over its last windows, as ``cfg.rate_test`` picks it (``uses_cusum``):
    the CUSUM or the scan. ``name``: the rate's (``error``); the other arguments as
    ``cusum.rate_cusum_test``; ``seed``: the scan's."""
    if uses_cusum(cfg, name, ref_calls):
        return rate_cusum_test(hits, calls, ref_hits, ref_calls, min_calls=min_calls,
                               rise=cfg.rate_cusum_rise)
    return rate_scan_test(hits, calls, ref_hits, ref_calls, min_calls=min_calls, seed=seed)


def weights(cfg: DriftConfig, outcomes: Sequence[tuple[str, TestOutcome]]) -> list[float]:
    """Each test's weight in the window's Holm family (``shares``; they add up to 1)."""
    rates = [is_rate_test(o.test) for _name, o in outcomes]
    rate, other = shares(cfg, sum(rates), len(rates) - sum(rates))
    return [rate if is_rate else other for is_rate in rates]


def lowest_level(cfg: DriftConfig, fs: FeatureSet) -> float:
    """The lowest level a test other than a rate's can be held to in a window: Holm's first
    step when every test of the configuration runs (``family_size``, more tests than any
    window has). Monte Carlo p-values resolve below it."""
    return first_level(cfg, *family_size(cfg, fs))


def family_size(cfg: DriftConfig, fs: FeatureSet) -> tuple[int, int]:
    """``(rate tests, other tests)`` when every test of the configuration runs: a rate test
    per rate and the thumbs, a KS and a tail test per numeric column, a chi-square per
    category, the ratings, two tests per embedding side."""
    others = 2 * len(fs.numeric) + len(fs.categorical) + 1 + (4 if cfg.embeddings else 0)
    return len(fs.rates) + 1, others


def first_level(cfg: DriftConfig, rates: int, others: int) -> float:
    """The level Holm's first step holds a test other than a rate's to, in a family of
    ``rates`` rate tests and ``others`` other tests: ``alpha`` times its weight (``shares``)."""
    return cfg.alpha * shares(cfg, rates, others)[1]


def shares(cfg: DriftConfig, rates: int, others: int) -> tuple[float, float]:
    """The weights of a rate's test and of any other test in a family of ``rates`` rate tests
    and ``others`` other tests: ``rate_share / rates`` and ``(1 - rate_share) / others``, so
    the first step of Holm holds each to ``alpha`` times its weight (one kind alone: evenly).
    """
    if rates == 0 or others == 0:
        even = 1.0 / max(1, rates + others)
        return even, even
    return cfg.rate_share / rates, (1.0 - cfg.rate_share) / others


def is_rate_test(test: str) -> bool:
    """Whether a test's name is a rate's sequential test (``rate_cusum_3w``, ``rate_scan_1w``)."""
    return test.startswith(("rate_cusum", "rate_scan"))


def judge_window(cfg: DriftConfig, fs: FeatureSet, key: DriftKey, index: int, current: Summary,
                 reference: Summary, *, reason: str, history: tuple[list[RateCounts], RateCounts, int],
                 limits: dict[str, int], embedding_error: str | None = None) -> DriftResult:
    """A closed window's ``DriftResult``: every test (``compare_window``), Holm over them.

    Args:
        cfg: the settings.
        fs: the feature columns.
        key: the window's key.
        index: the window's number within its key (its event id and test seeds derive from it).
        current: the window (``start`` and ``end`` set).
        reference: what it is compared with.
        reason: what closed the window (``count``, ``time``, ``flush``).
        history: the rates' last windows, their baseline's counts and calls
            (``KeyData.rate_history``).
        limits: the rates whose scan is cut (``RateBaseline.scan_limits``).
        embedding_error: why embeddings are unavailable, if they are.
    """
    windows, base, base_calls = history
    outcomes, found = compare_window(cfg, fs, current, reference, seed=index, history=(windows, base),
                                     scan_limits=limits)
    attributes: dict[str, Any] = {
        "window_index": index, "window_sample": len(current.numeric),
        "reference_sample": len(reference.numeric), "reference_mode": cfg.reference,
        "alpha": cfg.alpha, "closed_by": reason, "rate_reference_calls": base_calls,
        "feedback_window": current.feedback.thumbs + current.feedback.rated, **found,
    }
    if limits:  # rates whose scan fired lately: the windows each scanned (a cut scan)
        attributes["rate_scan_cut"] = dict(sorted(limits.items()))
    if cfg.embeddings and embedding_error:
        attributes["embeddings"] = f"unavailable: {embedding_error}"
    features, share, drifted = decide(outcomes, cfg.alpha, cfg.min_drifted_features, weights(cfg, outcomes))
    assert current.start is not None and current.end is not None
    ms = int(current.end.timestamp() * 1000)
    return DriftResult(
        event_id=derived_uuid7(ms, b"drift", key.encode(), str(index)),
        occurred_at=current.end, app=key.app, environment=key.environment,
        prompt_id=key.prompt_id or None, prompt_version=key.prompt_version or None,
        request_model=key.model or None, window_start=current.start, window_end=current.end,
        reference_start=reference.start or current.start, reference_end=reference.end or current.start,
        window_size=current.calls, reference_size=reference.calls, features=features,
        share_drifted=share, drifted=drifted, attributes=attributes)
