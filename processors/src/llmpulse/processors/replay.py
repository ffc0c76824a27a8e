"""Replay: re-run a range of recorded calls through another scorer set, guardrail policy
or prompt version, and keep the results in the evaluation tables.

The range is read with a consumer group of its own (``llmpulse-replay-<run id>``) and
partitions assigned explicitly (no subscribe, no commits), so the production consumer
groups never see it. Calls are joined as in the worker (``CallJoiner``), then each call is
written twice to ``eval_results``: variant ``baseline`` (the call as recorded, scored with
the baseline configuration) and ``candidate`` (rescored with the candidate configuration
and policy, or answered again by the candidate prompt version and scored). Each row names
its source record (topic, partition, offset); the run's row in ``eval_runs`` holds the
range, the versions and the configuration. A run id can be given again to resume: calls
whose candidate row is already stored are skipped, so nothing is written twice.

Example (not a doctest: it needs a broker)::

    from datetime import UTC, datetime
    from llmpulse.processors import Enricher, load_config
    from llmpulse.processors.replay import ReplaySource, replay, topics_for
    from llmpulse.sinks.store import Store

    source = ReplaySource("127.0.0.1:9092", topics_for(""),
                          start=datetime(2026, 1, 1, tzinfo=UTC),
                          end=datetime(2026, 1, 2, tzinfo=UTC))
    with Store.open("chdb:///tmp/llmpulse") as store:
        result = replay(store, source, candidate=Enricher(load_config("strict.yaml")),
                        baseline=Enricher(load_config()), run_id="strict-policy-1")
    result.calls, result.status          # (1250, 'done')

    $ llmpulse replay --from 2026-01-01T00:00 --to 2026-01-02T00:00 --policy strict.yaml
    $ llmpulse replay --from-offset 0 --to-offset 5000 --prompt-dir prompts \\
          --candidate answer@staging --model-url http://localhost:8000/v1 --model gpt-4o-mini
    $ llmpulse replay --run-id r-20260101-ab12 ...     # resume an interrupted run
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import msgspec

from llmpulse.processors.join import CallJoiner
from llmpulse.processors.pipeline import CallPair, Enricher
from llmpulse.schemas import (
    ChatMessage,
    EnrichedCall,
    ErrorInfo,
    PromptEvent,
    ResponseEvent,
    TokenUsage,
    decode_record,
)
from llmpulse.schemas.errors import LlmpulseError

__all__ = [
    "CandidatePrompt",
    "ChatModel",
    "ReplayError",
    "ReplayResult",
    "ReplaySource",
    "SourceRef",
    "new_run_id",
    "read_range",
    "replay",
    "result_row",
]

logger = logging.getLogger(__name__)

BASELINE = "baseline"
CANDIDATE = "candidate"
_NAMED_SCORES = ("quality", "toxicity", "relevance", "groundedness", "refusal")
_OPERATION_SCORES = ("latency_ms", "input_tokens", "output_tokens", "cost_usd")
RESULT_COLUMNS = (
    "run_id", "variant", "call_id", "occurred_at", "app", "prompt_id", "prompt_version", "model",
    "response_text", "latency_ms", "input_tokens", "output_tokens", "cost_usd", "error_type",
    "quality", "toxicity", "relevance", "groundedness", "refusal", "custom_scores",
    "scorer_versions", "guardrail_rules", "guardrail_blocked", "source_topic", "source_partition",
    "source_offset",
)
RUN_COLUMNS = ("run_id", "name", "kind", "status", "created_at", "updated_at", "source_topic",
               "range_start", "range_end", "baseline", "candidate", "config", "calls", "summary")


class ReplayError(LlmpulseError):
    """A replay cannot start: a bad range, a missing topic, an unknown run."""


class EvalStore(Protocol):
    """What replay needs of ``llmpulse.sinks.store.Store``."""

    def query(self, sql: str, parameters: Any = None) -> Any: ...

    def insert(self, table: str, column_names: Sequence[str], columns: Sequence[Sequence[Any]]) -> int: ...


def new_run_id() -> str:
    """``r-YYYYmmddTHHMMSS-xxxxxx``: sortable, unique enough for humans to type."""
    return f"r-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


# -- reading a range ----------------------------------------------------------------------

@dataclass(frozen=True)
class ReplaySource:
    """A range of topics' history: by time (``start``/``end``, record timestamps) or by
    offsets (``from_offset`` inclusive, ``to_offset`` exclusive, in every partition)."""

    bootstrap_servers: str
    topics: Sequence[str]
    start: datetime | None = None
    end: datetime | None = None
    from_offset: int | None = None
    to_offset: int | None = None
    kafka_config: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return ",".join(self.topics)


@dataclass(frozen=True)
class SourceRef:
    """Where an event was read."""

    topic: str
    partition: int
    offset: int


def _ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


class _Progress:
    def __init__(self, total_records: int, every_s: float, label: str) -> None:
        self.total = max(total_records, 1)
        self.records = 0
        self.calls = 0
        self.every_s = every_s
        self.label = label
        self.t0 = time.monotonic()
        self.last = self.t0

    def tick(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < self.every_s:
            return
        self.last = now
        elapsed = now - self.t0
        share = min(self.records / self.total, 1.0)
        eta = elapsed * (1 - share) / share if share > 0 else float("nan")
        logger.info("replay %s: %d/%d records (%.0f%%), %d calls, %.1f calls/s, ETA %.0fs",
                    self.label, self.records, self.total, share * 100, self.calls,
                    self.calls / elapsed if elapsed > 0 else 0.0, eta)


def _consumer(source: ReplaySource, group_id: str) -> Any:
    from confluent_kafka import Consumer

    config = {"bootstrap.servers": source.bootstrap_servers, "group.id": group_id,
              "enable.auto.commit": False, "enable.auto.offset.store": False,
              "auto.offset.reset": "earliest", "enable.partition.eof": True}
    config.update(source.kafka_config)
    return Consumer(config)


def _plan(consumer: Any, source: ReplaySource) -> dict[tuple[str, int], tuple[int, int]]:
    """``(topic, partition) -> (start offset, end offset exclusive)`` for each partition."""
    from confluent_kafka import TopicPartition

    metadata = consumer.list_topics(timeout=10)
    plan: dict[tuple[str, int], tuple[int, int]] = {}
    wanted: list[Any] = []
    for topic in source.topics:
        info = metadata.topics.get(topic)
        if info is None or info.error is not None:
            raise ReplayError(f"topic {topic!r} does not exist")
        for partition in sorted(info.partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            if source.from_offset is not None or source.start is None:
                first = max(low, source.from_offset or 0)
                last = high if source.to_offset is None else min(high, source.to_offset)
                plan[(topic, partition)] = (first, max(first, last))
            else:
                plan[(topic, partition)] = (low, high)
                wanted.append(TopicPartition(topic, partition, _ms(source.start)))
    if wanted:
        for tp in consumer.offsets_for_times(wanted, timeout=10):
            _, high = plan[(tp.topic, tp.partition)]
            start = tp.offset if tp.offset >= 0 else high  # -1: no record at or after start
            plan[(tp.topic, tp.partition)] = (start, high)
    return plan


def read_range(source: ReplaySource, *, group_id: str,
               progress: _Progress | None = None, poll_s: float = 0.5
               ) -> Iterator[tuple[PromptEvent | ResponseEvent, SourceRef]]:
    """The prompts and responses of the range (see ``read_events``)."""
    for event, ref in read_events(source, group_id=group_id, progress=progress, poll_s=poll_s):
        if isinstance(event, PromptEvent | ResponseEvent):
            yield event, ref


def read_events(source: ReplaySource, *, group_id: str,
                progress: _Progress | None = None, poll_s: float = 0.5
                ) -> Iterator[tuple[Any, SourceRef]]:
    """Every event of the range, with where it was read.

    Partitions are assigned (never subscribed) and nothing is committed. A partition is
    done at its end offset (the high watermark when the read started) or at its first
    record stamped after ``source.end``.
    """
    from confluent_kafka import KafkaError, TopicPartition

    consumer = _consumer(source, group_id)
    try:
        plan = _plan(consumer, source)
        if progress is not None:
            progress.total = max(sum(e - s for s, e in plan.values()), 1)
        open_parts = {key for key, (s, e) in plan.items() if s < e}
        logger.info("replay reads %d partition(s) of %s (%d records at most), group %s",
                    len(open_parts), source.describe(), sum(e - s for s, e in plan.values()), group_id)
        if not open_parts:
            return
        consumer.assign([TopicPartition(t, p, plan[(t, p)][0]) for t, p in sorted(open_parts)])
        end_ms = _ms(source.end) if source.end is not None else None
        failures = 0
        while open_parts:
            msg = consumer.poll(poll_s)
            if msg is None:
                continue
            key = (msg.topic(), msg.partition())
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF and key in open_parts:
                    if msg.offset() >= plan[key][1]:
                        open_parts.discard(key)
                        consumer.pause([TopicPartition(*key)])
                    continue
                logger.warning("replay read error on %s[%d]: %s", *key, msg.error())
                continue
            if key not in open_parts:
                continue
            offset = msg.offset()
            _, ts_ms = msg.timestamp()
            if offset >= plan[key][1] or (end_ms is not None and ts_ms > end_ms):
                open_parts.discard(key)
                consumer.pause([TopicPartition(*key)])
                continue
            if progress is not None:
                progress.records += 1
            if offset + 1 >= plan[key][1]:
                open_parts.discard(key)
                consumer.pause([TopicPartition(*key)])
            record = decode_record(msg.value())
            if record.failures:
                failures += len(record.failures)
                logger.warning("replay: %d undecodable event(s) in %s[%d]@%d skipped",
                               len(record.failures), key[0], key[1], offset)
            ref = SourceRef(key[0], key[1], offset)
            for event in record.events:
                yield event, ref
    finally:
        consumer.close()


# -- a candidate prompt version ------------------------------------------------------------

class ChatModel:
    """An OpenAI-compatible chat-completions endpoint, called at most ``rate`` times a second.

    Uses httpx (no SDK needed); retries connection errors, 429 and 5xx twice.
    """

    def __init__(self, base_url: str, *, api_key: str | None = None, rate: float = 5.0,
                 timeout_s: float = 60.0, retries: int = 2) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.client = httpx.Client(headers=headers, timeout=timeout_s)
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.retries = retries
        self._next = 0.0
        self.requests = 0

    def _wait(self) -> None:
        now = time.monotonic()
        if now < self._next:
            time.sleep(self._next - now)
        self._next = max(now, self._next) + self.interval

    def complete(self, messages: list[dict[str, str]], *, model: str,
                 settings: dict[str, Any] | None = None) -> dict[str, Any]:
        """``{"text", "finish_reason", "response_model", "response_id", "usage", "latency_ms"}``
        or ``{"error": (type, message), "latency_ms"}``."""
        import httpx

        body = {**(settings or {}), "model": model, "messages": messages, "stream": False}
        error: tuple[str, str] = ("unknown", "")
        for attempt in range(self.retries + 1):
            self._wait()
            self.requests += 1
            t0 = time.perf_counter()
            try:
                reply = self.client.post(self.url, json=body)
            except httpx.HTTPError as exc:
                error = (type(exc).__name__, str(exc))
                continue
            latency_ms = (time.perf_counter() - t0) * 1000
            if reply.status_code == 200:
                data = reply.json()
                choice = (data.get("choices") or [{}])[0]
                return {"text": (choice.get("message") or {}).get("content"),
                        "finish_reason": choice.get("finish_reason"),
                        "response_model": data.get("model"), "response_id": data.get("id"),
                        "usage": data.get("usage") or {}, "latency_ms": latency_ms}
            error = (f"http_{reply.status_code}", reply.text[:200])
            if reply.status_code != 429 and reply.status_code < 500:
                break
            if attempt < self.retries:
                time.sleep(min(0.2 * 2 ** attempt, 2.0))
        return {"error": error, "latency_ms": 0.0}

    def close(self) -> None:
        self.client.close()


@dataclass
class CandidatePrompt:
    """A prompt version to answer recorded calls with: ``template`` (a ``PromptTemplate``
    from ``PromptRegistry.resolve``), the model to call and its name."""

    template: Any
    model: ChatModel
    model_name: str | None = None

    @property
    def name(self) -> str:
        return self.model_name or self.template.model or "unknown"

    def describe(self) -> str:
        return f"{self.template.id}@{self.template.version} model={self.name}"

    def answer(self, pair: CallPair) -> CallPair:
        """The call made again: the template rendered with the call's variables, sent to
        the model; the new prompt and response keep the call's id and time."""
        p = pair.prompt
        assert p is not None
        common = dict(call_id=p.call_id, app=p.app, environment=p.environment,
                      occurred_at=p.occurred_at, session_id=p.session_id, user_id=p.user_id,
                      trace_id=p.trace_id, prompt_id=self.template.id,
                      prompt_version=self.template.version, request_model=self.name,
                      provider=p.provider)
        try:
            rendered = self.template.render(**p.template_variables)
        except LlmpulseError as exc:
            prompt = msgspec.structs.replace(p, prompt_version=self.template.version,
                                             request_model=self.name)
            response = ResponseEvent(**common, latency_ms=0.0,
                                     error=ErrorInfo(type="missing_variables", message=str(exc)))
            return CallPair(prompt=prompt, response=response)
        messages = [dict(m) for m in rendered.messages]
        prompt = msgspec.structs.replace(
            p, event_id=uuid.uuid5(p.event_id, "candidate-prompt"),
            messages=[ChatMessage(role=m["role"], content=m["content"]) for m in messages],  # type: ignore[arg-type]
            prompt_version=self.template.version, request_model=self.name,
            template_variables=dict(rendered.variables))
        settings = {k: v for k, v in rendered.model_settings.items()
                    if k in {"temperature", "max_tokens", "top_p", "stop", "seed"}}
        got = self.model.complete(messages, model=self.name, settings=settings)
        rid = uuid.uuid5(p.event_id, "candidate-response")
        if "error" in got:
            kind, message = got["error"]
            response = ResponseEvent(**common, event_id=rid, latency_ms=got["latency_ms"],
                                     error=ErrorInfo(type=kind, message=message[:500]))
        else:
            usage = got["usage"]
            response = ResponseEvent(
                **common, event_id=rid, text=got["text"], finish_reason=got["finish_reason"],
                response_model=got["response_model"], response_id=got["response_id"],
                latency_ms=got["latency_ms"],
                usage=TokenUsage(input_tokens=int(usage.get("prompt_tokens") or 0),
                                 output_tokens=int(usage.get("completion_tokens") or 0)))
        return CallPair(prompt=prompt, response=response)


