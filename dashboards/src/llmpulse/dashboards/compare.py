"""``llmpulse compare``: two prompt versions, metric by metric, with statistics that say which
differences are real; printed as a table, JSON, or an HTML page with charts.

Example:
    >>> from llmpulse.dashboards.compare import compare_versions, comparison_table
    >>> result = compare_versions(store, "answer", "1", "2", since=start, until=end)   # doctest: +SKIP
    >>> print(comparison_table(result))                                               # doctest: +SKIP
    metric            A (answer v1)   B (answer v2)   B - A [95% CI]   ...
"""

from __future__ import annotations

import html
import json
import logging
from datetime import datetime
from typing import Any

from llmpulse.dashboards.charts import bar_chart, format_value, interval_plot, version_label
from llmpulse.dashboards.page import page
from llmpulse.dashboards.samples import run_samples, version_samples
from llmpulse.dashboards.stats import Comparison, MetricComparison, compare_samples
from llmpulse.dashboards.trace_samples import agent_samples

__all__ = [
    "compare_runs",
    "compare_versions", "comparison_html", "comparison_json", "comparison_section",
    "comparison_table", "version_label", "worse_for_b", "worse_metrics",
]

logger = logging.getLogger(__name__)

_UNIT_FORMAT = {"%": "percentunit", "ms": "ms", "USD": "currencyUSD"}


def worse_for_b(metric: MetricComparison) -> bool | None:
    """True when a significant difference goes B's bad way, False its good way; None when
    the metric did not differ significantly or has no better direction."""
    if not metric.significant or metric.higher_is_better is None or metric.difference is None:
        return None
    return (metric.difference > 0) != metric.higher_is_better


def worse_metrics(comparison: Comparison) -> list[MetricComparison]:
    """The metrics on which B is significantly worse than A (``compare --fail-on worse``)."""
    return [m for m in comparison.metrics if worse_for_b(m)]


def compare_runs(
    store: Any,
    a: tuple[str, str],
    b: tuple[str, str],
    *,
    alpha: float = 0.05,
    correction: str = "holm",
    min_samples: int = 30,
    resamples: int = 2000,
    seed: int = 0,
) -> Comparison:
    """Compare two replay runs' results (``(run_id, variant)`` each; B - A), e.g. a run's
    ``baseline`` with its ``candidate``, or two runs' candidates."""
    side_a, side_b = run_samples(store, *a), run_samples(store, *b)
    comparison = compare_samples(side_a, side_b, label_a=f"{a[0]}/{a[1]}", label_b=f"{b[0]}/{b[1]}",
                                 alpha=alpha, correction=correction, min_samples=min_samples,
                                 resamples=resamples, seed=seed)
    calls_a = len(side_a["error_rate"].array()) if "error_rate" in side_a else 0
    calls_b = len(side_b["error_rate"].array()) if "error_rate" in side_b else 0
    if min(calls_a, calls_b) < min_samples:
        comparison.warnings.insert(
            0,
            f"too few calls to say anything: {comparison.label_a} has {calls_a}, "
            f"{comparison.label_b} has {calls_b} (need {min_samples} each)",
        )
    return comparison


