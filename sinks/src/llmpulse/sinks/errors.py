"""Errors of the sink and the store; every one derives from ``LlmpulseError``.

Example:
    >>> from llmpulse.sinks.errors import StoreUnavailable
    >>> try:
    ...     raise StoreUnavailable("connection refused", retry_after=2.0)
    ... except StoreUnavailable as err:
    ...     print(err.retry_after)
    2.0
"""

from __future__ import annotations

from llmpulse.schemas.errors import LlmpulseError

__all__ = ["MigrationError", "RowsRejected", "SinkError", "StoreError", "StoreUnavailable"]


class SinkError(LlmpulseError):
    """The root of the sink's errors."""


class StoreError(SinkError):
    """The store could not be opened, configured or queried."""


class MigrationError(StoreError):
    """A migration failed, or an applied migration's file has changed since."""


class StoreUnavailable(StoreError):
    """The store cannot take writes now: back off, keep the batch, try again.

    This is the sink's backpressure signal: the caller pauses its Kafka partitions
    and retries after ``retry_after`` seconds. Nothing is dropped.

    Attributes:
        retry_after: seconds to wait before the next attempt (a hint; the caller's
            backoff may wait longer).
    """

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RowsRejected(StoreError):
    """The store refused the rows themselves (a value that does not fit its column).

    Retrying the same rows would fail again; the writer bisects the batch to find the
    culprit and sends it to the dead-letter topic.
    """
