"""Compiled Hyperscan gate databases kept on disk, so a process compiles a rule set once.

Compiling the default policy's gates costs Hyperscan some 25 CPU seconds (the injection
rule's many multilingual patterns); every worker, demo and test process used to pay it at
start. A compiled database is serialized (``hyperscan.dumpb``) into the cache folder
under a key made of the patterns, their flags and the Hyperscan version, and the next
process loads it in milliseconds. A file that is missing, truncated, from another
Hyperscan or another platform is compiled again and rewritten: the cache never changes
what the gate finds, only how soon it is ready.

The folder is ``$LLMPULSE_CACHE_DIR/hyperscan``, else ``$XDG_CACHE_HOME/llmpulse/hyperscan``,
else ``~/.cache/llmpulse/hyperscan``; one that cannot be written only costs the compile.
Processes that start together on a cold cache compile once: the others wait on a lock
file and then load what the first one wrote. Entries no process loaded for 30 days are
removed when a new one is stored.

Only files the process's own user wrote are trusted: the folder is made private (0700),
and an entry (or a folder) owned by another user, or writable by group or others, is
ignored and the gate compiled in memory, since a crafted database could un-gate every
rule. The key names the compile recipe too, so a changed recipe never loads old entries.

Example (not a doctest: it needs Hyperscan)::

    db, failed = cached_compile(hyperscan, patterns, compile_database, recipe="gate-1")
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import struct
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmpulse.processors._locks import exclusive
from llmpulse.schemas import environment as env

__all__ = ["cache_folder", "cached_compile"]

logger = logging.getLogger(__name__)

Patterns = tuple[tuple[bytes, int], ...]
Compiled = tuple[Any, frozenset[int]]
_MAGIC = b"LLMPHS1\n"
KEEP_UNUSED_S = 30 * 86400
"""An entry no process has loaded for this long is removed when another one is stored
(rule sets change as a policy is edited; each entry of the default one is up to 7.5 MB)."""
_HEADER = struct.Struct(">I32s")  # JSON length, sha256 of the database bytes


def cache_folder() -> Path:
    """Where compiled gates are kept (see the module's docstring)."""
    given = os.environ.get(env.CACHE_DIR)
    if given:
        return Path(given) / "hyperscan"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "llmpulse" / "hyperscan"


def _key(hs: Any, patterns: Patterns, recipe: str) -> str:
    digest = hashlib.sha256()
    digest.update(f"{getattr(hs, '__version__', '?')}|{platform.machine()}|{recipe}|".encode())
    for expression, flag in patterns:
        digest.update(len(expression).to_bytes(4, "big") + expression + flag.to_bytes(4, "big"))
    return digest.hexdigest()[:40]


def _trusted(path: Path) -> bool:
    """Whether ``path`` is this user's and only this user can write it (no check where the
    platform has no owners)."""
    if not hasattr(os, "geteuid"):  # pragma: no cover - Windows
        return True
    info = path.stat()
    return info.st_uid == os.geteuid() and not info.st_mode & 0o022


def _load(hs: Any, path: Path) -> Compiled | None:
    """The database and failed indexes stored at ``path``, or None when it is absent or
    not usable here (another user's or a writable-by-others file, a damaged file, another
    Hyperscan or platform: said once at INFO, since each costs a compile)."""
    try:
        if not (_trusted(path.parent) and _trusted(path)):
            _refused(path, "not this user's, or writable by others")
            return None
        blob = path.read_bytes()
    except OSError:
        return None
    found = _parse(hs, blob)
    if found is None:
        _refused(path, "damaged, or from another Hyperscan or machine")
    return found


_said: set[Path] = set()


def _refused(path: Path, why: str) -> None:
    if path not in _said:
        _said.add(path)
        logger.info("guardrail gate cache entry %s not used (%s): compiled again", path.name, why)


def _parse(hs: Any, blob: bytes) -> Compiled | None:
    """The entry in ``blob``, or None when it is damaged or cannot run here."""
    start = len(_MAGIC) + _HEADER.size
    if not blob.startswith(_MAGIC) or len(blob) < start:
        return None
    size, checksum = _HEADER.unpack_from(blob, len(_MAGIC))
    meta, database = blob[start:start + size], blob[start + size:]
    if hashlib.sha256(database).digest() != checksum:
        return None
    try:
        failed = frozenset(int(i) for i in json.loads(meta)["failed"])
        db = hs.loadb(database, hs.HS_MODE_BLOCK) if database else None
        if db is not None:
            hs.Scratch(db)  # a database this machine cannot run fails here, not mid-scan
    except (ValueError, KeyError, TypeError, hs.error):
        return None
    return db, failed


def _store(hs: Any, path: Path, compiled: Compiled) -> None:
    db, failed = compiled
    database = hs.dumpb(db) if db is not None else b""
    meta = json.dumps({"failed": sorted(failed)}).encode()
    blob = _MAGIC + _HEADER.pack(len(meta), hashlib.sha256(database).digest()) + meta + database
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(blob)
        os.replace(tmp, path)  # readers see the old file or the whole new one
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _remove_unused(path.parent)


def _remove_unused(folder: Path) -> None:
    """Remove the entries (and their lock files) no process has loaded for
    ``KEEP_UNUSED_S`` (a load touches its entry)."""
    now = time.time()
    for entry in folder.glob("*.hsdb"):
        with contextlib.suppress(OSError):
            if now - entry.stat().st_mtime > KEEP_UNUSED_S:
                entry.unlink()
                entry.with_suffix(".lock").unlink(missing_ok=True)


def cached_compile(hs: Any, patterns: Patterns, compile_database: Callable[[Patterns], Compiled],
                   folder: Path | None = None, *, recipe: str = "") -> Compiled:
    """``compile_database(patterns)``, or what an earlier process stored for the same
    patterns and ``recipe`` (the version of how ``compile_database`` compiles). Any trouble
    with the folder falls back to compiling (logged at DEBUG)."""
    try:
        folder = folder if folder is not None else cache_folder()
    except RuntimeError as exc:  # no home folder (an arbitrary-UID container without HOME)
        logger.debug("guardrail gate cache: no folder (%s): compiled in memory", exc)
        return compile_database(patterns)
    path = folder / f"{_key(hs, patterns, recipe)}.hsdb"
    found = _load(hs, path)
    if found is not None:
        with contextlib.suppress(OSError):
            os.utime(path)  # in use: kept by _remove_unused
        return found
    compiled: Compiled | None = None
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _trusted(folder):
            raise PermissionError(f"{folder} is not this user's, or writable by others")
        with exclusive(path.with_suffix(".lock")):
            found = _load(hs, path)  # another process may have compiled it meanwhile
            if found is not None:
                return found
            compiled = compile_database(patterns)
            _store(hs, path, compiled)
    except OSError as exc:
        logger.debug("guardrail gate cache %s not usable (%s): compiled in memory", folder, exc)
    return compiled if compiled is not None else compile_database(patterns)
