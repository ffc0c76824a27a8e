"""``llmpulse demo --kafka``: the real stack shows what the embedded demo shows.

The same seed runs embedded and through Kafka (SDK -> broker -> ``llmpulse worker``
process -> sink -> chDB). The Kafka run waits until every stage consumed its input (no
sleep); then the drift alert fires after the shift and not before, and the two stores
agree on calls, feedback, guardrail verdicts, the drift windows that closed full, and the
order agent's spans, tool errors, verdicts and traces per prompt version (and the agent's
comparison, its agent section included, says the same).
"""

from __future__ import annotations

import pytest

from llmpulse.cli.demo.command import DemoResult, run_embedded
from llmpulse.cli.demo.scenario import SKEWED_CALLS, store_summary
from llmpulse.cli.demo.stack import run_with_kafka
from llmpulse.sinks.store import Store

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
RUN = {"requests": 600, "seed": 7, "clickhouse": None, "drift_window": 40}


def _quiet(*args: object, **kwargs: object) -> None:
    return None


@pytest.fixture(scope="module")
def runs(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
         ) -> tuple[DemoResult, DemoResult]:
    kafka = run_with_kafka(kafka=kafka_bootstrap, out=tmp_path_factory.mktemp("kafka"),
                           echo=_quiet, **RUN)  # type: ignore[arg-type]
    embedded = run_embedded(out=tmp_path_factory.mktemp("embedded"), echo=_quiet,
                            **RUN)  # type: ignore[arg-type]
    return kafka, embedded


def _summary(run: DemoResult) -> dict[str, object]:
    with Store.open(f"chdb://{run.out / 'store'}") as store:
        return store_summary(store)


def test_the_kafka_run_stores_every_call_and_finds_the_worse_version(
        runs: tuple[DemoResult, DemoResult]) -> None:
    kafka, _ = runs
    assert kafka.calls == RUN["requests"] + kafka.agent_calls
    assert kafka.worse_version == "v2"
    assert kafka.report.exists() and kafka.comparison_json.exists()


def test_the_drift_alert_fires_after_the_shift_and_not_before_through_kafka(
        runs: tuple[DemoResult, DemoResult]) -> None:
    kafka, _ = runs
    drift = [a for a in kafka.alerts if a.rule == "drift" and a.status == "firing"]
    assert drift, [(a.rule, a.status) for a in kafka.alerts]
    assert all(a.occurred_at >= kafka.drift_start for a in drift), (
        kafka.drift_start, [a.occurred_at for a in drift])


def test_both_modes_stores_agree(runs: tuple[DemoResult, DemoResult]) -> None:
    kafka, embedded = map(_summary, runs)
    for name in ("calls", "feedback", "verdicts", "drift_windows_by_size", "dead_letters", "spans",
                 "tool_errors", "agent_verdicts", "agent_traces_by_version"):
        assert kafka[name] == embedded[name], (name, kafka, embedded)
    assert kafka["drift_windows_by_size"], kafka  # windows did close, on both sides
    assert kafka["dead_letters"] == {"timestamp_out_of_range": 2 * SKEWED_CALLS}, kafka
    assert kafka["spans"] and kafka["agent_verdicts"].get("agent_loop") == 1, kafka
    assert kafka["agent_traces_by_version"] == {"v1": 8, "v2": 7}, kafka  # the agent's two versions


def test_the_kafka_runs_agent_comparison_has_its_agent_section(
        runs: tuple[DemoResult, DemoResult]) -> None:
    for run in runs:
        assert run.agent_comparison.notes["agent"].startswith(
            "agent traces: 8 of order-agent v1, 7 of order-agent v2"), run.agent_comparison.notes
    values = [{m.name: m.value_b for m in run.agent_comparison.metrics if m.group == "agent"}
              for run in runs]
    assert values[0] == pytest.approx(values[1])  # sums in another order: the last bits differ
    assert values[0]["tool_invalid_arguments_rate"] > 0
