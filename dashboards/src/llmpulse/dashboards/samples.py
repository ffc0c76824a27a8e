"""Per-call samples of each comparison metric, read from the store's raw rows.

``version_samples`` reads one prompt version's calls and feedback in a time range and
returns a ``name -> MetricSamples`` mapping that ``llmpulse.dashboards.stats`` compares.
``METRICS`` says what each metric is, its kind and which direction is better; a replay
run's results (``eval_results``) can be turned into the same mapping with
``samples_from_rows``.

Example:
    >>> from llmpulse.dashboards.samples import METRICS
    >>> METRICS["latency_p95_ms"].kind.value, METRICS["thumbs_up_rate"].higher_is_better
    ('quantile', True)
    >>> samples = version_samples(store, "answer", "2", since=start, until=end)   # doctest: +SKIP
"""

# ruff: noqa: S608 - SQL built from constant fragments; values arrive as Grafana variables or parameters

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from llmpulse.dashboards.stats import MetricKind, MetricSamples, as_floats

__all__ = [
    "METRICS",
    "MetricDefinition",
    "run_samples",
    "samples_from_rows",
    "scope_filters",
    "version_samples",
    "versions_of",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MetricDefinition:
    """What a comparison metric is: the per-unit column it reads and how it is compared
    (``denominator``: the column a ``RATIO`` divides by; ``group``: ``call`` or ``agent``)."""

    name: str
    kind: MetricKind
    column: str
    higher_is_better: bool | None
    unit: str
    description: str
    quantile: float | None = None
    denominator: str | None = None
    group: str = "call"


_DEFINITIONS = (
    MetricDefinition(
        "thumbs_up_rate",
        MetricKind.PROPORTION,
        "thumbs_up",
        True,
        "%",
        "share of thumbs up among the thumbs given",
    ),
    MetricDefinition("rating", MetricKind.ORDINAL, "rating", True, "of 5", "1-5 rating"),
    MetricDefinition(
        "correction_rate",
        MetricKind.PROPORTION,
        "corrected",
        False,
        "%",
        "share of feedback that carried a correction",
    ),
    MetricDefinition("quality", MetricKind.MEAN, "quality", True, "", "quality score (0-1)"),
    MetricDefinition("relevance", MetricKind.MEAN, "relevance", True, "", "relevance score (0-1)"),
    MetricDefinition("groundedness", MetricKind.MEAN, "groundedness", True, "", "groundedness score (0-1)"),
    MetricDefinition(
        "toxicity_rate",
        MetricKind.PROPORTION,
        "toxic",
        False,
        "%",
        "share of scored responses with toxicity >= 0.5",
    ),
    MetricDefinition(
        "guardrail_violation_rate",
        MetricKind.PROPORTION,
        "flagged",
        False,
        "%",
        "share of calls with a guardrail verdict",
    ),
    MetricDefinition(
        "guardrail_block_rate",
        MetricKind.PROPORTION,
        "blocked",
        False,
        "%",
        "share of calls a guardrail blocked",
    ),
    MetricDefinition("refusal_rate", MetricKind.PROPORTION, "refused", False, "%", "share of calls refused"),
    MetricDefinition("error_rate", MetricKind.PROPORTION, "failed", False, "%", "share of calls that failed"),
    MetricDefinition(
        "latency_p50_ms", MetricKind.QUANTILE, "latency_ms", False, "ms", "median latency", quantile=0.5
    ),
    MetricDefinition(
        "latency_p95_ms",
        MetricKind.QUANTILE,
        "latency_ms",
        False,
        "ms",
        "95th percentile latency",
        quantile=0.95,
    ),
    MetricDefinition("tokens_per_call", MetricKind.MEAN, "tokens", None, "tokens", "input + output tokens"),
    MetricDefinition("cost_per_call", MetricKind.MEAN, "cost_usd", False, "USD", "spend per call"),
)
METRICS: dict[str, MetricDefinition] = {d.name: d for d in _DEFINITIONS}
"""Every comparison metric by name, in display order."""

_CALLS_SQL = """
SELECT toUInt8(error_type != '') AS failed, latency_ms,
       toFloat64(input_tokens) + toFloat64(output_tokens) AS tokens, cost_usd, quality, relevance,
       groundedness, if(toxicity IS NULL, NULL, toUInt8(toxicity >= 0.5)) AS toxic,
       toUInt8(refusal >= 0.5 OR finish_reason = 'content_filter') AS refused,
       toUInt8(guardrail_flagged) AS flagged, toUInt8(guardrail_blocked) AS blocked
FROM calls
WHERE prompt_id = {prompt:String} AND prompt_version = {version:String}
  AND occurred_at >= {since:DateTime64(6)} AND occurred_at < {until:DateTime64(6)} AND ($FILTERS)
ORDER BY cityHash64(call_id) LIMIT {limit:UInt64}
"""

_FEEDBACK_SQL = """
SELECT multiIf(thumbs = 'up', 1, thumbs = 'down', 0, NULL) AS thumbs_up, rating,
       toUInt8(correction != '') AS corrected
FROM feedback
WHERE prompt_id = {prompt:String} AND prompt_version = {version:String}
  AND occurred_at >= {since:DateTime64(6)} AND occurred_at < {until:DateTime64(6)} AND ($FILTERS)
ORDER BY cityHash64(call_id, event_id) LIMIT {limit:UInt64}
"""


def scope_filters(app: str | None, environment: str | None, model: str | None) -> tuple[str, dict[str, Any]]:
    """A parameterised ``column = {column:String}`` clause per given filter (``1`` for none)."""
    clauses, parameters = [], {}
    for column, value in (("app", app), ("environment", environment), ("model", model)):
        if value:
            clauses.append(f"{column} = {{{column}:String}}")
            parameters[column] = value
    return " AND ".join(clauses) or "1", parameters


def samples_from_rows(
    columns: Mapping[str, Sequence[Any]],
    metrics: Sequence[str] | None = None,
    definitions: Mapping[str, MetricDefinition] | None = None,
) -> dict[str, MetricSamples]:
    """``name -> MetricSamples`` from per-unit columns (``latency_ms``, ``thumbs_up``...).

    Metrics whose column is absent are left out, so a replay run's ``eval_results``
    (no feedback) gives the call metrics only. ``definitions`` defaults to ``METRICS``
    (per call); ``trace_samples.AGENT_METRICS`` reads per-trace columns.
    """
    definitions = METRICS if definitions is None else definitions
    out = {}
    for name in metrics or list(definitions):
        definition = definitions[name]
        if definition.column not in columns or (
            definition.denominator is not None and definition.denominator not in columns
        ):
            continue
        out[name] = MetricSamples(
            name,
            definition.kind,
            as_floats(columns[definition.column]),
            quantile=definition.quantile,
            higher_is_better=definition.higher_is_better,
            unit=definition.unit,
            description=definition.description,
            denominators=(None if definition.denominator is None
                          else as_floats(columns[definition.denominator])),
            group=definition.group,
        )
    return out


_RUN_SQL = """
SELECT toUInt8(error_type != '') AS failed, latency_ms,
       toFloat64(input_tokens) + toFloat64(output_tokens) AS tokens, cost_usd, quality, relevance,
       groundedness, if(toxicity IS NULL, NULL, toUInt8(toxicity >= 0.5)) AS toxic,
       if(refusal IS NULL, NULL, toUInt8(refusal >= 0.5)) AS refused,
       toUInt8(notEmpty(guardrail_rules)) AS flagged, toUInt8(guardrail_blocked) AS blocked
FROM eval_results FINAL
WHERE run_id = {run:String} AND variant = {variant:String}
ORDER BY cityHash64(call_id) LIMIT {limit:UInt64}
"""


def run_samples(
    store: Any, run_id: str, variant: str = "candidate", *, max_calls: int = 200_000
) -> dict[str, MetricSamples]:
    """The call metrics of one variant (``baseline`` or ``candidate``) of a replay run,
    from ``eval_results`` (no feedback there, so no feedback metrics)."""
    result = store.query(_RUN_SQL, {"run": run_id, "variant": variant, "limit": max_calls})
    logger.info("run %s/%s: %d calls", run_id, variant, len(result.rows))
    return samples_from_rows({name: result.column(name) for name in result.column_names})


def version_samples(
    store: Any,
    prompt_id: str,
    version: str,
    *,
    since: datetime,
    until: datetime,
    app: str | None = None,
    environment: str | None = None,
    model: str | None = None,
    max_calls: int = 200_000,
) -> dict[str, MetricSamples]:
    """Every metric's per-call samples for one prompt version, from raw ``calls`` and ``feedback``.

    Args:
        store: an open ``llmpulse.sinks.Store``.
        prompt_id: the prompt.
        version: its version.
        since: start of the range (inclusive).
        until: end of the range (exclusive).
        app: only this app's calls.
        environment: only this environment.
        model: only this model.
        max_calls: above this many calls (or feedback events), a deterministic sample by
            hash of the call id is taken, the same on every run.
    """
    where, filters = scope_filters(app, environment, model)
    parameters = {
        "prompt": prompt_id,
        "version": version,
        "since": since,
        "until": until,
        "limit": max_calls,
        **filters,
    }
    calls = store.query(_CALLS_SQL.replace("$FILTERS", where), parameters)
    feedback = store.query(_FEEDBACK_SQL.replace("$FILTERS", where), parameters)
    columns: dict[str, Sequence[Any]] = {}
    for result in (calls, feedback):
        for name in result.column_names:
            columns[name] = result.column(name)
    logger.info(
        "%s v%s: %d calls, %d feedback events", prompt_id, version, len(calls.rows), len(feedback.rows)
    )
    if len(calls.rows) >= max_calls:
        logger.warning(
            "%s v%s has more than %d calls in the range; comparing a sample of them",
            prompt_id,
            version,
            max_calls,
        )
    return samples_from_rows(columns)


def versions_of(
    store: Any, prompt_id: str, *, since: datetime, until: datetime, app: str | None = None
) -> list[tuple[str, int]]:
    """``(version, calls)`` of a prompt in the range, from the rollup."""
    where, filters = scope_filters(app, None, None)
    rows = store.query(
        "SELECT prompt_version, sum(calls) AS n FROM calls_1m WHERE prompt_id = {prompt:String} "
        "AND minute >= toStartOfMinute({since:DateTime64(6)}) AND minute < {until:DateTime64(6)} "
        f"AND ({where}) GROUP BY prompt_version ORDER BY prompt_version",
        {"prompt": prompt_id, "since": since, "until": until, **filters},
    ).rows
    return [(str(v), int(n)) for v, n in rows]
