"""Reaching the store: the URL, the clickhouse-connect client, and its errors sorted.

A store URL is ``http(s)://user:pass@host:port/db`` (a ClickHouse server, compression on)
or ``chdb:///path[?database=name]`` (the ClickHouse engine in this process, through
clickhouse-connect's chDB backend). :func:`connect` opens either; :func:`translate` sorts
what the client raises into the store's errors: unavailable (retry later), rejected (the
rows' fault) or other. :class:`llmpulse.sinks.store.Store` is built on both.

Example:
    >>> from llmpulse.sinks.connection import mask_url
    >>> mask_url("http://llmpulse:secret@clickhouse:8123/llmpulse")
    'http://llmpulse:***@clickhouse:8123/llmpulse'
"""

from __future__ import annotations

import logging
import os
import re
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

import clickhouse_connect
from clickhouse_connect.driver.exceptions import DatabaseError, DataError, OperationalError

from llmpulse.schemas import environment as env
from llmpulse.sinks.errors import RowsRejected, StoreError, StoreUnavailable

__all__ = ["DEFAULT_DATABASE", "connect", "default_url", "mask_url", "translate"]

logger = logging.getLogger(__name__)

DEFAULT_DATABASE = "llmpulse"

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


def connect(url: str, *, database: str | None, connect_timeout: float,
            send_receive_timeout: float) -> tuple[Any, str, str]:
    """Open a clickhouse-connect client on ``url``, creating the database if it is missing.

    Returns ``(client, backend, database)``: the client (its database set, datetimes
    UTC-aware on both engines), ``chdb`` or ``http``, and the database name.

    Raises:
        StoreError: the URL is not understood, or chDB is already open on another path
            (in this process, or another process holds the folder: named in the message).
        StoreUnavailable: the server cannot be reached.
    """
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
    return client, backend, database


def _require_chdb_run() -> None:
    """Refuse a clickhouse-connect whose chDB backend lacks the private ``_run`` that
    :meth:`llmpulse.sinks.store.Store._engine_query` calls (first in 1.12, the version
    this is pinned to)."""
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


def translate(exc: BaseException, what: str, *, insert: bool = False) -> StoreError:
    """Sort a client error into unavailable (retry later), rejected (bad rows) or other.

    Args:
        exc: what the client (or the Arrow conversion before an insert) raised.
        what: the operation, for the message (``insert into calls``).
        insert: the error came from an insert, so a refused value is ``RowsRejected``.
    """
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
