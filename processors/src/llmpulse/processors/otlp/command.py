"""``llmpulse otlp``: run the OTLP stage, or make a Collector token for an app.

Example:
    $ llmpulse otlp run --bootstrap-servers 127.0.0.1:9092 --tokens /etc/llmpulse/otel-tokens
    $ curl -s 127.0.0.1:9466/readyz     # its health, as a worker's (/healthz, /metrics too)
    $ llmpulse otlp token support-bot >> /etc/llmpulse/otel-tokens
    $ llmpulse otlp check-tokens /etc/llmpulse/otel-tokens
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING, Any

import click

from llmpulse.processors.service import health_options
from llmpulse.schemas import environment as env
from llmpulse.schemas.commandline import log_level_option

if TYPE_CHECKING:
    from llmpulse.processors.otlp.auth import TokensFile

__all__ = ["otlp"]

logger = logging.getLogger(__name__)

HEALTH_ADDRESS = "127.0.0.1:9466"
"""The stage's /healthz, /readyz and /metrics by default (the sink's is 9464, a worker's 9465)."""


@click.group("otlp")
def otlp() -> None:
    """OpenTelemetry in: spans from the OpenTelemetry Collector."""


def _follow_tokens(path: str) -> TokensFile:
    """The tokens file (followed while the stage runs), or a clear error (exit 1) naming
    the line the Collector would read as a token that is not one bound to apps."""
    from llmpulse.processors.otlp.auth import TokensFile, TokensFileError

    try:
        return TokensFile(path)
    except TokensFileError as err:
        raise click.ClickException(str(err)) from None


@otlp.command("run")
@click.option("--bootstrap-servers", envvar=env.BOOTSTRAP_SERVERS, required=True,
              help=f"Kafka bootstrap servers (or ${env.BOOTSTRAP_SERVERS}).")
@click.option("--tokens", "tokens_path", envvar=env.OTEL_TOKENS_FILE, default=None,
              type=click.Path(dir_okay=False, exists=True),
              help=f"The Collector's tokens file with the app bindings (or ${env.OTEL_TOKENS_FILE}); "
                   "without it every token may write every app.")
@click.option("--prefix", envvar=env.TOPIC_PREFIX, default="", help="Topic name prefix.")
@click.option("--partitions", envvar=env.TOPIC_PARTITIONS, type=click.IntRange(min=1), default=6,
              show_default=True, help="Partitions of llm.prompts and llm.responses.")
@click.option("--fast", is_flag=True, help="Short consumer-group timeouts (tests, the demo).")
@click.option("--datadir", default=None, type=click.Path(file_okay=False),
              help="Faust's local data folder.")
@health_options(HEALTH_ADDRESS)
@log_level_option(click)
def run(bootstrap_servers: str, tokens_path: str | None, prefix: str, partitions: int,
        fast: bool, datadir: str | None, health_address: str, stall_seconds: float,
        log_level: str) -> None:
    """Map GenAI spans from llm.otlp.spans onto llm.prompts / llm.responses (Ctrl-C stops)."""
    from llmpulse.processors.otlp.mapper import OtlpMapper
    from llmpulse.processors.otlp.stage import APP_ID, build_otlp_app
    from llmpulse.processors.service import run_with_health
    from llmpulse.processors.worker import WorkerSettings

    tokens = _follow_tokens(tokens_path) if tokens_path else None
    if tokens is None:
        logger.warning("no tokens file: spans of any app are accepted from any token")
    options: dict[str, Any] = dict(bootstrap_servers=bootstrap_servers, topic_prefix=prefix,
                   partitions=partitions, app_id=APP_ID, stall_s=stall_seconds)
    if datadir:
        options["datadir"] = datadir
    settings = WorkerSettings.fast(**options) if fast else WorkerSettings(**options)
    mapper = OtlpMapper(bindings=None if tokens is None else tokens.bindings())
    app = build_otlp_app(settings, mapper, tokens=tokens)
    run_with_health(app, health_address, loglevel=log_level)


@otlp.command("token")
@click.argument("apps", nargs=-1, required=True)
def token(apps: tuple[str, ...]) -> None:
    """Print a new random token bound to APPS, as a line of the tokens file."""
    click.echo(f"{secrets.token_urlsafe(32)} {','.join(apps)}")


@otlp.command("check-tokens")
@click.argument("path", type=click.Path(dir_okay=False, exists=True))
def check_tokens(path: str) -> None:
    """Check a tokens file: exit 1 naming a line the Collector would read as another token."""
    bindings = _follow_tokens(path).bindings()
    click.echo(f"{path}: {len(bindings)} tokens, each bound to its apps")
