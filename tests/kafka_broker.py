"""A real single-node Apache Kafka broker (KRaft) for tests, run by scripts/kafka.sh.

The script is the one implementation of starting Kafka (fetching the jars from
Maven Central on first use, formatting storage, waiting until the broker
answers); this class only calls it.
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
KAFKA_SH = REPO_ROOT / "scripts" / "kafka.sh"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on `host` that nothing listens on right now (chosen by the kernel)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class KafkaBrokerError(RuntimeError):
    pass


class KafkaBroker:
    """One broker whose files (config, data, logs) live in `dir`, listening on 127.0.0.1:`port`.

    stop() then start() on the same dir and port keeps the data (the storage is
    formatted only once); restart() does both.
    """

    def __init__(
        self,
        dir: str | os.PathLike[str],
        port: int | None = None,
        *,
        heap: str = "512m",
        start_timeout: int = 60,
        stop_timeout: int = 30,
    ) -> None:
        self.dir = Path(dir)
        self.port = port if port is not None else free_port()
        self.heap = heap
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.last_output = ""

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _run(self, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["bash", str(KAFKA_SH), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        self.last_output = proc.stdout + proc.stderr
        return proc

    def start(self) -> None:
        # The first start may fetch the jars with Maven: allow for it on top of the start bound.
        proc = self._run(
            "start",
            "--port", str(self.port),
            "--dir", str(self.dir),
            "--heap", self.heap,
            "--timeout", str(self.start_timeout),
            timeout=self.start_timeout + 600,
        )  # fmt: skip
        if proc.returncode != 0:
            raise KafkaBrokerError(
                f"kafka.sh start failed (exit {proc.returncode}):\n{self.last_output}"
            )

    def stop(self) -> None:
        proc = self._run(
            "stop", "--dir", str(self.dir), "--timeout", str(self.stop_timeout),
            timeout=self.stop_timeout + 30,
        )  # fmt: skip
        if proc.returncode != 0:
            raise KafkaBrokerError(
                f"kafka.sh stop failed (exit {proc.returncode}):\n{self.last_output}"
            )

    def restart(self) -> None:
        self.stop()
        self.start()

    def is_running(self) -> bool:
        return self._run("status", "--dir", str(self.dir), timeout=30).returncode == 0

    def __enter__(self) -> KafkaBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"KafkaBroker(dir={str(self.dir)!r}, port={self.port})"


def broker_unless_given(bootstrap: str | None, folder: Path) -> tuple[str, KafkaBroker | None]:
    """For scripts (benchmarks): the given bootstrap servers, or a broker started in
    ``folder`` on a free port (stop it when done)."""
    if bootstrap is not None:
        return bootstrap, None
    broker = KafkaBroker(folder / "kafka", free_port())
    broker.start()
    return broker.bootstrap, broker
