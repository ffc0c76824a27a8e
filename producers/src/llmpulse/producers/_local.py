"""The embedded transport: events go to a function in this process instead of Kafka.

``init(deliver_to=fn)`` selects it (the embedded demo and tests): each finished call's
events are built, redacted and encoded on the caller's thread and handed to
``fn(topic, key, value)`` at once, in order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llmpulse.producers._delivery import EncodeCall
from llmpulse.producers.stats import SdkStats


class LocalTransport:
    """Hands each encoded event to a function in this process (no Kafka): the embedded mode."""

    def __init__(self, deliver: Callable[[str, bytes, bytes], None], stats: SdkStats,
                 encode_call: EncodeCall) -> None:
        self.deliver = deliver
        self._stats = stats
        self._encode_call = encode_call
        self.buffered = 0
        self.down = False

    def enqueue_call(self, call: Any) -> bool:
        """Build the call's events now and deliver them (in order, on the caller's thread)."""
        try:
            key, events = self._encode_call(call)
        except Exception:
            self._stats.error("build")
            self._stats.drop("encode_error", call.event_count)
            return False
        return all([self.enqueue(topic, key, data) for topic, data in events])

    def enqueue(self, topic: str, key: str, data: bytes) -> bool:
        try:
            self.deliver(topic, key.encode(), data)
        except Exception:
            self._stats.drop("deliver_to_failed")
            return False
        self._stats.add("captured")
        self._stats.add("sent")
        return True

    def in_flight(self) -> int:
        return 0

    def status(self) -> dict[str, Any]:
        """Nothing waits: every event was handed over on the caller's thread."""
        return {"queue_depth": 0, "connected": True}

    def flush(self, timeout_s: float) -> int:
        return 0

    def close(self, timeout_s: float) -> None:
        pass

    def abandon_after_fork(self) -> None:
        pass
