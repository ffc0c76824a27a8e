"""Test helper: run ``llmpulse worker`` as a real process, wait until it consumes.

Usage (``ensure_topics`` makes the whole catalogue, the worker's internal topics too)::

    ensure_topics(bootstrap, prefix=prefix, partitions=2)
    with WorkerProcess(bootstrap, prefix, tmp_path / "w") as worker:
        ...  # read llm.enriched, or the store behind running_sink (sink_thread.py)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


class WorkerProcess:
    """A Faust worker subprocess (``llmpulse worker --fast``); logs go to a file."""

    def __init__(self, bootstrap: str, prefix: str, workdir: Path, *, partitions: int = 2,
                 join_timeout_s: float = 300.0, heavy: bool = False, drift: bool = False,
                 role: str = "all", extra: list[str] | None = None,
                 cgroup: Path | None = None, env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.env = env  # replaces the inherited environment (benchmarks: caches on or off)
        self.cgroup = cgroup  # a CPU cgroup to start in (benchmarks: a CPU budget per worker)
        workdir.mkdir(parents=True, exist_ok=True)
        self.log = workdir / f"worker-{role}.log"
        self.args = [sys.executable, "-m", "llmpulse.cli.main", "worker", "--fast",
                     "--bootstrap-servers", bootstrap, "--prefix", prefix,
                     "--partitions", str(partitions), "--join-timeout", str(join_timeout_s),
                     "--role", role, "--datadir", str(workdir / f"data-{role}"),
                     "--loglevel", "info", *(extra or [])]
        if not heavy:
            self.args.append("--no-heavy")
        if not drift:
            self.args.append("--no-drift")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 90.0) -> float:
        """Start and wait for the consumer group to be joined; returns seconds taken."""
        t0 = time.monotonic()
        mark = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT,
                                         env={**(os.environ if self.env is None else self.env),
                                              "PYTHONUNBUFFERED": "1"},
                                         preexec_fn=self._enter_cgroup if self.cgroup else None)
        try:
            while time.monotonic() - t0 < timeout_s:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"worker exited {self.proc.returncode}:\n{self.tail()}")
                with open(self.log, "rb") as f:
                    f.seek(mark)
                    if b"[^Worker]: Ready" in f.read():
                        return time.monotonic() - t0
                time.sleep(0.2)
            raise TimeoutError(f"worker not ready after {timeout_s}s:\n{self.tail()}")
        except BaseException:
            # A ``with`` block whose start failed never reaches __exit__: end the process
            # here (left running, it went on consuming the test's topics and the CPU).
            self.kill()
            raise

    def _enter_cgroup(self) -> None:  # in the child, before exec
        assert self.cgroup is not None
        (self.cgroup / "cgroup.procs").write_text(str(os.getpid()))

    def cpu_seconds(self) -> float:
        """User + system CPU time the worker process has used so far (Linux /proc)."""
        if self.proc is None:
            return 0.0
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, no final commit."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self, lines: int = 40) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> WorkerProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
