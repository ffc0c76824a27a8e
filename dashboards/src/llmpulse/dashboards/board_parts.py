"""Pieces every llmpulse dashboard shares: the template variables and the stat panel.

Example:
    >>> from llmpulse.dashboards.board_parts import VARIABLES
    >>> [v.name for v in VARIABLES]
    ['app', 'environment', 'prompt', 'version', 'model']
"""

# ruff: noqa: S608 - SQL built from constant fragments; values arrive as Grafana variables

from __future__ import annotations

from llmpulse.dashboards._sql import APP, ENV, PROMPT, ROLLUP, sql
from llmpulse.dashboards.panels import PanelSpec, VariableSpec, Viz

__all__ = ["VARIABLES", "stat_panel"]

VARIABLES = (
    VariableSpec(
        "app", "App", sql("SELECT DISTINCT app FROM calls_1m WHERE $__timeFilter(minute) ORDER BY app")
    ),
    VariableSpec(
        "environment",
        "Environment",
        sql(f"""
        SELECT DISTINCT environment FROM calls_1m WHERE $__timeFilter(minute) AND {APP}
        ORDER BY environment"""),
    ),
    VariableSpec(
        "prompt",
        "Prompt",
        sql(f"""
        SELECT DISTINCT prompt_id FROM calls_1m WHERE $__timeFilter(minute) AND {APP} AND {ENV}
        ORDER BY prompt_id"""),
    ),
    VariableSpec(
        "version",
        "Version",
        sql(f"""
        SELECT DISTINCT prompt_version FROM calls_1m
        WHERE $__timeFilter(minute) AND {APP} AND {ENV} AND {PROMPT} ORDER BY prompt_version"""),
    ),
    VariableSpec(
        "model",
        "Model",
        sql(f"""
        SELECT DISTINCT model FROM calls_1m WHERE $__timeFilter(minute) AND {APP} AND {ENV} AND {PROMPT}
        ORDER BY model"""),
    ),
)
"""app, environment, prompt, version, model: multi-value, with All, chained."""


def stat_panel(
    key: str,
    title: str,
    select: str,
    unit: str,
    description: str,
    table: str = "calls_1m",
    where: str = ROLLUP,
    decimals: int | None = None,
) -> PanelSpec:
    return PanelSpec(
        key,
        title,
        Viz.STAT,
        sql(f"SELECT {select} FROM {table} WHERE {where}"),
        description,
        unit=unit,
        width=4,
        height=4,
        decimals=decimals,
    )
