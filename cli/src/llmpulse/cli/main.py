"""Entry point of the ``llmpulse`` command. Mounts the rooms' subcommands.

Example:
    $ llmpulse topics create --bootstrap-servers 127.0.0.1:9092
    $ llmpulse schemas export
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from llmpulse.cli.demo import demo as demo_command
from llmpulse.cli.prompts import prompts as prompts_commands
from llmpulse.cli.topics import topics as topics_commands
from llmpulse.dashboards.cli import compare as compare_command
from llmpulse.dashboards.cli import dashboards as dashboards_commands
from llmpulse.dashboards.cli import report as report_command
from llmpulse.processors.cli import export as export_command
from llmpulse.processors.cli import import_ as import_command
from llmpulse.processors.cli import models as models_command
from llmpulse.processors.cli import replay as replay_command
from llmpulse.processors.cli import worker as worker_command
from llmpulse.processors.otlp.command import otlp as otlp_commands
from llmpulse.schemas import export_json_schemas
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


main.add_command(topics_commands)
main.add_command(worker_command)
main.add_command(replay_command)
main.add_command(export_command)
main.add_command(import_command)
main.add_command(otlp_commands)
main.add_command(models_command)
main.add_command(sink_command)
main.add_command(db_commands)

main.add_command(prompts_commands)
main.add_command(demo_command)
main.add_command(dashboards_commands)
main.add_command(report_command)
main.add_command(compare_command)

if __name__ == "__main__":
    sys.exit(main())
