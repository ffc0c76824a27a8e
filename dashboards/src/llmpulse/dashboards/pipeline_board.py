"""The Pipeline health dashboard and its alert rules: is llmpulse itself keeping up?

From the store: end-to-end freshness over time (``processed_at - occurred_at``: the
worker's delay; ``inserted_at - processed_at``: the sink's), dead letters by reason, rows
per table per minute, and the apps that stopped sending. The live panels (``LIVE_PANELS``:
consumer lag per partition, events in and out per second, dead letters per second by
reason, freshness p99 from the histograms) query Prometheus, which scrapes the workers'
and the sink's ``/metrics`` (the ``llmpulse-prometheus`` data source);
``deploy/prometheus-rules.yml`` alerts on the lag.

Example:
    >>> from llmpulse.dashboards.pipeline_board import PIPELINE, pipeline_alert_rules
    >>> PIPELINE.uid, [r.uid for r in pipeline_alert_rules()]
    ('llmpulse-pipeline', ['llmpulse-freshness-p99', 'llmpulse-dead-letter-rate', 'llmpulse-silent-source'])
"""

# ruff: noqa: S608 - SQL built from constant fragments; values arrive as Grafana variables

from __future__ import annotations

from llmpulse.dashboards._sql import APP, ENV, sql
from llmpulse.dashboards.alerts import AlertRuleSpec
from llmpulse.dashboards.board_parts import VARIABLES, stat_panel
from llmpulse.dashboards.panels import DashboardSpec, LivePanelSpec, PanelSpec, Viz

__all__ = ["FRESHNESS_P99_SECONDS", "LIVE_PANELS", "PIPELINE", "pipeline_alert_rules"]

FRESHNESS_P99_SECONDS = 5.0
"""Alert when the 99th percentile of ``inserted_at - occurred_at`` passes this."""
DEAD_LETTERS_PER_5M = 100
"""Alert when more dead letters than this arrive in five minutes."""
SILENT_MINUTES = 15
"""An app that sent in the last day and nothing for this long is a silent source."""

_PROCESSED = "(toUnixTimestamp64Micro(processed_at) - toUnixTimestamp64Micro(occurred_at)) / 1e6"
_INSERTED = "(toUnixTimestamp64Micro(inserted_at) - toUnixTimestamp64Micro(processed_at)) / 1e6"
_CALLS = f"$__timeFilter(occurred_at) AND {APP} AND {ENV}"
_TABLES = ("calls", "feedback", "guardrail_verdicts", "alerts", "drift_results", "dead_letters")

_RATE = "[$__rate_interval]"
LIVE_PANELS = (
    LivePanelSpec(
        "consumer_lag",
        "Consumer lag per partition",
        (("sum by (stage, topic, partition) (llmpulse_consumer_lag)",
          "{{stage}} {{topic}}[{{partition}}]"),),
        "Records behind the end of each assigned partition (end offset minus committed), "
        "as each worker and sink reports it.",
    ),
    LivePanelSpec(
        "events_rates",
        "Events in and out per second",
        ((f"sum by (stage) (rate(llmpulse_records_in_total{_RATE}))", "{{stage}} records in"),
         (f"sum by (stage) (rate(llmpulse_events_in_total{_RATE}))", "{{stage}} events in"),
         (f"sum by (stage, target) (rate(llmpulse_events_out_total{_RATE}))",
          "{{stage}} out: {{target}}")),
        "Kafka records and valid events read, and events written (the sink: rows by table; "
        "a worker: by output), per second.",
        unit="ops",
    ),
    LivePanelSpec(
        "dead_letter_rate",
        "Dead letters per second",
        ((f"sum by (stage, reason) (rate(llmpulse_dead_letters_total{_RATE}))",
          "{{stage}}: {{reason}}"),),
        "Dead letters sent per second, by stage and reason (the store's panel above shows "
        "them once stored).",
        unit="ops",
        stacked=True,
    ),
    LivePanelSpec(
        "freshness_metrics",
        "Freshness p99 (metrics)",
        ((f"histogram_quantile(0.99, sum by (le, stage, span) "
          f"(rate(llmpulse_freshness_seconds_bucket{_RATE})))", "{{stage}} {{span}}"),),
        "99th percentile of the event age each stage measured: processed_at - occurred_at "
        "(span processed), inserted_at - processed_at (span inserted).",
        unit="s",
    ),
)
"""The Prometheus panels (Grafana only; the report and the panel tests read the store)."""