# -- rows -----------------------------------------------------------------------------------

def result_row(run_id: str, variant: str, call: EnrichedCall, ref: SourceRef | None) -> list[Any]:
    """One ``eval_results`` row (in ``RESULT_COLUMNS`` order) of a scored call."""
    values: dict[str, float | None] = {}
    versions: dict[str, str] = {"scorer_set": call.scorer_set_version, "policy": call.policy_version}
    custom: dict[str, float] = {}
    for score in call.scores:
        versions[score.name] = f"{score.scorer_version}/{score.backend}"
        value = score.value if score.status == "ok" else None
        values[score.name] = value
        if value is not None and score.name not in _NAMED_SCORES + _OPERATION_SCORES:
            custom[score.name] = float(value)
    r = call.response
    error_type = ""
    if r is not None and r.error is not None:
        error_type = r.error.type
    elif not call.complete:
        error_type = call.incomplete_reason or "incomplete"
    model = (r.response_model if r is not None else None) or call.request_model or ""
    usage = r.usage if r is not None else None
    latency = values.get("latency_ms", r.latency_ms if r is not None else None)
    return [
        run_id, variant, call.call_id, call.occurred_at, call.app, call.prompt_id or "",
        call.prompt_version or "", model, (r.text or "") if r is not None else "",
        latency, usage.input_tokens if usage else 0, usage.output_tokens if usage else 0,
        values.get("cost_usd"), error_type,
        *(values.get(name) for name in _NAMED_SCORES),
        custom, versions, sorted({v.rule_id for v in call.verdicts}),
        any(v.action == "block" for v in call.verdicts),
        ref.topic if ref else "", ref.partition if ref else -1, ref.offset if ref else -1,
    ]


