"""The SDK's surface: a typed keyword-only ``init``, one Delivery protocol for both
transports, and no Kafka client loaded before the first event is sent."""

from __future__ import annotations

import dataclasses
import inspect
import json
import subprocess
import sys
import uuid

import pytest

import llmpulse.producers as llmpulse
from llmpulse.producers._delivery import Delivery
from llmpulse.producers._local import LocalTransport
from llmpulse.producers._transport import Transport
from llmpulse.producers.config import SdkConfig


def test_init_takes_every_option_by_keyword_only_with_a_type() -> None:
    params = inspect.signature(llmpulse.init).parameters
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params.values())
    assert all(p.annotation is not inspect.Parameter.empty for p in params.values())
    options = {f.name for f in dataclasses.fields(SdkConfig)}
    assert set(params) == options | {"environ"}, set(params) ^ (options | {"environ"})
    with pytest.raises(TypeError):
        llmpulse.init("support-bot")  # type: ignore[misc]
    with pytest.raises(TypeError):
        llmpulse.init(ap="typo")  # type: ignore[call-arg]


def test_init_options_reach_the_config_and_the_environment_fills_the_rest() -> None:
    client = llmpulse.init(app="kw-app", sample_rate=0.5, enabled=False,
                           environ={"LLMPULSE_APP": "env-app", "LLMPULSE_ENVIRONMENT": "staging"})
    try:
        assert (client.config.app, client.config.environment, client.config.sample_rate,
                client.config.enabled) == ("kw-app", "staging", 0.5, False)
    finally:
        llmpulse.shutdown()


def test_both_transports_are_deliveries() -> None:
    members = [name for name, _ in inspect.getmembers(Delivery) if not name.startswith("_")]
    assert members == ["abandon_after_fork", "close", "enqueue", "enqueue_call", "flush", "status"]
    for cls in (Transport, LocalTransport):
        assert all(callable(getattr(cls, name, None)) for name in members), cls


def test_embedded_delivery_reports_through_the_protocol() -> None:
    sent: list[str] = []
    llmpulse.init(app="local", deliver_to=lambda topic, key, value: sent.append(topic))
    try:
        with llmpulse.call(prompt_id="answer", messages=[{"role": "user", "content": "Hi"}]) as c:
            c.record_response("Hello", input_tokens=1, output_tokens=1)
        stats = llmpulse.stats()
        assert sent == ["llm.prompts", "llm.responses"]
        assert stats["connected"] is True and stats["sent"] == 2
    finally:
        llmpulse.shutdown()


def test_confluent_kafka_loads_on_the_first_send_not_on_import_or_init(tmp_path) -> None:
    """Cold start: importing and configuring the SDK loads no Kafka client."""
    code = f"""
import json, sys
import llmpulse.producers as llmpulse
seen = {{"import": "confluent_kafka" in sys.modules}}
llmpulse.init(app="cold", bootstrap_servers="127.0.0.1:1", spool_dir={str(tmp_path)!r},
              shutdown_timeout_s=0.1)
seen["init"] = "confluent_kafka" in sys.modules
llmpulse.feedback("0190a3c4-0000-7000-8000-000000000001", thumbs="up")
seen["send"] = "confluent_kafka" in sys.modules
seen["dropped"] = llmpulse.stats()["dropped_by_reason"]
llmpulse.shutdown(0.1)
print(json.dumps(seen))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen == {"import": False, "init": False, "send": True, "dropped": {}}, (seen, out.stderr)


@pytest.mark.kafka
def test_each_partition_receives_calls_in_the_order_the_app_made_them(
        tmp_path, kafka_bootstrap: str) -> None:
    """A burst right after ``init`` (before the topics' partitions are known, and faster
    than the flusher builds, so the app thread builds some calls itself) still arrives in
    capture order on every partition: consumers such as the drift monitor's count-based
    reference take "the first N calls" to mean the oldest ones."""
    from kafka_events import read_events

    from llmpulse.cli.topics import ensure_topics

    prefix = f"order{uuid.uuid4().hex[:8]}."
    ensure_topics(kafka_bootstrap, partitions=2, prefix=prefix)
    llmpulse.init(app="ordered", bootstrap_servers=kafka_bootstrap, topic_prefix=prefix,
                  spool_dir=tmp_path, max_batch_events=20, flush_interval_s=0.05)
    made: list[str] = []
    try:
        for i in range(2000):
            with llmpulse.call(prompt_id="p", messages=[{"role": "user", "content": f"q{i}"}]) as c:
                c.record_response(f"a{i}", input_tokens=1, output_tokens=1)
            made.append(c.call_id)
        assert llmpulse.flush(30)
    finally:
        llmpulse.shutdown(5)
    got = read_events(kafka_bootstrap, [f"{prefix}llm.prompts", f"{prefix}llm.responses"],
                      expected=4000, idle_s=0.5)
    assert len(got) == 4000
    rank = {call_id: i for i, call_id in enumerate(made)}
    for topic in ("llm.prompts", "llm.responses"):
        for partition in (0, 1):
            seen = [rank[e.event.call_id] for e in got
                    if e.topic == f"{prefix}{topic}" and e.partition == partition]
            assert seen and seen == sorted(seen), (topic, partition, _first_inversion(seen))


def _first_inversion(seen: list[int]) -> tuple[int, int, int] | None:
    return next(((i, seen[i - 1], seen[i]) for i in range(1, len(seen))
                 if seen[i] < seen[i - 1]), None)