def compare_versions(
    store: Any,
    prompt_id: str,
    version_a: str,
    version_b: str,
    *,
    since: datetime,
    until: datetime,
    app: str | None = None,
    environment: str | None = None,
    model: str | None = None,
    alpha: float = 0.05,
    correction: str = "holm",
    min_samples: int = 30,
    resamples: int = 2000,
    seed: int = 0,
) -> Comparison:
    """Fetch both versions' per-call samples from the store and compare them; when either
    version has agent traces, their per-trace metrics too (``trace_samples``: group
    ``agent``), in the same family of tests (one correction over all the metrics).

    Args:
        store: an open ``llmpulse.sinks.Store``.
        prompt_id: the prompt.
        version_a: the baseline version (A).
        version_b: the candidate version (B); differences are B - A.
        since: start of the range.
        until: end of the range.
        app: only this app's calls.
        environment: only this environment.
        model: only this model.
        alpha: significance level of the whole family of metrics.
        correction: ``holm`` or ``bh``.
        min_samples: fewer values a side and a metric is reported as insufficient.
        resamples: bootstrap and permutation rounds.
        seed: seeds every random draw.
    """
    scope: dict[str, Any] = {"since": since, "until": until, "app": app, "environment": environment,
                             "model": model}
    side_a = version_samples(store, prompt_id, version_a, **scope)
    side_b = version_samples(store, prompt_id, version_b, **scope)
    agent_a, agent_b, traces = agent_samples(store, prompt_id, version_a, version_b, **scope)
    side_a, side_b = side_a | agent_a, side_b | agent_b
    comparison = compare_samples(
        side_a,
        side_b,
        label_a=f"{prompt_id} {version_label(version_a)}",
        label_b=f"{prompt_id} {version_label(version_b)}",
        alpha=alpha,
        correction=correction,
        min_samples=min_samples,
        resamples=resamples,
        seed=seed,
    )
    calls_a = len(side_a["error_rate"].array()) if "error_rate" in side_a else 0
    calls_b = len(side_b["error_rate"].array()) if "error_rate" in side_b else 0
    if min(calls_a, calls_b) < min_samples:
        comparison.warnings.insert(
            0,
            f"too few calls to say anything: {comparison.label_a} has {calls_a}, "
            f"{comparison.label_b} has {calls_b} (need {min_samples} each)",
        )
    if traces.a or traces.b:
        comparison.notes["agent"] = (
            f"agent traces: {traces.a} of {comparison.label_a}, {traces.b} of {comparison.label_b} "
            "(a trace belongs to the version of its calls of the prompt; one value per trace)"
        )
    if traces.mixed:
        comparison.warnings.append(
            f"{traces.mixed} agent trace(s) hold calls of more than one version of {prompt_id}: "
            "left out of both sides"
        )
    logger.info(
        "compared %s with %s: %d of %d metrics differ",
        comparison.label_a,
        comparison.label_b,
        len(comparison.significant),
        len(comparison.metrics),
    )
    return comparison


_DECIMALS = {"USD": 6, "": 4, "tokens": 1, "of 5": 2, "steps": 2}


def _fmt(metric: MetricComparison, value: float | None) -> str:
    return format_value(value, _UNIT_FORMAT.get(metric.unit, "short"), decimals=_DECIMALS.get(metric.unit))


def _diff(metric: MetricComparison) -> str:
    if metric.difference is None:
        return "-"
    text = ("+" if metric.difference >= 0 else "") + _fmt(metric, metric.difference)
    if metric.ci_low is not None and metric.ci_high is not None:
        text += f" [{_fmt(metric, metric.ci_low)}, {_fmt(metric, metric.ci_high)}]"
    return text


def _p(value: float | None) -> str:
    if value is None:
        return "-"
    return "<0.0001" if value < 1e-4 else f"{value:.4f}"


def comparison_table(comparison: Comparison) -> str:
    """The comparison as a plain-text table for the terminal."""
    header = (
        "metric",
        "n A/B",
        f"A ({comparison.label_a})",
        f"B ({comparison.label_b})",
        f"B - A [{1 - comparison.alpha:.0%} CI]",
        "test",
        "p",
        f"p ({comparison.correction})",
        "verdict",
    )
    rows = [
        (
            m.name,
            f"{m.n_a}/{m.n_b}",
            _fmt(m, m.value_a),
            _fmt(m, m.value_b),
            _diff(m),
            m.test or "-",
            _p(m.p_value),
            _p(m.p_adjusted),
            m.verdict,
        )
        for m in comparison.metrics
    ]
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        return "  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)).rstrip()

    lines = [line(header), "  ".join("-" * w for w in widths)]
    group = "call"
    for metric, row in zip(comparison.metrics, rows, strict=True):
        if metric.group != group:
            group = metric.group
            lines += ["", comparison.notes.get(group, group)]
        lines.append(line(row))
    verdicts = [m for m in comparison.metrics if m.significant]
    summary = (
        f"{len(verdicts)} of {len(comparison.metrics)} metrics differ at alpha={comparison.alpha} "
        f"({comparison.correction} correction for "
        f"{sum(m.p_adjusted is not None for m in comparison.metrics)} "
        "tests)"
    )
    notes = [f"warning: {w}" for w in comparison.warnings]
    return "\n".join([*lines, "", summary, *notes])


