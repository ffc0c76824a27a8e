"""``WebhookNotifier``: posts alerts to HTTP receivers from a background thread, with retries.

``notify(alerts)`` only queues (it never blocks the stream and never raises); one thread
per notifier posts each alert to each URL. A connection error, a timeout, a 5xx or a 429
is retried ``retries`` times with exponential backoff (a ``Retry-After`` header is
honoured, up to 60 s); another 4xx is not retried. Every outcome is counted: ``sent``,
``retried``, ``failed``, ``dropped`` (queue full).

Payloads:

- ``json``: the ``Alert`` contract itself (``schemas/jsonschema/alert.schema.json``);
- ``slack``: ``{"text": ..., "blocks": [...]}``, what Slack incoming webhooks (and
  Mattermost, Rocket.Chat, Discord's ``/slack`` endpoint) accept.

Example:
    >>> from llmpulse.processors.alerting.webhook import slack_payload
    >>> from llmpulse.schemas import Alert
    >>> alert = Alert(app="shop", rule="errors", status="firing", severity="critical",
    ...               dedup_key="errors/shop", summary="Failed calls at 20.0%")
    >>> slack_payload(alert)["text"]
    ':rotating_light: [FIRING] errors (critical): Failed calls at 20.0%'
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import msgspec

from llmpulse.schemas import Alert, encode_event

__all__ = ["WebhookNotifier", "notifiers_from_config", "slack_payload"]

logger = logging.getLogger(__name__)
_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
_ICON = {"firing": ":rotating_light:", "resolved": ":white_check_mark:"}


def slack_payload(alert: Alert) -> dict[str, Any]:
    """A Slack-compatible message for one alert."""
    head = f"{_ICON[alert.status]} [{alert.status.upper()}] {alert.rule} ({alert.severity}): {alert.summary}"
    facts = [f"*app* {alert.app}", f"*env* {alert.environment}"]
    if alert.prompt_id:
        facts.append(f"*prompt* {alert.prompt_id}@{alert.prompt_version or '-'}")
    if alert.request_model:
        facts.append(f"*model* {alert.request_model}")
    if alert.value is not None:
        facts.append(f"*value* {alert.value:.4g}" + (f" (threshold {alert.threshold:.4g})"
                                                      if alert.threshold is not None else ""))
    if alert.started_at is not None:
        facts.append(f"*since* {alert.started_at:%Y-%m-%d %H:%M:%S} UTC")
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": head}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(facts)}]},
    ]
    if alert.link:
        link = f"<{alert.link}|Open the report>"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": link}})
    return {"text": head, "blocks": blocks}


class WebhookNotifier:
    """Sends alerts to one or more webhook URLs in the background.

    Args:
        urls: where to POST (each alert goes to each URL).
        kind: ``json`` (the Alert contract) or ``slack``.
        retries: extra attempts after a failure that may pass (network, 5xx, 429).
        backoff: seconds before the first retry; doubled each time.
        timeout: seconds for one request.
        max_queue: alerts waiting beyond this are dropped (counted).
        headers: extra HTTP headers (an ``Authorization``, say).
    """

    def __init__(self, urls: str | Sequence[str], *, kind: Literal["json", "slack"] = "json",
                 retries: int = 3, backoff: float = 0.5, timeout: float = 5.0, max_queue: int = 1000,
                 headers: Mapping[str, str] | None = None) -> None:
        self.urls = [urls] if isinstance(urls, str) else list(urls)
        if kind not in ("json", "slack"):
            raise ValueError(f"webhook kind must be 'json' or 'slack', not {kind!r}")
        self.kind = kind
        self.retries, self.backoff, self.timeout = retries, backoff, timeout
        self.headers = {"Content-Type": "application/json", "User-Agent": "llmpulse-alerts/1",
                        **dict(headers or {})}
        self.counts: Counter[str] = Counter()
        self._queue: queue.Queue[Alert | None] = queue.Queue(max_queue)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0
        self._closed = False
        self._thread: threading.Thread | None = None

    def notify(self, alerts: Iterable[Alert]) -> int:
        """Queue alerts for delivery; returns how many were queued (never blocks or raises)."""
        queued = 0
        for alert in alerts:
            with self._lock:
                if self._closed:
                    self.counts["dropped"] += 1
                    continue
                try:
                    self._queue.put_nowait(alert)
                except queue.Full:
                    self.counts["dropped"] += 1
                    logger.warning("webhook: queue full, alert %s dropped", alert.dedup_key)
                    continue
                self._pending += 1
                queued += 1
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._run, name="llmpulse-webhook", daemon=True)
                    self._thread.start()
        return queued

    def body(self, alert: Alert) -> bytes:
        """The request body for one alert."""
        return msgspec.json.encode(slack_payload(alert)) if self.kind == "slack" else encode_event(alert)

    def _post(self, url: str, body: bytes) -> tuple[bool, bool, float | None]:
        """One attempt: ``(delivered, worth_retrying, retry_after)``."""
        request = urllib.request.Request(url, data=body, headers=self.headers, method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                response.read()
                return True, False, None
        except urllib.error.HTTPError as exc:
            after = exc.headers.get("Retry-After") if exc.headers else None
            try:
                wait = min(60.0, float(after)) if after else None
            except ValueError:
                wait = None
            logger.warning("webhook %s answered %d", url, exc.code)
            return False, exc.code in _RETRY_STATUS, wait
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            logger.warning("webhook %s unreachable: %s", url, exc)
            return False, True, None

    def _deliver(self, url: str, body: bytes) -> bool:
        delay = self.backoff
        for attempt in range(self.retries + 1):
            ok, again, after = self._post(url, body)
            if ok:
                return True
            if not again or attempt == self.retries:
                return False
            self.counts["retried"] += 1
            time.sleep(after if after is not None else delay)
            delay *= 2
        return False

    def _run(self) -> None:
        while True:
            alert = self._queue.get()
            if alert is None:
                return
            try:
                body = self.body(alert)
                for url in self.urls:
                    if self._deliver(url, body):
                        self.counts["sent"] += 1
                    else:
                        self.counts["failed"] += 1
                        logger.error("webhook: alert %s not delivered to %s", alert.dedup_key, url)
            except Exception:  # never let one alert kill the thread
                self.counts["failed"] += 1
                logger.exception("webhook: alert %s failed", alert.dedup_key)
            finally:
                with self._lock:
                    self._pending -= 1
                    self._idle.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued alert was delivered or given up; False on timeout."""
        with self._lock:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float | None = 10.0) -> None:
        """Deliver what is queued (up to ``timeout``), then stop the thread."""
        self.flush(timeout)
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None and thread.is_alive():
            try:
                self._queue.put_nowait(None)
            except queue.Full:
                return
            thread.join(timeout)


def notifiers_from_config(targets: Iterable[Any]) -> list[WebhookNotifier]:
    """One notifier per ``WebhookTarget`` of ``AlertConfig.webhooks``."""
    return [WebhookNotifier(t.url, kind=t.kind, retries=t.retries, backoff=t.backoff_seconds,
                            timeout=t.timeout_seconds, headers=t.headers) for t in targets]
