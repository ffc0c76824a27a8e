"""Batched, idempotent writes of events into the store's tables.

The writer drops every event whose ``event_id`` is already stored (the ``event_ids``
ledger, filled by ClickHouse in the same INSERT as the row), so a redelivered event never
reaches a table or a rollup twice. A batch the store refuses is bisected until the rows
it refuses are found; those come back as ``Rejected`` (the sink sends them to the
dead-letter topic) and the rest of the batch is written.

Example:
    >>> from llmpulse.schemas import EnrichedCall, ResponseEvent
    >>> from llmpulse.sinks.store import Store
    >>> from llmpulse.sinks.writer import Sourced, Writer
    >>> store = Store.open("chdb:///tmp/llmpulse-doc.chdb"); store.migrate()  # doctest: +SKIP
    >>> call = EnrichedCall(call_id="c1", app="bot", response=ResponseEvent(
    ...     call_id="c1", app="bot", text="hi", latency_ms=80.0))
    >>> writer = Writer(store)                                              # doctest: +SKIP
    >>> writer.write([Sourced(call)]).written["calls"]                      # doctest: +SKIP
    1
    >>> writer.write([Sourced(call)]).duplicates                            # doctest: +SKIP
    1
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from llmpulse.schemas import (
    Alert,
    DeadLetter,
    DriftResult,
    EnrichedCall,
    Event,
    FeedbackEvent,
    GuardrailVerdict,
    PromptLabel,
    PromptVersion,
    SpanEvent,
)
from llmpulse.sinks import rows as r
from llmpulse.sinks.errors import RowsRejected
from llmpulse.sinks.store import Store

__all__ = ["TABLE_ORDER", "Pending", "Rejected", "Sourced", "WriteResult", "Writer", "route"]

logger = logging.getLogger(__name__)

TABLE_ORDER = ("calls", "spans", "guardrail_verdicts", "feedback", "alerts", "drift_results",
               "dead_letters", "prompt_versions", "prompt_labels")
"""Write order: calls first, so feedback in the same batch can be attributed to them."""

_COLUMNS = {
    "calls": r.CALL_COLUMNS, "spans": r.SPAN_COLUMNS, "guardrail_verdicts": r.VERDICT_COLUMNS,
    "feedback": r.FEEDBACK_COLUMNS,
    "alerts": r.ALERT_COLUMNS, "drift_results": r.DRIFT_COLUMNS, "dead_letters": r.DEAD_LETTER_COLUMNS,
    "prompt_versions": r.PROMPT_VERSION_COLUMNS, "prompt_labels": r.PROMPT_LABEL_COLUMNS,
}
_TABLE_OF: dict[type, str] = {FeedbackEvent: "feedback", Alert: "alerts", DriftResult: "drift_results",
                              DeadLetter: "dead_letters", PromptVersion: "prompt_versions",
                              PromptLabel: "prompt_labels", SpanEvent: "spans"}


def _columns(table: str, sources: list[Any]) -> list[list[Any]]:
    """Events (or ``(verdict, call)`` pairs) to the columns of ``table``, in its order."""
    if table == "calls":
        return r.call_columns(sources)
    if table == "spans":
        return r.span_columns(sources)
    if table == "guardrail_verdicts":
        return r.verdict_columns(sources)
    if table == "feedback":
        rows = [r.feedback_row(e) for e in sources]
    elif table == "alerts":
        rows = [r.alert_row(e) for e in sources]
    elif table == "drift_results":
        rows = [r.drift_row(e) for e in sources]
    elif table == "prompt_versions":
        rows = [r.prompt_version_row(e) for e in sources]
    elif table == "prompt_labels":
        rows = [r.prompt_label_row(e) for e in sources]
    else:
        rows = [r.dead_letter_row(e) for e in sources]
    return [list(column) for column in zip(*rows, strict=True)]


_FB_CALL, _FB_PROMPT, _FB_VERSION, _FB_MODEL, _FB_ATTRIBUTED = (
    r.FEEDBACK_COLUMNS.index(c) for c in ("call_id", "prompt_id", "prompt_version", "model", "attributed"))


class Sourced(msgspec.Struct, frozen=True, gc=False):
    """An event and where it came from (for the dead-letter record if it is refused).

    A msgspec struct, made in C: the sink makes one per event (0.07-0.13 us, against 0.37
    for the named tuple it replaced: docs/FIGURES.md). Out of the cycle collector's reach
    (``gc=False``): it holds an event and plain values, never itself."""

    event: Event
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    batch_index: int | None = None
    """Position inside a batch record."""
    key: bytes | None = None


@dataclass(frozen=True)
class Rejected:
    """An event the store refused, with the reason."""

    item: Sourced
    table: str
    reason: str
    """``rejected_by_store`` (a value does not fit its column) or ``unsupported_event``."""
    detail: str


@dataclass
class WriteResult:
    """What one ``Writer.write`` did."""

    written: dict[str, int] = field(default_factory=dict)
    """Rows written, by table."""
    duplicates: int = 0
    """Events dropped because their ``event_id`` was already stored (or twice in the batch)."""
    rejected: list[Rejected] = field(default_factory=list)
    inserts: int = 0
    """INSERT statements issued (more than one per table when a batch was bisected)."""
    insert_started: float | None = None
    """Wall-clock time (``time.time()``) just before the first INSERT: about the rows'
    ``inserted_at`` (the sink's freshness metric uses it)."""

    @property
    def total_written(self) -> int:
        return sum(self.written.values())


@dataclass
class Pending:
    """One table's share of a batch, as ``route`` sorts it: the rows' sources (an event, or
    a verdict with its call), the events they came from, and their ids for the ledger."""

    sources: list[Any] = field(default_factory=list)
    items: list[Sourced] = field(default_factory=list)
    ids: list[uuid.UUID] = field(default_factory=list)


def route(items: Sequence[Sourced], result: WriteResult) -> dict[str, Pending]:
    """The batch's events by table (``TABLE_ORDER``), in arrival order, each event id once:
    a later event with an id already in the batch counts in ``result.duplicates``; an event
    the sink does not store goes to ``result.rejected``. An enriched call's verdicts follow
    it into ``guardrail_verdicts``, paired with the call (``(verdict, call)``)."""
    pending = {table: Pending() for table in TABLE_ORDER}
    seen: set[int] = set()  # the ids' integers: a UUID's own hash is a Python call
    remember = seen.add
    calls, verdicts = pending["calls"], pending["guardrail_verdicts"]
    call_sources, call_items, call_ids = calls.sources.append, calls.items.append, calls.ids.append
    duplicates = 0
    for item in items:
        event = item.event
        kind = type(event)
        # `_add` written inline for calls, most events (keep the two in step)
        if kind is EnrichedCall:  # most events: its appends bound once for the batch
            event_id = event.event_id
            if event_id.int in seen:
                duplicates += 1
            else:
                remember(event_id.int)
                call_sources(event)
                call_items(item)
                call_ids(event_id)
            for verdict in event.verdicts:  # type: ignore[union-attr]
                duplicates += _add(verdicts, (verdict, event), verdict.event_id, item, seen)
        elif kind is GuardrailVerdict:
            duplicates += _add(verdicts, (event, None), event.event_id, item, seen)
        elif kind in _TABLE_OF:
            duplicates += _add(pending[_TABLE_OF[kind]], event, event.event_id, item, seen)
        else:
            result.rejected.append(Rejected(item, "", "unsupported_event",
                                            f"the sink stores no {kind.__name__}"))
    result.duplicates += duplicates
    return pending


def _add(target: Pending, source: Any, event_id: uuid.UUID, item: Sourced, seen: set[int]) -> int:
    """Append an event to ``target`` unless its id is in ``seen``: 1 for a duplicate, else 0.
    (``route`` does the same for calls with its bound appends.)"""
    if event_id.int in seen:
        return 1
    seen.add(event_id.int)
    target.sources.append(source)  # mapped to columns after the ledger lookup
    target.items.append(item)
    target.ids.append(event_id)
    return 0


class Writer:
    """Writes batches of events to their tables, once each.

    Args:
        store: an open, migrated store.
        deduplicate: drop events already stored (the ledger lookup). Turn it off only
            for a one-off bulk load into empty tables.
    """

    def __init__(self, store: Store, *, deduplicate: bool = True) -> None:
        self.store = store
        self.deduplicate = deduplicate

    def write(self, items: Sequence[Sourced]) -> WriteResult:
        """Write a batch: every table's rows, in ``TABLE_ORDER``.

        When it raises ``StoreUnavailable`` part of the batch may be stored: writing the
        same batch again stores the rest and nothing twice.

        Raises:
            StoreUnavailable: the store cannot take writes now; retry the whole batch.
        """
        result = WriteResult()
        pending = route(items, result)
        if self.deduplicate:
            ids = [i for batch in pending.values() for i in batch.ids]
            stored = self.store.existing_event_ids(ids) if ids else None
            if stored:
                result.duplicates += self._drop(pending, stored)
        result.insert_started = time.time()
        for table in TABLE_ORDER:
            batch = pending[table]
            if batch.sources:
                result.written[table] = self._insert(table, batch.sources, batch.items, result)
        return result

    @staticmethod
    def _drop(pending: dict[str, Pending], stored: set[uuid.UUID]) -> int:
        dropped = 0
        for batch in pending.values():
            keep = [i for i, event_id in enumerate(batch.ids) if event_id not in stored]
            if len(keep) == len(batch.ids):
                continue
            dropped += len(batch.ids) - len(keep)
            batch.sources = [batch.sources[i] for i in keep]
            batch.items = [batch.items[i] for i in keep]
            batch.ids = [batch.ids[i] for i in keep]
        return dropped

    def _attribute(self, columns: list[list[Any]]) -> None:
        """Fill the prompt version and model of feedback that does not name them."""
        attributed = columns[_FB_ATTRIBUTED]
        calls = columns[_FB_CALL]
        missing = {call for call, done in zip(calls, attributed, strict=True) if not done}
        if not missing:
            return
        known = self.store.call_attribution(missing)
        prompts, versions, models = columns[_FB_PROMPT], columns[_FB_VERSION], columns[_FB_MODEL]
        for i, call in enumerate(calls):
            found = known.get(call) if not attributed[i] else None
            if found is None:
                continue
            prompt_id, prompt_version, model = found
            prompts[i] = prompts[i] or prompt_id
            versions[i] = versions[i] or prompt_version
            models[i] = models[i] or model
            attributed[i] = True

    def _insert(self, table: str, sources: list[Any], items: list[Sourced], result: WriteResult) -> int:
        """Insert the rows of ``sources``; on a refusal, bisect until the refused rows are isolated."""
        columns = _columns(table, sources)
        if table == "feedback":
            self._attribute(columns)
        result.inserts += 1
        try:
            return self.store.insert(table, _COLUMNS[table], columns)
        except RowsRejected as exc:
            if len(sources) == 1:
                item = items[0]
                logger.warning("store refused event %s for %s (%s offset %s): %s",
                               item.event.event_id, table, item.topic, item.offset, exc)
                result.rejected.append(Rejected(item, table, "rejected_by_store", str(exc)))
                return 0
            mid = len(sources) // 2
            return (self._insert(table, sources[:mid], items[:mid], result)
                    + self._insert(table, sources[mid:], items[mid:], result))
