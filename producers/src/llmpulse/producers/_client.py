"""The process-wide SDK client: configuration, sampling, redaction, delivery, fork and exit.

Apps use the functions in ``llmpulse.producers`` (``init``, ``track``, ``call``, ``wrap``,
``feedback``, ``stats``); they all go through ``get_client()``. The Kafka transport (and
confluent-kafka with it) is made on the first event sent, not at import or ``init``, so
a serverless function that starts cold pays for Kafka only when it has something to send.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmpulse.producers._delivery import Delivery, on_fork
from llmpulse.producers._local import LocalTransport
from llmpulse.producers._spool import has_leftovers, spool_root
from llmpulse.producers.config import SdkConfig
from llmpulse.producers.redaction import Redactor
from llmpulse.producers.stats import SdkStats
from llmpulse.schemas import Event, encode_event
from llmpulse.schemas.topics import FEEDBACK, PROMPTS, RESPONSES, SPANS, topic_name

if TYPE_CHECKING:
    from llmpulse.producers._capture import LLMCall
    from llmpulse.producers._spans import Span

logger = logging.getLogger("llmpulse.producers")

_TOPIC_OF = {"prompt": PROMPTS, "response": RESPONSES, "feedback": FEEDBACK, "span": SPANS}


class Client:
    """Everything the SDK holds for one process. Never raises into the app."""

    def __init__(self, config: SdkConfig) -> None:
        self.config = config
        self.stats = SdkStats(warn_on_drop=config.warn_on_drop)
        self.pid = os.getpid()
        self._generation = _fork_generation
        self.topics = {kind: topic_name(base, config.topic_prefix) for kind, base in _TOPIC_OF.items()}
        self._transport: Delivery | None = None
        self._kafka_due = False
        """True until the Kafka transport is made, on the first event (see ``_start_kafka``)."""
        self._start_lock = threading.Lock()
        self._closed = False
        if config.enabled and config.deliver_to is not None:
            self._transport = LocalTransport(config.deliver_to, self.stats, self.encode_call)
        elif config.enabled and config.bootstrap_servers:
            self._kafka_due = True
            if has_leftovers(spool_root(config.spool_dir, config.app)):
                self._start_kafka()  # an earlier process left records to resend: start now
        elif config.enabled:
            logger.info("llmpulse: no bootstrap servers configured; events are counted as "
                        "dropped (not_configured)")

    def _start_kafka(self) -> None:
        """Make the Kafka transport (importing confluent-kafka) once, on the first event."""
        with self._start_lock:
            if not self._kafka_due:
                return
            try:
                from llmpulse.producers._transport import Transport

                self._transport = Transport(self.config, self.stats, self.encode_call)
            except Exception as exc:  # bad settings must not take the app down
                self.stats.error("init")
                logger.warning("llmpulse: could not start the producer (%s); events are dropped",
                               exc)
            self._kafka_due = False

    # -- the hot path ------------------------------------------------------------------
    def _ready_transport(self, events: int) -> Delivery | None:
        """The transport to queue on, or None (and the events counted as dropped)."""
        if self._generation != _fork_generation:  # a counter, not a syscall per event
            self._after_fork()
        if self._kafka_due and not self._closed:
            self._start_kafka()
        transport = self._transport
        if transport is None or self._closed:
            self.stats.drop("not_configured" if not self._closed else "after_shutdown", events)
            return None
        return transport

    def submit(self, call: LLMCall | Span) -> None:
        """Queue a finished call (two events) or span (one); its events are built off the
        app's thread. Never raises."""
        if not self.config.enabled:
            return
        try:
            transport = self._ready_transport(call.event_count)
            if transport is not None:
                transport.enqueue_call(call)
        except Exception:
            self.stats.error("emit")
            self.stats.drop("encode_error", call.event_count)

    def encode_call(self, call: LLMCall | Span) -> tuple[str, list[tuple[str, bytes]]]:
        """A finished call's or span's events, redacted and encoded: the key (a call's id,
        a span's trace id) and ``[(topic, value), ...]``."""
        config = self.config
        return call.encoded(self.text, config.app, config.environment, self.topics)

    def emit(self, kind: str, event: Event) -> None:
        """Encode and queue one event now (feedback). Never raises."""
        if not self.config.enabled:
            return
        try:
            transport = self._ready_transport(1)
            if transport is not None:
                transport.enqueue(self.topics[kind], event.call_id, encode_event(event))  # type: ignore[union-attr]
        except Exception:
            self.stats.error("emit")
            self.stats.drop("encode_error")

    def keep(self, call_id: str, *, is_error: bool, call: Any = None) -> bool:
        """Sampling: errors always; then the rule (given a call); then the rate, decided per
        key (a call's id, or the trace id of a call or span in a trace)."""
        config = self.config
        if is_error:
            return True
        if config.sample_rule is not None and call is not None:
            try:
                verdict = config.sample_rule(call)
            except Exception:
                self.stats.error("sample_rule")
                verdict = None
            if verdict is not None:
                if not verdict:
                    self.stats.add("sampled_out")
                return bool(verdict)
        rate = config.sample_rate
        if rate >= 1.0:
            return True
        if zlib.crc32(call_id.encode()) / 0x1_0000_0000 < rate:
            return True
        self.stats.add("sampled_out")
        return False

    def text(self, value: str | None) -> str | None:
        """Apply content capture and redaction to one text."""
        if value is None:
            return None
        if not self.config.capture_content:
            return ""
        redact = self.config.redact
        if redact is None:
            return value
        try:
            return redact(value)
        except Exception:
            self.stats.error("redact")
            return "[REDACTION FAILED]"

    # -- lifecycle -----------------------------------------------------------------------
    def _after_fork(self) -> None:
        """In a forked child: the parent's producer and thread are not ours; make new ones."""
        old = self._transport
        self.pid = os.getpid()
        self._generation = _fork_generation
        self.stats = SdkStats(warn_on_drop=self.config.warn_on_drop)
        self._start_lock = threading.Lock()
        if old is not None:
            old.abandon_after_fork()
            if isinstance(old, LocalTransport):
                self._transport = LocalTransport(old.deliver, self.stats, self.encode_call)
            else:  # the child's Kafka transport is made on its first event
                self._transport = None
                self._kafka_due = True

    def flush(self, timeout_s: float | None = None) -> bool:
        """Deliver everything queued; True when nothing is left in flight."""
        if self._transport is None or self.pid != os.getpid():
            return True
        try:
            return self._transport.flush(self.config.shutdown_timeout_s if timeout_s is None
                                         else timeout_s) == 0
        except Exception:
            self.stats.error("flush")
            return False

    def shutdown(self, timeout_s: float | None = None) -> None:
        """Deliver within the deadline; what is left goes to the spool on disk."""
        if self._closed:
            return
        self._closed = True
        if self._transport is None or self.pid != os.getpid():
            return
        try:
            self._transport.close(self.config.shutdown_timeout_s if timeout_s is None else timeout_s)
        except Exception:
            self.stats.error("shutdown")
            logger.exception("llmpulse: shutdown failed")

    def snapshot(self) -> dict[str, Any]:
        transport = self._transport
        extra: dict[str, Any] = {"queue_depth": 0, "spool_events": 0, "spool_bytes": 0,
                                 "connected": False, "enabled": self.config.enabled}
        if transport is not None:
            extra.update(transport.status())
        return self.stats.snapshot(**extra)


