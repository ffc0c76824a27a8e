"""Every environment variable llmpulse reads, in one place.

Services read ``LLMPULSE_*`` variables; the SDK takes keyword arguments first, then
these variables, then defaults.

Example:
    >>> from llmpulse.schemas import environment as env
    >>> env.BOOTSTRAP_SERVERS
    'LLMPULSE_BOOTSTRAP_SERVERS'
"""

from __future__ import annotations

__all__ = [
    "APP",
    "BOOTSTRAP_SERVERS",
    "CLICKHOUSE_URL",
    "CONFIG",
    "ENVIRONMENT",
    "KAFKA_PREFIX",
    "LIMIT_PREFIX",
    "TOPIC_PARTITIONS",
    "TOPIC_PREFIX",
    "TOPIC_REPLICATION_FACTOR",
]

BOOTSTRAP_SERVERS = "LLMPULSE_BOOTSTRAP_SERVERS"
"""Kafka bootstrap servers, ``host:port[,host:port]``."""

KAFKA_PREFIX = "LLMPULSE_KAFKA_"
"""Any librdkafka setting, passed through: ``LLMPULSE_KAFKA_SECURITY_PROTOCOL=SASL_SSL``
becomes ``security.protocol``; ``LLMPULSE_KAFKA_SASL_MECHANISM``, ``..._SASL_USERNAME``,
``..._SASL_PASSWORD``, ``..._SSL_CA_LOCATION`` likewise."""

APP = "LLMPULSE_APP"
"""The application's name, on every event."""

ENVIRONMENT = "LLMPULSE_ENVIRONMENT"
"""production, staging, dev ... (default ``production``)."""

TOPIC_PREFIX = "LLMPULSE_TOPIC_PREFIX"
"""Prepended to every topic name (``acme.`` gives ``acme.llm.prompts``); empty by default."""

TOPIC_PARTITIONS = "LLMPULSE_TOPIC_PARTITIONS"
"""Partitions of the call topics when ``llmpulse topics create`` makes them (default 6)."""

TOPIC_REPLICATION_FACTOR = "LLMPULSE_TOPIC_REPLICATION_FACTOR"
"""Replication factor for the topics it makes (default 1: a single-node broker)."""

LIMIT_PREFIX = "LLMPULSE_LIMIT_"
"""Size caps on events: ``LLMPULSE_LIMIT_MAX_TEXT_CHARS`` and the other fields of
``llmpulse.schemas.Limits``."""

CLICKHOUSE_URL = "LLMPULSE_CLICKHOUSE_URL"
"""A ClickHouse server (``http(s)://user:pass@host:8123/db``), or ``chdb:///path`` for the
embedded store."""

CONFIG = "LLMPULSE_CONFIG"
"""Path of the YAML configuration file of the workers."""
