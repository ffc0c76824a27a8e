"""The Drift dashboard: drift per prompt version, which feature drifted, and when.

Example:
    >>> from llmpulse.dashboards.drift_board import DRIFT
    >>> DRIFT.uid
    'llmpulse-drift'
"""

# ruff: noqa: S608 - SQL built from constant fragments; values arrive as Grafana variables

from __future__ import annotations

from llmpulse.dashboards._sql import (
    SCOPE,
    SERIES_VERSION,
    sql,
)
from llmpulse.dashboards.board_parts import VARIABLES, stat_panel
from llmpulse.dashboards.panels import DashboardSpec, PanelSpec, Viz

__all__ = ["DRIFT"]

_DRIFT = f"$__timeFilter(window_end) AND {SCOPE}"

DRIFT = DashboardSpec(
    uid="llmpulse-drift",
    title="llmpulse / Drift",
    description="Drift per prompt version: which feature drifted, and when.",
    variables=VARIABLES,
    panels=(
        stat_panel(
            "drifted_windows",
            "Drifted windows",
            "countIf(drifted) AS drifted_windows",
            "short",
            "Windows in which the share of drifted features passed the threshold.",
            table="drift_results",
            where=_DRIFT,
        ),
        stat_panel(
            "windows",
            "Windows checked",
            "count() AS windows",
            "short",
            "Drift windows computed.",
            table="drift_results",
            where=_DRIFT,
        ),
        stat_panel(
            "versions_drifting",
            "Versions drifting",
            "uniqExactIf((prompt_id, prompt_version), drifted) AS versions_drifting",
            "short",
            "Prompt versions with at least one drifted window.",
            table="drift_results",
            where=_DRIFT,
        ),
        stat_panel(
            "max_share",
            "Largest share drifted",
            "max(share_drifted) AS max_share_drifted",
            "percentunit",
            "The largest share of drifted features in a window.",
            table="drift_results",
            where=_DRIFT,
        ),
        PanelSpec(
            "share_drifted",
            "Share of features drifted",
            Viz.TIMESERIES,
            sql(f"""
            SELECT $__timeInterval(window_end) AS time, {SERIES_VERSION} AS series,
                   max(share_drifted) AS share_drifted
            FROM drift_results WHERE {_DRIFT} GROUP BY time, series ORDER BY time, series"""),
            "Per window end, the share of features that drifted, per prompt version.",
            unit="percentunit",
            min_interval="5m",
        ),
        PanelSpec(
            "features",
            "Which features drifted",
            Viz.BARCHART,
            sql(f"""
            SELECT feature, countIf(feature_drift) AS drifted_windows, count() AS windows
            FROM drift_results ARRAY JOIN feature_names AS feature, feature_drifted AS feature_drift
            WHERE {_DRIFT} GROUP BY feature ORDER BY drifted_windows DESC, feature"""),
            "Windows in which each feature drifted, of the windows that tested it.",
        ),
        PanelSpec(
            "drifted_table",
            "Drifted windows",
            Viz.TABLE,
            sql(f"""
            SELECT window_end AS time, prompt_id, prompt_version, model,
                   round(share_drifted, 3) AS share_drifted,
                   arrayStringConcat(arrayFilter((f, d) -> d, feature_names, feature_drifted), ', ')
                       AS features,
                   window_size, reference_size
            FROM drift_results WHERE {_DRIFT} AND drifted ORDER BY window_end DESC LIMIT 100"""),
            "Each drifted window and the features that drifted in it.",
            width=16,
        ),
        PanelSpec(
            "drift_by_version",
            "By prompt version",
            Viz.TABLE,
            sql(f"""
            SELECT prompt_id, prompt_version, count() AS windows, countIf(drifted) AS drifted_windows,
                   maxIf(window_end, drifted) AS last_drifted,
                   round(argMax(share_drifted, window_end), 3) AS latest_share
            FROM drift_results WHERE {_DRIFT} GROUP BY prompt_id, prompt_version
            ORDER BY prompt_id, prompt_version"""),
            "Windows and drifted windows per prompt version; the latest window's share.",
            width=8,
        ),
    ),
)
