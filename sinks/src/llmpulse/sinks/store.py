"""The store: one ClickHouse schema behind one client, on a server or embedded (chDB).

``clickhouse-connect`` is the only client. ``http(s)://user:pass@host:8123/db`` reaches a
ClickHouse server (compression on); ``chdb:///path`` runs the ClickHouse engine in this
process, persistent on disk, through clickhouse-connect's chDB backend. The DDL, the
inserts and the queries are the same on both. Reaching the store and sorting its errors
live in :mod:`llmpulse.sinks.connection`, the migrations and retention in
:mod:`llmpulse.sinks.schema`; this module is the handle: queries, the ledger lookup and
inserts.

Example:
    >>> from llmpulse.sinks.store import Store
    >>> store = Store.open("chdb:///tmp/llmpulse-doc.chdb")      # doctest: +SKIP
    >>> store.migrate()                                          # doctest: +SKIP
    ['0001_raw_tables', '0002_rollups', '0003_evaluation', '0004_eval_sources']
    >>> store.query("SELECT count() FROM calls WHERE app = {app:String}",
    ...             {"app": "support-bot"}).scalar()             # doctest: +SKIP
    0
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from llmpulse.sinks import schema
from llmpulse.sinks.arrow import to_arrow, uuid_array
from llmpulse.sinks.connection import DEFAULT_DATABASE, connect, default_url, mask_url, translate
from llmpulse.sinks.errors import StoreUnavailable
from llmpulse.sinks.schema import MigrationStatus, Retention

__all__ = [
    "DEFAULT_DATABASE",
    "MigrationStatus",
    "QueryRows",
    "Retention",
    "Store",
    "default_url",
    "mask_url",
]

logger = logging.getLogger(__name__)

LOOKUP_CHUNK = 5_000
"""Ids per lookup query: server-side parameters travel in the URL on HTTP (ClickHouse's
``http_max_uri_size`` is 1 MiB; 5,000 UUIDs take 185 KB)."""
LEDGER_CHUNK = 12_000
"""Event ids per ledger lookup: a default batch (10,000 calls and their verdicts) in one
query; 12,000 ids sent as one comma-separated String take ~470 KB of URL."""


@dataclass
class QueryRows:
    """A query's result: column names and rows (tuples)."""

    column_names: tuple[str, ...]
    rows: list[tuple[Any, ...]] = field(default_factory=list)

    def dicts(self) -> list[dict[str, Any]]:
        """Each row as a ``{column: value}`` dict."""
        return [dict(zip(self.column_names, row, strict=True)) for row in self.rows]

    def scalar(self) -> Any:
        """The first column of the first row (None when there is no row)."""
        return self.rows[0][0] if self.rows and self.rows[0] else None

    def column(self, name: str) -> list[Any]:
        """All values of one column."""
        index = self.column_names.index(name)
        return [row[index] for row in self.rows]


