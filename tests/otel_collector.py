"""The real OpenTelemetry Collector for tests, run by scripts/otelcol.sh.

The script is the one implementation of building (cached), starting (waiting until the
Collector says it is ready and the OTLP/HTTP port answers) and stopping the Collector;
this class only calls it, with the ports and the tokens file of a test session. Also the
requests the tests send it (``otlp_json``, ``post``) and what reached Kafka since
(``end_offsets``, ``trace_ids_since``).
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition
from kafka_broker import REPO_ROOT, free_port
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

OTELCOL_SH = REPO_ROOT / "scripts" / "otelcol.sh"


class OtelCollectorError(RuntimeError):
    pass


class OtelCollector:
    """One Collector whose files (settings, log, persistent queue) live in ``dir``.

    ``tokens`` maps a name to a token; the tokens file binds ``support`` to the apps
    ``support-bot`` and ``faq-bot`` and ``admin`` to every app (``*``).
    """

    def __init__(self, dir: Path, bootstrap: str, *, prefix: str = "") -> None:
        self.dir = Path(dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.bootstrap = bootstrap
        self.prefix = prefix
        self.http_port, self.grpc_port, self.metrics_port = free_port(), free_port(), free_port()
        self.tokens = {"support": secrets.token_urlsafe(24), "admin": secrets.token_urlsafe(24)}
        self.tokens_file = self.dir / "tokens"
        self.tokens_file.write_text(f"{self.tokens['support']} support-bot,faq-bot\n"
                                    f"{self.tokens['admin']} *\n", encoding="utf-8")
        self.tokens_file.chmod(0o600)
        self.last_output = ""

    @property
    def http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def log(self) -> Path:
        return self.dir / "otelcol.log"

    def _run(self, *args: str, timeout: float) -> None:
        proc = subprocess.run(["bash", str(OTELCOL_SH), *args], capture_output=True, text=True,
                              timeout=timeout, check=False)
        self.last_output = proc.stdout + proc.stderr
        if proc.returncode != 0:
            raise OtelCollectorError(f"otelcol.sh {args[0]} failed (exit {proc.returncode}):\n"
                                     f"{self.last_output}")

    def start(self) -> None:
        # A first start on a fresh machine builds the Collector: allow for it.
        self._run("start", "--dir", str(self.dir), "--bootstrap", self.bootstrap,
                  "--tokens", str(self.tokens_file), "--http", f"127.0.0.1:{self.http_port}",
                  "--grpc", self.grpc_endpoint, "--metrics-port", str(self.metrics_port),
                  "--prefix", self.prefix, timeout=900)

    def stop(self) -> None:
        self._run("stop", "--dir", str(self.dir), timeout=60)

    def metric(self, name: str) -> float:
        """The sum of a metric of the Collector's own telemetry (Prometheus text format)."""
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics",
                                    timeout=5) as reply:
            text = reply.read().decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(name) and not line.startswith("#")
                   and (line[len(name)] in " {"))

    def __repr__(self) -> str:
        return f"OtelCollector(dir={str(self.dir)!r}, http={self.http_port}, grpc={self.grpc_port})"


def otlp_json(service: str, trace_id: str, attrs: dict[str, Any]) -> bytes:
    """An OTLP/JSON request with one span of ``trace_id``, ending now, with these attributes."""
    now = time.time_ns()

    def value(v: Any) -> dict[str, Any]:
        if isinstance(v, bool):
            return {"boolValue": v}
        if isinstance(v, int):
            return {"intValue": str(v)}
        if isinstance(v, float):
            return {"doubleValue": v}
        return {"stringValue": v if isinstance(v, str) else json.dumps(v)}

    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"scope": {"name": "hand-made"}, "spans": [{
            "traceId": trace_id, "spanId": trace_id[:16], "name": "chat m", "kind": 3,
            "startTimeUnixNano": str(now - 800_000_000), "endTimeUnixNano": str(now),
            "attributes": [{"key": k, "value": value(v)} for k, v in attrs.items()]}]}]}]}).encode()


def post(collector: OtelCollector, body: bytes, token: str | None, *,
         authorization: str | None = None, content_type: str = "application/json") -> int:
    """POST to the Collector's /v1/traces with ``Bearer <token>`` (or the raw header
    ``authorization``; neither: no header) and return the HTTP status."""
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if authorization is not None:
        headers["Authorization"] = authorization
    request = urllib.request.Request(f"{collector.http_endpoint}/v1/traces", data=body,
                                     headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def end_offsets(bootstrap: str, topic: str, timeout_s: float = 30) -> dict[int, int]:
    """The end offset of each partition of ``topic`` now (a topic just created has no leader
    for a moment: asked again until it has one)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"probe-{uuid.uuid4().hex}"})
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
                return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                        for p in parts}
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        consumer.close()


def records_since(bootstrap: str, topic: str, since: dict[int, int], until: bytes,
                  timeout_s: float = 60) -> list[bytes]:
    """The records written to ``topic`` after the offsets ``since``, read until one holds the
    bytes ``until`` (a request sent last, so every earlier one has had its chance)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"probe-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, o) for p, o in since.items()])
    seen: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and not any(until in v for v in seen):
            message = consumer.poll(0.5)
            if message is not None and message.error() is None and message.value():
                seen.append(bytes(message.value() or b""))
    finally:
        consumer.close()
    return seen


def trace_ids(records: list[bytes]) -> set[str]:
    """The trace ids (hex) of the spans in these otlp_proto records."""
    return {span.trace_id.hex() for record in records
            for rs in TracesData.FromString(record).resource_spans
            for ss in rs.scope_spans for span in ss.spans}
