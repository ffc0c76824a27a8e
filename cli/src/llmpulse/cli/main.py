"""Entry point of the ``llmpulse`` command. Mounts the rooms' subcommands.

Example:
    $ llmpulse topics create --bootstrap-servers 127.0.0.1:9092
    $ llmpulse schemas export
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from llmpulse.cli.demo import demo as demo_command
from llmpulse.cli.prompts import prompts as prompts_commands
from llmpulse.dashboards.cli import compare as compare_command
from llmpulse.dashboards.cli import dashboards as dashboards_commands
from llmpulse.dashboards.cli import report as report_command
from llmpulse.processors.cli import export as export_command
from llmpulse.processors.cli import import_ as import_command
from llmpulse.processors.cli import replay as replay_command
from llmpulse.processors.cli import worker as worker_command
from llmpulse.processors.otlp.command import otlp as otlp_commands
from llmpulse.schemas import environment as env
from llmpulse.schemas import export_json_schemas
from llmpulse.schemas.errors import LlmpulseError
from llmpulse.sinks.cli import db as db_commands
from llmpulse.sinks.cli import sink as sink_command


@click.group()
@click.version_option(package_name="llmpulse")
def main() -> None:
    """llmpulse: observability and feedback for LLM applications."""


@main.group()
def schemas() -> None:
    """The event contracts."""


@schemas.command("export")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the JSON Schema files (default: schemas/jsonschema in a checkout).")
def schemas_export(out: Path | None) -> None:
    """Write the JSON Schema of every contract."""
    if out is None:
        out = Path.cwd() / "schemas" / "jsonschema"
    for path in export_json_schemas(out):
        click.echo(str(path))


@main.group()
def topics() -> None:
    """Kafka topics of the catalogue."""


def _bootstrap_option(fn):  # type: ignore[no-untyped-def]
    return click.option("--bootstrap-servers", envvar=env.BOOTSTRAP_SERVERS, required=True,
                        help=f"Kafka bootstrap servers (or ${env.BOOTSTRAP_SERVERS}).")(fn)


@topics.command("create")
@_bootstrap_option
@click.option("--partitions", type=click.IntRange(min=1), envvar=env.TOPIC_PARTITIONS,
              default=None, help="Partitions of the call topics (default 6).")
@click.option("--replication-factor", type=click.IntRange(min=1),
              envvar=env.TOPIC_REPLICATION_FACTOR, default=1, show_default=True)
@click.option("--prefix", envvar=env.TOPIC_PREFIX, default="", help="Topic name prefix.")
def topics_create(bootstrap_servers: str, partitions: int | None, replication_factor: int,
                  prefix: str) -> None:
    """Create the missing topics; existing ones are left as they are (idempotent)."""
    from llmpulse.producers.topics import ensure_topics

    try:
        report = ensure_topics(bootstrap_servers, partitions=partitions,
                               replication_factor=replication_factor, prefix=prefix)
    except LlmpulseError as exc:
        raise click.ClickException(str(exc)) from exc
    for t in report:
        click.echo(f"{t.status:8} {t.name} ({t.partitions} partitions)")


@topics.command("list")
@click.option("--prefix", envvar=env.TOPIC_PREFIX, default="")
def topics_list(prefix: str) -> None:
    """Print the catalogue: name, key, contract, partitions, retention."""
    from llmpulse.schemas.topics import catalogue

    for spec in catalogue(prefix=prefix, environ=os.environ):
        kept = "forever" if spec.retention_ms < 0 else f"{spec.retention_ms / 86_400_000:g}d"
        click.echo(f"{spec.name:22} key={spec.key:32} partitions={spec.partitions:<3} "
                   f"retention={kept} {spec.cleanup_policy:8} {spec.value}")


main.add_command(worker_command)
main.add_command(replay_command)
main.add_command(export_command)
main.add_command(import_command)
main.add_command(otlp_commands)
main.add_command(sink_command)
main.add_command(db_commands)

main.add_command(prompts_commands)
main.add_command(demo_command)
main.add_command(dashboards_commands)
main.add_command(report_command)
main.add_command(compare_command)

if __name__ == "__main__":
    sys.exit(main())
