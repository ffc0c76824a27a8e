"""Inline SVG charts for self-contained HTML (no script or stylesheet from elsewhere).

Line charts (time series, stacked or not), grouped or stacked bar charts, stat tiles,
tables and the comparison's interval plot. Every chart is an ``<svg class="chart">``
whose drawn marks carry the ``mark`` class and whose ``data-points`` attribute counts the
values drawn; points have ``<title>`` tooltips.

Example:
    >>> from datetime import UTC, datetime, timedelta
    >>> from llmpulse.dashboards.charts import line_chart
    >>> t0 = datetime(2025, 1, 1, tzinfo=UTC)
    >>> svg = line_chart({"calls": [(t0, 3.0), (t0 + timedelta(minutes=1), 5.0)]}, unit="short")
    >>> svg.startswith("<svg") and 'data-points="2"' in svg
    True
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

__all__ = ["PALETTE", "bar_chart", "format_value", "interval_plot", "line_chart", "stat_tile", "table_html",
           "version_label"]

PALETTE = ("#3274d9", "#ff780a", "#37872d", "#e02f44", "#8f3bb8", "#0a9396", "#c4a000", "#6e6e6e")
_W, _H = 600, 230
_LEFT, _RIGHT, _TOP, _BOTTOM = 62, 12, 12, 42


def version_label(version: str) -> str:
    """``v1`` stays ``v1``; a bare ``3`` or content hash gets its ``v`` (``v3``)."""
    return version if version[:1] in {"v", "V"} else f"v{version}"


def format_value(value: Any, unit: str = "short", decimals: int | None = None) -> str:
    """A value as a dashboard shows it (``percentunit`` 0.052 -> ``5.2%``, ``ms``, ``currencyUSD``)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if unit == "percentunit":
        return f"{value * 100:.{1 if decimals is None else decimals}f}%"
    if unit == "currencyUSD":
        places = decimals if decimals is not None else (2 if abs(value) >= 1 else 5)
        return f"${value:,.{places}f}"
    if unit == "ms":
        return f"{value / 1000:.2f} s" if abs(value) >= 10_000 else f"{value:,.0f} ms"
    if isinstance(value, int):
        return f"{value:,}"
    if decimals is not None:
        return f"{value:,.{decimals}f}"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _ticks(low: float, high: float, count: int = 4) -> list[float]:
    if high <= low:
        high = low + 1
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks = [round(start, 12)]
    value = start
    while value < high - step * 1e-9:  # up to the first tick at or above the highest value
        value += step
        ticks.append(round(value, 12))
    return ticks


def _frame(y_ticks: list[float], y_of: Any, unit: str) -> list[str]:
    parts = []
    for tick in y_ticks:
        y = y_of(tick)
        parts.append(f'<line x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(
            f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="axis">'
            f"{html.escape(format_value(tick, unit))}</text>"
        )
    return parts


def _legend(names: Sequence[str]) -> str:
    items = "".join(
        f'<span class="key"><i style="background:{PALETTE[i % len(PALETTE)]}"></i>{html.escape(n)}</span>'
        for i, n in enumerate(names)
    )
    return f'<div class="legend">{items}</div>'


