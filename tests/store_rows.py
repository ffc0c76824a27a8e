"""Test helper: wait until a count query on the store reaches a number (a condition, not a sleep)."""

from __future__ import annotations

import time
from typing import Any

from llmpulse.sinks.store import Store


def wait_rows(store: Store, sql: str, want: int, timeout_s: float = 90.0,
              params: dict[str, Any] | None = None) -> int:
    """``sql``'s scalar once it is at least ``want``, or its last value after ``timeout_s``.

    Asked again after 0.05 s, then ever less often up to every 0.5 s (a count on the
    store is cheap; most rows arrive within the first second)."""
    deadline = time.monotonic() + timeout_s
    got = 0
    pause = 0.05
    while time.monotonic() < deadline:
        got = int(store.query(sql, params).scalar() if params else store.query(sql).scalar())
        if got >= want:
            return got
        time.sleep(pause)
        pause = min(pause * 1.5, 0.5)
    return got
