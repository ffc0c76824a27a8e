"""Expected failures end in one line and a non-zero status, never a traceback.

Each command runs as a user runs it: the installed entry point, in its own process.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each case starts the command in its own process

BIN = Path(sys.executable).parent


def _run(*args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


def _said(done: subprocess.CompletedProcess[str]) -> list[str]:
    """What llmpulse itself wrote to stderr (chDB and librdkafka print their own lines too)."""
    return [line for line in done.stderr.splitlines()
            if line.startswith(("Error:", "llmpulse", "llmpulse-"))]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_bad_configuration_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("scoring: [unclosed\n")
    (tmp_path / "unknown.yaml").write_text("scoring:\n  nope: 1\n")
    for name, what in (("broken.yaml", "not valid YAML: line 2, column 1"),
                       ("unknown.yaml", "unknown field `nope`"),
                       ("missing.yaml", "No such file or directory")):
        done = _run("llmpulse", "worker", "--bootstrap-servers", "127.0.0.1:1", "--config", name,
                    cwd=tmp_path)
        assert done.returncode == 1, done.stderr
        assert "Traceback" not in done.stderr
        assert done.stderr.strip() == f"llmpulse: error: {name}: {what}" or (
            done.stderr.startswith(f"llmpulse: error: {name}: ") and what in done.stderr
            and len(done.stderr.strip().splitlines()) == 1), done.stderr


def test_a_store_that_was_never_migrated_says_to_migrate(tmp_path: Path) -> None:
    url = f"chdb://{tmp_path / 'fresh'}"
    done = _run("llmpulse", "report", "--clickhouse", url, "--out", "r.html", cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert _said(done) == [f"Error: the store {url} was never migrated: run "
                           f"`llmpulse db migrate --clickhouse '{url}'` first"], done.stderr
    assert not (tmp_path / "r.html").exists()


def test_a_busy_embedded_store_is_one_line(tmp_path: Path) -> None:
    url = f"chdb://{tmp_path / 'held'}"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys\nfrom llmpulse.sinks.store import Store\n"
         f"s = Store.open({url!r})\nprint('open', flush=True)\nsys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        done = _run("llmpulse", "db", "status", "--clickhouse", url, cwd=tmp_path)
    finally:
        holder.communicate("", timeout=60)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    said = _said(done)
    assert len(said) == 1 and "is open in another process: PID" in said[0], done.stderr


@pytest.mark.parametrize("command", [
    ["export", "--out", "day.jsonl", "--since", "2h"],
    ["topics", "create"],
])
def test_an_unreachable_broker_is_one_line(tmp_path: Path, command: list[str]) -> None:
    broker = f"127.0.0.1:{_free_port()}"  # nothing listens there
    done = _run("llmpulse", *command, "--bootstrap-servers", broker, cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    said = _said(done)
    assert len(said) == 1 and said[0].startswith(f"Error: Kafka at {broker} did not answer"), done.stderr
    assert "start the broker" in said[0]


def test_a_worker_or_sink_without_its_broker_stops_at_once_in_one_line(tmp_path: Path) -> None:
    """Checked before the worker loads its models and before the sink opens its store: one
    line, status 1, no librdkafka or Faust output."""
    broker = f"127.0.0.1:{_free_port()}"  # nothing listens there: refused at once
    for command in (["worker", "--health-address", "off"],
                    ["sink", "--clickhouse", f"chdb://{tmp_path / 'store'}",
                     "--health-address", "off"]):
        done = _run("llmpulse", *command, "--bootstrap-servers", broker, cwd=tmp_path)
        assert done.returncode == 1 and "Traceback" not in done.stderr, (command, done.stderr)
        assert done.stderr.strip().splitlines() == [
            f"llmpulse: error: Kafka at {broker} did not answer ({broker}: Connection refused): "
            "start the broker, or check --bootstrap-servers (or $LLMPULSE_BOOTSTRAP_SERVERS)"
        ], (command, done.stderr)
    assert not (tmp_path / "store").exists()  # the sink never opened its store


def test_a_worker_or_sink_pointed_at_a_service_that_is_not_kafka_says_so(tmp_path: Path) -> None:
    """A port that listens but is not Kafka (here a real local HTTP server) ends the worker
    and the sink at their start check in one line, status 1: not Faust's or librdkafka's
    traceback after minutes of retries."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    http = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    Thread(target=http.serve_forever, daemon=True).start()
    broker = f"127.0.0.1:{http.server_address[1]}"
    env = {**os.environ, "LLMPULSE_BROKER_CHECK_SECONDS": "1"}
    try:
        for command in (["worker", "--health-address", "off"],
                        ["sink", "--clickhouse", f"chdb://{tmp_path / 'store'}",
                         "--health-address", "off"]):
            done = subprocess.run([str(BIN / "llmpulse"), *command, "--bootstrap-servers", broker],
                                  capture_output=True, text=True, cwd=tmp_path, timeout=180,
                                  env=env)
            assert done.returncode == 1 and "Traceback" not in done.stderr, (command, done.stderr)
            assert done.stderr.strip().splitlines() == [
                f"llmpulse: error: {broker} did not answer as Kafka ({broker}: connected, but "
                "no Kafka answer in 1 s): is it another service's address? Check "
                "--bootstrap-servers (or $LLMPULSE_BOOTSTRAP_SERVERS) against the broker's "
                "listener port"], (command, done.stderr)
    finally:
        http.shutdown()
        http.server_close()
    assert not (tmp_path / "store").exists()  # the sink never opened its store


