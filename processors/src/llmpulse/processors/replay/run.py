"""A replay run: a range of recorded calls scored again, kept under a run id.

The range's records go through the processing step (``ProcessingStep``: decode, validate,
join, as in the worker), then each call is written twice to ``eval_results``: variant
``baseline`` (the call as recorded, scored with the baseline configuration) and
``candidate`` (rescored with the candidate configuration and policy, or answered again by
the candidate prompt version and scored). The run's row in ``eval_runs`` holds the range,
the versions and the configuration. A run id given again resumes the run: calls whose
candidate row is already stored are skipped, so nothing is written twice.

Example (not a doctest: it needs a broker)::

    result = replay(store, source, candidate=Enricher(load_config("strict.yaml")),
                    baseline=Enricher(load_config()), run_id="strict-policy-1")
    result.calls, result.status          # (1250, 'done')
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from llmpulse.processors.pipeline import CallPair, Enricher
from llmpulse.processors.replay.candidate import CandidatePrompt
from llmpulse.processors.replay.kafka_range import (
    Progress,
    ReplaySource,
    SourceRef,
    log_skipped,
    read_records,
)
from llmpulse.processors.step import ProcessingStep
from llmpulse.schemas import EnrichedCall, PromptEvent, ResponseEvent
from llmpulse.sinks.eval_rows import RESULT_COLUMNS, RUN_COLUMNS, result_row, run_row

__all__ = ["BASELINE", "CANDIDATE", "ReplayResult", "done_calls", "new_run_id", "replay"]

logger = logging.getLogger(__name__)

BASELINE = "baseline"
CANDIDATE = "candidate"


class EvalStore(Protocol):
    """What replay needs of ``llmpulse.sinks.store.Store``."""

    def query(self, sql: str, parameters: Any = None) -> Any: ...

    def insert(self, table: str, column_names: Sequence[str], columns: Sequence[Sequence[Any]]) -> int: ...


def new_run_id() -> str:
    """``r-YYYYmmddTHHMMSS-xxxxxx``: sortable, unique enough for humans to type."""
    return f"r-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


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
    run = _Run(store, source, candidate=candidate, baseline=baseline, prompt=prompt,
               run_id=run_id or new_run_id(), name=name, max_calls=max_calls, config=config,
               progress_every_s=progress_every_s, on_progress=on_progress)
    return run.execute(batch_events)


class _Run:
    """One invocation of a run: its row in ``eval_runs``, the calls already stored, and
    the evaluation of each batch of joined calls."""

    def __init__(self, store: EvalStore, source: ReplaySource, *, candidate: Enricher,
                 baseline: Enricher | None, prompt: CandidatePrompt | None, run_id: str,
                 name: str, max_calls: int | None, config: dict[str, Any] | None,
                 progress_every_s: float,
                 on_progress: Callable[[ReplayResult], None] | None) -> None:
        self.store, self.source, self.run_id = store, source, run_id
        self.candidate, self.baseline, self.prompt = candidate, baseline, prompt
        self.max_calls, self.on_progress = max_calls, on_progress
        self.existing = _existing_run(store, run_id)
        self.name = name or (self.existing or {}).get("name") or run_id
        self.created_at = self.existing["created_at"] if self.existing else datetime.now(UTC)
        self.done = done_calls(store, run_id)
        self.kind = "prompt" if prompt is not None else "scoring"
        versions = {"candidate_scorer_set": candidate.scorer_set_version,
                    "candidate_policy": getattr(candidate.policy, "version", ""),
                    "baseline_scorer_set": baseline.scorer_set_version if baseline else "",
                    "baseline_policy": getattr(baseline.policy, "version", "") if baseline else ""}
        self.candidate_text = (prompt.describe() + " " if prompt else "") + (
            f"scorers={versions['candidate_scorer_set']} policy={versions['candidate_policy']}")
        self.baseline_text = (f"recorded; scorers={versions['baseline_scorer_set']} "
                              f"policy={versions['baseline_policy']}") if baseline else ""
        self.config = json.dumps({**(config or {}), "versions": versions,
                                  "from_offset": source.from_offset,
                                  "to_offset": source.to_offset}, sort_keys=True, default=str)
        self.result = ReplayResult(run_id, "running", skipped=0)
        self.t0 = time.monotonic()
        # decode, validate and join as the worker does; other events of the range are skipped
        self.step = ProcessingStep(candidate, reject_unexpected=False)
        self.refs: dict[str, SourceRef] = {}
        self.progress = Progress(1, progress_every_s, run_id)
        self.stop = False

    def save(self, status: str) -> None:
        """Write the run's row in ``eval_runs`` with its status and counts so far."""
        result = self.result
        result.status = status
        result.elapsed_s = round(time.monotonic() - self.t0, 3)
        result.stored_calls = len(done_calls(self.store, self.run_id))
        row = run_row(self.run_id, name=self.name, kind=self.kind, status=status,
                      created_at=self.created_at, updated_at=datetime.now(UTC),
                      source_topic=self.source.describe(), range_start=self.source.start,
                      range_end=self.source.end, baseline=self.baseline_text,
                      candidate=self.candidate_text, config=self.config,
                      calls=result.stored_calls, summary=result.summary())
        self.store.insert("eval_runs", RUN_COLUMNS, [[v] for v in row])

    def execute(self, batch_events: int) -> ReplayResult:
        """Read the range, evaluate every call not stored yet, and save the run's state."""
        result, progress = self.result, self.progress
        self.save("running")
        if self.done:
            logger.info("replay %s resumes: %d call(s) already stored", self.run_id, len(self.done))
        for enricher in (self.baseline, self.candidate):
            if enricher is not None and enricher.batched_scorers:
                enricher.load_models()
        try:
            self.read(batch_events)
        except BaseException:
            result.records = progress.records
            self.save("failed")
            raise
        result.records = progress.records
        progress.tick(force=True)
        self.save("interrupted" if self.stop else "done")
        logger.info("replay %s %s: %d call(s) evaluated, %d skipped, %d stored in all",
                    self.run_id, result.status, result.calls, result.skipped, result.stored_calls)
        return result

    def read(self, batch_events: int) -> None:
        """The range's halves, joined in batches of ``batch_events`` and evaluated."""
        pending: list[tuple[PromptEvent | ResponseEvent, int]] = []
        group_id = f"llmpulse-replay-{self.run_id}"
        for record in read_records(self.source, group_id=group_id, progress=self.progress):
            decoded = self.step.decode(record)
            ref = SourceRef.of(record)
            if decoded.letters:
                log_skipped(len(decoded.letters), ref)
            for event, partition in decoded.halves:
                if event.call_id in self.done:
                    self.result.skipped += isinstance(event, PromptEvent)
                    continue
                if isinstance(event, PromptEvent) or event.call_id not in self.refs:
                    self.refs[event.call_id] = ref
                pending.append((event, partition))
                if len(pending) >= batch_events:
                    self.evaluate(self.step.join(pending, now=time.time()))
                    pending.clear()
                    if self.stop:
                        return
        if pending:
            self.evaluate(self.step.join(pending, now=time.time()))
        if not self.stop:  # halves whose partner is outside the range: incomplete calls
            self.evaluate(self.step.expire(now=float("inf"), timeout_s=0.0))

    def evaluate(self, pairs: list[CallPair]) -> None:
        """Score the calls not stored yet as both variants and store their rows."""
        result, prompt = self.result, self.prompt
        todo: list[CallPair] = []
        for pair in pairs:
            half = pair.prompt or pair.response
            assert half is not None
            if half.call_id in self.done:
                result.skipped += 1
                continue
            if prompt is not None and (pair.prompt is None or pair.prompt.prompt_id != prompt.template.id):
                result.ignored += 1
                continue
            if self.max_calls is not None and result.calls + len(todo) >= self.max_calls:
                self.stop = True
                break
            todo.append(pair)
        if not todo:
            return
        rows: list[list[Any]] = []
        if self.baseline is not None:
            rows.extend(self._rows(BASELINE, self.baseline.enrich(todo)))
        again = [prompt.answer(p) for p in todo] if prompt is not None else todo
        candidate = self.step.heavy(self.step.light(again))
        rows.extend(self._rows(CANDIDATE, candidate))
        if prompt is not None:
            result.model_errors += sum(1 for c in candidate
                                       if c.response is not None and c.response.error is not None)
        _insert_rows(self.store, rows)  # both variants of a call in one insert
        self.done.update(p.call_id for p in (x.prompt or x.response for x in todo) if p is not None)
        result.calls += len(todo)
        self.progress.calls = result.calls
        self.progress.tick()
        if self.on_progress is not None:
            self.on_progress(result)

    def _rows(self, variant: str, calls: list[EnrichedCall]) -> list[list[Any]]:
        violations = self.result.violations
        for call in calls:
            if call.verdicts:
                violations[variant] = violations.get(variant, 0) + 1
        return [result_row(self.run_id, variant, c, self.refs.get(c.call_id)) for c in calls]
