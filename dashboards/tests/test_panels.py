"""Every panel's SQL, expanded as Grafana expands it, run against chDB on the sample traffic."""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime

import pytest

from llmpulse.dashboards.definitions import DASHBOARDS, OVERVIEW, QUALITY, VERSIONS
from llmpulse.dashboards.macros import TimeRange, Variable, expand
from llmpulse.dashboards.panels import DashboardSpec, PanelSpec, Viz
from llmpulse.dashboards.report import resolve_variables, run_panel
from llmpulse.dashboards.testing import SampleTraffic
from llmpulse.schemas import EnrichedCall
from llmpulse.sinks.store import Store

PANELS = [(d, p) for d in DASHBOARDS for p in d.panels]


def _selection(spec: DashboardSpec, **values: str | tuple[str, ...]) -> dict[str, Variable]:
    chosen = {}
    for variable in spec.variables:
        value = values.get(variable.name)
        if value is None:
            chosen[variable.name] = (
                Variable.all_of(variable.name)
                if variable.include_all
                else Variable.of(
                    variable.name, {"prompt": "answer", "version_a": "1", "version_b": "2"}[variable.name]
                )
            )
        else:
            chosen[variable.name] = Variable.of(
                variable.name, *((value,) if isinstance(value, str) else value)
            )
    return chosen


