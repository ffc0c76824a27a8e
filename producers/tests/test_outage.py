"""Kafka down: nothing on the app's path waits, nothing is lost; the spool survives a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from kafka_broker import KafkaBroker, free_port
from kafka_events import read_events

import llmpulse.producers as llmpulse
from llmpulse.cli.topics import ensure_topics

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def _wait(predicate, timeout_s: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_outage_of_the_broker_loses_nothing_and_never_blocks_the_app(tmp_path: Path) -> None:
    broker = KafkaBroker(tmp_path / "kafka", free_port())
    broker.start()
    try:
        ensure_topics(broker.bootstrap, partitions=3)
        llmpulse.init(app="outage", bootstrap_servers=broker.bootstrap, flush_interval_s=0.05,
                      spool_dir=tmp_path / "spool", delivery_timeout_s=3.0)

        @llmpulse.track(prompt_id="p", prompt_version="1", model="m")
        def ask(q: str) -> str:
            return "answer " + q

        for i in range(100):
            ask(f"before {i}")
        assert llmpulse.flush(15)

        broker.stop()
        durations = []
        for i in range(5000):
            t0 = time.perf_counter()
            ask(f"during {i}")
            durations.append(time.perf_counter() - t0)
            if i % 500 == 0:
                time.sleep(0.05)  # a little wall time, as a real app would have
        assert _wait(lambda: llmpulse.stats()["spool_events"] > 0, 20), llmpulse.stats()
        broker.start()

        expected = 2 * 5100
        assert _wait(lambda: llmpulse.stats()["sent"] >= expected, 90), llmpulse.stats()
        stats = llmpulse.stats()
        got = read_events(broker.bootstrap, ["llm.prompts", "llm.responses"], expected=expected,
                          timeout_s=60)
    finally:
        llmpulse.shutdown(2)
        broker.stop()

    ids = {e.event.event_id for e in got}
    assert len(ids) == expected, f"{len(ids)} distinct events of {expected}; stats={stats}"
    assert stats["dropped"] == 0 and stats["spooled"] > 0 and stats["resent_from_spool"] > 0
    durations.sort()
    p50, p99, worst = (durations[len(durations) // 2], durations[int(len(durations) * 0.99)],
                       durations[-1])
    print(json.dumps({"outage_app_call_us": {"p50": round(p50 * 1e6, 1),
                                             "p99": round(p99 * 1e6, 1),
                                             "max": round(worst * 1e6, 1)}}))
    assert worst < 0.5, "a call on the app's thread waited for the network"


_CHILD = textwrap.dedent("""
    import sys, time
    import llmpulse.producers as llmpulse
    llmpulse.init(app="killed", bootstrap_servers=sys.argv[1], spool_dir=sys.argv[2],
                  flush_interval_s=0.05, delivery_timeout_s=1.0)
    with llmpulse.call(prompt_id="p") as c:
        c.record_response("before the kill")
    deadline = time.time() + 30
    while llmpulse.stats()["spool_events"] < 2 and time.time() < deadline:
        time.sleep(0.1)
    print(llmpulse.stats()["spool_events"], c.call_id, flush=True)
    time.sleep(60)  # killed here, with the events in the spool
""")


def test_a_killed_process_leaves_its_spool_and_the_next_process_sends_it(
        tmp_path: Path, kafka_bootstrap: str) -> None:
    spool = tmp_path / "spool"
    dead_port = free_port()  # nothing listens: the first process can only spool
    child = subprocess.Popen([sys.executable, "-c", _CHILD, f"127.0.0.1:{dead_port}", str(spool)],
                             stdout=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline().split()  # type: ignore[union-attr]
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert line and int(line[0]) == 2, line
    call_id = line[1]

    prefix = f"t{uuid.uuid4().hex[:8]}."
    ensure_topics(kafka_bootstrap, partitions=2, prefix=prefix)
    # The spooled records name the un-prefixed topics of the first process; a new process
    # with the same spool folder adopts the dead one's segments and sends them.
    ensure_topics(kafka_bootstrap, partitions=2)
    llmpulse.init(app="killed", bootstrap_servers=kafka_bootstrap, spool_dir=spool,
                  flush_interval_s=0.05)
    try:
        assert _wait(lambda: llmpulse.stats()["resent_from_spool"] >= 2, 30), llmpulse.stats()
        got = read_events(kafka_bootstrap, ["llm.prompts", "llm.responses"], expected=2)
    finally:
        llmpulse.shutdown(2)
    mine = [e for e in got if e.event.call_id == call_id]
    assert sorted(type(e.event).__name__ for e in mine) == ["PromptEvent", "ResponseEvent"]
    assert not list((spool / "killed").glob("p-*/seg-*.spool")), "sent segments are removed"