def _insert_rows(store: EvalStore, rows: list[list[Any]]) -> None:
    if rows:
        store.insert("eval_results", RESULT_COLUMNS, [list(col) for col in zip(*rows, strict=True)])


def done_calls(store: EvalStore, run_id: str) -> set[str]:
    """Calls of the run whose candidate row is stored (a resumed run skips them)."""
    rows = store.query("SELECT DISTINCT call_id FROM eval_results WHERE run_id = {run:String} "
                       "AND variant = {variant:String}", {"run": run_id, "variant": CANDIDATE})
    return {row[0] for row in rows.rows}


def _existing_run(store: EvalStore, run_id: str) -> dict[str, Any] | None:
    rows = store.query("SELECT * FROM eval_runs FINAL WHERE run_id = {run:String}", {"run": run_id})
    found = rows.dicts()
    return found[0] if found else None


# -- the run -------------------------------------------------------------------------------

@dataclass
class ReplayResult:
    """What a run did (this invocation) and where it stands."""

    run_id: str
    status: str
    """``done``, ``interrupted`` (stopped after ``max_calls``) or ``failed``."""
    calls: int = 0
    """Calls evaluated by this invocation."""
    skipped: int = 0
    """Calls already stored for this run (a resume)."""
    ignored: int = 0
    """Calls of another prompt than the candidate's."""
    records: int = 0
    violations: dict[str, int] = field(default_factory=dict)
    """Calls with at least one guardrail verdict, per variant."""
    model_errors: int = 0
    stored_calls: int = 0
    """Candidate rows stored for the run, all invocations together."""
    elapsed_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in {"run_id", "status"}}