class Store:
    """The llmpulse tables in ClickHouse (a server, or chDB in-process).

    Open it with ``Store.open(url)``; close it when done (chDB allows one engine path per
    process: clients on the same path share it, a second path fails until every client
    of the first is closed).
    """

    def __init__(self, client: Any, *, backend: str, database: str, url: str) -> None:
        self.client = client
        self.backend = backend
        """``chdb`` or ``http``."""
        self.database = database
        self.url = mask_url(url)
        self._column_types: dict[str, dict[str, str]] = {}

    @classmethod
    def open(cls, url: str | None = None, *, database: str | None = None,
             connect_timeout: float = 10.0, send_receive_timeout: float = 60.0) -> Store:
        """Connect, creating the database if it is missing.

        Args:
            url: ``chdb:///path[?database=name]`` or ``http(s)://user:pass@host:port/db``;
                None reads ``$LLMPULSE_CLICKHOUSE_URL``, else the embedded default.
            database: overrides the URL's database (default ``llmpulse``).
            connect_timeout: seconds (server only).
            send_receive_timeout: seconds (server only).

        Raises:
            StoreError: the URL is not understood, or chDB is already open on another path.
            StoreUnavailable: the server cannot be reached.
        """
        url = url or default_url()
        client, backend, database = connect(url, database=database, connect_timeout=connect_timeout,
                                            send_receive_timeout=send_receive_timeout)
        logger.info("opened store %s (database %s, %s)", mask_url(url), database, backend)
        return cls(client, backend=backend, database=database, url=url)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the connection (on chDB: the client's handle on the engine)."""
        self.client.close()

    # -- schema ---------------------------------------------------------------------------

    def migrate(self, retention: Retention | None = None) -> list[str]:
        """Apply the migrations not applied yet, in order; then the retention if given.

        Safe to run twice, and from two processes at once (every statement is
        ``IF NOT EXISTS``). Returns the names of the migrations applied now.

        Raises:
            MigrationError: a statement failed, or an applied migration's file changed.
        """
        self._column_types.clear()  # a migration may add columns
        return schema.migrate(self, retention)

    def migration_status(self) -> list[MigrationStatus]:
        """Every migration file, applied or not (needs ``schema_migrations``)."""
        return schema.migration_status(self)

    def apply_retention(self, retention: Retention) -> list[str]:
        """Set the TTLs to ``retention`` where they differ from the last applied values.

        Returns the names of the settings changed now. Shortening the text retention
        rewrites the text columns of existing parts (ClickHouse materializes the TTL).
        """
        return schema.apply_retention(self, retention)

    # -- reading --------------------------------------------------------------------------

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> QueryRows:
        """Run a SELECT with server-side parameters (``{name:Type}`` placeholders).

        Every value from user input must come in ``parameters``, never formatted into
        ``sql``. Datetimes come back timezone-aware (UTC) on both engines.

        Raises:
            StoreUnavailable: the store cannot be reached.
            StoreError: the query failed.
        """
        try:
            result = self.client.query(sql, parameters=dict(parameters or {}))
        except Exception as exc:
            raise translate(exc, "query") from exc
        return QueryRows(tuple(result.column_names), list(result.result_rows))

    def command(self, sql: str, parameters: Mapping[str, Any] | None = None) -> Any:
        """Run a statement that returns no rows (DDL, OPTIMIZE, ...)."""
        try:
            return self.client.command(sql, parameters=dict(parameters) if parameters else None)
        except Exception as exc:
            raise translate(exc, "command") from exc

    def ping(self) -> bool:
        """True when the store answers."""
        try:
            return bool(self.client.ping())
        except Exception:
            return False

    def existing_event_ids(self, event_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        """The ids among ``event_ids`` that are already stored (in the ``event_ids`` ledger)."""
        ids = list(event_ids)
        if not ids:
            return set()
        if self.backend == "chdb":
            # The ids as one Arrow column the engine reads in place (``Python()``): no
            # text per id in Python, no parameter to parse, one statement however many.
            llmpulse_ledger_ids = pa.table({"id": uuid_array(ids, python_table=True)})  # noqa: F841
            try:
                found = self._engine_query(
                    f"SELECT DISTINCT toString(event_id) FROM {self.database}.event_ids "  # noqa: S608
                    "WHERE event_id IN (SELECT reinterpretAsUUID(id) FROM Python(llmpulse_ledger_ids))",
                    "ArrowTable")
            except Exception as exc:
                raise translate(exc, "ledger lookup") from exc
            return {uuid.UUID(text) for text in found.column(0).to_pylist()}
        stored: set[uuid.UUID] = set()
        for start in range(0, len(ids), LEDGER_CHUNK):
            chunk = ids[start:start + LEDGER_CHUNK]
            # One String parameter of 32-digit hex ids, split by the engine: binding an
            # Array(UUID) formats each id in Python (~40 us an id in clickhouse-connect's
            # binder), and so does escaping a str parameter character by character (~6 us).
            rows = self.query("SELECT DISTINCT event_id FROM event_ids WHERE event_id IN "
                              "(SELECT toUUID(arrayJoin(splitByChar(',', {ids:String}))))",
                              {"ids": _HexIds(chunk)}).rows
            stored.update(row[0] for row in rows)
        return stored

    def call_attribution(self, call_ids: Iterable[str]) -> dict[str, tuple[str, str, str]]:
        """``call_id -> (prompt_id, prompt_version, model)`` for the stored calls among them."""
        ids = sorted(set(call_ids))
        found: dict[str, tuple[str, str, str]] = {}
        for start in range(0, len(ids), LOOKUP_CHUNK):
            chunk = ids[start:start + LOOKUP_CHUNK]
            rows = self.query(
                "SELECT call_id, argMax(prompt_id, occurred_at), argMax(prompt_version, occurred_at), "
                "argMax(model, occurred_at) FROM call_index WHERE call_id IN {ids:Array(String)} "
                "GROUP BY call_id", {"ids": chunk}).rows
            found.update((row[0], (row[1], row[2], row[3])) for row in rows)
        return found

    # -- writing --------------------------------------------------------------------------

    def insert(self, table: str, column_names: Sequence[str], columns: Sequence[Sequence[Any]]) -> int:
        """Insert column-oriented data (one sequence per column); returns the rows written.

        Raises:
            StoreUnavailable: the store is down, busy, or not set up; retry later.
            RowsRejected: a value does not fit its column; the same rows will fail again.
        """
        types = self.column_types(table)
        try:
            frame = to_arrow(types, column_names, columns, python_table=self.backend == "chdb")
            return self._send(table, column_names, frame)
        except Exception as exc:
            raise translate(exc, f"insert into {table}", insert=True) from exc

    def _send(self, table: str, column_names: Sequence[str], frame: pa.Table) -> int:
        """One INSERT of ``frame``: on a server the ``Arrow`` input format over HTTP; on
        chDB ``INSERT … SELECT * FROM Python(…)``, the engine reading the table in place
        (``insert_arrow`` would write it to a file and read the file back)."""
        if self.backend != "chdb":
            summary = self.client.insert_arrow(table, frame)
            return int(summary.written_rows) if summary.written_rows else int(frame.num_rows)
        llmpulse_insert_frame = frame  # noqa: F841 - read by name by chDB's Python() table function
        # Names only (the writer's tables and columns, the database checked at open).
        self._engine_query(f"INSERT INTO {self.database}.{table} ({', '.join(column_names)}) "  # noqa: S608
                           "SELECT * FROM Python(llmpulse_insert_frame)", "TabSeparated")
        return int(frame.num_rows)

    def _engine_query(self, sql: str, fmt: str) -> Any:
        """chDB only: ``sql`` on the client's own engine handle, under its lock, its errors
        mapped as the client maps them (``DatabaseError`` with the ClickHouse code).

        clickhouse-connect has no public call that returns chDB's own result (an Arrow
        table) or lets the engine read a Python object, so this goes through its chDB
        backend's ``_run``. chDB finds a ``Python(name)`` table among the locals of the
        calling frames, so the caller names it with a name no frame in between uses.
        """
        return self.client._backend._run(sql, fmt)

    def column_types(self, table: str) -> dict[str, str]:
        """ClickHouse type by column name of ``table`` (read once per store).

        Raises:
            StoreUnavailable: the store is down, busy, or the table is missing (not migrated).
        """
        types = self._column_types.get(table)
        if types is None:
            try:
                rows = self.client.query(
                    "SELECT name, type FROM system.columns WHERE database = currentDatabase() "
                    "AND table = {table:String}", parameters={"table": table}).result_rows
            except Exception as exc:
                raise translate(exc, f"columns of {table}") from exc
            if not rows:  # an unmigrated store: the insert itself would fail the same way
                raise StoreUnavailable(f"table {self.database}.{table} does not exist "
                                       "(run llmpulse db migrate)", retry_after=2.0)
            types = self._column_types[table] = {str(name): str(kind) for name, kind in rows}
        return types


class _HexIds:
    """UUIDs as one comma-separated parameter of hex digits, bound as they are.

    ``clickhouse-connect`` escapes a ``str`` parameter character by character; any other
    value is bound as its ``str()``. Hex digits and commas need no escaping."""

    __slots__ = ("ids",)

    def __init__(self, ids: Sequence[uuid.UUID]) -> None:
        self.ids = ids

    def __str__(self) -> str:
        return ",".join([f"{u.int:032x}" for u in self.ids])
