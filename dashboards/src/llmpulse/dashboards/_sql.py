"""SQL fragments shared by the dashboard definitions (filters, series names, quantiles).

Every filter is a ``$__conditionalAll`` over a ``${var:sqlstring}`` list, so "All" costs
nothing (``1=1``) and any selection is quoted with doubled quotes, as Grafana does.
"""

from __future__ import annotations

import textwrap

QUANTILES = "quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99)"
"""Merge of the rollups' t-digest states: ``[p50, p90, p95, p99]`` (1-based in SQL)."""


def cond(column: str, var: str) -> str:
    """``column IN (selection)``, or ``1=1`` when ``$var`` is All."""
    return f"$__conditionalAll({column} IN (${{{var}:sqlstring}}), ${var})"


APP = cond("app", "app")
ENV = cond("environment", "environment")
PROMPT = cond("prompt_id", "prompt")
VERSION = cond("prompt_version", "version")
MODEL = cond("model", "model")

SCOPE = f"{APP} AND {ENV} AND {PROMPT} AND {VERSION} AND {MODEL}"
"""All five template variables (calls_1m, feedback_1m, calls, feedback, drift_results)."""
SCOPE_NO_MODEL = f"{APP} AND {ENV} AND {PROMPT} AND {VERSION}"
"""Without the model (guardrail_verdicts_1m has no model column)."""
ROLLUP = f"$__timeFilter(minute) AND {SCOPE}"
RAW = f"$__timeFilter(occurred_at) AND {SCOPE}"

# The prompt-version comparison dashboard: one prompt, versions A and B.
PAIR_SCOPE = (
    f"{APP} AND {ENV} AND {MODEL} AND prompt_id = ${{prompt:sqlstring}} "
    "AND prompt_version IN (${version_a:sqlstring}, ${version_b:sqlstring})"
)
SIDE = (
    "if(prompt_version = ${version_a:sqlstring}, concat('A: v', prompt_version), "
    "concat('B: v', prompt_version))"
)
"""``A: v1`` / ``B: v2``: the series name of each side."""

SERIES_VERSION = "concat(prompt_id, ' v', prompt_version)"


def sql(text: str) -> str:
    """Dedented, stripped SQL (kept multi-line: Grafana shows it as written)."""
    return textwrap.dedent(text).strip()
