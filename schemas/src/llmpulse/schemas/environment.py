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
    "ALERT_PREFIX",
    "APP",
    "BOOTSTRAP_SERVERS",
    "BROKER_CHECK_SECONDS",
    "CACHE_DIR",
    "CLICKHOUSE_URL",
    "CONFIG",
    "DATA_DIR",
    "DRIFT_PREFIX",
    "ENVIRONMENT",
    "GRAFANA_TOKEN",
    "GRAFANA_URL",
    "GUARDRAILS_PREFIX",
    "HEALTH_ADDRESS",
    "HEALTH_TOKEN",
    "KAFKA_PREFIX",
    "LIMIT_PREFIX",
    "MODELS_DIR",
    "OTEL_GRPC_ENDPOINT",
    "OTEL_HTTP_ENDPOINT",
    "OTEL_METRICS_PORT",
    "OTEL_QUEUE_DIR",
    "OTEL_TOKENS_FILE",
    "POLICY",
    "PROMPTS_DIR",
    "RETENTION_DEDUP_DAYS",
    "RETENTION_RAW_DAYS",
    "RETENTION_ROLLUP_DAYS",
    "RETENTION_TEXT_DAYS",
    "SCORING_PREFIX",
    "SDK_CAPTURE_CONTENT",
    "SDK_DELIVERY_TIMEOUT_MS",
    "SDK_ENABLED",
    "SDK_FLUSH_INTERVAL_MS",
    "SDK_MAX_BATCH_EVENTS",
    "SDK_MAX_BUFFERED_EVENTS",
    "SDK_REDACT",
    "SDK_SAMPLE_RATE",
    "SDK_SHUTDOWN_TIMEOUT_MS",
    "SDK_SPOOL_DIR",
    "SDK_SPOOL_MAX_BYTES",
    "SINK_BATCH_ROWS",
    "SINK_BATCH_SECONDS",
    "SINK_GROUP_ID",
    "TOPIC_PARTITIONS",
    "TOPIC_PREFIX",
    "TOPIC_REPLICATION_FACTOR",
]

BOOTSTRAP_SERVERS = "LLMPULSE_BOOTSTRAP_SERVERS"
"""Kafka bootstrap servers, ``host:port[,host:port]``."""

BROKER_CHECK_SECONDS = "LLMPULSE_BROKER_CHECK_SECONDS"
"""How long ``llmpulse worker`` and ``llmpulse sink`` wait, at start, for a bootstrap server
to accept a connection and answer as Kafka before they stop with one line (default 5)."""

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

PROMPTS_DIR = "LLMPULSE_PROMPTS_DIR"
"""The folder of prompt files the SDK's registry reads (default ``./prompts``)."""

SDK_ENABLED = "LLMPULSE_SDK_ENABLED"
"""``false`` turns the producer SDK into a no-op (default ``true``)."""

SDK_SAMPLE_RATE = "LLMPULSE_SDK_SAMPLE_RATE"
"""Share of calls the SDK keeps, 0-1 (default 1). Errors and feedback are always kept."""

SDK_REDACT = "LLMPULSE_SDK_REDACT"
"""``all``, ``none``, or a comma list of maskers (email,phone,card,secret,ip)."""

SDK_CAPTURE_CONTENT = "LLMPULSE_SDK_CAPTURE_CONTENT"
"""``false`` sends metadata only, no prompt, response or document text (default ``true``)."""

SDK_FLUSH_INTERVAL_MS = "LLMPULSE_SDK_FLUSH_INTERVAL_MS"
"""Longest wait in memory before events go to Kafka (default 100)."""

SDK_MAX_BATCH_EVENTS = "LLMPULSE_SDK_MAX_BATCH_EVENTS"
"""Events per batch record (default 500)."""

SDK_MAX_BUFFERED_EVENTS = "LLMPULSE_SDK_MAX_BUFFERED_EVENTS"
"""Events held in memory before new ones are dropped (default 100000)."""

SDK_SPOOL_DIR = "LLMPULSE_SDK_SPOOL_DIR"
"""Where undeliverable records wait on disk (default ``~/.cache/llmpulse/spool``)."""

SDK_SPOOL_MAX_BYTES = "LLMPULSE_SDK_SPOOL_MAX_BYTES"
"""Size cap of the spool; the oldest records are evicted, counted (default 256 MiB)."""

SDK_DELIVERY_TIMEOUT_MS = "LLMPULSE_SDK_DELIVERY_TIMEOUT_MS"
"""After this, an unacknowledged record goes to the spool (default 10000)."""

SDK_SHUTDOWN_TIMEOUT_MS = "LLMPULSE_SDK_SHUTDOWN_TIMEOUT_MS"
"""How long a clean exit waits for delivery before spooling the rest (default 5000)."""

LIMIT_PREFIX = "LLMPULSE_LIMIT_"
"""Size caps on events: ``LLMPULSE_LIMIT_MAX_TEXT_CHARS`` and the other fields of
``llmpulse.schemas.Limits``."""

CLICKHOUSE_URL = "LLMPULSE_CLICKHOUSE_URL"
"""A ClickHouse server (``http(s)://user:pass@host:8123/db``), or ``chdb:///path`` for the
embedded store."""

CONFIG = "LLMPULSE_CONFIG"
"""Path of the YAML configuration file of the workers."""

SCORING_PREFIX = "LLMPULSE_SCORING__"
"""Overrides of the workers' ``scoring`` settings, ``__`` between levels:
``LLMPULSE_SCORING__TOXICITY__BATCH_SIZE=64``, ``LLMPULSE_SCORING__TOXICITY__CHECKPOINT``."""

