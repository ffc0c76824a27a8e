"""``llmpulse report``: every panel rendered from the store; it opens in headless Chromium with data."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from llmpulse.dashboards.cli import report as report_cli
from llmpulse.dashboards.definitions import DASHBOARDS
from llmpulse.dashboards.report import build_report
from llmpulse.dashboards.testing import SampleTraffic
from llmpulse.sinks.store import Store


@pytest.fixture
def report_path(traffic_store: Store, traffic: SampleTraffic, tmp_path: Path) -> Path:
    steps: list[tuple[int, int]] = []
    result = build_report(
        traffic_store,
        since=traffic.start,
        until=traffic.end + timedelta(minutes=5),
        out_path=tmp_path / "report.html",
        progress=lambda done, total, _: steps.append((done, total)),
    )
    assert [r.panel.key for r in result.panels if r.error] == []
    assert len(result.panels) == sum(len(d.panels) for d in DASHBOARDS)
    assert steps[-1][0] == steps[-1][1] and [d for d, _ in steps] == sorted(d for d, _ in steps)
    assert any(a.firing and a.rule_uid == "llmpulse-drift" for a in result.alerts)
    return result.path


def test_report_is_self_contained(report_path: Path) -> None:
    text = report_path.read_text()
    assert not re.search(r"""(src|href)=["'](https?:)?//""", text), "nothing may load from elsewhere"
    for spec in DASHBOARDS:
        assert f'id="{spec.uid}"' in text
    assert 'id="trace"' in text and "the slowest agent trace in the range" in text
    assert "answer v1 vs answer v2: statistics" in text and "B better" in text
    assert "$__" not in text.replace("$__timeFilter", "")  # panels show the expanded SQL
    assert len(re.findall(r'class="chart"', text)) >= 20


def test_report_renders_in_headless_chromium_with_data(
    report_path: Path, tmp_path: Path, chromium_flags: list[str], dump_dom: Callable[[Path], str]
) -> None:
    dom = dump_dom(report_path)
    body = re.search(r"<body([^>]*)>", dom)
    assert body, dom[:500]
    attributes = dict(re.findall(r'data-([\w-]+)="(\d+)"', body.group(1)))
    charts, drawn = int(attributes["charts"]), int(attributes["charts-drawn"])
    assert charts >= 20 and drawn == charts, attributes  # every chart laid out marks of visible size
    assert int(attributes["stats"]) == sum(1 for d in DASHBOARDS for p in d.panels if p.viz.value == "stat")
    assert int(attributes["waterfall-bars"]) >= 5  # the slowest agent trace, step by step
    shot = tmp_path / "report.png"
    subprocess.run(
        [*chromium_flags, f"--screenshot={shot}", report_path.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.stat().st_size > 50_000  # a page of charts, not a blank one


def test_report_command(
    traffic_url: str, traffic_store: Store, traffic: SampleTraffic, tmp_path: Path
) -> None:
    out = tmp_path / "cli-report.html"
    result = CliRunner().invoke(
        report_cli,
        [
            "--clickhouse",
            traffic_url,
            "--since",
            traffic.start.isoformat(),
            "--until",
            (traffic.end + timedelta(minutes=5)).isoformat(),
            "--app",
            "search-assistant",
            "--no-compare",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "app search-assistant" in text and "statistics" not in text
