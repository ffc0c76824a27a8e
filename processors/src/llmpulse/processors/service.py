"""Command-line plumbing shared by llmpulse's Faust services (``llmpulse worker`` and
``llmpulse otlp run``): their health options and running an app beside its health server.
Nothing here imports Faust until a service runs, so ``llmpulse --help`` stays quick.

Example::

    @click.command()
    @health_options("127.0.0.1:9465")
    def worker(health_address: str, stall_seconds: float) -> None:
        run_with_health(build_app(...), health_address, loglevel="info")
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import click

from llmpulse.schemas.commandline import health_address_option, serve_command_health
from llmpulse.schemas.runtime import freeze_start_heap

__all__ = ["health_options", "run_with_health"]

logger = logging.getLogger(__name__)


def health_options(default_address: str) -> Callable[[Any], Any]:
    """The ``--health-address`` and ``--stall-seconds`` options of a Faust service's command
    (the worker's, the OTLP stage's), ``default_address`` being its own port."""

    def decorate(command: Any) -> Any:
        command = click.option(
            "--stall-seconds", type=click.FloatRange(min=0), default=120.0, show_default=True,
            help="Exit non-zero (for the supervisor to restart it) when records wait but none "
                 "arrives for this long; 0: never.")(command)
        return health_address_option(click, default_address)(command)

    return decorate


def run_with_health(app: Any, health_address: str, *, loglevel: str) -> None:
    """Serve ``app.llmpulse_health`` (``/healthz``, ``/readyz``, ``/metrics``) on
    ``health_address`` and run the Faust app until it stops: the worker's and the OTLP
    stage's command line, whose option ``--health-address`` was given explicitly or not
    (a taken default port only warns).

    Raises:
        click.ClickException: an explicit health address cannot be served.
    """
    import faust

    health = app.llmpulse_health
    server = serve_command_health(click, health.metrics.registry, health.readiness,
                                  health_address)
    # The start-up heap (modules, the configuration, genai-prices' table, the app) lives as
    # long as the process: out of every full collection from here on (DESIGN: "Events are
    # gc=False structs; Faust services freeze their start-up heap").
    frozen = freeze_start_heap()
    logger.debug("start-up heap frozen: %d objects", frozen)
    try:
        faust.Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()
    finally:
        if server is not None:
            server.stop()

