"""Health and metrics of a long-running llmpulse process: ``/healthz``, ``/readyz``, ``/metrics``.

One implementation for every service (``llmpulse worker``, ``llmpulse sink``): a small HTTP
server on a background thread. ``/healthz`` says the process is alive; ``/readyz`` asks
the service's ``ready()`` (consuming, store reachable ...) and answers 200 or 503 with the
reason; ``/metrics`` is the service's Prometheus registry (``prometheus-client``).

It binds to loopback by default. On any other address it needs a bearer token
(``LLMPULSE_HEALTH_TOKEN``) from every peer but loopback, so a container's own
healthcheck works without one and Prometheus sends it (``authorization`` in its scrape
config). Installed with ``llmpulse-schemas[health]``; the SDK does not import it.

Example:
    >>> import urllib.request
    >>> from prometheus_client import CollectorRegistry, Counter
    >>> from llmpulse.schemas.health import HealthServer
    >>> registry = CollectorRegistry()
    >>> Counter("llmpulse_example_events", "Events seen.", registry=registry).inc(3)
    >>> server = HealthServer(registry, ready=lambda: (False, "store unreachable"),
    ...                       address="127.0.0.1:0").start()
    >>> urllib.request.urlopen(f"{server.url}/healthz").read()
    b'ok\\n'
    >>> b"llmpulse_example_events_total 3.0" in urllib.request.urlopen(f"{server.url}/metrics").read()
    True
    >>> try:
    ...     urllib.request.urlopen(f"{server.url}/readyz")
    ... except urllib.error.HTTPError as err:
    ...     print(err.code, err.read().decode().strip())
    503 not ready: store unreachable
    >>> server.stop()
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from llmpulse.schemas import environment as env
from llmpulse.schemas.errors import LlmpulseError

__all__ = ["HealthServer", "PipelineMetrics", "Readiness", "is_loopback", "serve_health"]

logger = logging.getLogger(__name__)

Readiness = Callable[[], tuple[bool, str]]
"""Returns ``(ready, reason)``; the reason is shown by ``/readyz``."""


def is_loopback(host: str) -> bool:
    """True for ``127.0.0.0/8``, ``::1`` and ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve_health(registry: CollectorRegistry, ready: Readiness, address: str, *,
                 explicit: bool) -> HealthServer | None:
    """Start a ``HealthServer`` for a service's command line.

    ``address`` ``off`` serves nothing. A port that is taken fails when the address was
    given explicitly; the default address only warns (two workers on one host), so set
    ``$LLMPULSE_HEALTH_ADDRESS`` per process where Prometheus scrapes them.

    Raises:
        LlmpulseError: an explicit address cannot be served.
    """
    if address.strip().lower() in ("off", "none", ""):
        return None
    try:
        return HealthServer(registry, ready=ready, address=address).start()
    except LlmpulseError as exc:
        if explicit:
            raise
        logger.warning("health endpoints not served: %s", exc)
        return None


class HealthServer:
    """Serves ``/healthz``, ``/readyz`` and ``/metrics`` until ``stop()``.

    Args:
        registry: the Prometheus registry ``/metrics`` exposes.
        ready: the readiness check of ``/readyz``.
        address: ``host:port`` (port 0: a free one; see ``port``).
        token: the bearer token non-loopback peers must send (default
            ``$LLMPULSE_HEALTH_TOKEN``); required when ``host`` is not loopback.

    Raises:
        LlmpulseError: a non-loopback address without a token, or the port is taken.
    """

    def __init__(self, registry: CollectorRegistry, *, ready: Readiness,
                 address: str = "127.0.0.1:9464", token: str | None = None) -> None:
        host, _, port = address.rpartition(":")
        self.host = host.strip("[]") or "127.0.0.1"
        token = token if token is not None else os.environ.get(env.HEALTH_TOKEN) or None
        if not is_loopback(self.host) and not token:
            raise LlmpulseError(f"the health endpoints on {address} are not on loopback: set "
                                f"${env.HEALTH_TOKEN} (a bearer token Prometheus sends)")
        self.registry, self.ready, self._token = registry, ready, token
        try:
            self._server = ThreadingHTTPServer((self.host, int(port)), self._handler())
        except (OSError, ValueError) as exc:
            raise LlmpulseError(f"cannot serve the health endpoints on {address}: {exc} "
                                f"(choose another with ${env.HEALTH_ADDRESS}, or 'off')") from exc
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> HealthServer:
        """Serve on a daemon thread; returns self."""
        self._thread = threading.Thread(target=self._server.serve_forever, name="llmpulse-health",
                                        daemon=True)
        self._thread.start()
        logger.info("health endpoints on %s (/healthz, /readyz, /metrics)", self.url)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if not server._allowed(self.client_address[0], self.headers.get("Authorization")):
                    self._send(401, b"a bearer token is needed\n", "text/plain",
                               {"WWW-Authenticate": "Bearer"})
                    return
                path = self.path.split("?", 1)[0]
                if path == "/healthz":
                    self._send(200, b"ok\n", "text/plain")
                elif path == "/readyz":
                    try:
                        ok, reason = server.ready()
                    except Exception as exc:  # a check that fails is a "not ready"
                        ok, reason = False, f"{type(exc).__name__}: {exc}"
                    body = f"{'ready' if ok else 'not ready'}: {reason}\n".encode()
                    self._send(200 if ok else 503, body, "text/plain")
                elif path == "/metrics":
                    self._send(200, generate_latest(server.registry), CONTENT_TYPE_LATEST)
                else:
                    self._send(404, b"/healthz, /readyz or /metrics\n", "text/plain")

            def _send(self, code: int, body: bytes, content_type: str,
                      headers: dict[str, str] | None = None) -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                logger.debug("health: " + format, *args)

        return Handler

    def _allowed(self, peer: str, authorization: str | None) -> bool:
        if self._token is None or is_loopback(peer):
            return True
        expected = f"Bearer {self._token}"
        return authorization is not None and hmac.compare_digest(authorization, expected)


