"""``llmpulse compare`` on the sample traffic: the real differences are found, the others are not."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner

from llmpulse.dashboards.cli import compare as compare_cli
from llmpulse.dashboards.compare import compare_versions, comparison_table
from llmpulse.dashboards.samples import METRICS, samples_from_rows, version_samples
from llmpulse.dashboards.testing import SampleTraffic
from llmpulse.schemas import EnrichedCall
from llmpulse.sinks.store import Store


def test_version_samples_are_the_calls_of_that_version(traffic_store: Store, traffic: SampleTraffic) -> None:
    since, until = traffic.start, traffic.end + timedelta(minutes=5)
    samples = version_samples(traffic_store, "answer", "2", since=since, until=until, app="support-bot")
    calls = [
        e
        for e in traffic.events
        if isinstance(e, EnrichedCall)
        and e.prompt_id == "answer"
        and e.prompt_version == "2"
        and e.app == "support-bot"
    ]
    assert len(samples["error_rate"].array()) == len(calls)
    assert samples["error_rate"].array().sum() == sum(1 for c in calls if c.response and c.response.error)
    assert set(samples) == set(METRICS)
    assert samples["thumbs_up_rate"].array().size > 100  # feedback attributed to the version


def test_injected_differences_are_found_and_the_rest_are_not(
    traffic_store: Store, traffic: SampleTraffic
) -> None:
    result = compare_versions(
        traffic_store,
        "answer",
        "1",
        "2",
        since=traffic.start,
        until=traffic.end + timedelta(minutes=5),
        seed=1,
    )
    verdicts = {m.name: m.verdict for m in result.metrics}
    # The generator makes v2 better liked and more relevant, slower and longer (testing.VERSION_EFFECTS).
    assert verdicts["thumbs_up_rate"] == "B better"
    assert verdicts["relevance"] == "B better"
    assert verdicts["latency_p50_ms"] == verdicts["latency_p95_ms"] == "B worse"
    assert verdicts["tokens_per_call"] == "B higher"
    # Drawn alike for both versions: no difference may be declared.
    for name in (
        "quality",
        "groundedness",
        "toxicity_rate",
        "refusal_rate",
        "error_rate",
        "correction_rate",
        "guardrail_block_rate",
    ):
        assert verdicts[name] == "no significant difference", (name, result.metric(name))
    thumbs = result.metric("thumbs_up_rate")
    assert thumbs.ci_low < thumbs.difference < thumbs.ci_high and thumbs.ci_low > 0
    assert all(m.p_adjusted >= m.p_value for m in result.metrics)
    table = comparison_table(result)
    assert "answer v1" in table and "B better" in table and "holm correction" in table


def test_tiny_samples_warn(traffic_store: Store, traffic: SampleTraffic) -> None:
    result = compare_versions(
        traffic_store, "answer", "1", "2", since=traffic.start, until=traffic.start + timedelta(minutes=6)
    )
    assert result.warnings and result.warnings[0].startswith("too few calls to say anything")
    assert not result.significant


def test_samples_from_replay_rows_leave_out_feedback() -> None:
    samples = samples_from_rows({"latency_ms": [100.0, None, 300.0], "failed": [0, 1, 0]})
    assert set(samples) == {"latency_p50_ms", "latency_p95_ms", "error_rate"}
    assert samples["latency_p50_ms"].array().tolist() == [100.0, 300.0]


def test_compare_command_outputs(
    traffic_url: str, traffic_store: Store, traffic: SampleTraffic, tmp_path: Path
) -> None:
    runner = CliRunner()
    base = [
        "--prompt",
        "answer",
        "--a",
        "1",
        "--b",
        "2",
        "--clickhouse",
        traffic_url,
        "--since",
        traffic.start.isoformat(),
        "--until",
        (traffic.end + timedelta(minutes=5)).isoformat(),
    ]
    table = runner.invoke(compare_cli, base)
    assert table.exit_code == 0, table.output
    assert "thumbs_up_rate" in table.output and "B better" in table.output
    as_json = runner.invoke(compare_cli, [*base, "--format", "json", "--app", "support-bot"])
    data = json.loads(as_json.output)
    assert data["a"] == "answer v1" and {m["name"] for m in data["metrics"]} == set(METRICS)
    page = tmp_path / "compare.html"
    as_html = runner.invoke(compare_cli, [*base, "--format", "html", "--out", str(page)])
    assert as_html.exit_code == 0, as_html.output
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>") and 'class="chart"' in text and "<script src" not in text
    bad = runner.invoke(compare_cli, [*base[:-4], "--since", "yesterday-ish"])
    assert bad.exit_code == 2 and "is not a time" in bad.output and "2h" in bad.output


def test_compare_fail_on_gates_a_prompt_change(traffic_url: str, traffic: SampleTraffic) -> None:
    """CI: ``--fail-on worse`` exits 3 when B is significantly worse on a metric, 0 when not."""
    runner = CliRunner()
    scope = ["--clickhouse", traffic_url, "--from", traffic.start.isoformat(),
             "--to", (traffic.end + timedelta(minutes=5)).isoformat(), "--prompt", "answer"]
    worse = runner.invoke(compare_cli, [*scope, "--a", "1", "--b", "2", "--fail-on", "worse"])
    assert worse.exit_code == 3, worse.output
    assert "answer v2 is worse than answer v1" in worse.stderr and "latency_p95_ms" in worse.stderr
    assert "thumbs_up_rate" not in worse.stderr  # v2 is better liked: not a failure
    same = runner.invoke(compare_cli, [*scope, "--a", "1", "--b", "1", "--fail-on", "different"])
    assert same.exit_code == 0, same.output
    ungated = runner.invoke(compare_cli, [*scope, "--a", "1", "--b", "2"])
    assert ungated.exit_code == 0, ungated.output


def test_version_labels_get_one_v() -> None:
    from llmpulse.dashboards.compare import version_label

    assert [version_label(v) for v in ("v1", "V2", "3", "3f2a9c1d")] == ["v1", "V2", "v3", "v3f2a9c1d"]
