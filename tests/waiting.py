"""Test helper: wait on a condition (never a fixed sleep), failing with what was awaited.

Usage (``tests/`` is on ``sys.path`` through the root ``conftest.py``)::

    from waiting import wait_until

    wait_until(lambda: sink.stats.events == 500, what="every event consumed")
"""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(predicate: Callable[[], bool], timeout: float = 60.0, what: str = "",
               every: float = 0.1) -> None:
    """Return once ``predicate()`` is true; raise ``AssertionError`` naming ``what`` after
    ``timeout`` seconds (a bound on the wait, not a timing claim)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(every)
