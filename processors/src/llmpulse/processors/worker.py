"""The Faust worker: thin agents around the plain-Python join, scorers and guardrails.

Agents:

- ``join``: reads ``llm.prompts`` and ``llm.responses`` (batch records or single
  events), validates every event (failures go to ``llm.dlq`` with the reason, source
  topic, partition and offset), joins prompt and response by ``call_id`` in a Faust
  table backed by a changelog topic, runs the light scorers and the guardrails' text
  rules, and hands the calls on.
- ``heavy``: model scorers (toxicity, embeddings, readability) on micro-batches
  (``take(N, within=T)`` from the scorers' settings), in a thread so the event loop and
  the light path keep going. With ``role="light"`` and ``role="heavy"`` the two run in
  separate processes and consumer groups.
- a timer expires halves whose partner did not come within ``join_timeout_s``: they
  are emitted as incomplete calls, not lost.

Finished calls go to ``llm.enriched`` and their guardrail verdicts to ``llm.alerts``.

Example:
    $ llmpulse worker --bootstrap-servers 127.0.0.1:9092
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import faust

from llmpulse.processors.join import CallJoiner
from llmpulse.processors.pipeline import CallPair, Enricher
from llmpulse.schemas import (
    DeadLetter,
    EnrichedCall,
    Event,
    PromptEvent,
    RecordFailure,
    ResponseEvent,
    SchemaError,
    decode_record,
    encode_batch,
    encode_event,
    partition_for,
)
from llmpulse.schemas import environment as env
from llmpulse.schemas.topics import (
    ALERTS,
    DLQ,
    DRIFT,
    DRIFT_INPUT,
    ENRICHED,
    ENRICHED_PENDING,
    FEEDBACK,
    PROMPTS,
    RESPONSES,
    topic_name,
)

__all__ = ["WorkerSettings", "build_app", "dead_letters"]

logger = logging.getLogger(__name__)

PENDING = ENRICHED_PENDING


@dataclass
class WorkerSettings:
    """How a worker runs. Production defaults; the tests shorten the timeouts."""

    bootstrap_servers: str
    app_id: str = "llmpulse-processors"
    topic_prefix: str = ""
    partitions: int = 6
    """Partitions of the input topics (the join table's changelog gets as many)."""
    replication_factor: int = 1
    role: str = "all"
    """``all`` (join + heavy + drift), ``light`` (join only), ``heavy`` (model scorers only),
    ``drift`` (drift windows and alert rules only)."""
    heavy: bool = True
    """Run the model scorers (False: the light output is final)."""
    drift: bool = True
    """Run the drift agent and the alert rules (``role`` all or drift)."""
    join_timeout_s: float = 300.0
    join_batch_records: int = 200
    """Records taken at once by the join agent (each may hold hundreds of events)."""
    join_batch_wait_s: float = 0.05
    """Longest wait to fill a micro-batch of the join agent."""
    join_linger_s: float = 3.0
    """How long a lonely half waits in memory (its record unacknowledged) before it is
    written to the join table; 0 writes at once. Most partners arrive within a few
    records, so this spares the table and changelog nearly every write."""
    expiry_check_s: float = 5.0
    standby_replicas: int = 0
    """Warm copies of each table partition on other workers (Faust's standby replicas).
    0: a worker that takes over a partition recovers its table from the changelog (a few
    seconds). 1: faster take-over, but every worker also reads and applies the other
    workers' changelogs, which cost two workers on two partitions about half their
    throughput here (``benchmarks/worker_throughput.py``)."""
    dlq_payload_max_bytes: int = 64 * 1024
    datadir: str = field(default_factory=lambda: os.path.join(os.getcwd(), "llmpulse-worker-data"))
    # Consumer-group timing. Production: Kafka's defaults (session 45 s, heartbeat 3 s,
    # rebalance 60 s, 3 s recovery delay). Tests: a few seconds so a worker starts fast.
    session_timeout_s: float = 45.0
    heartbeat_s: float = 3.0
    rebalance_timeout_s: float = 60.0
    recovery_delay_s: float = 3.0
    commit_interval_s: float = 2.8

    @classmethod
    def fast(cls, **kw: Any) -> WorkerSettings:
        """Settings for tests and the embedded demo: short timeouts, quick start."""
        return cls(session_timeout_s=6.0, heartbeat_s=0.5, rebalance_timeout_s=6.0,
                   recovery_delay_s=0.0, commit_interval_s=0.5, expiry_check_s=0.5, **kw)

    def __post_init__(self) -> None:
        # The consumer group and the changelog topic are named after the app id: keep
        # deployments that share a broker through a topic prefix apart there too.
        if self.topic_prefix and not self.app_id.startswith(self.topic_prefix):
            self.app_id = f"{self.topic_prefix}{self.app_id}"

    def topic(self, base: str) -> str:
        return topic_name(base, self.topic_prefix)


def dead_letters(failures: Sequence[RecordFailure], *, topic: str, partition: int, offset: int,
                 stage: str = "validate", payload_max: int = 64 * 1024) -> list[DeadLetter]:
    """One ``DeadLetter`` per rejected event (or whole record), with where it came from."""
    return [
        DeadLetter(reason=f.error.reason, detail=f.error.detail, error_field=f.error.field,
                   stage=stage, source_topic=topic, source_partition=partition,
                   source_offset=offset, batch_index=f.index, payload=f.payload[:payload_max],
                   payload_truncated=len(f.payload) > payload_max)
        for f in failures
    ]


def _batches(events: Sequence[Event], max_events: int = 500) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) batch records of at most ``max_events``, keyed by the first call id."""
    for start in range(0, len(events), max_events):
        chunk = events[start:start + max_events]
        key = getattr(chunk[0], "call_id", None) or str(chunk[0].event_id)
        encoded = [encode_event(e) for e in chunk]
        yield key.encode(), encoded[0] if len(encoded) == 1 else encode_batch(encoded)


class _TableStore:
    """The join table as a ``JoinStore``. Writes go to the table's data and its changelog
    partition directly: a micro-batch mixes partitions, so Faust's "current event" does not
    name the right one (and a timer has none)."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def get(self, key: str) -> bytes | None:
        return self.table.data.get(key.encode())  # type: ignore[no-any-return]

    def put(self, key: str, value: bytes, partition: int) -> None:
        self.table.data[key.encode()] = value
        self.table.send_changelog(partition, key.encode(), value)

    def remove(self, key: str, partition: int) -> None:
        self.table.data.pop(key.encode(), None)
        self.table.send_changelog(partition, key.encode(), None)

    def items(self) -> list[tuple[str, bytes]]:
        return [(k.decode() if isinstance(k, bytes) else k, v)
                for k, v in list(self.table.data.items()) if v is not None]

    def __len__(self) -> int:
        return len(self.table.data)


