"""The sink's commands: ``llmpulse sink`` and ``llmpulse db migrate|status``.

Example:
    $ llmpulse db migrate --clickhouse chdb:///var/lib/llmpulse/llmpulse.chdb --text-days 14
    $ llmpulse db status
    $ llmpulse sink --bootstrap-servers 127.0.0.1:9092 --clickhouse http://llmpulse:pw@ch:8123/llmpulse
    $ llmpulse-sinks db status          # the same commands, from this distribution alone
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import click

from llmpulse.schemas import environment as env
from llmpulse.schemas.commandline import (
    configure_logging,
    health_address_option,
    log_level_option,
    require_kafka,
    run_command,
    serve_command_health,
)
from llmpulse.schemas.errors import LlmpulseError
from llmpulse.schemas.runtime import freeze_start_heap

if TYPE_CHECKING:
    from llmpulse.sinks.store import Store

__all__ = ["commands", "db", "open_store", "run", "sink"]

logger = logging.getLogger(__name__)


def _clickhouse_option(fn: Any) -> Any:
    return click.option(
        "--clickhouse", "clickhouse_url", envvar=env.CLICKHOUSE_URL, default=None,
        help=f"chdb:///path or http(s)://user:pass@host:port/db (or ${env.CLICKHOUSE_URL}); "
             f"default: the embedded store under ${env.DATA_DIR} or ~/.local/share/llmpulse.")(fn)


def _retention_options(fn: Any) -> Any:
    for name, var, default, text in (
        ("--dedup-days", env.RETENTION_DEDUP_DAYS, 35, "Days stored event ids are remembered."),
        ("--rollup-days", env.RETENTION_ROLLUP_DAYS, 400, "Days the rollups, alerts and drift are kept."),
        ("--raw-days", env.RETENTION_RAW_DAYS, 90, "Days raw rows are kept."),
        ("--text-days", env.RETENTION_TEXT_DAYS, 30, "Days prompt/response/feedback text is kept."),
    ):
        fn = click.option(name, envvar=var, type=click.IntRange(min=1), default=default,
                          show_default=True, help=f"{text} (${var})")(fn)
    return fn


def open_store(url: str | None, *, writes: bool, wait_s: float = 0.0) -> Store:
    """Open the store for a command; every failure is a one-line ``click.ClickException``.

    A command that writes migrates the store first (safe to repeat); one that only reads
    is told to run ``llmpulse db migrate`` when the store has pending migrations.

    Args:
        url: ``--clickhouse`` (None: ``$LLMPULSE_CLICKHOUSE_URL`` or the embedded default).
        writes: migrate first (True), or check that the store is migrated (False).
        wait_s: keep retrying an unreachable server this long (the sink at start-up).
    """
    # Imported here: `llmpulse --help` should not load the ClickHouse and Kafka clients.
    from llmpulse.sinks.errors import StoreUnavailable
    from llmpulse.sinks.store import Store, mask_url

    deadline = time.monotonic() + wait_s
    while True:
        try:
            store = Store.open(url)
            break
        except StoreUnavailable as exc:
            if time.monotonic() >= deadline:
                raise click.ClickException(str(exc)) from exc
            logger.warning("store not reachable yet, retrying: %s", exc)
            time.sleep(2.0)
        except LlmpulseError as exc:
            raise click.ClickException(str(exc)) from exc
    try:
        if writes:
            store.migrate()
        else:
            migrated = store.query("EXISTS TABLE schema_migrations").scalar()
            pending = [m.name for m in store.migration_status() if not m.applied] if migrated else []
            if not migrated or pending:
                state = f"has {len(pending)} migration(s) pending" if migrated else "was never migrated"
                where = f" --clickhouse '{mask_url(store.url)}'" if url else ""
                raise click.ClickException(f"the store {mask_url(store.url)} {state}: run "
                                           f"`llmpulse db migrate{where}` first")
    except LlmpulseError as exc:
        store.close()
        raise click.ClickException(str(exc)) from exc
    except click.ClickException:
        store.close()
        raise
    return store


def _open(url: str | None) -> Store:
    """Open without migrating or checking (``db migrate`` and ``db status`` do that)."""
    from llmpulse.sinks.store import Store

    try:
        return Store.open(url)
    except LlmpulseError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group("db")
def db() -> None:
    """The ClickHouse schema: migrations and retention."""


@db.command("migrate")
@_clickhouse_option
@_retention_options
@log_level_option(click, default="warning")
def db_migrate(clickhouse_url: str | None, text_days: int, raw_days: int, rollup_days: int,
               dedup_days: int, log_level: str) -> None:
    """Apply the pending migrations in order, then the retention (safe to run twice)."""
    configure_logging(log_level)
    from llmpulse.sinks.store import Retention

    retention = Retention(text_days=text_days, raw_days=raw_days, rollup_days=rollup_days,
                          dedup_days=dedup_days)
    with _open(clickhouse_url) as store:
        try:
            applied = store.migrate()
            changed = store.apply_retention(retention)
        except LlmpulseError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"{store.url} (database {store.database})")
        for name in applied:
            click.echo(f"applied  {name}")
        if not applied:
            click.echo("up to date: no migration to apply")
        for name in changed:
            click.echo(f"retention {name} = {getattr(retention, name)}")


@db.command("status")
@_clickhouse_option
@log_level_option(click, default="warning")
def db_status(clickhouse_url: str | None, log_level: str) -> None:
    """List the migrations and whether each is applied."""
    configure_logging(log_level)
    with _open(clickhouse_url) as store:
        store.command("CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, "
                      "checksum String, applied_at DateTime64(6, 'UTC') DEFAULT now64(6)) "
                      "ENGINE = ReplacingMergeTree(applied_at) ORDER BY version")
        click.echo(f"{store.url} (database {store.database})")
        for status in store.migration_status():
            state = "CHANGED" if status.changed else "applied" if status.applied else "pending"
            when = f"  {status.applied_at:%Y-%m-%d %H:%M:%S}" if status.applied_at else ""
            click.echo(f"{state:8} {status.name}{when}")


@click.command("sink")
@click.option("--bootstrap-servers", envvar=env.BOOTSTRAP_SERVERS, required=True,
              help=f"Kafka bootstrap servers (or ${env.BOOTSTRAP_SERVERS}).")
@_clickhouse_option
@click.option("--group-id", envvar=env.SINK_GROUP_ID, default="llmpulse-sink", show_default=True,
              show_envvar=True)
@click.option("--prefix", envvar=env.TOPIC_PREFIX, default="", help="Topic name prefix.", show_envvar=True)
@click.option("--batch-rows", envvar=env.SINK_BATCH_ROWS, type=click.IntRange(min=1), default=10_000,
              show_default=True, show_envvar=True, help="Write when this many events are buffered.")
@click.option("--batch-seconds", envvar=env.SINK_BATCH_SECONDS, type=click.FloatRange(min=0.01),
              default=1.0, show_default=True, show_envvar=True,
              help="Write when the oldest event waited this long.")
@health_address_option(click, "127.0.0.1:9464")
@log_level_option(click)
def sink(bootstrap_servers: str, clickhouse_url: str | None, group_id: str, prefix: str,
         batch_rows: int, batch_seconds: float, health_address: str, log_level: str) -> None:
    """Consume the enriched, feedback, alert, drift and DLQ topics into ClickHouse."""
    from llmpulse.sinks.sink import Sink, SinkConfig
    from llmpulse.sinks.store import Retention, mask_url

    configure_logging(log_level)
    config = SinkConfig.from_env(bootstrap_servers=bootstrap_servers, group_id=group_id, prefix=prefix,
                                 batch_rows=batch_rows, batch_seconds=batch_seconds)
    require_kafka(bootstrap_servers)  # at start: one line; once running it warns and retries
    store = open_store(clickhouse_url, writes=True, wait_s=300.0)
    try:
        store.apply_retention(Retention.from_env())
    except LlmpulseError as exc:
        store.close()
        raise click.ClickException(str(exc)) from exc
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    click.echo(f"sink: {', '.join(config.topics)} -> {mask_url(store.url)} (group {group_id})")
    running = Sink(config, store)
    health = None
    try:
        health = serve_command_health(click, running.metrics.registry, running.readiness,
                                      health_address)
        if health is not None:
            click.echo(f"health: {health.url}/healthz, /readyz, /metrics")
        # The start-up heap (the ClickHouse engine's bindings, pyarrow, clickhouse-connect,
        # the writer: long-lived; the Kafka consumer is made after, in Sink.run) leaves the
        # cycle collector's reach, as the worker's does: each full collection walked it
        # again while a batch of events was buffered.
        freeze_start_heap()
        stats = running.run(stop)
    except LlmpulseError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        if health is not None:
            health.stop()
        store.close()
    click.echo(f"sink stopped: {stats.total_written} rows written, {stats.duplicates} duplicates dropped, "
               f"{stats.rejected} rejected to the dead-letter topic")


@click.group("llmpulse-sinks")
def commands() -> None:
    """The sinks room's commands (``llmpulse`` mounts the same ones)."""


commands.add_command(sink)
commands.add_command(db)


def run() -> None:
    """The ``llmpulse-sinks`` entry point: one line, not a traceback, for an expected failure."""
    sys.exit(run_command(commands, "llmpulse-sinks"))
