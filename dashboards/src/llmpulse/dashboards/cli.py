"""The dashboards room's commands: ``llmpulse dashboards generate|check|push``, ``llmpulse report``
and ``llmpulse compare``.

Example:
    $ llmpulse dashboards generate                      # dashboards/grafana/ from the code
    $ llmpulse dashboards push --grafana-url http://localhost:3000 --token glsa_...
    $ llmpulse report --since 24h --out llmpulse-report.html
    $ llmpulse compare --prompt answer --a 1 --b 2 --since 7d --format table
    $ llmpulse-dashboards report --help  # the same commands, from this distribution alone
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from llmpulse.schemas import environment as env
from llmpulse.schemas.commandline import (
    MOMENT_HELP,
    configure_logging,
    log_level_option,
    moment_range,
    run_command,
)

if TYPE_CHECKING:
    from llmpulse.dashboards.alerts import AlertThresholds
    from llmpulse.sinks.store import Store

__all__ = ["commands", "compare", "dashboards", "report", "run"]

logger = logging.getLogger(__name__)

def _range(since: str, until: str | None) -> tuple[datetime, datetime]:
    try:
        start, end = moment_range(since, until)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    assert start is not None
    return start, end or datetime.now(UTC)


def _clickhouse_option(fn: Any) -> Any:
    return click.option(
        "--clickhouse",
        "clickhouse_url",
        envvar=env.CLICKHOUSE_URL,
        default=None,
        help=f"chdb:///path or http(s)://user:pass@host:port/db (or ${env.CLICKHOUSE_URL}); "
        "default: the embedded store.",
    )(fn)


def _range_options(fn: Any) -> Any:
    fn = click.option(
        "--until", "--to", "until", default=None, help=f"End of the range (default now): {MOMENT_HELP}."
    )(fn)
    return click.option(
        "--since",
        "--from",
        "since",
        default="24h",
        show_default=True,
        help=f"Start of the range: {MOMENT_HELP}; a duration counts back from --until.",
    )(fn)


def _open(url: str | None) -> Store:
    """Open the store to read (told to run ``llmpulse db migrate`` when it is not migrated)."""
    from llmpulse.sinks.cli import open_store

    return open_store(url, writes=False)


def _thresholds(pairs: tuple[str, ...]) -> AlertThresholds:
    from llmpulse.dashboards.alerts import AlertThresholds

    values = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"{pair!r}: use NAME=VALUE, e.g. error_rate=0.1")
        values[name.strip()] = value.strip()
    try:
        return AlertThresholds.from_env().replace(values)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


_threshold_option = click.option(
    "--threshold",
    "thresholds",
    multiple=True,
    metavar="NAME=VALUE",
    help="Alert threshold (repeatable): error_rate=0.1, p95_latency_ms=3000 ... "
    f"(or ${env.ALERT_PREFIX}NAME).",
)


def _default_grafana_dir() -> Path:
    """``dashboards/grafana`` of the checkout (found from here, else from the working folder)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "dashboards" / "grafana" / "provisioning").is_dir():
            return parent / "dashboards" / "grafana"
    return Path.cwd() / "dashboards" / "grafana"


@click.group("dashboards")
def dashboards() -> None:
    """Grafana dashboards and alert rules as code."""


@dashboards.command("generate")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder to write (default: dashboards/grafana in the checkout).",
)
@_threshold_option
def generate_command(out: Path | None, thresholds: tuple[str, ...]) -> None:
    """Write the dashboards' Grafana JSON and the provisioning files from the code."""
    from llmpulse.dashboards.grafana import generate

    for path in generate(out or _default_grafana_dir(), _thresholds(thresholds)):
        click.echo(str(path))


@dashboards.command("check")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder to check (default: dashboards/grafana in the checkout).",
)
@_threshold_option
def check_command(out: Path | None, thresholds: tuple[str, ...]) -> None:
    """Fail when the generated files differ from the code (run generate to fix)."""
    from llmpulse.dashboards.grafana import check

    stale = check(out or _default_grafana_dir(), _thresholds(thresholds))
    if stale:
        raise click.ClickException("out of date (run `llmpulse dashboards generate`): " + ", ".join(stale))
    click.echo("up to date")


