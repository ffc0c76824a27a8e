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
