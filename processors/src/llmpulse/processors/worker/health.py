"""The worker's health: its metrics, ``/readyz``, and the watchdog of a stalled consumer.

A Faust timer copies what the processing step counted into the shared Prometheus metrics
(``llmpulse.schemas.health.PipelineMetrics``, ``stage="worker"``), reads fresh end
offsets of the assigned partitions for the lag (and, where this process runs the model
scorers, the lag of their input ``llm.enriched.pending`` as ``llmpulse_scorer_queue_depth``:
the records, each up to 500 light calls, that wait for the heavy path), and feeds the
``Watchdog``: a consumer
that is assigned partitions with records waiting, yet received nothing for
``stall_s`` while the lag did not shrink, is stalled (seen once in CI: Ready, fetching
nothing). The worker then logs why and exits non-zero, so its supervisor restarts it;
nothing is lost (offsets are committed only for processed records).

Example:
    >>> from llmpulse.processors.worker.health import Watchdog
    >>> dog = Watchdog(stall_s=60)
    >>> dog.observe(now=0.0, last_fetch=0.0, lag=10)
    >>> dog.observe(now=30.0, last_fetch=0.0, lag=12) is None   # not long enough yet
    True
    >>> dog.observe(now=61.0, last_fetch=0.0, lag=15)
    'no record received for 61 s while 15 records wait (lag 12 -> 15)'
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from typing import Any

from llmpulse.processors.worker.faust_app import consumer_lag
from llmpulse.schemas.health import PipelineMetrics

__all__ = ["Watchdog", "WorkerHealth"]

logger = logging.getLogger(__name__)

WORKER_OUTPUTS = ("enriched", "verdicts", "spans", "span_verdicts", "drift_windows", "alerts",
                  "incomplete")
"""The worker's counts that are events written."""

STALLED_EXIT_CODE = 75
"""The exit code of a worker the watchdog stopped (``EX_TEMPFAIL``: restart me)."""


class Watchdog:
    """Decides when a consumer is stalled: records wait, none arrives, the lag does not
    shrink, for ``stall_s`` seconds."""

    def __init__(self, stall_s: float = 120.0) -> None:
        self.stall_s = stall_s
        self._baseline: int | None = None  # the lag when the quiet began (its lowest since)

    def observe(self, *, now: float, last_fetch: float, lag: int) -> str | None:
        """Feed one reading; returns why the consumer is stalled, or None."""
        quiet = now - last_fetch
        if lag <= 0 or quiet < 1.0:
            self._baseline = None
            return None
        if self._baseline is None or lag < self._baseline:
            self._baseline = lag
        if quiet >= self.stall_s:
            return (f"no record received for {quiet:.0f} s while {lag} records wait "
                    f"(lag {self._baseline} -> {lag})")
        return None


class WorkerHealth:
    """Metrics, readiness and the watchdog of one worker app.

    Args:
        app: the Faust app (``build_app``'s).
        counts: the processing step's counters (``step.counts``).
        joiner: the join (its table size and lingering halves), or None.
        topics: the input topics (with their prefix) whose lag is measured.
        stall_s: the watchdog's patience; 0 turns it off.
        inputs: the count of events read (``events_in``; its growth means records arrived).
        outputs: the counts that are events written (``events_out``, target: the name).
        scorer_topic: the model scorers' input topic (with its prefix) when this process
            runs them: its lag is the scorer queue depth (``scorer="heavy"``).
    """

    def __init__(self, app: Any, counts: Counter[str], joiner: Any = None, *,
                 topics: frozenset[str] = frozenset(), stall_s: float = 120.0,
                 metrics: PipelineMetrics | None = None, inputs: str = "events",
                 outputs: tuple[str, ...] = WORKER_OUTPUTS,
                 scorer_topic: str | None = None) -> None:
        self.app = app
        self.scorer_topic = scorer_topic
        self.inputs = inputs
        self.outputs = frozenset(outputs)
        self.topics = topics
        """The input topics whose lag counts (not the tables' changelogs)."""
        self.counts = counts
        self.joiner = joiner
        self.metrics = metrics if metrics is not None else PipelineMetrics("worker")
        self.watchdog = Watchdog(stall_s) if stall_s > 0 else None
        self.started = time.time()
        self.last_fetch = time.time()
        self.lag = 0
        self.last_tick: float | None = None
        self._seen: Counter[str] = Counter()
        self._lag_unknown = False

    def register(self, interval_s: float = 5.0) -> None:
        """Add the timer that refreshes the metrics and runs the watchdog."""

        @self.app.timer(interval=interval_s)
        async def health_tick() -> None:
            await self.tick()

    async def tick(self) -> None:
        """Refresh the metrics; a counter of the step that moved means records arrived."""
        if self._copy_counts():
            self.last_fetch = time.time()
            self.metrics.last_fetch.set(self.last_fetch)
        try:
            lag: dict[tuple[str, int], int] | None = await consumer_lag(self.app, self.topics)
        except Exception as exc:  # broker away: the metrics wait, the worker goes on
            lag = None
            if not self._lag_unknown:
                logger.warning("consumer lag unreadable (%s: %s); the worker goes on and "
                               "reads it again on the next tick", type(exc).__name__, exc)
        self._lag_unknown = lag is None
        if lag is not None:
            self.lag = sum(lag.values())
            for (topic, partition), behind in lag.items():
                self.metrics.set_lag(topic, partition, behind)
            waiting = [behind for (topic, _), behind in lag.items() if topic == self.scorer_topic]
            if waiting:  # its partitions are assigned here: the heavy path's queue
                self.metrics.scorer_queue("heavy", sum(waiting))
        if self.joiner is not None:
            self.metrics.join_table_size.set(len(self.joiner))
            self.metrics.lingering_halves.set(self.joiner.lingering)
        self.last_tick = time.time()
        # A lag it cannot read is no evidence of a stall (the broker may be away).
        if self.watchdog is not None and lag is not None:
            stalled = self.watchdog.observe(now=self.last_tick, last_fetch=self.last_fetch,
                                            lag=self.lag)
            if stalled is not None:
                logger.error("watchdog: the consumer is stalled (%s); exiting with %d so the "
                             "supervisor restarts the worker", stalled, STALLED_EXIT_CODE)
                logging.shutdown()
                os._exit(STALLED_EXIT_CODE)

    def readiness(self) -> tuple[bool, str]:
        """``/readyz``: the app runs its timers and has partitions assigned."""
        if self.last_tick is None or time.time() - self.last_tick > 30.0:
            return False, "the worker's timers are not running (starting, or stuck)"
        assigned = len(self.app.consumer.assignment())
        if not assigned:
            return False, "no partition assigned (joining the group)"
        return True, f"{assigned} partitions assigned; lag {self.lag}"

    def _copy_counts(self) -> bool:
        """The step's counters into the Prometheus counters (by their increase); True when
        one moved."""
        metrics = self.metrics
        moved = False
        for name, value in list(self.counts.items()):
            delta = value - self._seen[name]
            if delta <= 0:
                continue
            self._seen[name] = value
            moved = True
            if name == self.inputs:
                metrics.events_in.inc(delta)
            elif name == "records":
                metrics.records_in.inc(delta)
            elif name.startswith("dlq:"):
                metrics.dead_letter(name[4:], delta)
            elif name in self.outputs:
                metrics.events_out(name, delta)
        return moved

