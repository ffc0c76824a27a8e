"""The drift agent in the Faust worker: windows of real traffic, results and alerts on Kafka,
state in a table that survives a restart."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from kafka_events import read_events
from worker_process import WorkerProcess

import llmpulse.producers as llmpulse
from llmpulse.cli.topics import ensure_topics
from llmpulse.schemas import Alert, DriftResult

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

CONFIG = """
drift:
  window_calls: 60
  window_seconds: null
  reference_calls: 120
  sample_size: 60
  embeddings: false
  sentiment: false
alerting:
  drift: {consecutive: 1, clear_after: 2, severity: high}
"""


def _calls(n: int, *, long: bool, start: int = 0) -> None:
    for i in range(start, start + n):
        answer = "Your parcel ships tomorrow." if not long else (
            "Your parcel ships tomorrow, and I have also checked the warehouse records, the "
            "courier's schedule and the weather forecast for your area in great detail. ") * 3
        with llmpulse.call(prompt_id="answer", prompt_version="v1", model="m",
                           messages=[{"role": "user", "content": f"Where is parcel {i % 7}?"}]) as c:
            c.record_response(answer)


def test_a_shift_raises_a_drift_result_and_an_alert_and_state_survives_a_restart(
        kafka_bootstrap: str, tmp_path: Path) -> None:
    prefix = f"d{uuid.uuid4().hex[:8]}."
    ensure_topics(kafka_bootstrap, prefix=prefix, partitions=2)
    config = tmp_path / "llmpulse.yaml"
    config.write_text(CONFIG)
    llmpulse.init(app="drifty", bootstrap_servers=kafka_bootstrap, topic_prefix=prefix,
                  spool_dir=tmp_path / "spool", flush_interval_s=0.05)
    worker = WorkerProcess(kafka_bootstrap, prefix, tmp_path / "w", drift=True,
                           extra=["--config", str(config)])
    try:
        worker.start()
        _calls(240, long=False)  # the reference (120) and two quiet windows
        assert llmpulse.flush(10)
        quiet = read_events(kafka_bootstrap, [f"{prefix}llm.drift"], expected=2, timeout_s=60)
        worker.stop()  # a restart in the middle of the stream: windows go on from the table
        worker.start()
        _calls(120, long=True, start=240)  # the shift: two windows of long answers
        assert llmpulse.flush(10)
        results = read_events(kafka_bootstrap, [f"{prefix}llm.drift"], expected=4, timeout_s=90)
        alerts = read_events(kafka_bootstrap, [f"{prefix}llm.alerts"], expected=1, timeout_s=30)
        log = worker.tail(80)
    finally:
        worker.stop()
        llmpulse.shutdown(2)
    drift: list[DriftResult] = sorted((e.event for e in results), key=lambda r: r.window_end)
    assert len(quiet) >= 2 and not any(e.event.drifted for e in quiet), log
    assert len(drift) >= 4, log
    assert [d.drifted for d in drift[:2]] == [False, False]
    assert drift[2].drifted, "the first window after the shift must drift"
    drifted = {f.feature for f in drift[2].features if f.drifted}
    assert "response_length" in drifted
    assert drift[2].reference_size == 120 and drift[2].window_size == 60
    fired = [e.event for e in alerts if isinstance(e.event, Alert)]
    assert any(a.rule == "drift" and a.status == "firing" for a in fired)
    # The restart kept the state: had the reference been lost, it would have been rebuilt
    # from the long answers and the shift would not show (drift[2] above, reference 120).
