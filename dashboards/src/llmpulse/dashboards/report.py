"""``llmpulse report``: the dashboards without Grafana, as one self-contained HTML file.

Every panel of every dashboard runs its SQL against the store, expanded exactly as Grafana
and the ClickHouse plugin expand it (``llmpulse.dashboards.macros``), and is drawn as an
inline SVG chart, stat or table. The report adds what the dashboards cannot: the alert
rules evaluated at the end of the range, and the statistical comparison of the two
versions shown on the Prompt versions dashboard. No script, font or stylesheet is
loaded from elsewhere.

Example:
    >>> from datetime import UTC, datetime, timedelta
    >>> from llmpulse.dashboards.report import render_report
    >>> end = datetime.now(UTC)
    >>> render_report(store, since=end - timedelta(hours=6), until=end,
    ...               out_path="llmpulse-report.html")                    # doctest: +SKIP
    PosixPath('llmpulse-report.html')
"""

from __future__ import annotations

import html
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llmpulse.dashboards.agents_board import AGENTS
from llmpulse.dashboards.alerts import AlertInstance, evaluate_rules
from llmpulse.dashboards.charts import bar_chart, line_chart, stat_tile, table_html
from llmpulse.dashboards.definitions import DASHBOARDS
from llmpulse.dashboards.macros import TimeRange, Variable, expand
from llmpulse.dashboards.page import page
from llmpulse.dashboards.panels import DashboardSpec, PanelSpec, Viz

__all__ = ["PanelResult", "ReportResult", "page", "render_report", "run_dashboard", "run_panel"]

logger = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]
"""``progress(done, total, what)``: called after each step of a long report."""


@dataclass
class PanelResult:
    """One panel run against the store: the statement, the columns, the rows, the time taken."""

    dashboard: str
    panel: PanelSpec
    sql: str
    columns: tuple[str, ...] = ()
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None


@dataclass
class ReportResult:
    """What ``render_report`` produced (the path, and each panel's result for checks)."""

    path: Path
    panels: list[PanelResult]
    variables: dict[str, dict[str, Variable]]
    alerts: list[AlertInstance]


def _options(store: Any, sql: str, window: TimeRange, chosen: dict[str, Variable]) -> list[str]:
    statement = expand(sql, time_range=window, variables=chosen)
    return [str(row[0]) for row in store.query(statement).rows]


def resolve_variables(
    store: Any,
    spec: DashboardSpec,
    window: TimeRange,
    *,
    app: str | None = None,
    overrides: dict[str, str] | None = None,
) -> dict[str, Variable]:
    """Each variable's selection, as Grafana would make it on opening the dashboard.

    Multi-value variables with All select All (``app`` selects ``app`` when given);
    single-value ones take their first option, except that ``prompt`` prefers a prompt with
    two or more versions. ``overrides`` pins values (``{"version_a": "1"}``).
    """
    overrides = dict(overrides or {})
    if app:
        overrides.setdefault("app", app)
    chosen: dict[str, Variable] = {}
    for variable in spec.variables:
        options = _options(store, variable.sql, window, chosen)
        if variable.descending:
            options = sorted(options, reverse=True)
        if variable.name in overrides:
            chosen[variable.name] = Variable.of(variable.name, overrides[variable.name])
        elif variable.include_all:
            chosen[variable.name] = Variable.all_of(variable.name, options)
        elif variable.name == "prompt":
            pick = next(
                (
                    o
                    for o in options
                    if len(
                        _options(
                            store, _versions_sql(spec), window, {**chosen, "prompt": Variable.of("prompt", o)}
                        )
                    )
                    > 1
                ),
                options[0] if options else "",
            )
            chosen[variable.name] = Variable.of(variable.name, pick)
        else:
            chosen[variable.name] = Variable.of(variable.name, options[0] if options else "")
    return chosen


def _versions_sql(spec: DashboardSpec) -> str:
    return next((v.sql for v in spec.variables if v.name == "version_a"), "SELECT 1 WHERE 0")


def run_panel(
    store: Any, dashboard_uid: str, panel: PanelSpec, window: TimeRange, variables: dict[str, Variable]
) -> PanelResult:
    """Run one panel's SQL, expanded as Grafana would with the panel's min interval.

    Grafana asks for as many points as the panel is wide in pixels; the report's charts
    are 600 px wide for a half-width panel and ask for 10 points per grid column.
    """
    statement = expand(
        panel.sql,
        time_range=window,
        variables=variables,
        min_interval=panel.min_interval,
        max_data_points=10 * panel.width,
    )
    result = PanelResult(dashboard_uid, panel, statement)
    started = time.perf_counter()
    try:
        rows = store.query(statement)
        result.columns, result.rows = tuple(rows.column_names), rows.rows
    except Exception as exc:  # a broken panel is shown as broken, the report goes on
        result.error = f"{type(exc).__name__}: {str(exc)[:400]}"
        logger.warning("panel %s/%s failed: %s", dashboard_uid, panel.key, result.error)
    result.seconds = time.perf_counter() - started
    return result