PIPELINE = DashboardSpec(
    uid="llmpulse-pipeline",
    title="llmpulse / Pipeline health",
    description="Is llmpulse keeping up: freshness, dead letters, rows stored, silent sources.",
    variables=VARIABLES,
    panels=(
        stat_panel("freshness_p99", "Freshness p99", f"round(quantile(0.99)({_PROCESSED} + "
                   f"{_INSERTED}), 3) AS freshness_p99_s", "s",
                   "99th percentile of inserted_at - occurred_at: from the app's call to the "
                   "row in the store.", table="calls", where=_CALLS, decimals=2),
        stat_panel("worker_p99", "Worker delay p99", f"round(quantile(0.99)({_PROCESSED}), 3) "
                   "AS worker_p99_s", "s", "99th percentile of processed_at - occurred_at.",
                   table="calls", where=_CALLS, decimals=2),
        stat_panel("sink_p99", "Sink delay p99", f"round(quantile(0.99)({_INSERTED}), 3) "
                   "AS sink_p99_s", "s", "99th percentile of inserted_at - processed_at.",
                   table="calls", where=_CALLS, decimals=2),
        stat_panel("dead_letters", "Dead letters", "count() AS dead_letters", "short",
                   "Records and events dead-lettered in the range (all apps).",
                   table="dead_letters", where="$__timeFilter(occurred_at)"),
        PanelSpec(
            "freshness",
            "Freshness percentiles",
            Viz.TIMESERIES,
            sql(f"""
            SELECT $__timeInterval(occurred_at) AS time,
                   quantile(0.5)({_PROCESSED}) AS worker_p50_s,
                   quantile(0.99)({_PROCESSED}) AS worker_p99_s,
                   quantile(0.5)({_INSERTED}) AS sink_p50_s,
                   quantile(0.99)({_INSERTED}) AS sink_p99_s
            FROM calls WHERE {_CALLS} GROUP BY time ORDER BY time"""),
            "Per interval of the calls' time: the worker's delay (processed_at - occurred_at) "
            "and the sink's (inserted_at - processed_at), median and 99th percentile.",
            unit="s",
            width=24,
        ),
        PanelSpec(
            "dead_letters_by_reason",
            "Dead letters by reason",
            Viz.TIMESERIES,
            sql("""
            SELECT $__timeInterval(occurred_at) AS time, concat(stage, ': ', reason) AS series,
                   toFloat64(count()) AS dead_letters
            FROM dead_letters WHERE $__timeFilter(occurred_at)
            GROUP BY time, series ORDER BY time, series"""),
            "Dead letters per interval, by the stage that refused them and the reason.",
            stacked=True,
        ),
        PanelSpec(
            "rows_per_table",
            "Rows stored per minute",
            Viz.TIMESERIES,
            sql("\nUNION ALL\n".join(
                f"SELECT toStartOfMinute(inserted_at) AS time, '{t}' AS series, "
                f"toFloat64(count()) AS row_count FROM {t} WHERE $__timeFilter(inserted_at) "
                "GROUP BY time" for t in _TABLES) + "\nORDER BY time, series"),
            "Rows the sink inserted per minute, by table (the inserts' own clock).",
        ),
        PanelSpec(
            "sources",
            "Sources and their last call",
            Viz.TABLE,
            sql(f"""
            SELECT app, environment, max(occurred_at) AS last_call,
                   count() AS calls_in_range,
                   dateDiff('minute', max(occurred_at), now64(6)) AS silent_minutes
            FROM calls WHERE {_CALLS} GROUP BY app, environment ORDER BY last_call"""),
            f"Each app's last stored call; silent for more than {SILENT_MINUTES} minutes "
            "fires the silent-source alert.",
            width=24,
        ),
    ),
    live_panels=LIVE_PANELS,
)


def pipeline_alert_rules() -> list[AlertRuleSpec]:
    """Alert rules on the pipeline itself (the store's side; the lag is Prometheus's)."""
    return [
        AlertRuleSpec(
            "llmpulse-freshness-p99",
            "Freshness p99 above 5 s",
            sql(f"""
                SELECT app, environment,
                       quantile(0.99)({_PROCESSED} + {_INSERTED}) AS freshness_p99_s
                FROM calls WHERE $__timeFilter(inserted_at) GROUP BY app, environment"""),
            "freshness_p99_s",
            FRESHNESS_P99_SECONDS,
            10,
            "Calls of {{ $labels.app }} reach the store late (p99 above 5 s)",
            "The 99th percentile of inserted_at - occurred_at over the last 10 minutes: "
            "the workers or the sink are behind (see the Pipeline health dashboard).",
            severity="warning",
        ),
        AlertRuleSpec(
            "llmpulse-dead-letter-rate",
            "Dead letters arriving",
            sql("""
                SELECT stage, reason, toFloat64(count()) AS dead_letters
                FROM dead_letters WHERE $__timeFilter(inserted_at) GROUP BY stage, reason"""),
            "dead_letters",
            DEAD_LETTERS_PER_5M,
            5,
            "{{ $labels.stage }} dead-letters {{ $labels.reason }} records",
            f"More than {DEAD_LETTERS_PER_5M} dead letters of one reason in 5 minutes: a "
            "producer sends what the contract refuses.",
            severity="warning",
        ),
        AlertRuleSpec(
            "llmpulse-silent-source",
            "An app stopped sending",
            sql("""
                SELECT app, environment,
                       toFloat64(dateDiff('minute', max(occurred_at), now64(6))) AS silent_minutes
                FROM calls WHERE $__timeFilter(occurred_at) GROUP BY app, environment"""),
            "silent_minutes",
            SILENT_MINUTES,
            24 * 60,
            "{{ $labels.app }} ({{ $labels.environment }}) sent no call for 15 minutes",
            "The app sent calls in the last day and none since: its SDK, its network or the "
            "pipeline in front of the store is down.",
            severity="critical",
            pending_minutes=0,
        ),
    ]
