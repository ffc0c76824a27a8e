"""SDK parts that need no broker: redaction, configuration, the spool, never raising."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

import llmpulse.producers as llmpulse
from llmpulse.producers._spool import Spool, SpooledRecord
from llmpulse.producers.config import SdkConfig
from llmpulse.producers.redaction import Redactor, luhn_valid


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to ada@example.co.uk today", "write to [EMAIL] today"),
        ("visa 4111-1111-1111-1111 ok", "visa [CARD] ok"),
        ("amex 3782 822463 10005", "amex [CARD]"),
        ("not a card 4111 1111 1111 1112", "not a card 4111 1111 1111 1112"),
        ("call +1 (555) 123-4567 now", "call [PHONE] now"),
        ("key sk-proj-abcdefghijklmnopqrstuvwxyz012345", "key [SECRET]"),
        ("aws AKIAIOSFODNN7EXAMPLE", "aws [SECRET]"),
        ("Authorization: Bearer abcdefghijklmnop1234", "Authorization: Bearer [SECRET]"),
        ("password=hunter2hunter2", "password=[SECRET]"),  # the value, not its name
        ("IBAN GB82 WEST 1234 5698 7654 32, SSN 123-45-6789", "IBAN [IBAN], SSN [NATIONAL_ID]"),
        ("order 5550123 shipped", "order [PHONE] shipped"),  # loose: 7 digits may be a phone
        ("host 10.1.2.3 and 2001:db8::1", "host [IP] and [IP]"),
        ("at 12:30:45 on 2024-05-01, 3 for 19.99", "at 12:30:45 on 2024-05-01, 3 for 19.99"),
        ("", ""),
    ],
)
def test_built_in_maskers(text: str, expected: str) -> None:
    assert Redactor()(text) == expected


def test_redactor_choice_custom_function_and_failure() -> None:
    assert Redactor(["email"])("ada@example.com 4111111111111111") == "[EMAIL] 4111111111111111"
    assert Redactor([], custom=lambda t: t[::-1])("abc") == "cba"
    assert Redactor(custom=lambda t: 1 / 0)("secret stuff") == "[REDACTION FAILED]"
    with pytest.raises(ValueError, match="unknown maskers"):
        Redactor(["ssn"])
    assert luhn_valid("4111 1111 1111 1111") and not luhn_valid("1234 5678 9012 3456")


def test_config_keywords_beat_environment_beat_defaults(tmp_path: Path) -> None:
    environ = {"LLMPULSE_APP": "from-env", "LLMPULSE_SDK_SAMPLE_RATE": "0.25",
               "LLMPULSE_SDK_FLUSH_INTERVAL_MS": "250", "LLMPULSE_SDK_REDACT": "email,card",
               "LLMPULSE_SDK_SPOOL_DIR": str(tmp_path), "LLMPULSE_KAFKA_SASL_MECHANISM": "PLAIN",
               "LLMPULSE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}
    cfg = SdkConfig.resolve(environ=environ, app="from-kw")
    assert cfg.app == "from-kw" and cfg.sample_rate == 0.25 and cfg.flush_interval_s == 0.25
    assert cfg.redact is not None and cfg.redact.maskers == ("email", "card")
    assert cfg.spool_dir == tmp_path
    assert cfg.kafka_config == {"sasl.mechanism": "PLAIN", "security.protocol": "SASL_SSL"}
    assert SdkConfig.resolve(environ={}).max_batch_events == 500
    with pytest.raises(ValueError, match="LLMPULSE_SDK_SAMPLE_RATE"):
        SdkConfig.resolve(environ={"LLMPULSE_SDK_SAMPLE_RATE": "lots"})
    with pytest.raises(ValueError, match="sample_rate"):
        SdkConfig.resolve(environ={}, sample_rate=2)
    with pytest.raises(TypeError, match="unknown llmpulse option"):
        SdkConfig.resolve(environ={}, colour="blue")


def _record(i: int, size: int = 100) -> SpooledRecord:
    return SpooledRecord("llm.prompts", i % 3, f"k{i}".encode(), bytes([i % 256]) * size, 2)


def test_spool_round_trip_eviction_and_torn_tail(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=10 * 1024 * 1024)
    for i in range(10):
        assert spool.append(_record(i))
    assert spool.events == 20
    path, records = spool.take_oldest()  # type: ignore[misc]
    assert records == [_record(i) for i in range(10)]
    spool.release(path)
    assert spool.events == 0 and not path.exists()

    small = Spool(tmp_path / "small", max_bytes=1)  # every segment but the newest is evicted
    import llmpulse.producers._spool as module

    old, module._SEGMENT_BYTES = module._SEGMENT_BYTES, 150
    try:
        for i in range(5):
            small.append(_record(i))
    finally:
        module._SEGMENT_BYTES = old
    assert small.evicted_events == 8 and small.events == 2

    torn = Spool(tmp_path / "torn", max_bytes=10**9)
    torn.append(_record(1))
    torn.append(_record(2))
    segment = next(torn.dir.glob("seg-*.spool"))
    with open(segment, "ab") as f:
        f.write(b"\x10\x00\x00")  # a write cut short by a kill
    _, got = torn.take_oldest()  # type: ignore[misc]
    assert got == [_record(1), _record(2)] and torn.torn_records == 1


def test_a_new_spool_adopts_only_the_segments_of_dead_processes(tmp_path: Path) -> None:
    alive = Spool(tmp_path, max_bytes=10**9)
    alive.append(_record(1))
    dead_dir = tmp_path / "p-999999-deadbeef"
    dead_dir.mkdir()
    (dead_dir / "lock").touch()
    helper = Spool(tmp_path / "scratch", max_bytes=10**9)
    helper.append(_record(7))
    helper.append(_record(8))
    helper.close()
    os.replace(next((tmp_path / "scratch").glob("p-*/seg-*.spool")), dead_dir / "seg-000000000001.spool")

    newcomer = Spool(tmp_path, max_bytes=10**9)
    assert newcomer.events == 4, "two records of two events from the dead process"
    assert not dead_dir.exists()
    assert alive.dir.exists() and alive.events == 2, "a live process keeps its spool"
    fd = os.open(alive.dir / "lock", os.O_RDWR)
    with pytest.raises(OSError):
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.close(fd)


def test_the_sdk_never_raises_into_the_app(tmp_path: Path) -> None:
    llmpulse.init(app="robust", bootstrap_servers="127.0.0.1:1", spool_dir=tmp_path,
                  delivery_timeout_s=0.5)
    try:
        with llmpulse.call(prompt_id="p", attributes={"unserialisable": object()}) as c:
            c.record_response("x")
        with llmpulse.call(prompt_id="p", context=[object()]) as c2:
            c2.record_response(text=None)
        assert llmpulse.feedback("nope", thumbs="sideways") is False

        @llmpulse.track(capture_output=lambda r: 1 / 0)
        def f(q: str) -> str:
            return q

        assert f("still works") == "still works"
        llmpulse.flush(0.5)  # events are built off the app's thread: the bad one fails there
        stats = llmpulse.stats()
        assert stats["errors_by_place"] == {"build": 1, "track_output": 1}
        assert stats["dropped_by_reason"] == {"invalid_feedback": 1, "encode_error": 2}
    finally:
        llmpulse.shutdown(1)


def test_disabled_sdk_is_a_no_op() -> None:
    llmpulse.init(app="off", enabled=False)
    with llmpulse.call(prompt_id="p") as c:
        c.record_response("x")
    assert llmpulse.stats()["dropped"] == 0 and llmpulse.stats()["captured"] == 0
    llmpulse.shutdown()
