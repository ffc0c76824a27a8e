"""``DriftMonitor``: windows of traffic per key, compared with a reference, as ``DriftResult``.

Plain Python, no Kafka: the Faust drift agent, replay and the demo call it the same way.

- ``observe(calls, feedback)`` adds enriched calls and feedback, closing windows as they
  fill (``window_calls``) or as event time passes their end (``window_seconds``), and
  returns a ``DriftResult`` for each closed window that had a reference to compare with;
- ``tick(now)`` closes time windows whose end has passed when no new call came;
- ``flush()`` closes every open window that has enough calls (end of a replay);
- ``state_for(key, part)`` / ``restore(key, data)`` serialise one key's state (msgpack)
  for a table; ``take_dirty()`` says which keys and parts changed since last asked.

A key is ``(app, environment, prompt_id, prompt_version, model)``. Feedback is matched
to its call's key by ``call_id`` (an index of recent calls), else by the prompt fields it
carries.

Example:
    >>> from llmpulse.processors.drift import DriftConfig, DriftMonitor
    >>> from llmpulse.processors.drift.simulate import TrafficGenerator
    >>> cfg = DriftConfig(window_calls=100, reference_calls=300, embeddings=False, sentiment=False)
    >>> monitor = DriftMonitor(cfg)
    >>> gen = TrafficGenerator(seed=1)
    >>> results = monitor.observe(gen.calls(500))
    >>> [(r.window_size, r.reference_size, r.drifted) for r in results]
    [(100, 300, False), (100, 300, False)]
    >>> results = monitor.observe(gen.calls(100, shift="longer_answers"))
    >>> results[0].drifted, [f.feature for f in results[0].features if f.drifted][:1]
    (True, ['response_length'])
"""

from __future__ import annotations

import logging
import math
from collections import Counter, OrderedDict
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import partial
from typing import Literal

import msgspec
import numpy as np

from llmpulse.processors.drift.baseline import RateBaseline
from llmpulse.processors.drift.compare import (
    RateCounts,
    counted_calls,
    is_rate_test,
    judge_window,
    rate_counts,
)
from llmpulse.processors.drift.config import DriftConfig
from llmpulse.processors.drift.embedding import CachedEmbedder, TextEmbedder, default_embedder
from llmpulse.processors.drift.features import FeatureSet, prompt_text, rate_names, response_text
from llmpulse.processors.drift.keystate import KeyData, KeyState
from llmpulse.processors.drift.reference import Summary, combine
from llmpulse.processors.drift.report import DriftReportWriter
from llmpulse.processors.drift.stats import single_threaded
from llmpulse.processors.drift.window import DriftKey, WindowData, call_priority
from llmpulse.schemas import DriftResult, EnrichedCall, FeedbackEvent

__all__ = ["DriftMonitor", "KeyState"]

logger = logging.getLogger(__name__)

Part = Literal["all", "window", "reference"]
_TEXT_CAP = 1000
"""Characters of a text kept for embedding (MiniLM reads ~256 word pieces at most)."""
_CALL_INDEX = 200_000


