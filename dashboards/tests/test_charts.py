"""The inline SVG charts keep every mark inside the plot."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from llmpulse.dashboards.charts import bar_chart, line_chart

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_the_highest_value_is_inside_the_plot() -> None:
    # 9 is above the last "nice" tick under it (7.5): the axis must reach 10, not clip at 7.5
    svg = line_chart({"steps": [(T0 + timedelta(minutes=i), v) for i, v in enumerate((3.0, 9.0, 5.0))]})
    ys = [float(y) for y in re.findall(r"[\d.]+,([\d.]+)", re.search(r' points="([^"]+)"', svg).group(1))]
    assert min(ys) >= 12  # the plot's top margin
    assert ">10<" in svg  # the top tick
    bars = bar_chart(["a", "b"], {"p95": [2037.0, 177.0]}, unit="short")
    heights = [float(h) for h in re.findall(r'class="mark"[^>]* height="([\d.]+)"', bars)]
    assert heights and max(heights) <= 230 - 12 - 42
