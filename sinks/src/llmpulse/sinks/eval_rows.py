"""Replay results to rows of the evaluation tables (``eval_results``, ``eval_runs``).

The evaluation tables' sibling of ``rows``: each function returns a row in the order of
its ``*_COLUMNS``.

Example:
    >>> from llmpulse.schemas import EnrichedCall, ResponseEvent
    >>> from llmpulse.sinks.eval_rows import RESULT_COLUMNS, result_row
    >>> call = EnrichedCall(call_id="c1", app="bot", response=ResponseEvent(
    ...     call_id="c1", app="bot", text="hi", latency_ms=120.0))
    >>> row = dict(zip(RESULT_COLUMNS, result_row("r-1", "candidate", call, None)))
    >>> row["response_text"], row["latency_ms"], row["error_type"], row["source_offset"]
    ('hi', 120.0, '', -1)
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Protocol

from llmpulse.schemas import EnrichedCall

__all__ = ["RESULT_COLUMNS", "RUN_COLUMNS", "RowSource", "result_row", "run_row"]

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


class RowSource(Protocol):
    """Where a replayed call was read (replay's ``SourceRef``)."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...


def result_row(run_id: str, variant: str, call: EnrichedCall, ref: RowSource | None) -> list[Any]:
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


def run_row(run_id: str, *, name: str, kind: str, status: str, created_at: datetime,
            updated_at: datetime, source_topic: str, range_start: datetime | None,
            range_end: datetime | None, baseline: str, candidate: str, config: str, calls: int,
            summary: dict[str, Any]) -> list[Any]:
    """One ``eval_runs`` row (in ``RUN_COLUMNS`` order): a run's range, versions and state."""
    return [run_id, name, kind, status, created_at, updated_at, source_topic, range_start,
            range_end, baseline, candidate, config, calls, json.dumps(summary, sort_keys=True)]