def run_dashboard(
    store: Any,
    spec: DashboardSpec,
    window: TimeRange,
    variables: dict[str, Variable],
    progress: Progress | None = None,
    offset: int = 0,
    total: int = 0,
) -> list[PanelResult]:
    """Every panel of one dashboard."""
    results = []
    for index, panel in enumerate(spec.panels):
        results.append(run_panel(store, spec.uid, panel, window, variables))
        if progress:
            progress(offset + index + 1, total, f"{spec.title}: {panel.title}")
    return results


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(float(value)) else None
    return None


def _draw(result: PanelResult) -> str:
    panel, columns, rows = result.panel, result.columns, result.rows
    if result.error:
        return f'<p class="error">{html.escape(result.error)}</p>'
    if panel.viz is Viz.STAT:
        return stat_tile(rows[0][0] if rows and rows[0] else None, panel.unit, panel.decimals)
    if panel.viz is Viz.TABLE:
        return table_html(columns, rows)
    if panel.viz is Viz.BARCHART:
        categories = [str(r[0]) for r in rows]
        return bar_chart(
            categories,
            {c: [_number(r[i + 1]) for r in rows] for i, c in enumerate(columns[1:])},
            unit=panel.unit,
            stacked=panel.stacked,
        )
    series: dict[str, list[tuple[datetime, float | None]]] = {}
    if "series" in columns and len(columns) == 3:  # long format: time, series, value
        series_index = columns.index("series")
        value_index = 2 if series_index == 1 else 1
        for row in rows:
            series.setdefault(str(row[series_index]), []).append((row[0], _number(row[value_index])))
    else:
        for i, column in enumerate(columns[1:], start=1):
            series[column] = [(row[0], _number(row[i])) for row in rows]
    return line_chart(series, unit=panel.unit, stacked=panel.stacked)


def _panel_html(result: PanelResult) -> str:
    panel = result.panel
    return (
        f'<figure class="panel w{panel.width}" id="{result.dashboard}-{panel.key}">'
        f"<figcaption>{html.escape(panel.title)}</figcaption>"
        f'<p class="desc">{html.escape(panel.description)}</p>{_draw(result)}'
        f"<details><summary>SQL ({result.seconds * 1000:.0f} ms, {len(result.rows)} rows)</summary>"
        f"<pre>{html.escape(result.sql)}</pre></details></figure>"
    )


def _alerts_html(instances: list[AlertInstance]) -> str:
    if not instances:
        return '<p class="note">No alert rule returned a series in its look-back window.</p>'
    rows = sorted(instances, key=lambda i: (not i.firing, i.rule_uid))
    body = "".join(
        f'<tr><td class="{"firing" if i.firing else ""}">{"firing" if i.firing else "ok"}</td>'
        f"<td>{html.escape(i.title)}</td>"
        f"<td>{html.escape(', '.join(f'{k}={v}' for k, v in i.labels.items()))}</td>"
        f"<td>{'-' if i.value is None else f'{i.value:.4g}'}</td><td>{i.threshold:g}</td></tr>"
        for i in rows
    )
    return (
        f'<table data-points="{len(rows)}"><thead><tr><th>state</th><th>rule</th><th>series</th>'
        f"<th>value</th><th>threshold</th></tr></thead><tbody>{body}</tbody></table>"
    )


def _trace_section(store: Any, results: list[PanelResult], trace_id: str | None) -> str:
    """The trace view: ``trace_id``, else the first of the slowest agent traces ("" when the
    report holds no Agents & tools dashboard and no trace was asked for)."""
    slowest = next((r for r in results if r.dashboard == AGENTS.uid and r.panel.key == "slowest_traces"),
                   None)
    if trace_id is None:
        if slowest is None:
            return ""
        if slowest.error or not slowest.rows:
            return ('<section class="board" id="trace"><h2>Trace</h2>'
                    '<p class="note">No agent trace in the range.</p></section>')
        trace_id = str(slowest.rows[0][slowest.columns.index("trace_id")])
        how = "the slowest agent trace in the range"
    else:
        how = "the trace asked for"
    from llmpulse.dashboards.trace_view import load_trace, trace_html

    return (f'<section class="board" id="trace"><h2>Trace {html.escape(trace_id)}</h2>'
            f'<p class="note">{how}: LLM calls and spans as a tree, each bar placed at its start '
            f"and as long as it took.</p>{trace_html(load_trace(store, trace_id))}</section>")


