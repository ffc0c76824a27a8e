"""The store: one ClickHouse schema behind one client, on a server or embedded (chDB).

``clickhouse-connect`` is the only client. ``http(s)://user:pass@host:8123/db`` reaches a
ClickHouse server (compression on); ``chdb:///path`` runs the ClickHouse engine in this
process, persistent on disk, through clickhouse-connect's chDB backend. The DDL, the
inserts and the queries are the same on both.

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

import hashlib
import logging
import os
import re
import struct
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

import clickhouse_connect
import pyarrow as pa
from clickhouse_connect.driver.exceptions import DatabaseError, DataError, OperationalError

from llmpulse.schemas import environment as env
from llmpulse.sinks.arrow import to_arrow, uuid_array
from llmpulse.sinks.errors import MigrationError, RowsRejected, StoreError, StoreUnavailable

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

DEFAULT_DATABASE = "llmpulse"
LOOKUP_CHUNK = 5_000
"""Ids per lookup query: server-side parameters travel in the URL on HTTP (ClickHouse's
``http_max_uri_size`` is 1 MiB; 5,000 UUIDs take 185 KB)."""
LEDGER_CHUNK = 12_000
"""Event ids per ledger lookup: a default batch (10,000 calls and their verdicts) in one
query; 12,000 ids sent as one comma-separated String take ~470 KB of URL."""

# ClickHouse error codes after which the same insert can succeed later: the server is
# busy, short of memory or parts, or the table/database/user is not there yet (an
# operator's fix, not a bad row). Anything else from an insert is the rows' fault.
_TRANSIENT_CODES = frozenset({
    3, 16, 47, 60, 81, 159, 164, 192, 193, 194, 195, 202, 203, 209, 210, 236, 241, 242, 252,
    285, 319, 394, 425, 497, 516, 999, 1000,
})


def default_url(environ: Mapping[str, str] | None = None) -> str:
    """``$LLMPULSE_CLICKHOUSE_URL``, else the embedded store under the data directory.

    The data directory is ``$LLMPULSE_DATA_DIR``, else ``$XDG_DATA_HOME/llmpulse``, else
    ``~/.local/share/llmpulse``; the store is ``llmpulse.chdb`` in it.
    """
    source = os.environ if environ is None else environ
    url = source.get(env.CLICKHOUSE_URL, "").strip()
    if url:
        return url
    data_dir = source.get(env.DATA_DIR, "").strip()
    if not data_dir:
        xdg = source.get("XDG_DATA_HOME", "").strip()
        data_dir = str(Path(xdg) / "llmpulse") if xdg else str(Path.home() / ".local/share/llmpulse")
    return f"chdb://{Path(data_dir).expanduser().resolve() / 'llmpulse.chdb'}"


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***`` (for logs and messages)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


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


@dataclass(frozen=True)
class _Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]

    def statements(self) -> list[str]:
        text = re.sub(r"--[^\n]*", "", self.sql)
        return [s.strip() for s in text.split(";") if s.strip()]


def _migrations() -> list[_Migration]:
    found = []
    for entry in resources.files("llmpulse.sinks").joinpath("migrations").iterdir():
        match = re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name)
        if match:
            found.append(_Migration(int(match.group(1)), entry.name[:-4], entry.read_text("utf-8")))
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
        parts = urlsplit(url)
        kwargs: dict[str, Any]
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if parts.scheme == "chdb":
            path = parts.path if not parts.netloc else parts.netloc + parts.path
            if not path or path in ("memory", ":memory:"):
                dsn = "chdb://memory"
            else:
                Path(path).mkdir(parents=True, exist_ok=True)
                dsn = f"chdb://{Path(path).resolve()}"
            database = database or query.get("database") or DEFAULT_DATABASE
            backend, kwargs = "chdb", {"dsn": dsn}
        elif parts.scheme in ("http", "https", "clickhouse", "clickhouses"):
            secure = parts.scheme in ("https", "clickhouses")
            database = database or unquote(parts.path.strip("/")) or query.get("database") or DEFAULT_DATABASE
            backend = "http"
            kwargs = {"host": parts.hostname or "localhost", "port": parts.port or (8443 if secure else 8123),
                      "username": unquote(parts.username or "default"),
                      "password": unquote(parts.password or ""), "secure": secure, "compress": True,
                      "connect_timeout": connect_timeout, "send_receive_timeout": send_receive_timeout}
        else:
            raise StoreError(f"unsupported store URL {mask_url(url)!r}: use chdb:///path or "
                             "http(s)://user:pass@host:port/db")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", database):
            raise StoreError(f"database name {database!r} is not a plain identifier")
        if backend == "chdb":
            _require_chdb_run()
        try:
            client = clickhouse_connect.get_client(tz_mode="aware", **kwargs)
            client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
            client.database = database
        except OperationalError as exc:
            raise StoreUnavailable(f"cannot reach {mask_url(url)}: {exc}", retry_after=2.0) from exc
        except Exception as exc:
            held = _holder(kwargs["dsn"][len("chdb://"):]) if backend == "chdb" else None
            if held is not None:
                raise StoreError(held) from exc
            raise StoreError(f"cannot open {mask_url(url)}: {exc}") from exc
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
        for statement in _BOOKKEEPING:
            self.command(statement)
        status = {s.version: s for s in self.migration_status()}
        applied = []
        for migration in _migrations():
            known = status[migration.version]
            if known.applied:
                if known.changed:
                    raise MigrationError(f"migration {migration.name} changed after it was applied; "
                                         "add a new migration instead of editing an applied one")
                continue
            for statement in migration.statements():
                try:
                    self.command(statement)
                except StoreUnavailable:
                    raise
                except StoreError as exc:
                    raise MigrationError(f"{migration.name}: {exc}") from exc
            self.client.insert("schema_migrations", [[migration.version, migration.name, migration.checksum]],
                               column_names=["version", "name", "checksum"])
            logger.info("applied migration %s", migration.name)
            applied.append(migration.name)
        if applied:
            self._reapply_retention()
        if retention is not None:
            self.apply_retention(retention)
        return applied

    def _retention_set(self) -> dict[str, int]:
        """The days of every retention setting applied so far, by name."""
        return {name: int(days) for name, days in self.query(
            "SELECT name, argMax(days, applied_at) FROM retention_settings GROUP BY name").rows}

    def _reapply_retention(self) -> None:
        """Give the tables a migration just created the retention already set (their DDL
        has the defaults); every statement of a changed setting is run again (idempotent)."""
        current = self._retention_set()
        changed = {name: days for name, days in current.items() if getattr(Retention(), name) != days}
        if not changed:
            return
        statements = Retention(**changed).statements()
        for name in changed:
            for statement in statements[name]:
                self.command(statement)
            logger.info("retention %s (%d days) applied to the new tables", name, changed[name])

    def migration_status(self) -> list[MigrationStatus]:
        """Every migration file, applied or not (needs ``schema_migrations``)."""
        rows = self.query("SELECT version, argMax(checksum, applied_at), max(applied_at) "
                          "FROM schema_migrations GROUP BY version").rows
        done = {int(v): (checksum, at) for v, checksum, at in rows}
        result = []
        for m in _migrations():
            if m.version in done:
                checksum, at = done[m.version]
                result.append(MigrationStatus(m.version, m.name, True, at, checksum != m.checksum))
            else:
                result.append(MigrationStatus(m.version, m.name, False))
        return result

    def apply_retention(self, retention: Retention) -> list[str]:
        """Set the TTLs to ``retention`` where they differ from the last applied values.

        Returns the names of the settings changed now. Shortening the text retention
        rewrites the text columns of existing parts (ClickHouse materializes the TTL).
        """
        current = self._retention_set()
        defaults = Retention()
        changed = []
        for name, statements in retention.statements().items():
            wanted = getattr(retention, name)
            if current.get(name, getattr(defaults, name)) == wanted:
                continue
            for statement in statements:
                self.command(statement)
            self.client.insert("retention_settings", [[name, wanted]], column_names=["name", "days"])
            logger.info("retention %s set to %d days", name, wanted)
            changed.append(name)
        return changed

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
            raise _translate(exc, "query") from exc
        return QueryRows(tuple(result.column_names), list(result.result_rows))

    def command(self, sql: str, parameters: Mapping[str, Any] | None = None) -> Any:
        """Run a statement that returns no rows (DDL, OPTIMIZE, ...)."""
        try:
            return self.client.command(sql, parameters=dict(parameters) if parameters else None)
        except Exception as exc:
            raise _translate(exc, "command") from exc

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
                raise _translate(exc, "ledger lookup") from exc
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
            raise _translate(exc, f"insert into {table}", insert=True) from exc

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
                raise _translate(exc, f"columns of {table}") from exc
            if not rows:  # an unmigrated store: the insert itself would fail the same way
                raise StoreUnavailable(f"table {self.database}.{table} does not exist "
                                       "(run llmpulse db migrate)", retry_after=2.0)
            types = self._column_types[table] = {str(name): str(kind) for name, kind in rows}
        return types


def _require_chdb_run() -> None:
    """Refuse a clickhouse-connect whose chDB backend lacks the private ``_run`` that
    :meth:`Store._engine_query` calls (first in 1.12, the version this is pinned to)."""
    try:
        from clickhouse_connect.driver._backend.chdb_backend import ChdbBackend
        has_run = callable(getattr(ChdbBackend, "_run", None))
    except ImportError:
        has_run = False
    if not has_run:
        raise StoreError(f"clickhouse-connect {clickhouse_connect.__version__} has no chDB backend "
                         "with _run: the embedded store needs clickhouse-connect>=1.12")


def _holder(path: str) -> str | None:
    """Why a chDB path cannot be opened when another process holds it, or None.

    chDB runs the ClickHouse engine in one process per folder; the engine locks the
    folder's ``status`` file, which names the holder's PID.
    """
    status = Path(path) / "status"
    try:
        text = status.read_text("utf-8", errors="replace")
    except OSError:
        return None
    found = re.search(r"PID:\s*(\d+)", text)
    if found is None:
        return None
    pid = int(found.group(1))
    if pid == os.getpid():
        return None  # ours: the failure is something else
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            "utf-8", "replace").strip()
    except OSError:
        command = ""
    if not command and not _running(pid):
        return None
    what = f" ({command[:200]})" if command else ""
    return (f"the embedded store {path} is open in another process: PID {pid}{what}. chDB lets "
            "one process use a store folder at a time. Stop that process (an `llmpulse sink` "
            "stops on Ctrl-C or SIGTERM) and run this again, or run a ClickHouse server and "
            "point every command at it with --clickhouse http://user:pass@host:8123/llmpulse "
            f"(or ${env.CLICKHOUSE_URL}), which many readers and the sink can share.")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _HexIds:
    """UUIDs as one comma-separated parameter of hex digits, bound as they are.

    ``clickhouse-connect`` escapes a ``str`` parameter character by character; any other
    value is bound as its ``str()``. Hex digits and commas need no escaping."""

    __slots__ = ("ids",)

    def __init__(self, ids: Sequence[uuid.UUID]) -> None:
        self.ids = ids

    def __str__(self) -> str:
        return ",".join([f"{u.int:032x}" for u in self.ids])


def _translate(exc: BaseException, what: str, *, insert: bool = False) -> StoreError:
    """Sort a client error into unavailable (retry later), rejected (bad rows) or other."""
    if isinstance(exc, StoreError):
        return exc
    message = f"{what}: {type(exc).__name__}: {str(exc)[:500]}"
    if isinstance(exc, OperationalError):
        return StoreUnavailable(message, retry_after=1.0)
    if isinstance(exc, DataError | ValueError | TypeError | OverflowError | struct.error | UnicodeError):
        return RowsRejected(message) if insert else StoreError(message)
    if isinstance(exc, DatabaseError):
        code = getattr(exc, "code", None)
        if code in _TRANSIENT_CODES or (code is None and "Connection" in str(exc)):
            return StoreUnavailable(message, retry_after=2.0)
        return RowsRejected(message) if insert else StoreError(message)
    if isinstance(exc, ConnectionError | TimeoutError | OSError):
        return StoreUnavailable(message, retry_after=1.0)
    return StoreError(message)
