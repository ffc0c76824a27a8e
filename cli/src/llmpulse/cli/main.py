"""Entry point of the ``llmpulse`` command. Mounts the rooms' subcommands.

Each room declares its own entry point with its commands (``llmpulse-processors``,
``llmpulse-sinks``, ``llmpulse-dashboards``); ``llmpulse`` mounts all of them, plus the
commands that cross rooms (topics, replay, export, import, prompts, demo).

Example:
    $ llmpulse topics create --bootstrap-servers 127.0.0.1:9092
    $ llmpulse schemas export
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from llmpulse.cli.demo import demo as demo_command
from llmpulse.cli.history import export as export_command
from llmpulse.cli.history import import_ as import_command
from llmpulse.cli.history import replay as replay_command
from llmpulse.cli.prompts import prompts as prompts_commands
from llmpulse.cli.topics import topics as topics_commands
from llmpulse.dashboards.cli import commands as dashboards_room
from llmpulse.processors.cli import commands as processors_room
from llmpulse.schemas import export_json_schemas
from llmpulse.schemas.commandline import run_command
from llmpulse.sinks.cli import commands as sinks_room


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
main.add_command(replay_command)
main.add_command(export_command)
main.add_command(import_command)
main.add_command(prompts_commands)
main.add_command(demo_command)
for room in (processors_room, sinks_room, dashboards_room):  # each room's own commands
    for command in room.commands.values():
        main.add_command(command)


def run() -> None:
    """The ``llmpulse`` entry point: one line, not a traceback, for an expected failure."""
    sys.exit(run_command(main, "llmpulse"))


if __name__ == "__main__":
    run()
