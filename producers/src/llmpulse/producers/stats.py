"""What the SDK did: counters an app can read with ``llmpulse.producers.stats()``.

Example:
    >>> from llmpulse.producers.stats import SdkStats
    >>> s = SdkStats(warn_on_drop=False)
    >>> s.add("sent", 3); s.drop("buffer_full")
    >>> snap = s.snapshot()
    >>> snap["sent"], snap["dropped"], snap["dropped_by_reason"]
    (3, 1, {'buffer_full': 1})
"""

from __future__ import annotations

import logging
import threading
from typing import Any

__all__ = ["COUNTERS", "SdkStats"]

logger = logging.getLogger("llmpulse.producers")

COUNTERS = {
    "captured": "events the app produced and the SDK took from its buffers",
    "sent": "events acknowledged by Kafka",
    "failed": "events whose delivery attempt failed (they went to the spool or were dropped)",
    "spooled": "events written to the on-disk spool",
    "resent_from_spool": "events delivered from the spool after an outage or a restart",
    "sampled_out": "calls not sent because of sampling",
    "dropped": "events lost, with the reason in dropped_by_reason",
    "sdk_errors": "exceptions caught inside the SDK (never raised into the app)",
}
"""Every counter in ``stats()`` and its meaning."""


class SdkStats:
    """Thread-safe counters; the first drop of each reason is logged once as a warning."""

    def __init__(self, *, warn_on_drop: bool = True) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self._dropped: dict[str, int] = {}
        self._errors: dict[str, int] = {}
        self._warn = warn_on_drop

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] = self._counts.get(name, 0) + n

    def drop(self, reason: str, n: int = 1) -> None:
        with self._lock:
            first = reason not in self._dropped
            self._dropped[reason] = self._dropped.get(reason, 0) + n
            self._counts["dropped"] += n
        if first and self._warn:
            logger.warning("llmpulse: dropping events (%s); stats() counts every drop", reason)

    def error(self, where: str, n: int = 1) -> None:
        with self._lock:
            self._errors[where] = self._errors.get(where, 0) + n
            self._counts["sdk_errors"] += n

    def snapshot(self, **extra: Any) -> dict[str, Any]:
        with self._lock:
            out: dict[str, Any] = dict(self._counts)
            out["dropped_by_reason"] = dict(self._dropped)
            out["errors_by_place"] = dict(self._errors)
        out.update(extra)
        return out
