"""SDK configuration: keyword arguments first, then ``LLMPULSE_*`` variables, then defaults.

Example:
    >>> from llmpulse.producers.config import SdkConfig
    >>> cfg = SdkConfig.resolve(app="support-bot", environ={"LLMPULSE_SDK_SAMPLE_RATE": "0.5"})
    >>> cfg.app, cfg.sample_rate, cfg.flush_interval_s
    ('support-bot', 0.5, 0.1)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from llmpulse.producers.redaction import Redactor
from llmpulse.schemas import environment as env

__all__ = ["ENV", "SdkConfig"]

ENV: dict[str, str] = {
    "bootstrap_servers": env.BOOTSTRAP_SERVERS,
    "app": env.APP,
    "environment": env.ENVIRONMENT,
    "topic_prefix": env.TOPIC_PREFIX,
    "enabled": env.SDK_ENABLED,
    "sample_rate": env.SDK_SAMPLE_RATE,
    "redact": env.SDK_REDACT,
    "capture_content": env.SDK_CAPTURE_CONTENT,
    "flush_interval_s": env.SDK_FLUSH_INTERVAL_MS,
    "max_batch_events": env.SDK_MAX_BATCH_EVENTS,
    "max_buffered_events": env.SDK_MAX_BUFFERED_EVENTS,
    "spool_dir": env.SDK_SPOOL_DIR,
    "spool_max_bytes": env.SDK_SPOOL_MAX_BYTES,
    "delivery_timeout_s": env.SDK_DELIVERY_TIMEOUT_MS,
    "shutdown_timeout_s": env.SDK_SHUTDOWN_TIMEOUT_MS,
}
"""Each option and the environment variable that sets it when no keyword is given."""

_MS = {"flush_interval_s", "delivery_timeout_s", "shutdown_timeout_s"}


def _default_spool_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "llmpulse" / "spool"


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {raw!r}")


@dataclass(frozen=True, kw_only=True)
class SdkConfig:
    """Every SDK option. Build it with ``SdkConfig.resolve(**keywords)``."""

    app: str = "default"
    """The application's name, on every event."""
    environment: str = "production"
    bootstrap_servers: str | None = None
    """Kafka bootstrap servers. None: nothing is sent (events are counted as dropped
    with reason ``not_configured``), the app keeps working."""
    enabled: bool = True
    """False turns the SDK into a no-op."""
    topic_prefix: str = ""
    sample_rate: float = 1.0
    """Share of calls kept, decided per call_id. Errors and feedback are always kept."""
    sample_rule: Callable[[Any], bool | None] | None = None
    """``rule(call) -> True`` keeps, ``False`` drops, ``None`` defers to the rate."""
    redact: Redactor | None = None
    """Masks text before it leaves the process. ``LLMPULSE_SDK_REDACT=all`` or a comma
    list of masker names (email,phone,card,secret,ip)."""
    capture_content: bool = True
    """False sends no prompt, response or document text at all (metadata only)."""
    flush_interval_s: float = 0.1
    """Longest time an event waits in memory before it is handed to Kafka."""
    max_batch_events: int = 500
    """Events per batch record; also how many finished calls may wait for the flusher
    before the app's thread builds its own calls' events."""
    max_batch_bytes: int = 900_000
    """Bytes per batch record (kept under the broker's 1 MB default)."""
    max_buffered_events: int = 100_000
    """Events held in memory before new ones are dropped (``buffer_full``)."""
    spool_dir: Path = field(default_factory=_default_spool_dir)
    spool_max_bytes: int = 256 * 1024 * 1024
    delivery_timeout_s: float = 10.0
    """After this, an unacknowledged record goes to the spool (``message.timeout.ms``)."""
    shutdown_timeout_s: float = 5.0
    """How long a clean exit waits to deliver; the rest goes to the spool."""
    compression: str = "zstd"
    kafka_config: Mapping[str, str] = field(default_factory=dict)
    """Extra librdkafka settings (SASL, TLS ...); also from ``LLMPULSE_KAFKA_*`` variables."""
    deliver_to: Callable[[str, bytes, bytes], None] | None = None
    """Hand each encoded event to ``deliver_to(topic, key, value)`` instead of Kafka (the
    embedded mode of ``llmpulse demo``, tests). It runs on the app's thread, so it must be
    cheap, e.g. ``queue.append``; it must not raise (if it does, the event is dropped and
    counted)."""
    warn_on_drop: bool = True
    """Log a warning the first time an event is dropped, for each reason."""

    @classmethod
    def resolve(cls, environ: Mapping[str, str] | None = None, **keywords: Any) -> SdkConfig:
        """Keywords win; unset options come from the environment, then the defaults."""
        source = os.environ if environ is None else environ
        known = {f.name for f in fields(cls)}
        unknown = set(keywords) - known
        if unknown:
            raise TypeError(f"unknown llmpulse option(s): {sorted(unknown)}")
        values: dict[str, Any] = {k: v for k, v in keywords.items() if v is not None}
        for name, variable in ENV.items():
            if name in values or variable not in source:
                continue
            raw = source[variable]
            try:
                values[name] = _parse(name, raw)
            except ValueError as exc:
                raise ValueError(f"{variable}={raw!r}: {exc}") from None
        extra = {k[len(env.KAFKA_PREFIX):].lower().replace("_", "."): v
                 for k, v in source.items() if k.startswith(env.KAFKA_PREFIX)}
        if extra:
            values["kafka_config"] = {**extra, **dict(values.get("kafka_config", {}))}
        if isinstance(values.get("spool_dir"), str):
            values["spool_dir"] = Path(values["spool_dir"])
        config = cls(**values)
        if not 0.0 <= config.sample_rate <= 1.0:
            raise ValueError(f"sample_rate must be within [0, 1], got {config.sample_rate}")
        return config


def _parse(name: str, raw: str) -> Any:
    if name in {"enabled", "capture_content"}:
        return _bool(raw)
    if name == "sample_rate":
        return float(raw)
    if name in _MS:
        return float(raw) / 1000.0
    if name in {"max_batch_events", "max_buffered_events", "spool_max_bytes"}:
        return int(raw)
    if name == "redact":
        value = raw.strip().lower()
        if value in {"", "none", "off", "false"}:
            return None
        if value in {"all", "on", "true"}:
            return Redactor()
        return Redactor([part.strip() for part in value.split(",") if part.strip()])
    return raw