GUARDRAILS_PREFIX = "LLMPULSE_GUARDRAILS__"
"""Overrides of the workers' ``guardrails`` settings: ``LLMPULSE_GUARDRAILS__RELOAD_INTERVAL_S=5``."""

POLICY = "LLMPULSE_POLICY"
"""Path of the guardrail policy file (YAML); reloaded when it changes."""

MODELS_DIR = "LLMPULSE_MODELS_DIR"
"""The models folder written by ``llmpulse models fetch`` and read by the model scorers
(default for ``scoring.toxicity.models_dir`` and ``scoring.embeddings.models_dir``)."""

CACHE_DIR = "LLMPULSE_CACHE_DIR"
"""Folder of what a process rebuilds when it is missing (compiled guardrail gates), kept so
the next start is quick; default ``$XDG_CACHE_HOME/llmpulse``, else ``~/.cache/llmpulse``.
Safe to delete at any time."""

DATA_DIR = "LLMPULSE_DATA_DIR"
"""Folder of the embedded store (``llmpulse.chdb`` in it) when ``LLMPULSE_CLICKHOUSE_URL`` is
unset; default ``$XDG_DATA_HOME/llmpulse``, else ``~/.local/share/llmpulse``."""

RETENTION_TEXT_DAYS = "LLMPULSE_RETENTION_TEXT_DAYS"
"""Days the prompt, response, error and feedback text is kept (column TTL; default 30)."""

RETENTION_RAW_DAYS = "LLMPULSE_RETENTION_RAW_DAYS"
"""Days raw rows of calls, feedback and guardrail verdicts are kept (default 90)."""

RETENTION_ROLLUP_DAYS = "LLMPULSE_RETENTION_ROLLUP_DAYS"
"""Days the per-minute rollups, alerts and drift results are kept (default 400)."""

RETENTION_DEDUP_DAYS = "LLMPULSE_RETENTION_DEDUP_DAYS"
"""Days the sink remembers stored event ids to drop redeliveries (default 35; keep it longer
than the longest topic retention)."""

SINK_BATCH_ROWS = "LLMPULSE_SINK_BATCH_ROWS"
"""Events the sink buffers before it writes a batch (default 10000)."""

SINK_BATCH_SECONDS = "LLMPULSE_SINK_BATCH_SECONDS"
"""Longest time an event waits in the sink's buffer before its batch is written (default 1.0)."""

SINK_GROUP_ID = "LLMPULSE_SINK_GROUP_ID"
"""Kafka consumer group of the sink (default ``llmpulse-sink``)."""

ALERT_PREFIX = "LLMPULSE_ALERT_"
"""Alert thresholds, for the workers' alert engine and the Grafana rules alike:
``LLMPULSE_ALERT_ERROR_RATE=0.1`` and the other fields of
``llmpulse.schemas.thresholds.AlertThresholds``."""

GRAFANA_URL = "LLMPULSE_GRAFANA_URL"
"""Grafana's URL for ``llmpulse dashboards push`` (``http://localhost:3000``)."""

GRAFANA_TOKEN = "LLMPULSE_GRAFANA_TOKEN"  # noqa: S105 - a variable name, not a secret
"""A Grafana service-account token for ``llmpulse dashboards push``."""

DRIFT_PREFIX = "LLMPULSE_DRIFT__"
"""Overrides of the workers' ``drift`` settings, ``__`` between levels:
``LLMPULSE_DRIFT__WINDOW_CALLS=500``, ``LLMPULSE_DRIFT__REFERENCE=trailing``,
``LLMPULSE_DRIFT__REPORTS_DIR=/var/lib/llmpulse/drift-reports``."""

ALERTING_PREFIX = "LLMPULSE_ALERTING__"
"""Overrides of the workers' ``alerting`` settings other than thresholds:
``LLMPULSE_ALERTING__COOLDOWN_SECONDS=600``, ``LLMPULSE_ALERTING__GUARDRAIL__MIN_SEVERITY=medium``
(``LLMPULSE_ALERTING__TOXICITY__THRESHOLD`` and the like are deprecated: ``ALERT_PREFIX``)."""

OTEL_TOKENS_FILE = "LLMPULSE_OTEL_TOKENS_FILE"
"""The Collector's tokens file, one ``<token> <app>[,<app>...]`` per line: the Collector's
``bearertokenauth`` reads the tokens, the OTLP stage (``llmpulse otlp run``) the bindings."""

OTEL_HTTP_ENDPOINT = "LLMPULSE_OTEL_HTTP_ENDPOINT"
"""Where the Collector listens for OTLP/HTTP (``127.0.0.1:4318``)."""

OTEL_GRPC_ENDPOINT = "LLMPULSE_OTEL_GRPC_ENDPOINT"
"""Where the Collector listens for OTLP/gRPC (``127.0.0.1:4317``)."""

OTEL_QUEUE_DIR = "LLMPULSE_OTEL_QUEUE_DIR"
"""The Collector's persistent sending queue (``file_storage``) folder."""

OTEL_METRICS_PORT = "LLMPULSE_OTEL_METRICS_PORT"
"""Port of the Collector's own Prometheus metrics on 127.0.0.1 (``8888``)."""

HEALTH_ADDRESS = "LLMPULSE_HEALTH_ADDRESS"
"""``host:port`` where a worker or the sink serves ``/healthz``, ``/readyz`` and ``/metrics``
(default loopback: ``127.0.0.1:9464`` for the sink, ``127.0.0.1:9465`` for a worker;
``off`` serves nothing; port 0 picks a free one)."""

HEALTH_TOKEN = "LLMPULSE_HEALTH_TOKEN"  # noqa: S105 - a variable name, not a secret
"""The bearer token the health endpoints require from any peer but loopback; needed
when ``LLMPULSE_HEALTH_ADDRESS`` is not a loopback address."""
