"""The schema's life: migrations applied in order, and the retention (TTLs) set on it.

The migrations are ``migrations/NNNN_name.sql`` in this package, applied in order and
recorded in ``schema_migrations`` with a checksum (an applied file that changed is refused
by name); the retention settings are recorded in ``retention_settings`` and applied as
``ALTER TABLE … MODIFY [COLUMN …] TTL`` only when they change. The store's own
``Store.migrate``, ``Store.migration_status`` and ``Store.apply_retention`` call these.

Example:
    >>> from llmpulse.sinks.schema import Retention, migration_files
    >>> Retention(text_days=14).text_days
    14
    >>> migration_files()[0].name
    '0001_raw_tables'
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from llmpulse.schemas import environment as env
from llmpulse.sinks.errors import MigrationError, StoreError, StoreUnavailable

if TYPE_CHECKING:
    from llmpulse.sinks.store import Store

__all__ = ["Migration", "MigrationStatus", "Retention", "apply_retention", "migrate", "migration_files",
           "migration_status"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Retention:
    """How long data is kept, in days (``llmpulse db migrate --text-days ...``).

    Attributes:
        text_days: prompt messages, template variables, response and error text, feedback
            comments and corrections, DLQ payloads (column TTL: the row stays, the text
            becomes empty).
        raw_days: raw rows of calls, feedback, guardrail verdicts and the call index.
        rollup_days: the per-minute rollups, alerts and drift results.
        dedup_days: the ``event_ids`` ledger; must outlive the longest topic retention
            (30 days), since a redelivery can only come from a record Kafka still holds.
    """

    text_days: int = 30
    raw_days: int = 90
    rollup_days: int = 400
    dedup_days: int = 35

    def __post_init__(self) -> None:
        for name in ("text_days", "raw_days", "rollup_days", "dedup_days"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive whole number of days, got {value!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Retention:
        """Read ``LLMPULSE_RETENTION_TEXT_DAYS`` and its siblings; defaults otherwise."""
        source = os.environ if environ is None else environ
        values: dict[str, int] = {}
        for name, var in (("text_days", env.RETENTION_TEXT_DAYS), ("raw_days", env.RETENTION_RAW_DAYS),
                          ("rollup_days", env.RETENTION_ROLLUP_DAYS),
                          ("dedup_days", env.RETENTION_DEDUP_DAYS)):
            raw = source.get(var, "").strip()
            if raw:
                try:
                    values[name] = int(raw)
                except ValueError:
                    raise ValueError(f"{var}={raw!r} is not a whole number of days") from None
        return cls(**values)

    def statements(self) -> dict[str, list[str]]:
        """The ALTER statements that set each retention, by setting name."""
        text = [f"ALTER TABLE {t} MODIFY COLUMN {c} TTL toDateTime({ts}) + INTERVAL {self.text_days} DAY"
                for t, c, ts in _TEXT_COLUMNS]
        raw = [f"ALTER TABLE {t} MODIFY TTL toDateTime(occurred_at) + INTERVAL {self.raw_days} DAY"
               for t in ("calls", "spans", "feedback", "guardrail_verdicts", "call_index")]
        rollup = [f"ALTER TABLE {t} MODIFY TTL {ts} + INTERVAL {self.rollup_days} DAY"
                  for t, ts in (("calls_1m", "minute"), ("feedback_1m", "minute"),
                                ("guardrail_verdicts_1m", "minute"), ("tool_calls_1m", "minute"),
                                ("alerts", "toDateTime(occurred_at)"),
                                ("drift_results", "toDateTime(window_end)"))]
        dedup = [f"ALTER TABLE event_ids MODIFY TTL inserted_at + INTERVAL {self.dedup_days} DAY"]
        return {"text_days": text, "raw_days": raw, "rollup_days": rollup, "dedup_days": dedup}


_TEXT_COLUMNS = (
    ("calls", "prompt_messages", "occurred_at"), ("calls", "template_variables", "occurred_at"),
    ("calls", "response_text", "occurred_at"), ("calls", "error_message", "occurred_at"),
    ("feedback", "correction", "occurred_at"), ("feedback", "comment", "occurred_at"),
    ("dead_letters", "payload", "occurred_at"), ("eval_results", "response_text", "inserted_at"),
    ("spans", "tool_arguments", "occurred_at"), ("spans", "error_message", "occurred_at"),
    ("spans", "result_preview", "occurred_at"),
)


@dataclass(frozen=True)
class MigrationStatus:
    """One migration file and whether (and when) it was applied."""

    version: int
    name: str
    applied: bool
    applied_at: Any = None
    changed: bool = False
    """The file differs from the one that was applied (its checksum changed)."""


@dataclass(frozen=True)
class Migration:
    """One migration file: its version, name (``0006_agents``) and SQL."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]

    def statements(self) -> list[str]:
        """The file's statements, comments removed."""
        text = re.sub(r"--[^\n]*", "", self.sql)
        return [s.strip() for s in text.split(";") if s.strip()]


