"""What the client needs from a transport, and the fork hook both transports use.

The client holds one ``Delivery``: the Kafka transport (``_transport.Transport``, which
imports confluent-kafka and is made on the first send) or the embedded one
(``_local.LocalTransport``, ``init(deliver_to=fn)``). Nothing here imports Kafka, so
``import llmpulse.producers`` stays cheap (cold starts in serverless apps).

Example:
    >>> from llmpulse.producers._delivery import Delivery
    >>> from llmpulse.producers._local import LocalTransport
    >>> from llmpulse.producers.stats import SdkStats
    >>> sent = []
    >>> local = LocalTransport(lambda t, k, v: sent.append(t), SdkStats(), lambda c: ("", []))
    >>> isinstance(local, Delivery), local.enqueue("llm.feedback", "c1", b"{}"), sent
    (True, True, ['llm.feedback'])
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

__all__ = ["Delivery", "EncodeCall", "on_fork"]

EncodeCall = Callable[[Any], tuple[str, list[tuple[str, bytes]]]]
"""Builds a finished call's events: ``(key, [(topic, encoded value), ...])``."""


@runtime_checkable
class Delivery(Protocol):
    """Takes encoded events from the client and delivers them; never raises into the app."""

    def enqueue_call(self, call: Any) -> bool:
        """Queue a finished call (its events are built by ``EncodeCall``); False when dropped."""
        ...

    def enqueue(self, topic: str, key: str, data: bytes) -> bool:
        """Queue one encoded event; False when dropped."""
        ...

    def flush(self, timeout_s: float) -> int:
        """Deliver what is queued within the deadline; the records still in flight."""
        ...

    def close(self, timeout_s: float) -> None:
        """Deliver within the deadline and stop."""
        ...

    def abandon_after_fork(self) -> None:
        """In a forked child: drop what belongs to the parent process."""
        ...

    def status(self) -> dict[str, Any]:
        """``queue_depth``, ``connected`` and, for Kafka, the spool's figures (for ``stats()``)."""
        ...


def on_fork(callback: Callable[[], None]) -> None:
    """Run ``callback`` in every forked child (gunicorn, uvicorn workers, multiprocessing)."""
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=callback)
