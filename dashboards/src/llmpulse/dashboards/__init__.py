"""llmpulse.dashboards: Grafana dashboards and alert rules as code, reports, version comparison.

Example:
    >>> from llmpulse.dashboards import DASHBOARDS, compare_samples, render_report
    >>> [d.uid for d in DASHBOARDS][:2]
    ['llmpulse-overview', 'llmpulse-quality']
    >>> render_report(store, since=start, until=end, out_path="report.html")   # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

# Names load on first use: `llmpulse --help` should not import scipy, the Grafana SDK or
# the ClickHouse client.
_EXPORTS = {
    "alerts": ("AlertThresholds", "alert_rules", "evaluate_rules"),
    "compare": ("compare_versions", "comparison_html", "comparison_json", "comparison_table"),
    "definitions": ("DASHBOARDS",),
    "grafana": ("check", "dashboard_json", "generate"),
    "macros": ("TimeRange", "Variable", "expand"),
    "panels": ("DashboardSpec", "PanelSpec", "VariableSpec", "Viz"),
    "push": ("PushError", "PushResult", "push"),
    "report": ("render_report",),
    "samples": ("METRICS", "samples_from_rows", "version_samples"),
    "stats": ("Comparison", "MetricComparison", "MetricKind", "MetricSamples", "compare_samples"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'llmpulse.dashboards' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"llmpulse.dashboards.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "DASHBOARDS",
    "METRICS",
    "AlertThresholds",
    "Comparison",
    "DashboardSpec",
    "MetricComparison",
    "MetricKind",
    "MetricSamples",
    "PanelSpec",
    "PushError",
    "PushResult",
    "TimeRange",
    "Variable",
    "VariableSpec",
    "Viz",
    "alert_rules",
    "check",
    "compare_samples",
    "compare_versions",
    "comparison_html",
    "comparison_json",
    "comparison_table",
    "dashboard_json",
    "evaluate_rules",
    "expand",
    "generate",
    "push",
    "render_report",
    "samples_from_rows",
    "version_samples",
]