class _App(faust.App):
    """Faust's App with one hook: ``before_wait_empty`` runs before Faust waits for every
    record to be acknowledged (on a rebalance and on stop), so the join can store and
    acknowledge the records it holds instead of waiting forever for them."""

    before_wait_empty: Callable[[], Awaitable[None]] | None = None

    async def _consumer_wait_empty(self, consumer: Any, logger: Any) -> None:
        if self.before_wait_empty is not None:
            await self.before_wait_empty()
        await super()._consumer_wait_empty(consumer, logger)


def build_app(settings: WorkerSettings, enricher: Enricher | None = None, *,
              drift_monitor: Any = None, alert_engine: Any = None) -> faust.App:
    """The Faust app with its topics, join table, agents and timers."""
    enricher = enricher if enricher is not None else Enricher()
    brokers = [f"kafka://{server.strip()}" for server in settings.bootstrap_servers.split(",")]
    app = _App(
        settings.app_id, broker=brokers, store="memory://", datadir=settings.datadir,
        key_serializer="raw", value_serializer="raw", topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        consumer_auto_offset_reset="earliest", web_enabled=False,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_s,
        broker_rebalance_timeout=settings.rebalance_timeout_s,
        stream_recovery_delay=settings.recovery_delay_s,
        broker_commit_interval=settings.commit_interval_s,
        table_standby_replicas=settings.standby_replicas,
        producer_max_request_size=8 * 1024 * 1024,
        consumer_max_fetch_size=8 * 1024 * 1024,
    )
    raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw",
           "value_serializer": "raw"}
    inputs = app.topic(settings.topic(PROMPTS), settings.topic(RESPONSES), **raw)
    enriched = app.topic(settings.topic(ENRICHED), **raw)
    pending = app.topic(settings.topic(PENDING), partitions=settings.partitions, **raw)
    alerts = app.topic(settings.topic(ALERTS), **raw)
    dlq = app.topic(settings.topic(DLQ), **raw)
    drift_input = app.topic(settings.topic(DRIFT_INPUT), partitions=1, **raw)
    drift_out = app.topic(settings.topic(DRIFT), **raw)
    feedback_topic = app.topic(settings.topic(FEEDBACK), **raw)
    table = app.Table("llmpulse-join", default=None, partitions=settings.partitions,
                      key_type=bytes, value_type=bytes)
    joiner = CallJoiner(_TableStore(table), linger_s=settings.join_linger_s)
    counts: Counter[str] = Counter()
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmpulse-heavy")
    heavy_on = settings.heavy and bool(enricher.batched_scorers)
    app.llmpulse_counts = counts  # type: ignore[attr-defined]

    async def finish(calls: list[EnrichedCall]) -> None:
        """Send finished calls to llm.enriched, their verdicts to llm.alerts, and the calls on
        to the drift agent's input (one partition: drift keys are few, its state is one
        table partition)."""
        for key, value in _batches(calls):
            await enriched.send(key=key, value=value)
            if settings.drift:
                await drift_input.send(key=key, value=value, partition=0)
        verdicts = [v for c in calls for v in c.verdicts]
        for key, value in _batches(verdicts):
            await alerts.send(key=key, value=value)
        counts["enriched"] += len(calls)
        counts["verdicts"] += len(verdicts)

    async def hand_on(calls: list[EnrichedCall], partition: int) -> None:
        if heavy_on:
            for key, value in _batches(calls):
                await pending.send(key=key, value=value, partition=partition)
        else:
            await finish(calls)

    async def reject(failures: Iterable[RecordFailure], message: Any, stage: str) -> None:
        letters = dead_letters(list(failures), topic=message.topic, partition=message.partition,
                               offset=message.offset, stage=stage,
                               payload_max=settings.dlq_payload_max_bytes)
        for letter in letters:
            counts[f"dlq:{letter.reason}"] += 1
        for key, value in _batches(letters):
            await dlq.send(key=message.key or key, value=value)

    if settings.role in {"all", "light"}:
        join_stream: list[Any] = []
        join_lock = asyncio.Lock()  # the agent's batch and the timers' settling, one at a time

        def owned() -> Callable[[int], bool]:
            """Is a partition of the input (and of the join table) still this worker's?"""
            return {tp.partition for tp in app.consumer.assignment()
                    if tp.topic == settings.topic(PROMPTS)}.__contains__

        async def release(sources: list[Any]) -> None:
            for event in sources:  # records whose every half is paired or in the table
                await join_stream[0].ack(event)

        async def settle_all() -> None:
            """Before Faust waits for every record to be acknowledged (a rebalance, a
            stop): store every lingering half in the table and acknowledge its record."""
            async with join_lock:
                if join_stream:
                    await release(joiner.settle(now=math.inf))

        app.before_wait_empty = settle_all  # type: ignore[attr-defined]

        async def emit_pairs(pairs: list[CallPair]) -> None:
            by_partition: dict[int, list[CallPair]] = {}
            for pair in pairs:
                call_id = (pair.prompt or pair.response).call_id  # type: ignore[union-attr]
                by_partition.setdefault(partition_for(call_id, settings.partitions),
                                        []).append(pair)
            for partition, group in by_partition.items():
                await hand_on(enricher.light(group), partition)

        @app.agent(inputs, name="llmpulse-join")
        async def join(stream: Any) -> None:
            # Micro-batches of records; a prompt and its response (sent together by the
            # SDK) meet in memory and never touch the table: a lonely half lingers (its
            # record unacknowledged) until its partner comes or join_linger_s passes.
            join_stream[:] = [stream]
            async for events in stream.take_events(settings.join_batch_records,
                                                   within=settings.join_batch_wait_s):
                async with join_lock:
                    await join_batch(events)

        async def join_batch(events: list[Any]) -> None:
            now = time.time()
            pairs: list[CallPair] = []
            for event in events:
                message = event.message
                record = decode_record(event.value)
                if record.failures:
                    await reject(record.failures, message, "validate")
                halves: list[tuple[PromptEvent | ResponseEvent, int]] = []
                wrong: list[RecordFailure] = []
                for index, item in enumerate(record.events):
                    if isinstance(item, PromptEvent | ResponseEvent):
                        halves.append((item, message.partition))
                    else:
                        error = SchemaError("unknown_type", f"a {type(item).__name__} does "
                                            f"not belong on {message.topic}", field="$.type",
                                            index=index if record.batched else None)
                        wrong.append(RecordFailure(error=error, payload=encode_event(item),
                                                   index=error.index))
                if wrong:
                    await reject(wrong, message, "validate")
                counts["events"] += len(record.events)
                pairs.extend(joiner.add_many(halves, now=now, source=event))
            counts["join_table_writes"] = joiner.stored
            released = joiner.settle(now=now, owned=owned())
            for event in joiner.pin_holding(events):
                event.message.incref()  # stays unacknowledged while its halves linger
            if pairs:
                await emit_pairs(pairs)
            await release(released)

        @app.timer(interval=max(0.1, settings.join_linger_s / 2))
        async def settle() -> None:
            if join_stream and joiner.lingering:
                async with join_lock:
                    await release(joiner.settle(now=time.time(), owned=owned()))

        @app.timer(interval=settings.expiry_check_s)
        async def expire() -> None:
            mine = owned()
            expired = joiner.expire(now=time.time(), timeout_s=settings.join_timeout_s,
                                    accept=lambda half: mine(half.partition))
            if not expired:
                return
            counts["incomplete"] += len(expired)
            await emit_pairs(expired)

    if heavy_on and settings.role in {"all", "heavy"}:
        batching = enricher.batching
        size = max((b.size for b in batching.values()), default=32)
        within = min((b.max_wait_s for b in batching.values()), default=1.0)

        @app.agent(pending, name="llmpulse-heavy")
        async def heavy(stream: Any) -> None:
            loop = asyncio.get_running_loop()
            async for values in stream.take(size, within=within):
                calls: list[EnrichedCall] = []
                for value in values:
                    record = decode_record(value)
                    calls.extend(e for e in record.events if isinstance(e, EnrichedCall))
                if calls:
                    scored = await loop.run_in_executor(executor, enricher.heavy, calls)
                    await finish(scored)

    if settings.drift and settings.role in {"all", "drift"}:
        _drift_agents(app, settings, drift_input, drift_out, alerts, feedback_topic, counts,
                      executor, drift_monitor, alert_engine)

    @app.timer(interval=30.0)
    async def report() -> None:
        if counts:
            logger.info("llmpulse worker counts: %s", dict(counts))

    return app


