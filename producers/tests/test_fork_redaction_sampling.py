"""Forking servers, redaction before sending, sampling: checked on the real broker."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka_events import read_events

import llmpulse.producers as llmpulse
from llmpulse.cli.topics import ensure_topics
from llmpulse.producers import Redactor

pytestmark = pytest.mark.kafka


@pytest.fixture
def prefix(kafka_bootstrap: str) -> str:
    p = f"t{uuid.uuid4().hex[:8]}."
    ensure_topics(kafka_bootstrap, prefix=p, partitions=2)
    return p


@pytest.fixture(autouse=True)
def _shutdown() -> Iterator[None]:
    yield
    llmpulse.shutdown(2)


def test_a_forked_child_sends_its_own_events(kafka_bootstrap: str, prefix: str,
                                             tmp_path: Path) -> None:
    llmpulse.init(app="forking", bootstrap_servers=kafka_bootstrap, topic_prefix=prefix,
                  spool_dir=tmp_path / "spool", flush_interval_s=0.05)
    with llmpulse.call(prompt_id="parent") as parent_call:
        parent_call.record_response("from the parent")
    pid = os.fork()
    if pid == 0:  # the child, as a gunicorn worker would be
        code = 1
        try:
            with llmpulse.call(prompt_id="child") as c:
                c.record_response(f"from the child {os.getpid()}")
            code = 0 if llmpulse.flush(15) and llmpulse.stats()["sent"] == 2 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0, "the child could not deliver its events"
    assert llmpulse.flush(10)
    got = read_events(kafka_bootstrap, [f"{prefix}llm.prompts", f"{prefix}llm.responses"],
                      expected=4)
    texts = sorted(e.event.text for e in got if hasattr(e.event, "text") and e.event.text)
    assert texts[0] == "from the child " + str(pid) and texts[1] == "from the parent"
    assert len({e.event.event_id for e in got}) == 4


def test_no_masked_value_reaches_kafka(kafka_bootstrap: str, prefix: str, tmp_path: Path) -> None:
    secrets = ["ada.lovelace@example.com", "4111 1111 1111 1111", "+44 20 7946 0958",
               "sk-proj-abcdefghijklmnopqrstuvwxyz012345", "192.168.10.23", "CUST-99812"]
    llmpulse.init(app="private", bootstrap_servers=kafka_bootstrap, topic_prefix=prefix,
                  spool_dir=tmp_path / "spool", flush_interval_s=0.05,
                  redact=Redactor(custom=lambda t: t.replace("CUST-99812", "[CUSTOMER]")))
    leaky = " | ".join(secrets)
    with llmpulse.call(prompt_id="p", messages=[{"role": "user", "content": leaky}],
                       context=[{"id": "doc", "content": leaky}],
                       template_variables={"email": secrets[0]}) as c:
        c.record_response(f"Sure, {leaky}")
    with llmpulse.call(prompt_id="p") as failing:
        failing.record_error("ValueError", f"bad input {secrets[0]}")
    assert llmpulse.feedback(c.call_id, comment=leaky, correction=leaky)
    assert llmpulse.flush(10)
    topics = [f"{prefix}llm.prompts", f"{prefix}llm.responses", f"{prefix}llm.feedback"]
    got = read_events(kafka_bootstrap, topics, expected=5)
    assert len(got) == 5
    from llmpulse.schemas import encode_event

    wire = b"".join(encode_event(e.event) for e in got).decode()
    for secret in secrets:
        assert secret not in wire, secret
    for tag in ("[EMAIL]", "[CARD]", "[PHONE]", "[SECRET]", "[IP]", "[CUSTOMER]"):
        assert tag in wire, tag


def test_sampling_keeps_the_rate_and_always_keeps_errors(kafka_bootstrap: str, prefix: str,
                                                         tmp_path: Path) -> None:
    llmpulse.init(app="sampled", bootstrap_servers=kafka_bootstrap, topic_prefix=prefix,
                  spool_dir=tmp_path / "spool", flush_interval_s=0.05, sample_rate=0.2,
                  sample_rule=lambda call: True if call.prompt_id == "vip" else None)
    for i in range(1000):
        with llmpulse.call(prompt_id="bulk") as c:
            if i % 100 == 0:
                c.record_error("Timeout", "slow")
            else:
                c.record_response("ok")
    for _ in range(20):
        with llmpulse.call(prompt_id="vip") as c:
            c.record_response("kept by rule")
    assert llmpulse.flush(10)
    stats = llmpulse.stats()
    got = read_events(kafka_bootstrap, [f"{prefix}llm.responses"], expected=1, idle_s=3)
    bulk_ok = [e for e in got if e.event.prompt_id == "bulk" and e.event.error is None]
    errors = [e for e in got if e.event.error is not None]
    vip = [e for e in got if e.event.prompt_id == "vip"]
    assert len(errors) == 10 and len(vip) == 20
    assert 140 <= len(bulk_ok) <= 260, len(bulk_ok)  # 20% of 990, binomial spread
    assert stats["sampled_out"] == 990 - len(bulk_ok)