def _check_shape(panel: PanelSpec, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """The columns the visualisation needs, and data in them."""
    assert rows, f"{panel.key}: no rows"
    numeric = [i for i, v in enumerate(rows[0]) if isinstance(v, int | float) and not isinstance(v, bool)]
    if panel.viz is Viz.TIMESERIES:
        assert columns[0] == "time" and all(isinstance(r[0], datetime) for r in rows), panel.key
        assert [r[0] for r in rows] == sorted(r[0] for r in rows), f"{panel.key}: not in time order"
        if "series" in columns:
            assert len(columns) == 3 and all(isinstance(r[columns.index("series")], str) for r in rows)
        assert numeric and numeric[0] >= 1, f"{panel.key}: no value column"
        values = [r[i] for r in rows for i in numeric if r[i] is not None]
        assert any(v != 0 for v in values), f"{panel.key}: every value is zero"
    elif panel.viz is Viz.STAT:
        assert len(rows) == 1 and len(columns) == 1, f"{panel.key}: a stat needs one row, one value"
        assert isinstance(rows[0][0], int | float) and rows[0][0] == rows[0][0], f"{panel.key}: {rows[0]}"
    elif panel.viz is Viz.BARCHART:
        assert isinstance(rows[0][0], str), f"{panel.key}: a bar chart needs categories first"
        assert len(numeric) == len(columns) - 1, f"{panel.key}: every other column must be a number"
        assert any(r[i] for r in rows for i in numeric), f"{panel.key}: all bars are empty"


@pytest.mark.parametrize(("spec", "panel"), PANELS, ids=[f"{d.uid}/{p.key}" for d, p in PANELS])
def test_panel_returns_what_its_visualisation_needs(
    traffic_store: Store, window: TimeRange, spec: DashboardSpec, panel: PanelSpec
) -> None:
    result = run_panel(traffic_store, spec.uid, panel, window, _selection(spec))
    assert result.error is None, f"{result.error}\n{result.sql}"
    assert "$" not in result.sql.replace("'$", "")
    _check_shape(panel, result.columns, result.rows)


@pytest.mark.parametrize("spec", DASHBOARDS, ids=[d.uid for d in DASHBOARDS])
def test_panels_run_with_specific_and_multi_value_selections(
    traffic_store: Store, window: TimeRange, spec: DashboardSpec
) -> None:
    chosen = _selection(
        spec,
        app="support-bot",
        environment="production",
        model=("gpt-4o-mini", "llama-3-8b"),
        **({} if spec.uid == "llmpulse-versions" else {"prompt": "answer", "version": "2"}),
    )
    empty = []
    for panel in spec.panels:
        result = run_panel(traffic_store, spec.uid, panel, window, chosen)
        assert result.error is None, f"{panel.key}: {result.error}\n{result.sql}"
        if not result.rows or (panel.viz is Viz.STAT and result.rows[0][0] in (None, 0)):
            empty.append(panel.key)
    # Dead letters are not per app; nothing else may come back empty for this selection.
    assert set(empty) <= {"dead_letters", "alerts"}, empty


def test_stats_agree_with_the_events_written(
    traffic_store: Store, window: TimeRange, traffic: SampleTraffic
) -> None:
    calls = [e for e in traffic.events if isinstance(e, EnrichedCall)]
    by_app = Counter(c.app for c in calls)
    count = OVERVIEW.panel("calls")
    assert run_panel(traffic_store, OVERVIEW.uid, count, window, _selection(OVERVIEW)).rows[0][0] == len(
        calls
    )
    for app, expected in by_app.items():
        got = run_panel(traffic_store, OVERVIEW.uid, count, window, _selection(OVERVIEW, app=app)).rows[0][0]
        assert got == expected
    v2_staging = sum(1 for c in calls if c.prompt_version == "2" and c.environment == "staging")
    got = run_panel(
        traffic_store, OVERVIEW.uid, count, window, _selection(OVERVIEW, version="2", environment="staging")
    ).rows[0][0]
    assert got == v2_staging
    toxic = sum(
        1 for c in calls for s in c.scores if s.name == "toxicity" and s.value is not None and s.value >= 0.5
    )
    rate = run_panel(
        traffic_store, QUALITY.uid, QUALITY.panel("toxic_rate"), window, _selection(QUALITY)
    ).rows[0][0]
    assert rate == pytest.approx(toxic / len(calls))


def test_variables_offer_the_values_in_the_data(traffic_store: Store, window: TimeRange) -> None:
    chosen = resolve_variables(traffic_store, OVERVIEW, window)
    assert chosen["app"].all and set(chosen["app"].options) == {"search-assistant", "support-bot"}
    assert set(chosen["version"].options) == {"1", "2"}
    narrowed = resolve_variables(traffic_store, OVERVIEW, window, overrides={"app": "search-assistant"})
    assert set(narrowed["prompt"].options) == {"answer", "summarize"}
    versions = resolve_variables(traffic_store, VERSIONS, window)
    assert (versions["prompt"].values, versions["version_a"].values, versions["version_b"].values) == (
        ("answer",),
        ("1",),
        ("2",),
    )


def test_range_panels_read_the_rollups() -> None:
    """Time series and stats over ranges read the per-minute rollups, never raw calls."""
    raw_ok = {"coverage", "comments", "ratings"}  # distinct calls and comment text exist only raw
    # the processed and inserted times exist only in raw rows
    raw_ok |= {"freshness_p99", "worker_p99", "sink_p99", "freshness", "rows_per_table"}
    # a trace is no rollup key (distinct traces, steps and cost per trace), and the verdict
    # rollup has no applies_to (injections in tool results)
    raw_ok |= {"agent_traces", "steps_per_trace", "cost_per_trace", "injections"}
    for spec in DASHBOARDS:
        for panel in spec.panels:
            tables = set(re.findall(r"FROM\s+(\w+)", panel.sql))
            if panel.viz is not Viz.TABLE and panel.key not in raw_ok:
                assert not tables & {"calls", "feedback", "guardrail_verdicts", "spans"}, (
                    f"{spec.uid}/{panel.key}: {tables}"
                )


def test_every_variable_a_panel_uses_is_defined() -> None:
    for spec in DASHBOARDS:
        defined = {v.name for v in spec.variables}
        for sql in [p.sql for p in spec.panels] + [v.sql for v in spec.variables]:
            used = set(re.findall(r"\$\{(\w+)", sql)) | {
                m for m in re.findall(r"\$(\w+)", sql) if not m.startswith("__")
            }
            assert used <= defined, f"{spec.uid}: {used - defined}"


def test_expanded_sql_of_an_empty_range_still_runs(traffic_store: Store, traffic: SampleTraffic) -> None:
    early = TimeRange(
        traffic.start.replace(year=traffic.start.year - 1),
        traffic.start.replace(year=traffic.start.year - 1) + (traffic.end - traffic.start),
    )
    for spec in DASHBOARDS:
        for panel in spec.panels:
            statement = expand(
                panel.sql, time_range=early, variables=_selection(spec), min_interval=panel.min_interval
            )
            traffic_store.query(statement)
