"""The Feedback dashboard: thumbs, ratings, comments, and how many calls get any feedback.

Example:
    >>> from llmpulse.dashboards.feedback_board import FEEDBACK
    >>> FEEDBACK.uid
    'llmpulse-feedback'
"""

# ruff: noqa: S608 - SQL built from constant fragments; values arrive as Grafana variables

from __future__ import annotations

from llmpulse.dashboards._sql import (
    RAW,
    ROLLUP,
    SCOPE,
    SERIES_VERSION,
    sql,
)
from llmpulse.dashboards.board_parts import VARIABLES, stat_panel
from llmpulse.dashboards.panels import DashboardSpec, PanelSpec, Viz

__all__ = ["FEEDBACK"]

_FEEDBACK_ROLLUP = f"$__timeFilter(minute) AND {SCOPE}"

FEEDBACK = DashboardSpec(
    uid="llmpulse-feedback",
    title="llmpulse / Feedback",
    description="Human feedback: thumbs, ratings, comments and how many calls get any.",
    variables=VARIABLES,
    panels=(
        stat_panel(
            "thumbs_up_rate",
            "Thumbs-up rate",
            "sum(thumbs_up) / nullIf(sum(thumbs_up) + sum(thumbs_down), 0) AS thumbs_up_rate",
            "percentunit",
            "Thumbs up among thumbs given.",
            table="feedback_1m",
            decimals=1,
        ),
        stat_panel(
            "rating",
            "Mean rating",
            "round(sum(rating_sum) / nullIf(sum(ratings), 0), 2) AS rating",
            "short",
            "Mean of the 1-5 ratings.",
            table="feedback_1m",
            decimals=2,
        ),
        stat_panel(
            "feedback_count",
            "Feedback",
            "sum(feedback) AS feedback",
            "short",
            "Feedback events in the range.",
            table="feedback_1m",
        ),
        PanelSpec(
            "coverage",
            "Feedback coverage",
            Viz.STAT,
            sql(f"""
            SELECT (SELECT uniqExact(call_id) FROM feedback WHERE {RAW})
                   / nullIf((SELECT sum(calls) FROM calls_1m WHERE {ROLLUP}), 0) AS coverage"""),
            "Share of calls that received any feedback.",
            unit="percentunit",
            width=4,
            height=4,
            decimals=1,
        ),
        stat_panel(
            "corrections",
            "Corrections",
            "sum(corrections) AS corrections",
            "short",
            "Feedback that carried a corrected answer.",
            table="feedback_1m",
        ),
        stat_panel(
            "comments",
            "Comments",
            "countIf(comment != '') AS comments",
            "short",
            "Feedback with a comment (raw rows).",
            table="feedback",
            where=RAW,
        ),
        PanelSpec(
            "thumbs_by_version",
            "Thumbs-up rate by prompt version",
            Viz.TIMESERIES,
            sql(f"""
            SELECT $__timeInterval(minute) AS time, {SERIES_VERSION} AS series,
                   sum(thumbs_up) / nullIf(sum(thumbs_up) + sum(thumbs_down), 0) AS thumbs_up_rate
            FROM feedback_1m WHERE {_FEEDBACK_ROLLUP} GROUP BY time, series ORDER BY time, series"""),
            "Thumbs up among thumbs given, per prompt version.",
            unit="percentunit",
        ),
        PanelSpec(
            "ratings",
            "Ratings",
            Viz.BARCHART,
            sql(f"""
            SELECT concat(toString(assumeNotNull(rating)), ' stars') AS stars, count() AS feedback
            FROM feedback WHERE {RAW} AND rating IS NOT NULL
            GROUP BY rating, stars ORDER BY rating"""),
            "How many ratings of each value (raw rows).",
        ),
        PanelSpec(
            "feedback_per_call",
            "Feedback per call",
            Viz.TIMESERIES,
            sql(f"""
            SELECT c.time AS time, f.n / c.n AS feedback_per_call
            FROM (SELECT $__timeInterval(minute) AS time, sum(calls) AS n FROM calls_1m
                  WHERE {ROLLUP} GROUP BY time) AS c
            LEFT JOIN (SELECT $__timeInterval(minute) AS time, sum(feedback) AS n FROM feedback_1m
                       WHERE {_FEEDBACK_ROLLUP} GROUP BY time) AS f USING (time)
            ORDER BY time"""),
            "Feedback events per call in each interval.",
            unit="percentunit",
        ),
        PanelSpec(
            "feedback_by_version",
            "By prompt version",
            Viz.TABLE,
            sql(f"""
            SELECT prompt_id, prompt_version, sum(feedback) AS feedback, sum(thumbs_up) AS up,
                   sum(thumbs_down) AS down,
                   round(sum(thumbs_up) / nullIf(sum(thumbs_up) + sum(thumbs_down), 0), 4) AS thumbs_up_rate,
                   round(sum(rating_sum) / nullIf(sum(ratings), 0), 2) AS rating,
                   sum(corrections) AS corrections
            FROM feedback_1m WHERE {_FEEDBACK_ROLLUP}
            GROUP BY prompt_id, prompt_version ORDER BY prompt_id, prompt_version"""),
            "Feedback per prompt version (feedback that named no version counts under an empty one).",
            width=12,
        ),
        PanelSpec(
            "comments_table",
            "Recent comments",
            Viz.TABLE,
            sql(f"""
            SELECT occurred_at AS time, call_id, prompt_version, toString(thumbs) AS thumbs, rating, comment,
                   correction
            FROM feedback WHERE {RAW} AND (comment != '' OR correction != '')
            ORDER BY occurred_at DESC LIMIT 50"""),
            "The latest comments and corrections (raw rows; text is kept 30 days).",
            width=12,
        ),
    ),
)
