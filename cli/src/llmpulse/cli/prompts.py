"""``llmpulse prompts``: list, show, diff, publish and label prompt versions.

Example:
    $ llmpulse prompts list
    $ llmpulse prompts show answer@production
    $ llmpulse prompts diff answer@production answer
    $ llmpulse prompts publish --bootstrap-servers 127.0.0.1:9092
    $ llmpulse prompts label answer production 3f2a9c1d0b7e
"""

from __future__ import annotations

from pathlib import Path

import click

from llmpulse.producers.prompts import PromptError, PromptRegistry
from llmpulse.schemas import environment as env


def _registry(directory: Path | None) -> PromptRegistry:
    return PromptRegistry(directory if directory is not None else Path("prompts"))


_dir = click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
                    envvar=env.PROMPTS_DIR, default=None,
                    help=f"The prompts folder (or ${env.PROMPTS_DIR}; default ./prompts).")


@click.group()
def prompts() -> None:
    """Prompt templates: versions by content hash, labels that move."""


@prompts.command("list")
@_dir
def list_prompts(directory: Path | None) -> None:
    """Every prompt: current version, whether it is published, its labels."""
    registry = _registry(directory)
    for prompt_id in registry.files():
        try:
            current = registry.current(prompt_id)
        except PromptError as exc:
            click.echo(f"{prompt_id:24} ERROR {exc}")
            continue
        published = registry.versions(prompt_id)
        state = "published" if current.version in published else "unpublished"
        labels = ", ".join(f"{k}={v}" for k, v in sorted(registry.labels(prompt_id).items()))
        click.echo(f"{prompt_id:24} {current.version} {state:11} versions={len(published)} "
                   f"{labels}")


@prompts.command("show")
@click.argument("ref")
@_dir
def show(ref: str, directory: Path | None) -> None:
    """Print a prompt version: ID, ID@VERSION or ID@LABEL."""
    try:
        click.echo(_registry(directory).resolve(ref).to_json(), nl=False)
    except PromptError as exc:
        raise click.ClickException(str(exc)) from exc


@prompts.command("diff")
@click.argument("a")
@click.argument("b")
@_dir
def diff(a: str, b: str, directory: Path | None) -> None:
    """Unified diff of two versions (ID, ID@VERSION or ID@LABEL)."""
    try:
        text = _registry(directory).diff(a, b)
    except PromptError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(text or "identical", nl=bool(not text))


@prompts.command("publish")
@_dir
@click.option("--bootstrap-servers", envvar=env.BOOTSTRAP_SERVERS, default=None,
              help="Also send versions and labels to llm.prompt-versions.")
@click.option("--prefix", envvar=env.TOPIC_PREFIX, default="")
@click.argument("ids", nargs=-1)
def publish(directory: Path | None, bootstrap_servers: str | None, prefix: str,
            ids: tuple[str, ...]) -> None:
    """Keep every current version in prompts/.versions (and on Kafka)."""
    try:
        report = _registry(directory).publish(bootstrap_servers=bootstrap_servers,
                                              topic_prefix=prefix, ids=ids or None)
    except PromptError as exc:
        raise click.ClickException(str(exc)) from exc
    for prompt_id, version, new in report:
        click.echo(f"{'new' if new else 'kept':4} {prompt_id}@{version}")


@prompts.command("label")
@click.argument("prompt_id")
@click.argument("label")
@click.argument("version")
@_dir
def label(prompt_id: str, label: str, version: str, directory: Path | None) -> None:
    """Point LABEL of PROMPT_ID at VERSION (publish again to send it to Kafka)."""
    try:
        _registry(directory).set_label(prompt_id, label, version)
    except PromptError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{prompt_id}#{label} -> {version}")
