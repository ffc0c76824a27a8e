"""The Evidently HTML report of a drifted window: written where the result points."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import pytest

from llmpulse.processors.drift import DriftConfig, DriftMonitor, DriftReportWriter, TrafficGenerator


def test_drifted_window_gets_an_evidently_report_and_a_clean_one_does_not(tmp_path):
    pytest.importorskip("evidently")
    cfg = DriftConfig(window_calls=100, window_seconds=None, reference_calls=200, sentiment=False,
                      embeddings=False, reports_dir=str(tmp_path))
    writer = DriftReportWriter(tmp_path, background=True)
    monitor = DriftMonitor(cfg, report_writer=writer)
    gen = TrafficGenerator(seed=12)
    monitor.observe(gen.calls(200))
    [clean] = monitor.observe(gen.calls(100))
    [shifted] = monitor.observe(gen.calls(100, shift="longer_answers"))
    assert not clean.drifted and clean.report_uri is None
    assert shifted.drifted and shifted.report_uri and shifted.report_uri.startswith("file://")
    assert writer.flush(timeout=120)
    writer.close()
    path = url2pathname(urlparse(shifted.report_uri).path)
    html = Path(path).read_text(encoding="utf-8")
    assert writer.counts["written"] == 1 and writer.counts["failed"] == 0
    assert "response_length" in html and "Drift" in html
    fired = [f for f in shifted.features if f.drifted]
    assert f"{fired[0].feature} ({fired[0].test}, p=" in html  # the heading names what fired
    assert "support-bot" in path and path.endswith("-w1.html")