def render_report(
    store: Any,
    *,
    since: datetime,
    until: datetime,
    out_path: str | Path,
    app: str | None = None,
    dashboards: Sequence[DashboardSpec] | None = None,
    compare: bool = True,
    progress: Progress | None = None,
    overrides: dict[str, str] | None = None,
    trace_id: str | None = None,
) -> Path:
    """Render the dashboards, alert states and version comparison to one HTML file.

    Args:
        store: an open ``llmpulse.sinks.Store``.
        since: start of the range.
        until: end of the range.
        out_path: where to write the HTML file.
        app: show only this app (the ``$app`` variable); all apps by default.
        dashboards: which dashboards (default: all five).
        compare: add the statistical comparison of the two versions on Prompt versions.
        progress: called after each panel (``progress(done, total, what)``).
        overrides: pin template variables (``{"prompt": "answer", "version_b": "3"}``).
        trace_id: the trace the trace view draws (default: the slowest agent trace in the
            range, the first row of the Agents & tools dashboard's "Slowest agent traces").

    Returns:
        The path written.
    """
    return build_report(
        store,
        since=since,
        until=until,
        out_path=out_path,
        app=app,
        dashboards=dashboards,
        compare=compare,
        progress=progress,
        overrides=overrides,
        trace_id=trace_id,
    ).path


def build_report(
    store: Any,
    *,
    since: datetime,
    until: datetime,
    out_path: str | Path,
    app: str | None = None,
    dashboards: Sequence[DashboardSpec] | None = None,
    compare: bool = True,
    progress: Progress | None = None,
    overrides: dict[str, str] | None = None,
    trace_id: str | None = None,
) -> ReportResult:
    """``render_report``, returning every panel's result as well (for tests and the demo)."""
    window = TimeRange(since, until)
    specs = list(dashboards or DASHBOARDS)
    total = sum(len(s.panels) for s in specs) + 1 + int(compare)
    done, sections, results, chosen_all = 0, [], [], {}
    for spec in specs:
        chosen = resolve_variables(store, spec, window, app=app, overrides=overrides)
        chosen_all[spec.uid] = chosen
        panel_results = run_dashboard(store, spec, window, chosen, progress, done, total)
        done += len(spec.panels)
        results.extend(panel_results)
        selection = ", ".join(f"{n}={'All' if v.all else ','.join(v.values)}" for n, v in chosen.items())
        sections.append(
            f'<section class="board" id="{spec.uid}"><h2>{html.escape(spec.title)}</h2>'
            f'<p class="note">{html.escape(spec.description)} Variables: {html.escape(selection)}</p>'
            f'<div class="grid">{"".join(_panel_html(r) for r in panel_results)}</div></section>'
        )
    trace = _trace_section(store, results, trace_id)
    if trace:
        sections.append(trace)
    instances = evaluate_rules(store, now=until)
    done += 1
    if progress:
        progress(done, total, "alert rules")
    sections.append(
        '<section class="board" id="alerts"><h2>Alert rules at the end of the range</h2>'
        f"{_alerts_html(instances)}</section>"
    )
    if compare and "llmpulse-versions" in chosen_all:
        from llmpulse.dashboards.compare import compare_versions, comparison_section

        chosen = chosen_all["llmpulse-versions"]
        prompt, a, b = (
            chosen[n].values[0] if chosen.get(n) and chosen[n].values else ""
            for n in ("prompt", "version_a", "version_b")
        )
        if prompt and a and b and a != b:
            comparison = compare_versions(store, prompt, a, b, since=since, until=until, app=app)
            sections.append(
                f'<section class="board" id="comparison"><h2>{html.escape(comparison.label_a)} vs '
                f"{html.escape(comparison.label_b)}: statistics</h2>{comparison_section(comparison)}"
                "</section>"
            )
        done += 1
        if progress:
            progress(done, total, "version comparison")
    nav = [(s.uid, s.title.split(" / ")[-1]) for s in specs] + [("trace", "Trace")] * bool(trace)
    nav += [("alerts", "Alerts")]
    subtitle = (
        f"{since.astimezone(UTC):%Y-%m-%d %H:%M} - {until.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
        + (f" · app {app}" if app else " · all apps")
        + f" · store {getattr(store, 'url', '')}"
    )
    path = Path(out_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page("llmpulse report", "".join(sections), subtitle, nav), "utf-8")
    logger.info("wrote report %s (%d panels)", path, len(results))
    return ReportResult(path, results, chosen_all, instances)
