"""A bounded spool on disk for records the broker could not take.

Each process writes to its own folder (``<root>/p-<pid>-<id>/``) holding a ``lock`` file
it keeps locked while alive, and segment files of length-prefixed records. A process
that starts finds the folders of processes that died (their lock is free), adopts their
segments and sends them. When the spool is over its size cap, the oldest segments are
deleted and their events counted as dropped (``spool_evicted``).

Record framing (little-endian): ``u32 body_len, u32 events, u16 topic_len, i32 partition,
u16 key_len`` then topic, key and value bytes. A torn record at the end of a segment (a
process killed mid-write) is skipped and counted.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from llmpulse.schemas import uuid7_str

logger = logging.getLogger(__name__)

_HEAD = struct.Struct("<IIHiH")
_SEGMENT_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class SpooledRecord:
    """One Kafka record waiting in the spool."""

    topic: str
    partition: int
    key: bytes
    value: bytes
    events: int


@dataclass
class _Segment:
    path: Path
    bytes: int = 0
    events: int = 0


class Spool:
    """The spool of one process. Thread-safe; never raises out of ``append``."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._segments: list[_Segment] = []  # oldest first; the last one is open for writing
        self._seq = 0
        self._fd: int | None = None
        self.evicted_events = 0
        self.torn_records = 0
        root.mkdir(parents=True, exist_ok=True)
        self.dir = root / f"p-{os.getpid()}-{uuid7_str()[-12:]}"
        self.dir.mkdir()
        self._lock_fd = os.open(self.dir / "lock", os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._adopt_orphans()

    # -- bookkeeping -------------------------------------------------------------------
    @property
    def events(self) -> int:
        with self._lock:
            return sum(s.events for s in self._segments)

    @property
    def size(self) -> int:
        with self._lock:
            return sum(s.bytes for s in self._segments)

    def _next_path(self) -> Path:
        self._seq += 1
        return self.dir / f"seg-{self._seq:012d}.spool"

    def _adopt_orphans(self) -> None:
        """Take over the segments of dead processes (their folder lock is free)."""
        for other in sorted(self.root.glob("p-*")):
            if other == self.dir or not other.is_dir():
                continue
            try:
                fd = os.open(other / "lock", os.O_CREAT | os.O_RDWR, 0o600)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue  # alive: not ours
            try:
                adopted = 0
                for segment in sorted(other.glob("seg-*.spool")):
                    target = self._next_path()
                    os.replace(segment, target)
                    events, size = self._scan(target)
                    self._segments.append(_Segment(target, size, events))
                    adopted += events
                (other / "lock").unlink(missing_ok=True)
                other.rmdir()
                if adopted:
                    logger.info("llmpulse: adopted %d spooled events from %s", adopted, other.name)
            except OSError as exc:
                logger.warning("llmpulse: could not adopt spool folder %s: %s", other, exc)
            finally:
                os.close(fd)

    def _scan(self, path: Path) -> tuple[int, int]:
        events = 0
        for record in self._read(path):
            events += record.events
        return events, path.stat().st_size

    # -- writing -----------------------------------------------------------------------
    def append(self, record: SpooledRecord) -> bool:
        """Write one record; evict the oldest segments past the size cap. False on failure."""
        topic = record.topic.encode()
        body = _HEAD.pack(len(topic) + len(record.key) + len(record.value), record.events,
                          len(topic), record.partition, len(record.key))
        data = body + topic + record.key + record.value
        with self._lock:
            try:
                if self._fd is None or self._segments[-1].bytes >= _SEGMENT_BYTES:
                    self._roll()
                assert self._fd is not None
                os.write(self._fd, data)
            except OSError as exc:
                logger.warning("llmpulse: spool write failed: %s", exc)
                return False
            current = self._segments[-1]
            current.bytes += len(data)
            current.events += record.events
            self._evict()
        return True

    def _roll(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        path = self._next_path()
        self._fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
        self._segments.append(_Segment(path))

    def _evict(self) -> None:
        total = sum(s.bytes for s in self._segments)
        while total > self.max_bytes and len(self._segments) > 1:
            oldest = self._segments.pop(0)
            total -= oldest.bytes
            self.evicted_events += oldest.events
            oldest.path.unlink(missing_ok=True)
            logger.warning("llmpulse: spool over %d bytes, evicted %d oldest events",
                           self.max_bytes, oldest.events)

    # -- reading -----------------------------------------------------------------------
    def take_oldest(self) -> tuple[Path, list[SpooledRecord]] | None:
        """Close the oldest segment for writing and return its records (it stays on disk
        until ``release`` is called, so a crash while resending loses nothing)."""
        with self._lock:
            while self._segments and self._segments[0].events == 0 and len(self._segments) > 1:
                self._segments.pop(0).path.unlink(missing_ok=True)
            if not self._segments or self._segments[0].events == 0:
                return None
            segment = self._segments[0]
            if len(self._segments) == 1 and self._fd is not None:
                os.close(self._fd)  # the open segment: the next append starts a new one
                self._fd = None
        records = list(self._read(segment.path))
        return segment.path, records

    def release(self, path: Path) -> None:
        """Forget a segment whose records were all resent (or spooled again)."""
        with self._lock:
            self._segments = [s for s in self._segments if s.path != path]
            path.unlink(missing_ok=True)

    def _read(self, path: Path) -> Iterator[SpooledRecord]:
        try:
            data = path.read_bytes()
        except OSError:
            return
        offset = 0
        while offset < len(data):
            if offset + _HEAD.size > len(data):
                self.torn_records += 1
                return
            body_len, events, topic_len, partition, key_len = _HEAD.unpack_from(data, offset)
            start = offset + _HEAD.size
            end = start + body_len
            if end > len(data) or topic_len + key_len > body_len:
                self.torn_records += 1
                return
            topic = data[start:start + topic_len].decode()
            key = data[start + topic_len:start + topic_len + key_len]
            value = data[start + topic_len + key_len:end]
            yield SpooledRecord(topic, partition, key, value, events)
            offset = end

    def abandon_after_fork(self) -> None:
        """In a forked child: let go of the parent's files without touching them."""
        for fd in (self._fd, self._lock_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fd = None

    def close(self) -> None:
        """Close files and the folder lock (the folder stays for the next process)."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            if not any(s.events for s in self._segments):
                for s in self._segments:
                    s.path.unlink(missing_ok=True)
                self._segments.clear()
        try:
            if not self._segments:
                (self.dir / "lock").unlink(missing_ok=True)
                self.dir.rmdir()
        except OSError:
            pass
        os.close(self._lock_fd)


def safe_name(app: str) -> str:
    """An app's name as a file and client name: letters, digits, ``-_.``; 64 at most."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in app)[:64] or "app"


def spool_root(spool_dir: Path | str, app: str) -> Path:
    """The folder of an app's spool (one sub-folder per process)."""
    return Path(spool_dir) / safe_name(app)


def has_leftovers(root: Path) -> bool:
    """True when an earlier process left spooled records under ``root`` (a cheap glob)."""
    try:
        return any(True for _ in root.glob("p-*/seg-*.spool"))
    except OSError:
        return False
