"""A chDB store held by another process: the reading commands say who holds it and what to do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HOLD = """
import sys
from llmpulse.sinks.store import Store
store = Store.open(sys.argv[1])
store.migrate()
print("holding", flush=True)
sys.stdin.read()  # until the test closes our stdin
store.close()
"""


def test_a_command_on_a_held_store_names_the_holder_and_the_way_out(tmp_path: Path) -> None:
    url = f"chdb://{tmp_path / 'store'}"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, url], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        result = subprocess.run([sys.executable, "-m", "llmpulse.cli.main", "db", "status",
                                 "--clickhouse", url], capture_output=True, text=True, timeout=120)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(60)
    assert result.returncode != 0
    message = " ".join(result.stderr.split())
    assert f"PID {holder.pid}" in message, message
    assert "another process" in message and "--clickhouse" in message, message
    assert "BAD_ARGUMENTS" not in message, message
    # once the holder stopped, the same command works
    again = subprocess.run([sys.executable, "-m", "llmpulse.cli.main", "db", "status",
                            "--clickhouse", url], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "applied" in again.stdout