FRESHNESS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0,
                     900.0, 3600.0, 86_400.0)
BATCH_BUCKETS = (1, 10, 50, 100, 500, 1_000, 5_000, 10_000, 50_000)


class PipelineMetrics:
    """The Prometheus metrics of one stage (``stage`` label: ``worker``, ``sink`` ...), on a
    registry of its own. Every service uses this one set, so the dashboards and alert rules
    read the same names everywhere.

    Attributes:
        registry: what ``HealthServer`` exposes on ``/metrics``.
    """

    def __init__(self, stage: str, registry: CollectorRegistry | None = None) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.stage = stage
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.records_in = Counter("llmpulse_records_in", "Kafka records read.", ["stage"],
                                  registry=r).labels(stage)
        self.events_in = Counter("llmpulse_events_in", "Valid events read.", ["stage"],
                                 registry=r).labels(stage)
        self._events_out = Counter("llmpulse_events_out",
                                   "Events written (the sink: rows, by table; a worker: by topic).",
                                   ["stage", "target"], registry=r)
        self.duplicates = Counter("llmpulse_duplicates", "Events dropped as already stored.",
                                  ["stage"], registry=r).labels(stage)
        self._dead_letters = Counter("llmpulse_dead_letters", "Dead letters sent, by reason.",
                                     ["stage", "reason"], registry=r)
        self._lag = Gauge("llmpulse_consumer_lag", "Records behind the end of each partition.",
                          ["stage", "topic", "partition"], registry=r)
        self.batch_events = Histogram("llmpulse_batch_events", "Events per processed batch.",
                                      ["stage"], buckets=BATCH_BUCKETS, registry=r).labels(stage)
        self.store_write_seconds = Histogram(
            "llmpulse_store_write_seconds", "Time to write one batch to the store.", ["stage"],
            registry=r).labels(stage)
        self.store_retries = Counter("llmpulse_store_retries",
                                     "Store writes that failed and will be retried.", ["stage"],
                                     registry=r).labels(stage)
        self._freshness = Histogram(
            "llmpulse_freshness_seconds",
            "Event age between stages: processed_at - occurred_at (span=processed), "
            "inserted_at - processed_at (span=inserted).", ["stage", "span"],
            buckets=FRESHNESS_BUCKETS, registry=r)
        self.freshness_processed = self._freshness.labels(stage, "processed")
        self.freshness_inserted = self._freshness.labels(stage, "inserted")
        self.join_table_size = Gauge("llmpulse_join_table_size", "Halves waiting in the join table.",
                                     ["stage"], registry=r).labels(stage)
        self.lingering_halves = Gauge("llmpulse_lingering_halves",
                                      "Halves lingering in memory for their partner.", ["stage"],
                                      registry=r).labels(stage)
        self._scorer_queue = Gauge("llmpulse_scorer_queue_depth",
                                   "Records waiting for the model scorers (scorer=heavy: the lag of "
                                   "llm.enriched.pending, each record up to 500 calls).", ["stage", "scorer"],
                                   registry=r)
        self.last_fetch = Gauge("llmpulse_last_fetch_timestamp_seconds",
                                "When the consumer last received a record (Unix time).",
                                ["stage"], registry=r).labels(stage)

    def counter(self, name: str, documentation: str) -> Any:
        """A counter of this stage's own (``stage`` label set) on the same registry, e.g.
        the OTLP stage's ``llmpulse_spans_skipped``."""
        from prometheus_client import Counter

        return Counter(name, documentation, ["stage"], registry=self.registry).labels(self.stage)

    def events_out(self, target: str, count: int = 1) -> None:
        self._events_out.labels(self.stage, target).inc(count)

    def dead_letter(self, reason: str, count: int = 1) -> None:
        self._dead_letters.labels(self.stage, reason).inc(count)

    def scorer_queue(self, scorer: str, depth: int) -> None:
        self._scorer_queue.labels(self.stage, scorer).set(depth)

    def set_lag(self, topic: str, partition: int | str, lag: int) -> None:
        self._lag.labels(self.stage, topic, str(partition)).set(lag)

    def lag_from_statistics(self, statistics: str) -> None:
        """Set the lag gauges from librdkafka's statistics JSON (``stats_cb``)."""
        import json

        try:
            topics = json.loads(statistics).get("topics", {})
        except ValueError:
            return
        for topic, data in topics.items():
            for partition, p in data.get("partitions", {}).items():
                lag = p.get("consumer_lag", -1)
                if partition != "-1" and lag is not None and lag >= 0:
                    self._lag.labels(self.stage, topic, partition).set(lag)