def line_chart(
    series: Mapping[str, Sequence[tuple[datetime, float | None]]],
    *,
    unit: str = "short",
    stacked: bool = False,
) -> str:
    """Lines over time, one per series; ``None`` breaks a line. Stacked series are summed."""
    names = list(series)
    xs = sorted({x for points in series.values() for x, _ in points})
    values: dict[str, dict[datetime, float | None]] = {n: dict(series[n]) for n in names}
    if stacked:
        running = dict.fromkeys(xs, 0.0)
        for name in names:
            for x in xs:
                value = values[name].get(x)
                running[x] += value if value is not None and math.isfinite(value) else 0.0
                values[name][x] = running[x]
    finite = [v for n in names for v in values[n].values() if v is not None and math.isfinite(v)]
    if not xs or not finite:
        return _empty()
    y_ticks = _ticks(min(0.0, min(finite)), max(finite))
    lo, hi = y_ticks[0], y_ticks[-1]
    t0, t1 = xs[0].timestamp(), xs[-1].timestamp()
    span = (t1 - t0) or 1.0

    def x_of(x: datetime) -> float:
        return _LEFT + (x.timestamp() - t0) / span * (_W - _LEFT - _RIGHT)

    def y_of(y: float) -> float:
        return _TOP + (hi - y) / ((hi - lo) or 1.0) * (_H - _TOP - _BOTTOM)

    parts = _frame(y_ticks, y_of, unit)
    for label_x in (xs[0], xs[len(xs) // 2], xs[-1]):
        parts.append(
            f'<text x="{x_of(label_x):.1f}" y="{_H - _BOTTOM + 16}" text-anchor="middle" class="axis">'
            f"{label_x:%H:%M}</text>"
        )
    parts.append(
        f'<text x="{_W - _RIGHT}" y="{_H - 6}" text-anchor="end" class="axis">'
        f"{xs[0]:%Y-%m-%d %H:%M} - {xs[-1]:%Y-%m-%d %H:%M} UTC</text>"
    )
    drawn = 0
    for index, name in enumerate(reversed(names) if stacked else names):
        color = PALETTE[(names.index(name)) % len(PALETTE)]
        segments: list[list[str]] = [[]]
        for x in xs:
            value = values[name].get(x)
            if value is None or not math.isfinite(value):
                if segments[-1]:
                    segments.append([])
                continue
            segments[-1].append(f"{x_of(x):.1f},{y_of(value):.1f}")
            drawn += 1
        for segment in segments:
            if len(segment) > 1:
                parts.append(
                    f'<polyline class="mark" fill="none" stroke="{color}" stroke-width="1.6" '
                    f'points="{" ".join(segment)}"/>'
                )
            elif segment:
                cx, cy = segment[0].split(",")
                parts.append(f'<circle class="mark" cx="{cx}" cy="{cy}" r="2.5" fill="{color}"/>')
        _ = index
    return _svg(parts, drawn) + _legend(names)


def bar_chart(
    categories: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    *,
    unit: str = "short",
    stacked: bool = False,
) -> str:
    """Vertical bars per category: side by side, or stacked."""
    names = list(series)
    if not categories or not names:
        return _empty()
    clean = {n: [v if v is not None and math.isfinite(v) else 0.0 for v in series[n]] for n in names}
    totals = (
        [sum(clean[n][i] for n in names) for i in range(len(categories))]
        if stacked
        else [max(clean[n][i] for n in names) for i in range(len(categories))]
    )
    y_ticks = _ticks(0.0, max(totals) if max(totals) > 0 else 1.0)
    hi = y_ticks[-1]

    def y_of(y: float) -> float:
        return _TOP + (hi - y) / (hi or 1.0) * (_H - _TOP - _BOTTOM)

    parts = _frame(y_ticks, y_of, unit)
    slot = (_W - _LEFT - _RIGHT) / len(categories)
    bar = slot * 0.7 / (1 if stacked else len(names))
    drawn = 0
    for i, category in enumerate(categories):
        x0 = _LEFT + i * slot + slot * 0.15
        base = 0.0
        for j, name in enumerate(names):
            value = clean[name][i]
            x = x0 if stacked else x0 + j * bar
            top, bottom = y_of(base + value), y_of(base)
            parts.append(
                f'<rect class="mark" x="{x:.1f}" y="{top:.1f}" width="{bar:.1f}" '
                f'height="{max(bottom - top, 0):.1f}" fill="{PALETTE[j % len(PALETTE)]}">'
                f"<title>{html.escape(category)} · {html.escape(name)}: "
                f"{html.escape(format_value(value, unit))}</title></rect>"
            )
            drawn += 1
            if stacked:
                base += value
        fits = max(4, int(slot / 6.5))  # about 6.5 px per character at 11 px
        label = category if len(category) <= fits else category[: fits - 1] + "…"
        parts.append(
            f'<text x="{x0 + slot * 0.35:.1f}" y="{_H - _BOTTOM + 16}" text-anchor="middle" '
            f'class="axis">{html.escape(label)}</text>'
        )
    return _svg(parts, drawn) + _legend(names)


def interval_plot(rows: Sequence[tuple[str, float | None, float | None, float | None, bool]]) -> str:
    """The comparison's forest plot: per metric, B's relative difference from A with its interval.

    ``rows`` are ``(label, estimate, low, high, significant)`` in percent of A.
    """
    usable = [r for r in rows if r[1] is not None and r[2] is not None and r[3] is not None]
    if not usable:
        return _empty()
    bound = max(max(abs(r[2]), abs(r[3]), abs(r[1])) for r in usable) or 1.0  # type: ignore[arg-type]
    bound = min(bound * 1.1, 500.0)
    row_h, left, width = 22, 170, _W - 170 - 20
    height = row_h * len(usable) + 30

    def x_of(value: float) -> float:
        return left + (max(-bound, min(bound, value)) + bound) / (2 * bound) * width

    parts = [f'<line x1="{x_of(0):.1f}" x2="{x_of(0):.1f}" y1="4" y2="{height - 24}" class="zero"/>']
    for i, (label, estimate, low, high, significant) in enumerate(usable):
        y = 14 + i * row_h
        color = PALETTE[3] if significant else PALETTE[7]
        parts.append(
            f'<text x="{left - 8}" y="{y + 4}" text-anchor="end" class="axis">{html.escape(label)}</text>'
        )
        parts.append(
            f'<line class="mark" x1="{x_of(low):.1f}" x2="{x_of(high):.1f}" y1="{y}" y2="{y}" '  # type: ignore[arg-type]
            f'stroke="{color}" stroke-width="2"/>'
        )
        parts.append(
            f'<circle class="mark" cx="{x_of(estimate):.1f}" cy="{y}" r="4" fill="{color}">'  # type: ignore[arg-type]
            f"<title>{html.escape(label)}: {estimate:+.1f}% [{low:+.1f}%, {high:+.1f}%]</title></circle>"
        )
    for tick in (-bound, -bound / 2, 0.0, bound / 2, bound):
        parts.append(
            f'<text x="{x_of(tick):.1f}" y="{height - 8}" text-anchor="middle" class="axis">'
            f"{tick:+.0f}%</text>"
        )
    return (
        f'<svg class="chart" data-points="{len(usable)}" viewBox="0 0 {_W} {height}" '
        f'width="{_W}" height="{height}" role="img">' + "".join(parts) + "</svg>"
    )


def stat_tile(value: Any, unit: str = "short", decimals: int | None = None) -> str:
    """A big number."""
    empty = value is None or (isinstance(value, float) and not math.isfinite(value))
    return (
        f'<div class="stat" data-points="{0 if empty else 1}">'
        f"{html.escape(format_value(value, unit, decimals))}</div>"
    )


def table_html(columns: Sequence[str], rows: Sequence[Sequence[Any]], *, limit: int = 50) -> str:
    """An HTML table of the first ``limit`` rows."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(format_value(v, 'short'))}</td>" for v in row) + "</tr>"
        for row in rows[:limit]
    )
    more = f'<p class="note">{len(rows) - limit} more rows</p>' if len(rows) > limit else ""
    return (
        f'<table data-points="{len(rows)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}'
    )


def _svg(parts: list[str], points: int) -> str:
    return (
        f'<svg class="chart" data-points="{points}" viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" '
        f'role="img">' + "".join(parts) + "</svg>"
    )


def _empty() -> str:
    return (
        f'<svg class="chart empty" data-points="0" viewBox="0 0 {_W} 60" width="{_W}" height="60">'
        '<text x="300" y="35" text-anchor="middle" class="axis">No data</text></svg>'
    )