def test_times_read_the_same_on_every_command(tmp_path: Path) -> None:
    for command in (["export", "--bootstrap-servers", "x", "--out", "a.jsonl"],
                    ["report", "--clickhouse", f"chdb://{tmp_path / 's'}"]):
        done = _run("llmpulse", *command, "--since", "yesterday", cwd=tmp_path)
        assert done.returncode == 2 and "'yesterday' is not a time" in done.stderr, done.stderr
    for command in (["replay"], ["export"], ["import"], ["worker"], ["sink"], ["report"], ["compare"],
                    ["demo"], ["db", "migrate"], ["db", "status"], ["otlp", "run"]):
        text = _run("llmpulse", *command, "--help", cwd=tmp_path).stdout
        if command[0] in {"replay", "export", "report", "compare"}:
            assert "--from, --since" in text or "--since, --from" in text, (command, text)
            assert "--to, --until" in text or "--until, --to" in text, (command, text)
        assert "--log-level, --loglevel [debug|info|warning|error]" in text, (command, text)


def test_the_log_level_is_one_choice_list_everywhere(tmp_path: Path) -> None:
    """A level outside the list is a usage error (status 2, one line), never a traceback;
    any case of a listed level is accepted."""
    for command in (["sink", "--bootstrap-servers", "127.0.0.1:1"], ["worker"], ["report"],
                    ["db", "status"], ["demo"]):
        done = _run("llmpulse", *command, "--log-level", "verbose", cwd=tmp_path)
        assert done.returncode == 2 and "Traceback" not in done.stderr, (command, done.stderr)
        assert "Invalid value for '--log-level' / '--loglevel': 'verbose' is not one of " \
               "'debug', 'info', 'warning', 'error'." in done.stderr, (command, done.stderr)
    url = f"chdb://{tmp_path / 'store'}"
    done = _run("llmpulse", "db", "migrate", "--clickhouse", url, "--log-level", "INFO",
                cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "INFO" in done.stderr  # the level took effect: the store's INFO lines show


def test_the_demo_names_its_broker_like_every_other_command(tmp_path: Path) -> None:
    text = _run("llmpulse", "demo", "--help", cwd=tmp_path).stdout
    assert "--bootstrap-servers, --kafka HOST:PORT" in text, text
