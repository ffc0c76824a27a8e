"""Joining a call's prompt and response by ``call_id``, with expiry of lonely halves.

Plain Python over a store of ``call_id -> bytes``: a Faust table (backed by a changelog
topic) in the worker, a dict in replay and the demo. A batch is joined in memory first,
so halves that arrive together (the SDK sends both at the end of a call) never touch the
store; only a half that has to wait is written (and its changelog record sent). A response may arrive
before its prompt; a half whose partner does not come within the timeout is emitted
as an incomplete call, never lost.

Example:
    >>> from llmpulse.processors.join import CallJoiner
    >>> from llmpulse.schemas import PromptEvent, ResponseEvent
    >>> joiner = CallJoiner()
    >>> joiner.add(ResponseEvent(call_id="c1", app="a", text="hi", latency_ms=5.0), now=100.0)
    >>> pair = joiner.add(PromptEvent(call_id="c1", app="a"), now=101.0)
    >>> pair.prompt.call_id, pair.response.text, len(joiner)
    ('c1', 'hi', 0)
    >>> joiner.add(PromptEvent(call_id="c2", app="a"), now=102.0)
    >>> [(p.prompt.call_id, p.incomplete_reason) for p in joiner.expire(now=200.0, timeout_s=60)]
    [('c2', 'response_timeout')]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

import msgspec
from msgspec import Struct

from llmpulse.processors.pipeline import CallPair
from llmpulse.schemas import PromptEvent, ResponseEvent, decode_event, encode_event

__all__ = ["CallJoiner", "DictJoinStore", "JoinStore", "StoredHalf"]


class StoredHalf(Struct, array_like=True, frozen=True):
    """What waits in the join table for its partner."""

    kind: str
    """``prompt`` or ``response``."""
    arrived: float
    """Wall time (seconds) it arrived, for expiry."""
    partition: int
    """The source partition (the table's changelog partition for this key)."""
    event: bytes


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(StoredHalf).decode


class JoinStore(Protocol):
    """Where lonely halves wait: a dict, or the worker's Faust table (with a changelog)."""

    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, value: bytes, partition: int) -> None: ...

    def remove(self, key: str, partition: int) -> None: ...

    def items(self) -> Iterable[tuple[str, bytes]]: ...

    def __len__(self) -> int: ...


class DictJoinStore(dict[str, bytes]):
    """A plain dict as the join store (replay, the demo, tests)."""

    def put(self, key: str, value: bytes, partition: int) -> None:
        self[key] = value

    def remove(self, key: str, partition: int) -> None:
        self.pop(key, None)


def _pair(kind: str, event: PromptEvent | ResponseEvent, other: Any) -> CallPair:
    if kind == "prompt":
        return CallPair(prompt=event, response=other)  # type: ignore[arg-type]
    return CallPair(prompt=other, response=event)  # type: ignore[arg-type]


class _Lingering(Struct):
    kind: str
    event: PromptEvent | ResponseEvent
    partition: int
    arrived: float
    source: Any