@dashboards.command("push")
@click.option(
    "--grafana-url",
    envvar=env.GRAFANA_URL,
    required=True,
    show_envvar=True,
    help="Grafana's URL, e.g. http://localhost:3000.",
)
@click.option(
    "--token",
    envvar=env.GRAFANA_TOKEN,
    default=None,
    show_envvar=True,
    help="A service-account token (or user:password in the URL).",
)
@click.option(
    "--clickhouse",
    "clickhouse_url",
    envvar=env.CLICKHOUSE_URL,
    default=None,
    show_envvar=True,
    help="The ClickHouse server as Grafana reaches it: http://user:pass@host:8123/db.",
)
@click.option("--no-datasource", is_flag=True, help="Leave the data source as it is.")
@click.option("--no-alerts", is_flag=True, help="Do not push the alert rules.")
@_threshold_option
@click.option("--timeout", type=float, default=10.0, show_default=True, help="Seconds per request.")
def push_command(
    grafana_url: str,
    token: str | None,
    clickhouse_url: str | None,
    no_datasource: bool,
    no_alerts: bool,
    thresholds: tuple[str, ...],
    timeout: float,
) -> None:
    """Create or update the folder, data source, dashboards and alert rules (by uid; idempotent)."""
    from llmpulse.dashboards.push import PushError, clickhouse_datasource, push

    datasource = None
    if not no_datasource:
        if not clickhouse_url:
            raise click.UsageError("give --clickhouse http://user:pass@host:8123/db, or --no-datasource")
        try:
            datasource = clickhouse_datasource(clickhouse_url)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from exc
    try:
        result = push(
            grafana_url,
            token,
            datasource=datasource,
            thresholds=_thresholds(thresholds),
            include_alerts=not no_alerts,
            timeout=timeout,
        )
    except PushError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"folder      {result.folder}")
    click.echo(f"data source {result.datasource}")
    for uid, status in result.dashboards.items():
        click.echo(f"dashboard   {uid}: {status}")
    for uid, status in result.alert_rules.items():
        click.echo(f"alert rule  {uid}: {status}")


@click.command("report")
@_clickhouse_option
@_range_options
@click.option("--app", default=None, help="Only this app (default: all apps).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("llmpulse-report.html"),
    show_default=True,
)
@click.option("--no-compare", is_flag=True, help="Leave out the version comparison.")
@click.option(
    "--trace-id",
    default=None,
    help="The trace the trace view draws (default: the slowest agent trace in the range).",
)
@log_level_option(click, default="warning")
def report(
    clickhouse_url: str | None,
    since: str,
    until: str | None,
    app: str | None,
    out: Path,
    no_compare: bool,
    trace_id: str | None,
    log_level: str,
) -> None:
    """Render the dashboards, alert states and version comparison to one self-contained HTML file."""
    configure_logging(log_level)
    from llmpulse.dashboards.report import render_report

    start, end = _range(since, until)
    with _open(clickhouse_url) as store, click.progressbar(length=1, label="report", file=sys.stderr) as bar:

        def progress(done: int, total: int, what: str) -> None:
            bar.length = total
            bar.label = what[:48].ljust(48)
            bar.update(done - bar.pos)

        path = render_report(
            store,
            since=start,
            until=end,
            out_path=out,
            app=app,
            compare=not no_compare,
            progress=progress,
            trace_id=trace_id,
        )
    click.echo(str(path))