_lock = threading.Lock()
_client: Client | None = None
_atexit_registered = False


def init(
    *,
    app: str | None = None,
    environment: str | None = None,
    bootstrap_servers: str | None = None,
    enabled: bool | None = None,
    topic_prefix: str | None = None,
    sample_rate: float | None = None,
    sample_rule: Callable[[Any], bool | None] | None = None,
    redact: Redactor | None = None,
    capture_content: bool | None = None,
    flush_interval_s: float | None = None,
    max_batch_events: int | None = None,
    max_batch_bytes: int | None = None,
    max_buffered_events: int | None = None,
    spool_dir: str | Path | None = None,
    spool_max_bytes: int | None = None,
    delivery_timeout_s: float | None = None,
    shutdown_timeout_s: float | None = None,
    compression: str | None = None,
    kafka_config: Mapping[str, str] | None = None,
    deliver_to: Callable[[str, bytes, bytes], None] | None = None,
    warn_on_drop: bool | None = None,
    environ: Mapping[str, str] | None = None,
) -> Client:
    """Configure the SDK for this process (replacing an earlier client, which is flushed).

    Every option is described on ``SdkConfig``. An option left at None comes from its
    ``LLMPULSE_*`` variable (in ``environ``, default ``os.environ``), then the default.
    Nothing connects here: the Kafka producer is made on the first event sent.
    """
    global _client, _atexit_registered
    config = SdkConfig.resolve(
        environ, app=app, environment=environment, bootstrap_servers=bootstrap_servers,
        enabled=enabled, topic_prefix=topic_prefix, sample_rate=sample_rate,
        sample_rule=sample_rule, redact=redact, capture_content=capture_content,
        flush_interval_s=flush_interval_s, max_batch_events=max_batch_events,
        max_batch_bytes=max_batch_bytes, max_buffered_events=max_buffered_events,
        spool_dir=spool_dir, spool_max_bytes=spool_max_bytes,
        delivery_timeout_s=delivery_timeout_s, shutdown_timeout_s=shutdown_timeout_s,
        compression=compression, kafka_config=kafka_config, deliver_to=deliver_to,
        warn_on_drop=warn_on_drop)
    with _lock:
        old, _client = _client, Client(config)
        if not _atexit_registered:
            atexit.register(_shutdown_at_exit)
            _atexit_registered = True
    if old is not None:
        old.shutdown()
    return _client


def get_client() -> Client:
    """The current client; made from the environment on first use if ``init`` was not called."""
    client = _client
    if client is None:
        try:
            client = init()
        except Exception as exc:  # a bad environment variable must not break the app
            logger.warning("llmpulse: configuration error (%s); the SDK is disabled", exc)
            with _lock:
                globals()["_client"] = client = Client(SdkConfig(enabled=False))
    return client


def _shutdown_at_exit() -> None:
    client = _client
    if client is not None:
        client.shutdown()


_fork_generation = 0
"""Bumped in every forked child: a client made before the fork sees it and re-makes its
producer on its next event."""


def _after_fork_in_child() -> None:
    global _lock, _fork_generation
    _lock = threading.Lock()
    _fork_generation += 1


on_fork(_after_fork_in_child)
