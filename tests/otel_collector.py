"""The real OpenTelemetry Collector for tests, run by scripts/otelcol.sh.

The script is the one implementation of building (cached), starting (waiting until the
Collector says it is ready and the OTLP/HTTP port answers) and stopping the Collector;
this class only calls it, with the ports and the tokens file of a test session.
"""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

from kafka_broker import REPO_ROOT, free_port

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
