"""One drift test's result (``stats.TestOutcome``, shared by ``stats``, ``categorical`` and
``cusum``).

Example:
    >>> from llmpulse.processors.drift.outcome import TestOutcome
    >>> TestOutcome("ks", 0.4, 1e-6).p_value
    1e-06
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["TestOutcome"]


class TestOutcome(NamedTuple):
    """One test's result: its name, statistic and p-value."""

    test: str
    statistic: float
    p_value: float
