"""A real single-node Apache Kafka broker (KRaft) for tests, run by scripts/kafka.sh.

The script is the one implementation of starting Kafka (fetching the jars from
Maven Central on first use, formatting storage, waiting until the broker
answers); this class only calls it.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import threading
import zlib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
KAFKA_SH = REPO_ROOT / "scripts" / "kafka.sh"


_PORTS_FIRST, _BLOCK = 20000, 400
"""Ports handed out: blocks of ``_BLOCK`` from ``_PORTS_FIRST``, below the kernel's
ephemeral range (32768 and up on Linux), which outgoing connections draw from."""
_next_port: dict[str, int] = {}
_ports_lock = threading.Lock()


def _block_start() -> int:
    """The first port this process hands out. Each pytest-xdist worker of a run has a block
    of its own (``gwN``: the run's block, from its ``PYTEST_XDIST_TESTRUNUID``, plus N), so
    the workers of one run never share a port; another run (a second suite on the same
    machine) starts from other blocks, and every process at a random place in its block,
    so two runs side by side meet only by chance, as ``bind(0)``'s ports would. Any other
    process (a serial run, a benchmark) takes a random block."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    blocks = (32768 - _PORTS_FIRST) // _BLOCK
    if worker.startswith("gw") and worker[2:].isdigit():
        run = zlib.crc32(os.environ.get("PYTEST_XDIST_TESTRUNUID", "").encode())
        block = (run + int(worker[2:])) % blocks
    else:
        block = random.randrange(blocks)
    return _PORTS_FIRST + block * _BLOCK + random.randrange(_BLOCK // 2)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on `host` that nothing listens on right now and that no other test
    process is handed: each pytest-xdist worker takes its ports from a block of its own,
    and one process never hands the same port out twice in a row, so two servers started
    side by side cannot both be given a port before either binds it (as ports the kernel
    picks with ``bind(0)`` could be, in two processes)."""
    with _ports_lock:
        start = _next_port.get(host)
        if start is None:
            start = _block_start()
        base = start - (start - _PORTS_FIRST) % _BLOCK
        for step in range(_BLOCK):
            port = base + (start - base + step) % _BLOCK
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind((host, port))
                except OSError:
                    continue  # in use (or lingering): the next one
            _next_port[host] = base + (port - base + 1) % _BLOCK
            return port
    raise OSError(f"no free port left in {base}-{base + _BLOCK - 1} on {host}")


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
        # The controller's port, from free_port() as the broker's is, on the first start only:
        # a restart keeps the one in the formatted quorum (kafka.sh reads it back).
        first = () if (self.dir / "server.properties").exists() else (
            "--controller-port", str(free_port()))
        # The first start may fetch the jars with Maven: allow for it on top of the start bound.
        proc = self._run(
            "start",
            "--port", str(self.port),
            "--dir", str(self.dir),
            "--heap", self.heap,
            "--timeout", str(self.start_timeout),
            *first,
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