@click.command("compare")
@click.option("--prompt", "prompt_id", default=None, help="The prompt id.")
@click.option("--a", "version_a", default=None, help="Version A (the baseline).")
@click.option("--b", "version_b", default=None, help="Version B (the candidate); differences are B - A.")
@click.option(
    "--run",
    "runs",
    multiple=True,
    help="Replay runs instead of versions, twice: A then B, as RUN or RUN:VARIANT "
    "(variant baseline or candidate, default candidate).",
)
@_clickhouse_option
@_range_options
@click.option("--app", default=None, help="Only this app.")
@click.option("--environment", default=None, help="Only this environment.")
@click.option("--model", default=None, help="Only this model.")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json", "html"]), default="table", show_default=True
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to this file (default: standard output; html defaults to llmpulse-compare.html).",
)
@click.option("--alpha", type=click.FloatRange(0.0001, 0.5), default=0.05, show_default=True)
@click.option(
    "--correction",
    type=click.Choice(["holm", "bh"]),
    default="holm",
    show_default=True,
    help="holm: family-wise error rate; bh: false discovery rate.",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap and permutations."
)
@click.option(
    "--fail-on",
    type=click.Choice(["worse", "different"]),
    default=None,
    help="Exit with status 3 when B is significantly worse than A on a metric (worse), or "
    "differs on any (different): a CI job can gate a prompt change on it.",
)
@log_level_option(click, default="warning")
def compare(
    prompt_id: str | None,
    version_a: str | None,
    version_b: str | None,
    runs: tuple[str, ...],
    clickhouse_url: str | None,
    since: str,
    until: str | None,
    app: str | None,
    environment: str | None,
    model: str | None,
    fmt: str,
    out: Path | None,
    alpha: float,
    correction: str,
    seed: int,
    fail_on: str | None,
    log_level: str,
) -> None:
    """Compare two prompt versions (or two replay runs): values, differences with intervals,
    p-values, verdicts; per call, and per agent trace when the versions have agent traces.
    With --fail-on, exit 3 when B fails the gate (agent metrics included)."""
    configure_logging(log_level)
    from llmpulse.dashboards.compare import (
        compare_runs,
        compare_versions,
        comparison_html,
        comparison_json,
        comparison_table,
        worse_metrics,
    )

    if runs and len(runs) != 2:
        raise click.UsageError("give --run twice: A then B")
    if not runs and not (prompt_id and version_a and version_b):
        raise click.UsageError("give --prompt, --a and --b, or --run A --run B")
    start, end = _range(since, until)
    with _open(clickhouse_url) as store:
        try:
            if runs:
                sides = [(r.partition(":")[0], r.partition(":")[2] or "candidate") for r in runs]
                result = compare_runs(store, sides[0], sides[1], alpha=alpha, correction=correction,
                                      seed=seed)
            else:
                result = compare_versions(
                    store,
                    prompt_id,
                    version_a,
                    version_b,
                    since=start,
                    until=end,
                    app=app,
                    environment=environment,
                    model=model,
                    alpha=alpha,
                    correction=correction,
                    seed=seed,
                )
        except Exception as exc:
            raise click.ClickException(f"comparison failed: {exc}") from exc
    scope = f"{start:%Y-%m-%d %H:%M} - {end:%Y-%m-%d %H:%M} UTC" + (f", app {app}" if app else "")
    if runs:
        scope = "replay runs"
    if fmt == "table":
        text = f"{result.label_a} vs {result.label_b}, {scope}\n\n{comparison_table(result)}\n"
    elif fmt == "json":
        text = comparison_json(result) + "\n"
    else:
        text = comparison_html(result, subtitle=scope)
        out = out or Path("llmpulse-compare.html")
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, "utf-8")
        click.echo(str(out))
    failing = (worse_metrics(result) if fail_on == "worse"
               else list(result.significant) if fail_on == "different" else [])
    if failing:
        names = ", ".join(m.name for m in failing)
        click.echo(f"compare: {result.label_b} is {'worse than' if fail_on == 'worse' else 'different from'} "
                   f"{result.label_a} on {len(failing)} metric(s): {names}", err=True)
        sys.exit(3)


@click.group("llmpulse-dashboards")
def commands() -> None:
    """The dashboards room's commands (``llmpulse`` mounts the same ones)."""


commands.add_command(dashboards)
commands.add_command(report)
commands.add_command(compare)


def run() -> None:
    """The ``llmpulse-dashboards`` entry point: one line, not a traceback, for an expected failure."""
    sys.exit(run_command(commands, "llmpulse-dashboards"))