def migration_files() -> list[Migration]:
    """Every migration shipped in the package, in version order.

    Raises:
        MigrationError: two files share a version number.
    """
    found = []
    for entry in resources.files("llmpulse.sinks").joinpath("migrations").iterdir():
        match = re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name[:-4], entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    if len({m.version for m in found}) != len(found):
        raise MigrationError("two migration files share a version number")
    return found


_BOOKKEEPING = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, checksum String,"
    " applied_at DateTime64(6, 'UTC') DEFAULT now64(6)) ENGINE = ReplacingMergeTree(applied_at)"
    " ORDER BY version",
    "CREATE TABLE IF NOT EXISTS retention_settings (name String, days UInt32,"
    " applied_at DateTime64(6, 'UTC') DEFAULT now64(6)) ENGINE = ReplacingMergeTree(applied_at)"
    " ORDER BY name",
)


def migrate(store: Store, retention: Retention | None = None) -> list[str]:
    """Apply the migrations not applied yet to ``store``, in order; then the retention.

    Returns the names of the migrations applied now (see ``Store.migrate``).

    Raises:
        MigrationError: a statement failed, or an applied migration's file changed.
    """
    for statement in _BOOKKEEPING:
        store.command(statement)
    status = {s.version: s for s in migration_status(store)}
    applied = []
    for migration in migration_files():
        known = status[migration.version]
        if known.applied:
            if known.changed:
                raise MigrationError(f"migration {migration.name} changed after it was applied; "
                                     "add a new migration instead of editing an applied one")
            continue
        for statement in migration.statements():
            try:
                store.command(statement)
            except StoreUnavailable:
                raise
            except StoreError as exc:
                raise MigrationError(f"{migration.name}: {exc}") from exc
        store.client.insert("schema_migrations", [[migration.version, migration.name, migration.checksum]],
                            column_names=["version", "name", "checksum"])
        logger.info("applied migration %s", migration.name)
        applied.append(migration.name)
    if applied:
        _reapply_retention(store)
    if retention is not None:
        apply_retention(store, retention)
    return applied


def migration_status(store: Store) -> list[MigrationStatus]:
    """Every migration file, applied to ``store`` or not (needs ``schema_migrations``)."""
    rows = store.query("SELECT version, argMax(checksum, applied_at), max(applied_at) "
                       "FROM schema_migrations GROUP BY version").rows
    done = {int(v): (checksum, at) for v, checksum, at in rows}
    result = []
    for m in migration_files():
        if m.version in done:
            checksum, at = done[m.version]
            result.append(MigrationStatus(m.version, m.name, True, at, checksum != m.checksum))
        else:
            result.append(MigrationStatus(m.version, m.name, False))
    return result


def apply_retention(store: Store, retention: Retention) -> list[str]:
    """Set the TTLs to ``retention`` where they differ from the last applied values.

    Returns the names of the settings changed now.
    """
    current = _retention_set(store)
    defaults = Retention()
    changed = []
    for name, statements in retention.statements().items():
        wanted = getattr(retention, name)
        if current.get(name, getattr(defaults, name)) == wanted:
            continue
        for statement in statements:
            store.command(statement)
        store.client.insert("retention_settings", [[name, wanted]], column_names=["name", "days"])
        logger.info("retention %s set to %d days", name, wanted)
        changed.append(name)
    return changed


def _retention_set(store: Store) -> dict[str, int]:
    """The days of every retention setting applied so far, by name."""
    return {name: int(days) for name, days in store.query(
        "SELECT name, argMax(days, applied_at) FROM retention_settings GROUP BY name").rows}


def _reapply_retention(store: Store) -> None:
    """Give the tables a migration just created the retention already set (their DDL
    has the defaults); every statement of a changed setting is run again (idempotent)."""
    current = _retention_set(store)
    changed = {name: days for name, days in current.items() if getattr(Retention(), name) != days}
    if not changed:
        return
    statements = Retention(**changed).statements()
    for name in changed:
        for statement in statements[name]:
            store.command(statement)
        logger.info("retention %s (%d days) applied to the new tables", name, changed[name])