class CallJoiner:
    """Matches prompts and responses; lonely halves wait in ``store`` (call_id -> bytes).

    With ``linger_s`` > 0 a lonely half first waits that long in memory: its partner
    usually arrives within a few records (the SDK sends both halves together, but a
    consumer fetches the prompts and responses topics separately), and a half that meets
    it there never costs a table write and its changelog record. The half's ``source``
    (the worker's Kafka message) stays unacknowledged while it lingers, so a crash
    loses nothing: the record is read again. ``settle`` moves halves that waited long
    enough into the store and says which sources are free.
    """

    def __init__(self, store: JoinStore | None = None, *, linger_s: float = 0.0,
                 max_lingering: int = 50_000) -> None:
        self.store: JoinStore = store if store is not None else DictJoinStore()
        self.linger_s = linger_s
        self.max_lingering = max_lingering
        self._lingering: dict[str, _Lingering] = {}  # in arrival order
        self._holding: dict[int, list[Any]] = {}  # id(source) -> [source, halves, pinned]
        self._released: list[Any] = []  # pinned sources that hold nothing any more
        self.duplicates = 0
        """A second prompt (or response) for a call whose half is waiting: the newer wins."""
        self.stored = 0
        """Halves that had to wait in the store (the rest met their partner in memory)."""

    def __len__(self) -> int:
        return len(self.store) + len(self._lingering)

    def add(self, event: PromptEvent | ResponseEvent, *, now: float,
            partition: int = -1) -> CallPair | None:
        """Store a half, or return the pair it completes (and forget the stored half)."""
        pairs = self.add_many([(event, partition)], now=now)
        return pairs[0] if pairs else None

    def add_many(self, events: Iterable[tuple[PromptEvent | ResponseEvent, int]], *,
                 now: float, source: Any = None) -> list[CallPair]:
        """Join a batch: halves that meet inside it (or lingering) never touch the store."""
        pairs: list[CallPair] = []
        local: dict[str, tuple[str, PromptEvent | ResponseEvent, int]] = {}
        lingering = self._lingering
        for event, partition in events:
            kind = "prompt" if isinstance(event, PromptEvent) else "response"
            key = event.call_id
            mate = local.get(key)
            if mate is not None:
                if mate[0] != kind:
                    del local[key]
                    pairs.append(_pair(kind, event, mate[1]))
                    continue
                self.duplicates += 1
            local[key] = (kind, event, partition)
        linger = self.linger_s > 0 and source is not None
        for key, (kind, event, partition) in local.items():
            waiting = lingering.get(key)
            if waiting is not None:
                self._unlinger(key, waiting)
                if waiting.kind != kind:
                    pairs.append(_pair(kind, event, waiting.event))
                    continue
                self.duplicates += 1
            stored = self.store.get(key)
            if stored is not None:
                half = _decode(stored)
                if half.kind != kind:
                    self.store.remove(key, half.partition)
                    pairs.append(_pair(kind, event, decode_event(half.event)))
                    continue
                self.duplicates += 1
            if linger and len(lingering) < self.max_lingering:
                lingering[key] = _Lingering(kind, event, partition, now, source)
                held = self._holding.get(id(source))
                if held is None:
                    self._holding[id(source)] = [source, 1, False]
                else:
                    held[1] += 1
                continue
            self._store(key, kind, event, partition, now)
        return pairs

    def _store(self, key: str, kind: str, event: PromptEvent | ResponseEvent, partition: int,
               arrived: float) -> None:
        self.store.put(key, _encode(StoredHalf(kind, arrived, partition, encode_event(event))),
                       partition)
        self.stored += 1

    def _unlinger(self, key: str, waiting: _Lingering) -> None:
        del self._lingering[key]
        ident = id(waiting.source)
        held = self._holding[ident]
        held[1] -= 1
        if held[1] <= 0:
            del self._holding[ident]
            if held[2]:
                self._released.append(held[0])

    def settle(self, *, now: float, owned: Callable[[int], bool] | None = None) -> list[Any]:
        """Store the halves that lingered ``linger_s`` (``now=math.inf``: all of them), and
        drop, unstored and never released, those of partitions ``owned`` says this worker
        lost (their records are read again by the new owner). Returns the pinned sources
        that hold nothing any more: the caller acknowledges them."""
        lingering = self._lingering
        while lingering:
            key, waiting = next(iter(lingering.items()))
            if now - waiting.arrived < self.linger_s:
                break  # arrival order: the rest are younger
            if owned is not None and not owned(waiting.partition):
                self._holding[id(waiting.source)][2] = False  # never acknowledge it
                self._unlinger(key, waiting)
                continue
            self._unlinger(key, waiting)
            self._store(key, waiting.kind, waiting.event, waiting.partition, waiting.arrived)
        released, self._released = self._released, []
        return released

    def pin_holding(self, sources: Iterable[Any]) -> list[Any]:
        """Of ``sources``, those that still hold lingering halves and were not pinned yet:
        the caller keeps them unacknowledged (and gets them back from ``settle``)."""
        out = []
        for source in sources:
            held = self._holding.get(id(source))
            if held is not None and not held[2]:
                held[2] = True
                out.append(source)
        return out

    @property
    def lingering(self) -> int:
        """Halves waiting in memory for their partner."""
        return len(self._lingering)

    def waiting(self) -> Iterator[tuple[str, StoredHalf]]:
        """Every stored half, decoded."""
        for key, value in list(self.store.items()):
            yield key, _decode(value)

    def expire(self, *, now: float, timeout_s: float,
               accept: Callable[[StoredHalf], bool] | None = None) -> list[CallPair]:
        """Remove halves older than the timeout and return them as incomplete pairs."""
        out = []
        for key, half in self.waiting():
            if now - half.arrived < timeout_s or (accept is not None and not accept(half)):
                continue
            event = decode_event(half.event)
            if half.kind == "prompt":
                pair = CallPair(prompt=event, response=None,  # type: ignore[arg-type]
                                incomplete_reason="response_timeout")
            else:
                pair = CallPair(prompt=None, response=event,  # type: ignore[arg-type]
                                incomplete_reason="prompt_timeout")
            self.store.remove(key, half.partition)
            out.append(pair)
        return out