def replay(store: EvalStore, source: ReplaySource, *, candidate: Enricher,
           baseline: Enricher | None = None, prompt: CandidatePrompt | None = None,
           run_id: str | None = None, name: str = "", max_calls: int | None = None,
           batch_events: int = 500, progress_every_s: float = 5.0,
           config: dict[str, Any] | None = None,
           on_progress: Callable[[ReplayResult], None] | None = None) -> ReplayResult:
    """Replay a range and store the results under a run id (new, or one to resume).

    Args:
        store: the ``Store`` with the evaluation tables.
        source: the range to read.
        candidate: scores the candidate variant (the new scorer set and policy, or the
            candidate prompt's answers).
        baseline: scores the recorded calls as the ``baseline`` variant (None: no baseline rows).
        prompt: answer each call again with this prompt version (only calls of its prompt id).
        run_id: resume this run (its stored calls are skipped); default a new id.
        max_calls: stop after this many new calls (status ``interrupted``; resume later).
        config: what to keep in ``eval_runs.config`` (the command line, file names...).
    """
    run_id = run_id or new_run_id()
    existing = _existing_run(store, run_id)
    created_at = existing["created_at"] if existing else datetime.now(UTC)
    done = done_calls(store, run_id)
    kind = "prompt" if prompt is not None else "scoring"
    versions = {"candidate_scorer_set": candidate.scorer_set_version,
                "candidate_policy": getattr(candidate.policy, "version", ""),
                "baseline_scorer_set": baseline.scorer_set_version if baseline else "",
                "baseline_policy": getattr(baseline.policy, "version", "") if baseline else ""}
    candidate_text = (prompt.describe() + " " if prompt else "") + (
        f"scorers={versions['candidate_scorer_set']} policy={versions['candidate_policy']}")
    baseline_text = (f"recorded; scorers={versions['baseline_scorer_set']} "
                     f"policy={versions['baseline_policy']}") if baseline else ""
    run_config = json.dumps({**(config or {}), "versions": versions,
                             "from_offset": source.from_offset, "to_offset": source.to_offset},
                            sort_keys=True, default=str)
    result = ReplayResult(run_id, "running", skipped=0)
    t0 = time.monotonic()

    def save_run(status: str) -> None:
        result.status = status
        result.elapsed_s = round(time.monotonic() - t0, 3)
        result.stored_calls = len(done_calls(store, run_id))
        row = [run_id, name or (existing or {}).get("name") or run_id, kind, status, created_at,
               datetime.now(UTC), source.describe(), source.start, source.end, baseline_text,
               candidate_text, run_config, result.stored_calls,
               json.dumps(result.summary(), sort_keys=True)]
        store.insert("eval_runs", RUN_COLUMNS, [[v] for v in row])

    save_run("running")
    if done:
        logger.info("replay %s resumes: %d call(s) already stored", run_id, len(done))
    if baseline is not None and baseline.batched_scorers:
        baseline.load_models()
    if candidate.batched_scorers:
        candidate.load_models()

    joiner = CallJoiner()
    refs: dict[str, SourceRef] = {}
    progress = _Progress(1, progress_every_s, run_id)
    pending: list[tuple[PromptEvent | ResponseEvent, int]] = []
    stop = False

    def evaluate(pairs: list[CallPair]) -> None:
        nonlocal stop
        todo: list[CallPair] = []
        for pair in pairs:
            half = pair.prompt or pair.response
            assert half is not None
            if half.call_id in done:
                result.skipped += 1
                continue
            if prompt is not None and (pair.prompt is None or pair.prompt.prompt_id != prompt.template.id):
                result.ignored += 1
                continue
            if max_calls is not None and result.calls + len(todo) >= max_calls:
                stop = True
                break
            todo.append(pair)
        if not todo:
            return
        rows: list[list[Any]] = []
        if baseline is not None:
            for call in baseline.enrich(todo):
                rows.append(result_row(run_id, BASELINE, call, refs.get(call.call_id)))
                if call.verdicts:
                    result.violations[BASELINE] = result.violations.get(BASELINE, 0) + 1
        again = [prompt.answer(p) for p in todo] if prompt is not None else todo
        for call in candidate.enrich(again):
            rows.append(result_row(run_id, CANDIDATE, call, refs.get(call.call_id)))
            if call.verdicts:
                result.violations[CANDIDATE] = result.violations.get(CANDIDATE, 0) + 1
            if prompt is not None and call.response is not None and call.response.error is not None:
                result.model_errors += 1
        _insert_rows(store, rows)  # both variants of a call in one insert
        done.update(p.call_id for p in (x.prompt or x.response for x in todo) if p is not None)
        result.calls += len(todo)
        progress.calls = result.calls
        progress.tick()
        if on_progress is not None:
            on_progress(result)

    def flush() -> None:
        if pending:
            evaluate(joiner.add_many(pending, now=time.time()))
            pending.clear()

    group_id = f"llmpulse-replay-{run_id}"
    try:
        for event, ref in read_range(source, group_id=group_id, progress=progress):
            if event.call_id in done:
                result.skipped += isinstance(event, PromptEvent)
                continue
            if isinstance(event, PromptEvent) or event.call_id not in refs:
                refs[event.call_id] = ref
            pending.append((event, ref.partition))
            if len(pending) >= batch_events:
                flush()
                if stop:
                    break
        if not stop:
            flush()
        if not stop:  # halves whose partner is outside the range: incomplete calls
            evaluate(list(joiner.expire(now=float("inf"), timeout_s=0.0)))
    except BaseException:
        result.records = progress.records
        save_run("failed")
        raise
    result.records = progress.records
    progress.tick(force=True)
    save_run("interrupted" if stop else "done")
    logger.info("replay %s %s: %d call(s) evaluated, %d skipped, %d stored in all",
                run_id, result.status, result.calls, result.skipped, result.stored_calls)
    return result


def topics_for(prefix: str, names: Iterable[str] | None = None) -> list[str]:
    """The topic names (default: prompts and responses) with the deployment's prefix."""
    from llmpulse.schemas.topics import PROMPTS, RESPONSES, topic_name

    return [topic_name(n, prefix) for n in (names or [PROMPTS, RESPONSES])]
