"""free_port(): ports no other test process is handed, never one in use, never the kernel's
ephemeral ones (which outgoing connections take)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import kafka_broker
import pytest
from kafka_broker import free_port

EPHEMERAL_FIRST = 32768
HERE = Path(__file__).resolve().parent


def ports_of(worker: str | None, count: int, run: str = "run-1") -> list[int]:
    """``count`` ports handed out in a fresh interpreter that is xdist worker ``worker`` of
    the pytest-xdist run ``run``."""
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_XDIST_WORKER"}
    env["PYTEST_XDIST_TESTRUNUID"] = run
    if worker is not None:
        env["PYTEST_XDIST_WORKER"] = worker
    code = (f"import sys; sys.path.insert(0, {str(HERE)!r}); from kafka_broker import free_port; "
            f"print(*[free_port() for _ in range({count})])")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout
    return [int(p) for p in out.split()]


def test_two_xdist_workers_are_never_handed_the_same_port() -> None:
    gw0, gw1, serial = ports_of("gw0", 100), ports_of("gw1", 100), ports_of(None, 100)
    assert not set(gw0) & set(gw1)
    assert all(len(set(ports)) == 100 for ports in (gw0, gw1, serial))
    assert max(gw0 + gw1 + serial) < EPHEMERAL_FIRST


def test_another_run_side_by_side_starts_from_other_blocks() -> None:
    # two suites on one machine: the same worker of two runs is not handed the same ports
    # in the same order (the run's id picks its blocks; these two ids pick different ones)
    first, second = ports_of("gw0", 20, run="run-1"), ports_of("gw0", 20, run="run-2")
    block = kafka_broker._BLOCK
    assert {p // block for p in first}.isdisjoint({p // block for p in second})


def test_one_process_never_hands_out_a_port_twice_in_a_row() -> None:
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == 50
    for port in ports:  # each was free when handed out, and nothing here took it
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_a_port_something_listens_on_is_passed_over(monkeypatch: pytest.MonkeyPatch) -> None:
    taken = free_port()
    with socket.create_server(("127.0.0.1", taken)):
        monkeypatch.setitem(kafka_broker._next_port, "127.0.0.1", taken)  # it would be next
        assert free_port() != taken
