"""Typed panel and dashboard definitions: the one source for Grafana JSON and the report.

A ``DashboardSpec`` holds template variables and panels; each ``PanelSpec`` has the
ClickHouse SQL (with the Grafana ClickHouse plugin's macros and template variables) and
the visualisation it feeds. ``llmpulse.dashboards.grafana`` turns these into Grafana
JSON; ``llmpulse.dashboards.report`` runs the same SQL against the store and draws it.

Example:
    >>> from llmpulse.dashboards.panels import PanelSpec, Viz
    >>> panel = PanelSpec("calls", "Calls", Viz.STAT, "SELECT sum(calls) AS calls FROM calls_1m")
    >>> panel.query_format
    'table'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["DashboardSpec", "LivePanelSpec", "PanelSpec", "VariableSpec", "Viz"]


class Viz(StrEnum):
    """The visualisations the dashboards use (Grafana panel types)."""

    TIMESERIES = "timeseries"
    STAT = "stat"
    TABLE = "table"
    BARCHART = "barchart"


@dataclass(frozen=True)
class PanelSpec:
    """One panel.

    Attributes:
        key: stable identifier inside its dashboard (the panel id is derived from order).
        title: shown above the panel.
        viz: the visualisation; it fixes the columns the SQL must return: TIMESERIES a
            ``time`` column, then numbers (or ``time``, one string ``series`` column and
            one number: long format, one line per series); STAT one row of numbers;
            BARCHART a string column then numbers; TABLE any columns.
        sql: ClickHouse SQL with plugin macros and ``${var:sqlstring}`` variables.
        description: the panel's tooltip, and the report's caption.
        unit: Grafana unit id (``percentunit``, ``ms``, ``currencyUSD``, ``short``...).
        width: grid width (of 24).
        height: grid height.
        decimals: decimals shown.
        min_interval: the panel's minimum interval (rollups are per minute).
        stacked: stack the series (time series and bar charts).
    """

    key: str
    title: str
    viz: Viz
    sql: str
    description: str = ""
    unit: str = "short"
    width: int = 12
    height: int = 8
    decimals: int | None = None
    min_interval: str = "1m"
    stacked: bool = False

    @property
    def query_format(self) -> str:
        """``timeseries`` or ``table``: the ClickHouse plugin's query type for this panel."""
        return "timeseries" if self.viz is Viz.TIMESERIES else "table"


@dataclass(frozen=True)
class LivePanelSpec:
    """A time-series panel on Prometheus (the services' ``/metrics``), not on the store.

    Only Grafana draws it: the HTML report and the panel tests read the store, so a
    dashboard keeps these apart from its ``panels``.

    Attributes:
        key: stable identifier inside its dashboard.
        title: shown above the panel.
        queries: ``(PromQL, legend)`` pairs, one line (or one per series) each; the legend
            may use ``{{label}}``.
        description: the panel's tooltip.
        unit: Grafana unit id.
        width: grid width (of 24).
        height: grid height.
        stacked: stack the series.
    """

    key: str
    title: str
    queries: tuple[tuple[str, str], ...]
    description: str = ""
    unit: str = "short"
    width: int = 12
    height: int = 8
    stacked: bool = False


@dataclass(frozen=True)
class VariableSpec:
    """A template variable filled by a query.

    Attributes:
        name: ``app`` for ``$app``.
        label: shown in the variable bar.
        sql: returns one column of values (macros allowed, e.g. ``$__timeFilter``).
        multi: several values may be selected.
        include_all: an "All" option (``$__conditionalAll`` turns a filter into ``1=1``).
        default: the value selected by default (None: All, or the first value).
        descending: offer the values in descending order (so the first, the default
            without All, is the last value: version B of the comparison).
    """

    name: str
    label: str
    sql: str
    multi: bool = True
    include_all: bool = True
    default: str | None = None
    descending: bool = False


@dataclass(frozen=True)
class DashboardSpec:
    """A dashboard: uid, title, variables and panels (laid out left to right, top down)."""

    uid: str
    title: str
    description: str
    variables: tuple[VariableSpec, ...]
    panels: tuple[PanelSpec, ...]
    tags: tuple[str, ...] = ("llmpulse",)
    time_from: str = "now-6h"
    refresh: str = "1m"
    links: tuple[str, ...] = field(default=())
    live_panels: tuple[LivePanelSpec, ...] = ()
    """Prometheus panels, placed after the store's (Grafana only)."""

    def panel(self, key: str) -> PanelSpec:
        """The panel with this key."""
        for panel in self.panels:
            if panel.key == key:
                return panel
        raise KeyError(f"{self.uid} has no panel {key!r}")

    def layout(self) -> list[tuple[PanelSpec | LivePanelSpec, int, int]]:
        """``(panel, x, y)`` of each panel, the store's then the live ones: filled row by
        row, 24 columns wide."""
        placed: list[tuple[PanelSpec | LivePanelSpec, int, int]] = []
        x = y = row_height = 0
        every: list[PanelSpec | LivePanelSpec] = [*self.panels, *self.live_panels]
        for panel in every:
            if x + panel.width > 24:
                x, y, row_height = 0, y + row_height, 0
            placed.append((panel, x, y))
            x += panel.width
            row_height = max(row_height, panel.height)
        return placed
