"""WebhookNotifier against a real HTTP receiver on loopback: payloads, retries, failures."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from llmpulse.processors.alerting import WebhookNotifier, WebhookTarget, notifiers_from_config
from llmpulse.schemas import Alert, decode_event


class Receiver:
    """A local webhook receiver that answers a scripted list of status codes (then 200)."""

    def __init__(self, statuses: list[int] | None = None, delay: float = 0.0) -> None:
        self.statuses = list(statuses or [])
        self.delay = delay
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                owner.requests.append((self.path, dict(self.headers), body))
                time.sleep(owner.delay)
                status = owner.statuses.pop(0) if owner.statuses else 200
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(statuses: list[int] | None = None, delay: float = 0.0) -> Receiver:
        made.append(Receiver(statuses, delay))
        return made[-1]

    yield make
    for r in made:
        r.close()


def _alert(status: str = "firing") -> Alert:
    return Alert(app="shop", rule="toxicity", status=status, severity="high",  # type: ignore[arg-type]
                 dedup_key="toxicity/shop/production/faq/1/m", summary="Toxic answers at 12.0%",
                 prompt_id="faq", prompt_version="1", value=0.12, threshold=0.05,
                 link="file:///reports/w3.html")


def test_json_webhook_posts_the_alert_contract(receiver):
    r = receiver()
    notifier = WebhookNotifier(r.url, headers={"Authorization": "Bearer t0ken"})
    assert notifier.notify([_alert(), _alert("resolved")]) == 2
    assert notifier.flush(timeout=10)
    notifier.close()
    assert [decode_event(body).status for _, _, body in r.requests] == ["firing", "resolved"]
    path, headers, _ = r.requests[0]
    assert path == "/hook" and headers["Content-Type"] == "application/json"
    assert headers["Authorization"] == "Bearer t0ken"
    assert notifier.counts == {"sent": 2}


def test_slack_webhook_payload(receiver):
    r = receiver()
    [notifier] = notifiers_from_config([WebhookTarget(url=r.url, kind="slack")])
    notifier.notify([_alert()])
    assert notifier.flush(timeout=10)
    payload = json.loads(r.requests[0][2])
    assert payload["text"].startswith(":rotating_light: [FIRING] toxicity (high)")
    assert payload["blocks"][0]["type"] == "section"
    assert "<file:///reports/w3.html|Open the report>" in json.dumps(payload)
    assert "*prompt* faq@1" in payload["blocks"][1]["elements"][0]["text"]


def test_server_errors_are_retried_then_delivered(receiver):
    r = receiver([500, 503, 429])
    notifier = WebhookNotifier(r.url, retries=3, backoff=0.01)
    notifier.notify([_alert()])
    assert notifier.flush(timeout=10)
    assert len(r.requests) == 4
    assert notifier.counts["sent"] == 1 and notifier.counts["retried"] == 3 and notifier.counts["failed"] == 0


def test_client_error_is_not_retried_and_retries_run_out(receiver):
    bad = receiver([400])
    down = receiver([500, 500, 500])
    notifier = WebhookNotifier([bad.url, down.url], retries=2, backoff=0.01)
    notifier.notify([_alert()])
    assert notifier.flush(timeout=10)
    assert len(bad.requests) == 1 and len(down.requests) == 3
    assert notifier.counts["failed"] == 2 and notifier.counts["sent"] == 0


def test_unreachable_receiver_is_counted_and_never_raises():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    notifier = WebhookNotifier(f"http://127.0.0.1:{port}/hook", retries=1, backoff=0.01, timeout=1)
    notifier.notify([_alert()])
    assert notifier.flush(timeout=10)
    assert notifier.counts["failed"] == 1 and notifier.counts["retried"] == 1


def test_notify_never_blocks_the_stream_and_a_full_queue_drops(receiver):
    r = receiver(delay=0.3)
    notifier = WebhookNotifier(r.url, max_queue=2)
    start = time.perf_counter()
    queued = notifier.notify([_alert() for _ in range(5)])
    assert time.perf_counter() - start < 0.1
    assert queued in (2, 3) and notifier.counts["dropped"] == 5 - queued
    notifier.close(timeout=10)
    assert notifier.counts["sent"] == queued
