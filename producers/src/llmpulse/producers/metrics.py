"""The SDK's counters as OpenTelemetry metrics, when the app has ``opentelemetry-api``.

``llmpulse.producers.stats()`` always works. An app that already exports OpenTelemetry
metrics calls ``export_metrics()`` once: the same counters become observable instruments
of its meter provider, read at each collection (no work on the app's thread):

- ``llmpulse.sdk.events`` (counter, ``{event}``): by ``state``: captured, sent, failed,
  spooled, resent_from_spool, sampled_out, dropped, sdk_errors;
- ``llmpulse.sdk.dropped`` (counter, ``{event}``): by ``reason``;
- ``llmpulse.sdk.spool.size`` (gauge, ``By``) and ``llmpulse.sdk.queue.depth`` (gauge).

Without ``opentelemetry-api`` it returns False and does nothing: no hard dependency (the
extra ``llmpulse-producers[otel]`` installs it). It never raises into the app.

Example:
    >>> import llmpulse.producers as llmpulse
    >>> llmpulse.export_metrics()        # doctest: +SKIP
    True
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from llmpulse.producers.stats import COUNTERS

__all__ = ["export_metrics"]

logger = logging.getLogger("llmpulse.producers")

_exported: set[int] = set()


def export_metrics(meter_provider: Any = None) -> bool:
    """Register the SDK's counters with ``meter_provider`` (default: the global one).

    Returns:
        True when registered (or already registered with this provider); False when
        ``opentelemetry-api`` is not installed or registering failed.
    """
    try:
        from opentelemetry import metrics
    except ImportError:
        return False
    try:
        provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
        if id(provider) in _exported:
            return True
        meter = provider.get_meter("llmpulse.producers")
        meter.create_observable_counter("llmpulse.sdk.events", callbacks=[_events], unit="{event}",
                                        description="Events the llmpulse SDK handled, by state.")
        meter.create_observable_counter("llmpulse.sdk.dropped", callbacks=[_dropped],
                                        unit="{event}",
                                        description="Events the llmpulse SDK dropped, by reason.")
        meter.create_observable_gauge("llmpulse.sdk.spool.size", callbacks=[_spool], unit="By",
                                      description="Bytes in the SDK's on-disk spool.")
        meter.create_observable_gauge("llmpulse.sdk.queue.depth", callbacks=[_queue],
                                      unit="{event}",
                                      description="Events waiting in the SDK's send queue.")
        _exported.add(id(provider))
        return True
    except Exception:  # the SDK never raises into the app
        logger.warning("llmpulse: could not export the SDK's metrics", exc_info=True)
        return False


def _snapshot() -> dict[str, Any]:
    from llmpulse.producers import stats

    return stats()


def _events(options: Any) -> Iterator[Any]:
    from opentelemetry.metrics import Observation

    snap = _snapshot()
    for state in COUNTERS:
        yield Observation(int(snap.get(state, 0)), {"state": state})


def _dropped(options: Any) -> Iterator[Any]:
    from opentelemetry.metrics import Observation

    for reason, count in _snapshot().get("dropped_by_reason", {}).items():
        yield Observation(int(count), {"reason": reason})


def _spool(options: Any) -> Iterator[Any]:
    from opentelemetry.metrics import Observation

    yield Observation(int(_snapshot().get("spool_bytes", 0)))


def _queue(options: Any) -> Iterator[Any]:
    from opentelemetry.metrics import Observation

    yield Observation(int(_snapshot().get("queue_depth", 0)))
