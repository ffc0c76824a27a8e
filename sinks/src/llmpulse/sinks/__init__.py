"""llmpulse.sinks: the ClickHouse schema, the idempotent writer, the Kafka sink, the store.

Example:
    >>> from llmpulse.sinks import Store, Writer, Sourced
    >>> from llmpulse.sinks.testing import sample_calls
    >>> store = Store.open("chdb:///tmp/llmpulse-doc.chdb")        # doctest: +SKIP
    >>> store.migrate()                                            # doctest: +SKIP
    >>> Writer(store).write([Sourced(c) for c in sample_calls(10)]).written   # doctest: +SKIP
    {'calls': 10, 'guardrail_verdicts': 1}
    >>> store.query("SELECT sum(calls) FROM calls_1m").scalar()    # doctest: +SKIP
    10
"""

from __future__ import annotations

import importlib
from typing import Any

# Names load on first use: `llmpulse --help` (which mounts this room's commands) should
# not pay for importing the ClickHouse and Kafka clients.
_EXPORTS = {
    "errors": ("MigrationError", "RowsRejected", "SinkError", "StoreError", "StoreUnavailable"),
    "queries": ("DASHBOARD_QUERIES", "run_dashboard_queries"),
    "sink": ("Sink", "SinkConfig", "SinkStats"),
    "store": ("MigrationStatus", "QueryRows", "Retention", "Store", "default_url"),
    "writer": ("Rejected", "Sourced", "WriteResult", "Writer"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'llmpulse.sinks' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"llmpulse.sinks.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "DASHBOARD_QUERIES",
    "MigrationError",
    "MigrationStatus",
    "QueryRows",
    "Rejected",
    "Retention",
    "RowsRejected",
    "Sink",
    "SinkConfig",
    "SinkError",
    "SinkStats",
    "Sourced",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "WriteResult",
    "Writer",
    "default_url",
    "run_dashboard_queries",
]