class DriftMonitor:
    """Drift windows of every key, compared with their reference.

    Args:
        config: the settings (default ``DriftConfig()``).
        embedder: what embeds texts (default: MiniLM via ``EmbeddingScorer``, loaded on
            first use); ignored when ``config.embeddings`` is False.
        report_writer: writes the Evidently report of drifted windows (default: one
            writing to ``config.reports_dir`` when it is set).

    Attributes:
        counts: calls, feedback, windows, drifted windows, unmatched feedback, evictions.
    """

    def __init__(self, config: DriftConfig | None = None, *, embedder: TextEmbedder | None = None,
                 report_writer: DriftReportWriter | None = None) -> None:
        self.config = config if config is not None else DriftConfig()
        self.features = FeatureSet(self.config)
        if self.config.rate_test == "auto" and (bare := sorted(set(rate_names(self.config))
                                                               - set(self.config.priors()))):
            logger.warning("drift: rate_test auto: no rate_prior for %s, tested by the scan only "
                           "(name them in rate_prior for the CUSUM on a long baseline)", ", ".join(bare))
        self.columns = [*self.features.numeric, *self.features.categorical]
        self.embedder: CachedEmbedder | None = None
        if self.config.embeddings:
            if embedder is None:
                self.embedder = default_embedder()
            else:
                self.embedder = embedder if isinstance(embedder, CachedEmbedder) else CachedEmbedder(embedder)
        if report_writer is None and self.config.reports_dir:
            report_writer = DriftReportWriter(self.config.reports_dir)
        self.reports = report_writer
        self.counts: Counter[str] = Counter()
        self.embedding_error: str | None = None
        self._keys: OrderedDict[DriftKey, KeyData] = OrderedDict()
        self._calls: OrderedDict[str, DriftKey] = OrderedDict()
        self._dirty: dict[DriftKey, set[str]] = {}

    # -- input -------------------------------------------------------------------------

    def observe(self, calls: Iterable[EnrichedCall] = (), feedback: Iterable[FeedbackEvent] = ()
                ) -> list[DriftResult]:
        """Add calls and feedback in event-time order; the results of the windows that closed.

        Feedback counts in the window that is open when it arrives (by its ``occurred_at``
        among the calls given with it), which is how a stream sees it.
        """
        results: list[DriftResult] = []
        items: list[EnrichedCall | FeedbackEvent] = list(calls)
        feedback = list(feedback)
        if feedback:
            items = sorted([*items, *feedback], key=lambda e: e.occurred_at)
        for item in items:
            if isinstance(item, FeedbackEvent):
                self._add_feedback(item)
                continue
            key = DriftKey.of(item)
            self._calls[item.call_id] = key
            if len(self._calls) > _CALL_INDEX:
                self._calls.popitem(last=False)
            results.extend(self._add_call(key, self._data(key), item))
        return results

    def key_for(self, event: EnrichedCall | FeedbackEvent) -> DriftKey | None:
        """The key an event counts under; None for feedback on a call this monitor never saw
        that names no prompt it knows."""
        if isinstance(event, EnrichedCall):
            return DriftKey.of(event)
        key = self._calls.get(event.call_id)
        if key is not None or not event.prompt_id:
            return key
        exact = DriftKey.of(event)
        if exact in self._keys:
            return exact
        same = [k for k in self._keys if k[:4] == exact[:4]]
        return same[0] if len(same) == 1 else None

    def tick(self, now: datetime | None = None) -> list[DriftResult]:
        """Close the time windows that ended before ``now`` (default: the clock)."""
        now = now or datetime.now(UTC)
        cfg = self.config
        results: list[DriftResult] = []
        for key, data in list(self._keys.items()):
            if data.builder is not None and cfg.reference_end is not None and now >= cfg.reference_end \
                    and data.builder.calls >= cfg.min_window_calls:
                self._freeze(key, data)
            window = data.window
            if cfg.window_seconds and window is not None and window.bucket is not None \
                    and window.calls >= cfg.min_window_calls:
                end = (window.bucket + 1) * cfg.window_seconds
                if now.timestamp() >= end + cfg.grace_seconds:
                    results.extend(self._close(key, data, "time", datetime.fromtimestamp(end, UTC)))
        return results

    def flush(self) -> list[DriftResult]:
        """Close every open window with at least ``min_window_calls`` calls."""
        results: list[DriftResult] = []
        for key, data in list(self._keys.items()):
            if data.window is not None and data.window.calls >= self.config.min_window_calls:
                results.extend(self._close(key, data, "flush"))
        return results

    def pin_reference(self, key: DriftKey, calls: Iterable[EnrichedCall],
                      feedback: Iterable[FeedbackEvent] = ()) -> int:
        """Make these calls (say, last week's, read back from the store) the key's reference.
        Returns the number of calls taken."""
        data = self._data(key)
        builder = WindowData(0, self.config.reference_calls, self.config.reference_embedding_sample)
        for call in calls:
            self._fill(builder, call, reference=True)
        for event in feedback:
            builder.feedback.add(event.thumbs, event.rating)
        data.builder = builder
        self._freeze(key, data)
        return builder.calls

    def reset_reference(self, key: DriftKey) -> None:
        """Forget the key's reference: the next calls build a new one."""
        data = self._data(key)
        data.reference, data.builder, data.ring = None, None, []
        data.recent, data.slots, data.baseline = [], {}, RateBaseline()
        self._mark(key, "window", "reference")

    # -- state ---------------------------------------------------------------------------

    def keys(self) -> list[DriftKey]:
        """The keys held, least recently seen first."""
        return list(self._keys)

    def state_for(self, key: DriftKey, part: Part = "all") -> bytes:
        """One key's state (msgpack): ``window`` (current window, reference being built),
        ``reference`` (pinned reference or trailing windows), or ``all``."""
        data = self._keys.get(key) or KeyData()
        return data.state(self.columns, ["window", "reference"] if part == "all" else [part])

    def restore(self, key: DriftKey, data: bytes) -> bool:
        """Load what ``state_for`` wrote. False (and the key left as it was) when the state
        was written with other feature columns (a changed configuration)."""
        state = msgspec.msgpack.decode(data, type=KeyState)
        if state.columns != self.columns:
            logger.warning("drift: state of %s has other columns, not restored (reference rebuilt)",
                           key.label())
            return False
        self._data(key).load(state, guess=min(self.config.window_calls or self.config.min_window_calls,
                                              self.config.sample_size))
        return True

    def take_dirty(self) -> dict[DriftKey, set[str]]:
        """Keys whose state changed since the last call, with the parts that changed."""
        dirty, self._dirty = self._dirty, {}
        return dirty

    # -- windows -------------------------------------------------------------------------

    def _data(self, key: DriftKey) -> KeyData:
        data = self._keys.get(key)
        if data is None:
            data = self._keys[key] = KeyData()
            if len(self._keys) > self.config.max_keys:
                old, _ = self._keys.popitem(last=False)
                self.counts["keys_evicted"] += 1
                logger.warning("drift: more than %d keys, forgetting %s", self.config.max_keys, old.label())
        else:
            self._keys.move_to_end(key)
        return data

    def _mark(self, key: DriftKey, *parts: str) -> None:
        self._dirty.setdefault(key, set()).update(parts)

    def _new_window(self, data: KeyData) -> WindowData:
        window = WindowData(data.next_index, self.config.sample_size, self.config.embedding_sample)
        data.window = window
        return window

    def _fill(self, window: WindowData, call: EnrichedCall, *, reference: bool = False) -> None:
        window.calls += 1
        if reference and self.features.rates_without_texts and self.config.rate_reference_calls:
            # every call, not only the sample; past the cap a longer period's newest calls
            window.count_newest(partial(self.features.count_rates, call), self.config.rate_reference_calls)
        window.stretch(call.occurred_at, call.occurred_at)
        priority = call_priority(call.call_id)
        if window.sample.admits(priority):
            values, categories = self.features.row(call)
            if window.sample.add(priority, call.call_id, values, categories):
                self.counts["sampled"] += 1
        if self.embedder is not None and window.texts.admits(priority):
            answer = response_text(call)
            question = prompt_text(call).strip()
            answer = answer.strip() if answer else None
            known: dict[str, bytes] = {}
            for text in (question, answer):  # the heavy path may have embedded them just now
                vector = self.embedder.lookup(text) if text else None
                if vector is not None:
                    known[text[:_TEXT_CAP]] = np.asarray(vector, dtype=np.float16).tobytes()  # type: ignore[index]
            window.texts.add(priority, call.call_id, question[:_TEXT_CAP],
                             answer[:_TEXT_CAP] if answer else None, known)

    def _add_call(self, key: DriftKey, data: KeyData, call: EnrichedCall) -> list[DriftResult]:
        cfg = self.config
        self.counts["calls"] += 1
        self._mark(key, "window")
        t = call.occurred_at
        if cfg.reference == "pinned" and data.reference is None:
            period = cfg.reference_start is not None and cfg.reference_end is not None
            if period and t < cfg.reference_start:  # type: ignore[operator]
                self.counts["before_reference"] += 1
                return []
            if data.builder is None:
                data.builder = WindowData(0, cfg.reference_calls, cfg.reference_embedding_sample)
            if period and t < cfg.reference_end:  # type: ignore[operator]
                self._fill(data.builder, call, reference=True)
                return []
            if period and data.builder.calls >= cfg.min_window_calls:
                self._freeze(key, data)  # the period is over: this call opens the first window
            else:  # the first reference_calls calls (also when the period held too few)
                self._fill(data.builder, call, reference=True)
                if data.builder.calls >= cfg.reference_calls:
                    self._freeze(key, data)
                return []
        results: list[DriftResult] = []
        window = data.window or self._new_window(data)
        if cfg.window_seconds:
            bucket = math.floor(t.timestamp() / cfg.window_seconds)
            if window.bucket is None:
                window.bucket = bucket
                if window.calls == 0:
                    window.start = datetime.fromtimestamp(bucket * cfg.window_seconds, UTC)
            elif bucket > window.bucket:
                if window.calls >= cfg.min_window_calls:
                    end = datetime.fromtimestamp((window.bucket + 1) * cfg.window_seconds, UTC)
                    results.extend(self._close(key, data, "time", end))
                    window = self._new_window(data)
                    window.start = datetime.fromtimestamp(bucket * cfg.window_seconds, UTC)
                window.bucket = bucket
        self._fill(window, call)
        if cfg.window_calls and window.calls >= cfg.window_calls:
            results.extend(self._close(key, data, "count"))
        return results

    def _add_feedback(self, event: FeedbackEvent) -> None:
        key = self.key_for(event)
        if key is None or (event.thumbs is None and event.rating is None):
            self.counts["feedback_unmatched" if key is None else "feedback_ignored"] += 1
            return
        data = self._data(key)
        self.counts["feedback"] += 1
        if self.config.reference == "pinned" and data.reference is None:
            if data.builder is None:
                data.builder = WindowData(0, self.config.reference_calls,
                                          self.config.reference_embedding_sample)
            target = data.builder
        else:
            target = data.window or self._new_window(data)
        target.feedback.add(event.thumbs, event.rating)
        self._mark(key, "window")

    def _vectors(self, texts: list[str], known: dict[str, bytes]) -> np.ndarray | None:
        if self.embedder is None or not texts:
            return None
        try:  # float16, as the state stores them, so a restart changes no result
            missing = [t for t in texts if t not in known]
            fresh = iter(np.asarray(self.embedder.embed(missing), dtype=np.float16)) if missing else iter(())
            rows = [np.frombuffer(known[t], dtype=np.float16) if t in known else next(fresh) for t in texts]
            self.counts["embedded"] += len(missing)
            self.counts["embeddings_reused"] += len(texts) - len(missing)
            return np.vstack(rows).astype(np.float32)
        except Exception as exc:  # a missing model: drift goes on without embeddings
            if self.embedding_error is None:
                logger.error("drift: embeddings unavailable (%s), embedding drift is not tested: %s",
                             self.embedder.backend, exc)
            self.embedding_error = f"{type(exc).__name__}: {exc}"[:300]
            return None

    def _summarise(self, window: WindowData) -> Summary:
        numeric, categories = window.sample.arrays(len(self.features.numeric))
        prompts, answers = window.texts.texts()
        return Summary(calls=window.calls, numeric=numeric, categories=categories,
                       feedback=window.feedback, start=window.start, end=window.end,
                       rate_counts=window.rate_counts or None, rate_calls=window.rate_calls,
                       prompt_vectors=self._vectors(prompts, window.texts.vectors),
                       response_vectors=self._vectors(answers, window.texts.vectors))

    def _freeze(self, key: DriftKey, data: KeyData) -> None:
        assert data.builder is not None
        data.reference = self._summarise(data.builder)
        data.builder = None
        data.baseline.restart()
        if self.config.reference == "pinned":  # windows measured against another reference
            data.recent, data.baseline.calls = [], []
        self.counts["references"] += 1
        logger.info("drift: reference of %s pinned (%d calls)", key.label(), data.reference.calls)
        self._mark(key, "window", "reference")

    def _close(self, key: DriftKey, data: KeyData, reason: str,
               end: datetime | None = None) -> list[DriftResult]:
        window = data.window
        assert window is not None
        data.window = None
        data.next_index += 1
        if end is not None:
            window.end = end
        summary = self._summarise(window)
        self.counts["windows"] += 1
        self._mark(key, "window", "reference")
        cfg = self.config
        if cfg.reference == "pinned":
            reference = data.reference
        elif cfg.reference == "trailing":
            reference = combine(data.ring) if len(data.ring) >= cfg.reference_windows else None
            data.ring = [*data.ring, summary][-cfg.reference_windows:]
        else:
            slot = self._slot(window.start)
            same = data.slots.get(slot, [])
            reference = combine(same) if len(same) >= cfg.reference_windows else None
            data.slots[slot] = [*same, summary][-cfg.reference_windows:]
        counts = rate_counts(self.features, summary)
        sampled = len(summary.numeric)  # the calls the rates are counted on (the window's sample)
        history = None if reference is None else data.rate_history(
            cfg, counts, sampled,
            {} if cfg.reference == "trailing" else rate_counts(self.features, reference),  # unread there
            counted_calls(reference))
        if reference is None or history is None or window.start is None or window.end is None:
            data.keep_rates(cfg, counts, sampled, reference, drifted=False)
            return []
        with single_threaded():
            result = self._compare(key, window, summary, reference, reason, history,
                                   data.baseline.scan_limits())
        self.counts["drifted"] += result.drifted
        fired = [f.feature for f in result.features if cfg.rate_scan_reset and f.drifted
                 and is_rate_test(f.test)]
        data.keep_rates(cfg, counts, sampled, reference, drifted=result.drifted, fired=fired)
        return [result]

    def _slot(self, start: datetime | None) -> int:
        cfg = self.config
        if start is None:
            return 0
        return int((start.timestamp() % cfg.season_seconds) / cfg.season_seconds * cfg.season_slots)

    # -- the comparison ------------------------------------------------------------------

    def _compare(self, key: DriftKey, window: WindowData, current: Summary, reference: Summary,
                 reason: str, history: tuple[list[RateCounts], RateCounts, int],
                 limits: dict[str, int]) -> DriftResult:
        result = judge_window(self.config, self.features, key, window.index, current, reference,
                              reason=reason, history=history, limits=limits,
                              embedding_error=self.embedding_error)
        if result.drifted and self.reports is not None:
            result.report_uri = self.reports.submit(key, result, reference, current, self.features)
        return result