def comparison_json(comparison: Comparison) -> str:
    """The comparison as JSON."""
    return json.dumps(comparison.to_dict(), indent=2, default=str)


def _relative_rows(
    comparison: Comparison,
) -> list[tuple[str, float | None, float | None, float | None, bool]]:
    rows: list[tuple[str, float | None, float | None, float | None, bool]] = []
    for metric in comparison.metrics:
        base = abs(metric.value_a) if metric.value_a else None
        if base is None or metric.difference is None or metric.ci_low is None or metric.ci_high is None:
            continue
        rows.append(
            (
                metric.name,
                100 * metric.difference / base,
                100 * metric.ci_low / base,
                100 * metric.ci_high / base,
                metric.significant,
            )
        )
    return rows


def comparison_section(comparison: Comparison) -> str:
    """An HTML fragment: the interval plot, A vs B bars of the rates, and the table."""
    drawn = [m for m in comparison.metrics if m.value_a is not None and m.value_b is not None]
    charts = [
        (
            "Relative difference of B from A, with its interval (red: differs after correction)",
            interval_plot(_relative_rows(comparison)),
        ),
    ]
    for caption, unit, group, chart_unit in (
        ("Rates, A and B", "%", "call", "percentunit"),
        ("Latency, A and B", "ms", "call", "ms"),
        ("Agent traces: tool rates, A and B", "%", "agent", "percentunit"),
        ("Agent traces: duration, A and B", "ms", "agent", "ms"),
    ):
        chosen = [m for m in drawn if m.unit == unit and m.group == group]
        if chosen:
            series = {comparison.label_a: [m.value_a for m in chosen],
                      comparison.label_b: [m.value_b for m in chosen]}
            charts.append((caption, bar_chart([m.name for m in chosen], series, unit=chart_unit)))
    figures = "".join(
        f'<figure class="panel w12"><figcaption>{html.escape(caption)}</figcaption>{svg}</figure>'
        for caption, svg in charts
    )
    head = "".join(
        f"<th>{html.escape(h)}</th>"
        for h in (
            "metric",
            "n A",
            "n B",
            "A",
            "B",
            f"B - A [{1 - comparison.alpha:.0%} CI]",
            "test",
            "p",
            f"p ({comparison.correction})",
            "verdict",
        )
    )
    warnings = "".join(f'<p class="warning">{html.escape(w)}</p>' for w in comparison.warnings)
    tables = []
    for group in dict.fromkeys(m.group for m in comparison.metrics):
        metrics = [m for m in comparison.metrics if m.group == group]
        body = "".join(
            f'<tr class="{"sig" if m.significant else ""}">'
            f'<td title="{html.escape(m.description)}">{html.escape(m.name)}</td>'
            f"<td>{m.n_a}</td><td>{m.n_b}</td><td>{html.escape(_fmt(m, m.value_a))}</td>"
            f"<td>{html.escape(_fmt(m, m.value_b))}</td><td>{html.escape(_diff(m))}</td>"
            f"<td>{html.escape(m.test or '-')}</td>"
            f"<td>{_p(m.p_value)}</td><td>{_p(m.p_adjusted)}</td><td>{html.escape(m.verdict)}</td></tr>"
            for m in metrics
        )
        title = (f'<h3>Agent traces</h3><p class="note">{html.escape(comparison.notes.get(group, ""))}</p>'
                 if group == "agent" else "")
        tables.append(
            f'{title}<table class="comparison" data-group="{html.escape(group)}" '
            f'data-points="{len(metrics)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
        )
    return f'<div class="grid">{figures}</div>{warnings}' + "".join(tables)


def comparison_html(comparison: Comparison, *, subtitle: str = "") -> str:
    """A self-contained HTML page of the comparison."""
    title = f"{comparison.label_a} vs {comparison.label_b}"
    intro = (f"<p>{html.escape(subtitle)}</p>" if subtitle else "") + (
        f"<p>{len(comparison.significant)} of {len(comparison.metrics)} metrics differ at "
        f"alpha={comparison.alpha} after {html.escape(comparison.correction)} correction.</p>"
    )
    return page(f"llmpulse compare: {title}", intro + comparison_section(comparison))
