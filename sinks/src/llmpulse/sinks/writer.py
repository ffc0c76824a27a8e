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
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

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
)
from llmpulse.sinks import rows as r
from llmpulse.sinks.errors import RowsRejected
from llmpulse.sinks.store import Store

__all__ = ["TABLE_ORDER", "Rejected", "Sourced", "WriteResult", "Writer"]

logger = logging.getLogger(__name__)

TABLE_ORDER = ("calls", "guardrail_verdicts", "feedback", "alerts", "drift_results", "dead_letters",
               "prompt_versions", "prompt_labels")
"""Write order: calls first, so feedback in the same batch can be attributed to them."""

_COLUMNS = {
    "calls": r.CALL_COLUMNS, "guardrail_verdicts": r.VERDICT_COLUMNS, "feedback": r.FEEDBACK_COLUMNS,
    "alerts": r.ALERT_COLUMNS, "drift_results": r.DRIFT_COLUMNS, "dead_letters": r.DEAD_LETTER_COLUMNS,
    "prompt_versions": r.PROMPT_VERSION_COLUMNS, "prompt_labels": r.PROMPT_LABEL_COLUMNS,
}
_TABLE_OF: dict[type, str] = {FeedbackEvent: "feedback", Alert: "alerts", DriftResult: "drift_results",
                              DeadLetter: "dead_letters", PromptVersion: "prompt_versions",
                              PromptLabel: "prompt_labels"}


def _map_rows(table: str, sources: list[Any]) -> list[Any]:
    """Events (or ``(verdict, call)`` pairs) to rows of ``table``."""
    if table == "calls":
        return [r.call_row(e) for e in sources]
    if table == "guardrail_verdicts":
        return [r.verdict_row(v, call) for v, call in sources]
    if table == "feedback":
        return [list(r.feedback_row(e)) for e in sources]
    if table == "alerts":
        return [r.alert_row(e) for e in sources]
    if table == "drift_results":
        return [r.drift_row(e) for e in sources]
    if table == "prompt_versions":
        return [r.prompt_version_row(e) for e in sources]
    if table == "prompt_labels":
        return [r.prompt_label_row(e) for e in sources]
    return [r.dead_letter_row(e) for e in sources]


_FB_PROMPT, _FB_VERSION, _FB_MODEL, _FB_ATTRIBUTED = (
    r.FEEDBACK_COLUMNS.index(c) for c in ("prompt_id", "prompt_version", "model", "attributed"))


@dataclass(frozen=True)
class Sourced:
    """An event and where it came from (for the dead-letter record if it is refused)."""

    event: Event
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    index: int | None = None
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

    @property
    def total_written(self) -> int:
        return sum(self.written.values())


@dataclass
class _Pending:
    rows: list[Any] = field(default_factory=list)
    items: list[Sourced] = field(default_factory=list)
    ids: list[uuid.UUID] = field(default_factory=list)


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
        pending = {table: _Pending() for table in TABLE_ORDER}
        seen: set[uuid.UUID] = set()
        for item in items:
            self._route(item, pending, seen, result)
        if self.deduplicate and seen:
            stored = self.store.existing_event_ids(seen)
            if stored:
                result.duplicates += self._drop(pending, stored)
        for table in TABLE_ORDER:
            batch = pending[table]
            if not batch.rows:
                continue
            batch.rows = _map_rows(table, batch.rows)
            if table == "feedback":
                self._attribute(batch.rows)
            written = self._insert(table, batch.rows, batch.items, result)
            result.written[table] = written
        return result

    def _route(self, item: Sourced, pending: dict[str, _Pending], seen: set[uuid.UUID],
               result: WriteResult) -> None:
        event = item.event
        targets: list[tuple[str, Any]]
        if isinstance(event, EnrichedCall):
            targets = [("calls", event), *(("guardrail_verdicts", (v, event)) for v in event.verdicts)]
        elif isinstance(event, GuardrailVerdict):
            targets = [("guardrail_verdicts", (event, None))]
        elif isinstance(event, FeedbackEvent | Alert | DriftResult | DeadLetter | PromptVersion
                        | PromptLabel):
            targets = [(_TABLE_OF[type(event)], event)]
        else:
            result.rejected.append(Rejected(item, "", "unsupported_event",
                                            f"the sink stores no {type(event).__name__}"))
            return
        for table, source in targets:
            event_id = source[0].event_id if table == "guardrail_verdicts" else source.event_id
            if event_id in seen:
                result.duplicates += 1
                continue
            seen.add(event_id)
            target = pending[table]
            target.rows.append(source)  # mapped to a row after the ledger lookup
            target.items.append(item)
            target.ids.append(event_id)

    @staticmethod
    def _drop(pending: dict[str, _Pending], stored: set[uuid.UUID]) -> int:
        dropped = 0
        for batch in pending.values():
            keep = [i for i, event_id in enumerate(batch.ids) if event_id not in stored]
            if len(keep) == len(batch.ids):
                continue
            dropped += len(batch.ids) - len(keep)
            batch.rows = [batch.rows[i] for i in keep]
            batch.items = [batch.items[i] for i in keep]
            batch.ids = [batch.ids[i] for i in keep]
        return dropped

    def _attribute(self, rows: list[list[Any]]) -> None:
        """Fill the prompt version and model of feedback that does not name them."""
        missing = {row[1] for row in rows if not row[_FB_ATTRIBUTED]}
        if not missing:
            return
        known = self.store.call_attribution(missing)
        for row in rows:
            found = known.get(row[1]) if not row[_FB_ATTRIBUTED] else None
            if found is None:
                continue
            prompt_id, prompt_version, model = found
            row[_FB_PROMPT] = row[_FB_PROMPT] or prompt_id
            row[_FB_VERSION] = row[_FB_VERSION] or prompt_version
            row[_FB_MODEL] = row[_FB_MODEL] or model
            row[_FB_ATTRIBUTED] = True

    def _insert(self, table: str, rows: list[Any], items: list[Sourced], result: WriteResult) -> int:
        """Insert ``rows``; on a refusal, bisect until the refused rows are isolated."""
        columns = _COLUMNS[table]
        result.inserts += 1
        try:
            return self.store.insert(table, columns, list(zip(*rows, strict=True)))
        except RowsRejected as exc:
            if len(rows) == 1:
                item = items[0]
                logger.warning("store refused event %s for %s (%s offset %s): %s",
                               item.event.event_id, table, item.topic, item.offset, exc)
                result.rejected.append(Rejected(item, table, "rejected_by_store", str(exc)))
                return 0
            mid = len(rows) // 2
            return (self._insert(table, rows[:mid], items[:mid], result)
                    + self._insert(table, rows[mid:], items[mid:], result))