def _drift_agents(app: faust.App, settings: WorkerSettings, drift_input: Any, drift_out: Any,
                  alerts: Any, feedback_topic: Any, counts: Counter[str],
                  executor: ThreadPoolExecutor, monitor: Any, engine: Any) -> None:
    """Drift windows and alert rules. Their state (reservoir samples of the open window,
    the reference, the alert incidents) lives in a Faust table, written when it changes, so
    a restarted worker goes on with the same windows."""
    from llmpulse.processors.alerting import AlertEngine
    from llmpulse.processors.drift.monitor import DriftMonitor
    from llmpulse.processors.drift.window import DriftKey
    from llmpulse.schemas import FeedbackEvent

    monitor = monitor if monitor is not None else DriftMonitor()
    engine = engine if engine is not None else AlertEngine()
    state = app.Table("llmpulse-drift-state", default=None, partitions=1, key_type=bytes,
                      value_type=bytes)
    restored = {"done": False}

    def restore() -> None:
        for raw_key, value in list(state.data.items()):
            if value is None:
                continue
            kind, _, encoded = raw_key.decode().partition("|")
            key = DriftKey.decode(encoded)
            (engine if kind == "alert" else monitor).restore(key, value)
            counts["drift_keys_restored"] += 1
        restored["done"] = True

    def process(calls: list[EnrichedCall], feedback: list[FeedbackEvent]) -> tuple[list, list,
                                                                                   dict, dict]:
        results = monitor.observe(calls, feedback)
        raised = engine.evaluate(drift_results=results, calls=calls, feedback=feedback)
        return results, raised, _drift_state(monitor), {k: engine.state_for(k)
                                                         for k in engine.take_dirty()}

    async def publish(results: list, raised: list, dirty_drift: dict, dirty_alerts: dict) -> None:
        for name, value in dirty_drift.items():  # "drift.<part>|<key>": only changed parts
            state.data[name.encode()] = value
            state.send_changelog(0, name.encode(), value)
        for key, value in dirty_alerts.items():
            state.data[f"alert|{key.encode()}".encode()] = value
            state.send_changelog(0, f"alert|{key.encode()}".encode(), value)
        for result in results:
            await drift_out.send(key=f"{result.app}/{result.prompt_id}/{result.prompt_version}"
                                 .encode(), value=encode_event(result))
        for alert in raised:
            await alerts.send(key=alert.dedup_key.encode(), value=encode_event(alert))
        counts["drift_windows"] += len(results)
        counts["alerts"] += len(raised)

    @app.agent(feedback_topic, name="llmpulse-feedback-to-drift")
    async def forward_feedback(stream: Any) -> None:
        async for value in stream:
            await drift_input.send(value=value, partition=0)

    @app.agent(drift_input, name="llmpulse-drift")
    async def drift(stream: Any) -> None:
        loop = asyncio.get_running_loop()
        async for values in stream.take(500, within=1.0):
            if not restored["done"]:
                restore()
            calls: list[EnrichedCall] = []
            feedback: list[FeedbackEvent] = []
            for value in values:
                for event in decode_record(value).events:
                    if isinstance(event, EnrichedCall):
                        calls.append(event)
                    elif isinstance(event, FeedbackEvent):
                        feedback.append(event)
            out = await loop.run_in_executor(executor, process, calls, feedback)
            await publish(*out)

    @app.timer(interval=max(1.0, settings.expiry_check_s))
    async def drift_tick() -> None:
        if not restored["done"]:
            return
        results = monitor.tick()
        if results:
            raised = engine.evaluate(drift_results=results)
            await publish(results, raised, _drift_state(monitor),
                          {k: engine.state_for(k) for k in engine.take_dirty()})


def _drift_state(monitor: Any) -> dict[str, bytes]:
    """The parts of each key's drift state that changed (the open window changes with every
    call; the reference only when a window closes), by table key."""
    return {f"drift.{part}|{key.encode()}": monitor.state_for(key, part)
            for key, parts in monitor.take_dirty().items() for part in sorted(parts)}


def settings_from_env(**overrides: Any) -> WorkerSettings:
    """Settings from ``LLMPULSE_*`` variables, then the keywords given."""
    values: dict[str, Any] = {}
    if os.environ.get(env.BOOTSTRAP_SERVERS):
        values["bootstrap_servers"] = os.environ[env.BOOTSTRAP_SERVERS]
    if os.environ.get(env.TOPIC_PREFIX):
        values["topic_prefix"] = os.environ[env.TOPIC_PREFIX]
    if os.environ.get(env.TOPIC_PARTITIONS):
        values["partitions"] = int(os.environ[env.TOPIC_PARTITIONS])
    values.update({k: v for k, v in overrides.items() if v is not None})
    return WorkerSettings(**values)
