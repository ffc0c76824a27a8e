"""Times read the same way on every command: a duration before now, or an ISO time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from llmpulse.schemas.commandline import moment_range, parse_moment, run_command
from llmpulse.schemas.errors import LlmpulseError

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "expected"), [
    ("90s", NOW - timedelta(seconds=90)),
    ("30m", NOW - timedelta(minutes=30)),
    ("2h", NOW - timedelta(hours=2)),
    ("1.5d", NOW - timedelta(days=1.5)),
    ("2w", NOW - timedelta(weeks=2)),
    ("2026-11-30T08:00", datetime(2026, 11, 30, 8, 0, tzinfo=UTC)),
    ("2026-11-30T08:00+02:00", datetime(2026, 11, 30, 8, 0, tzinfo=timezone(timedelta(hours=2)))),
])
def test_durations_and_iso_times(text: str, expected: datetime) -> None:
    assert parse_moment(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "2 hours", "-2h", ""])
def test_anything_else_says_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not a time: use a duration before now \(30m, 2h"):
        parse_moment(text, now=NOW)


def test_a_range_counts_its_start_back_from_its_end() -> None:
    assert moment_range("1d", "6h", now=NOW) == (NOW - timedelta(hours=30), NOW - timedelta(hours=6))
    assert moment_range(None, None, now=NOW) == (None, None)
    assert moment_range("2h", None, now=NOW) == (NOW - timedelta(hours=2), None)
    with pytest.raises(ValueError, match="is not before the end"):
        moment_range("2026-12-01T11:00", "2026-12-01T10:00", now=NOW)


def test_an_llmpulse_error_ends_in_one_line_and_status_1(capsys: pytest.CaptureFixture[str]) -> None:
    def failing(prog_name: str) -> None:
        raise LlmpulseError("the store is busy: stop the other process")

    def exiting(prog_name: str) -> None:
        raise SystemExit(2)

    assert run_command(failing, "llmpulse") == 1
    assert capsys.readouterr().err == "llmpulse: error: the store is busy: stop the other process\n"
    assert run_command(exiting, "llmpulse") == 2
    with pytest.raises(KeyError):  # an unexpected error keeps its traceback
        run_command(lambda prog_name: {}["x"], "llmpulse")


def test_a_broker_is_required_to_accept_a_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from llmpulse.schemas.commandline import BrokerUnreachable, require_broker

    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        require_broker(f"127.0.0.1:1,PLAINTEXT://127.0.0.1:{port}")  # one that answers is enough
    with pytest.raises(BrokerUnreachable) as refused:  # closed now: refused at once
        require_broker(f"127.0.0.1:{port}")
    assert str(refused.value) == (
        f"Kafka at 127.0.0.1:{port} did not answer (127.0.0.1:{port}: Connection refused): "
        "start the broker, or check --bootstrap-servers (or $LLMPULSE_BOOTSTRAP_SERVERS)")
    waits: list[float] = []

    def no_answer(address: tuple[str, int], timeout: float) -> None:
        waits.append(timeout)
        raise TimeoutError

    monkeypatch.setattr(socket, "create_connection", no_answer)
    monkeypatch.setenv("LLMPULSE_BROKER_CHECK_SECONDS", "0.5")
    with pytest.raises(BrokerUnreachable, match=r"\(kafka:9092: no answer in 0.5 s\)"):
        require_broker("kafka:9092")
    with pytest.raises(BrokerUnreachable, match=r"no answer in 2 s"):
        require_broker("kafka:9092", timeout_s=2)
    assert waits == [0.5, 2]


def test_a_bootstrap_server_without_a_port_is_tried_on_kafkas_default(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from llmpulse.schemas.commandline import require_broker

    tried: list[tuple[str, int]] = []

    class Answered:
        def __enter__(self) -> None:
            return None

        def __exit__(self, *exc: object) -> None:
            return None

    def answers(address: tuple[str, int], timeout: float) -> Answered:
        tried.append(address)
        return Answered()

    monkeypatch.setattr(socket, "create_connection", answers)
    require_broker("kafka")  # librdkafka takes a bare host on 9092; so does the check
    require_broker("PLAINTEXT://[::1]:9093")
    require_broker("::1")
    assert tried == [("kafka", 9092), ("::1", 9093), ("::1", 9092)]


class _Listener:
    """A real local TCP server that is not Kafka: ``answer`` is what it sends on each
    connection (None: it reads and never answers, as an HTTP server waiting for a line;
    b"": it closes at once)."""

    def __init__(self, answer: bytes | None) -> None:
        import socket
        import threading

        self.answer = answer
        self.server = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.server.getsockname()[1]}"
        self.held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            if self.answer is None:
                self.held.append(connection)
                continue
            connection.sendall(self.answer)
            connection.close()

    def close(self) -> None:
        import socket

        self.server.shutdown(socket.SHUT_RDWR)  # wakes the accept (Linux): the port closes
        self.server.close()
        for connection in self.held:
            connection.close()


def test_a_listener_that_is_not_kafka_is_named_in_one_line() -> None:
    """``require_kafka`` sends Kafka's ApiVersions request: a listening port of another
    service (HTTP, SSH, a port that closes) fails with what it answered, and what to do."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    from llmpulse.schemas.commandline import BrokerNotKafka, BrokerUnreachable, require_kafka

    http = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    Thread(target=http.serve_forever, daemon=True).start()
    address = f"127.0.0.1:{http.server_address[1]}"
    try:
        with pytest.raises(BrokerNotKafka) as waited:  # it waits for a request line
            require_kafka(address, timeout_s=0.5)
    finally:
        http.shutdown()
        http.server_close()
    assert str(waited.value) == (
        f"{address} did not answer as Kafka ({address}: connected, but no Kafka answer in "
        "0.5 s): is it another service's address? Check --bootstrap-servers (or "
        "$LLMPULSE_BOOTSTRAP_SERVERS) against the broker's listener port")
    assert isinstance(waited.value, BrokerUnreachable)  # caught where the old error was

    banner = _Listener(b"SSH-2.0-OpenSSH_9.2p1\r\n")
    closes = _Listener(b"")
    html = _Listener(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    try:
        with pytest.raises(BrokerNotKafka, match=r"it answered 'SSH-2.0-OpenSSH_9.2p1', not Kafka"):
            require_kafka(banner.address, timeout_s=5)
        with pytest.raises(BrokerNotKafka, match="it closed the connection without a Kafka answer"):
            require_kafka(closes.address, timeout_s=5)
        with pytest.raises(BrokerNotKafka, match=r"it answered 'HTTP/1.1 400 Bad Request', not Kafka"):
            require_kafka(html.address, timeout_s=5)
        with pytest.raises(BrokerNotKafka) as both:  # every server is named with its reason
            require_kafka(f"{banner.address},127.0.0.1:1", timeout_s=5)
        assert "127.0.0.1:1: Connection refused" in str(both.value)
    finally:
        for listener in (banner, closes, html):
            listener.close()


def test_over_tls_only_the_connection_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ApiVersions request would need the client's TLS settings: with an SSL security
    protocol the check is the TCP one (a listener passes, a closed port fails)."""
    from llmpulse.schemas.commandline import BrokerUnreachable, require_kafka

    monkeypatch.setenv("LLMPULSE_KAFKA_SECURITY_PROTOCOL", "sasl_ssl")
    quiet = _Listener(None)
    try:
        require_kafka(quiet.address, timeout_s=0.5)
    finally:
        quiet.close()
    with pytest.raises(BrokerUnreachable, match="Connection refused"):
        require_kafka("127.0.0.1:1", timeout_s=0.5)  # nothing listens on 1 (a closed port can be re-used)


@pytest.mark.slow
def test_a_real_kafka_answers_the_check(kafka_bootstrap: str) -> None:
    from llmpulse.schemas.commandline import require_kafka

    banner = _Listener(b"SSH-2.0-OpenSSH_9.2p1\r\n")
    try:
        require_kafka(kafka_bootstrap)
        require_kafka(f"{banner.address},{kafka_bootstrap}")  # one Kafka among them is enough
    finally:
        banner.close()


def test_the_health_option_serves_warns_on_a_taken_default_and_fails_on_a_taken_choice(
        caplog: pytest.LogCaptureFixture) -> None:
    """``health_address_option`` and ``serve_command_health``: what the worker, the OTLP
    stage and the sink share."""
    import socket
    import urllib.request

    import click
    from click.testing import CliRunner
    from prometheus_client import CollectorRegistry

    from llmpulse.schemas.commandline import health_address_option, serve_command_health

    taken = socket.create_server(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    seen: list[str] = []

    @click.command()
    @health_address_option(click, f"127.0.0.1:{port}")
    def service(health_address: str) -> None:
        server = serve_command_health(click, CollectorRegistry(), lambda: (True, "ok"),
                                      health_address)
        if server is None:
            seen.append("none")
            return
        try:
            with urllib.request.urlopen(f"{server.url}/healthz", timeout=5) as answer:
                seen.append(str(answer.status))
        finally:
            server.stop()

    runner = CliRunner()
    try:
        with caplog.at_level("WARNING", logger="llmpulse.schemas.health"):
            assert runner.invoke(service, []).exit_code == 0  # the default is taken: a warning
        assert any(r.levelname == "WARNING" and "health endpoints not served" in r.getMessage()
                   for r in caplog.records), caplog.text
        failed = runner.invoke(service, ["--health-address", f"127.0.0.1:{port}"])
        assert failed.exit_code == 1 and "Error:" in failed.output  # chosen: one line
        assert runner.invoke(service, ["--health-address", "off"]).exit_code == 0
        assert runner.invoke(service, ["--health-address", "127.0.0.1:0"]).exit_code == 0
    finally:
        taken.close()
    assert seen == ["none", "none", "200"]
    shown = " ".join(runner.invoke(service, ["--help"]).output.split())
    assert "Not loopback: $LLMPULSE_HEALTH_TOKEN is required. [env var: LLMPULSE_HEALTH_ADDRESS;" in shown
