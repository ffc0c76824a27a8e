"""``build_app``: the Faust app of a worker, put together from its parts by role.

Example (not a doctest: it needs a broker)::

    app = build_app(WorkerSettings("127.0.0.1:9092"), Enricher())
    faust.Worker(app, loglevel="info").execute_from_commandline()
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faust

from llmpulse.processors.join import CallJoiner
from llmpulse.processors.pipeline import Enricher
from llmpulse.processors.step import ProcessingStep
from llmpulse.processors.worker.drift_agent import DriftAgent
from llmpulse.processors.worker.faust_app import TableStore, create_app
from llmpulse.processors.worker.health import WorkerHealth
from llmpulse.processors.worker.heavy_agent import register_heavy
from llmpulse.processors.worker.light_agent import LightAgent
from llmpulse.processors.worker.outputs import Outputs
from llmpulse.processors.worker.settings import WorkerSettings
from llmpulse.processors.worker.span_agent import SpanAgent
from llmpulse.schemas.health import PipelineMetrics
from llmpulse.schemas.topics import (
    DRIFT_INPUT,
    ENRICHED_PENDING,
    FEEDBACK,
    PROMPTS,
    RESPONSES,
    SPANS,
)

__all__ = ["WORKER_INPUTS", "build_app"]

WORKER_INPUTS = (PROMPTS, RESPONSES, SPANS, FEEDBACK, ENRICHED_PENDING, DRIFT_INPUT)
"""The topics a worker consumes (before the prefix): its lag and its watchdog's."""

logger = logging.getLogger(__name__)


def build_app(settings: WorkerSettings, enricher: Enricher | None = None, *,
              drift_monitor: Any = None, alert_engine: Any = None) -> faust.App:
    """The Faust app with its topics, join table, agents and timers.

    ``settings.role`` picks the agents: ``light`` the join and the spans, ``heavy`` the model scorers,
    ``drift`` the drift windows and alert rules, ``all`` every one of them. The counts
    of what went through are ``app.llmpulse_counts`` (and logged every 30 s); its metrics,
    readiness and watchdog are ``app.llmpulse_health``.
    """
    app, topics = create_app(settings)
    table = app.Table("llmpulse-join", default=None, partitions=settings.partitions,
                      key_type=bytes, value_type=bytes)
    step = ProcessingStep(enricher,
                          joiner=CallJoiner(TableStore(table), linger_s=settings.join_linger_s),
                          drift=drift_monitor, alerts=alert_engine,
                          payload_max=settings.dlq_payload_max_bytes, limits=settings.limits)
    counts = step.counts
    app.llmpulse_counts = counts  # type: ignore[attr-defined]
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmpulse-heavy")
    heavy_on = settings.heavy and bool(step.enricher.batched_scorers)
    outputs = Outputs(settings, topics, counts, heavy_on=heavy_on)
    metrics = PipelineMetrics("worker")

    if settings.role in {"all", "light"}:
        LightAgent(app, topics, settings, step, outputs, metrics=metrics).register()
        SpanAgent(app, topics, settings, step, outputs).register()
    scores = heavy_on and settings.role in {"all", "heavy"}
    if scores:
        register_heavy(app, topics, step, outputs, executor)
    if settings.drift and settings.role in {"all", "drift"}:
        DriftAgent(app, topics, settings, step, executor).register()

    health = WorkerHealth(app, counts, step.joiner if settings.role in {"all", "light"} else None,
                          topics=frozenset(settings.topic(t) for t in WORKER_INPUTS),
                          stall_s=settings.stall_s, metrics=metrics,
                          scorer_topic=settings.topic(ENRICHED_PENDING) if scores else None)
    health.register()
    app.llmpulse_health = health  # type: ignore[attr-defined]

    @app.timer(interval=30.0)
    async def report() -> None:
        if counts:
            logger.info("llmpulse worker counts: %s", dict(counts))

    return app
