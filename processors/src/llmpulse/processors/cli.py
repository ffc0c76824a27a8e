"""``llmpulse worker``: run the stream processors (a Faust worker); ``llmpulse models``.

The room's own entry point ``llmpulse-processors`` holds the same commands (with
``otlp`` and ``guardrails``), so the worker runs where only ``llmpulse-schemas`` and
``llmpulse-processors`` are installed. Replay, export and import cross rooms: they are the umbrella's.

Example:
    $ llmpulse worker --bootstrap-servers 127.0.0.1:9092 --config llmpulse.yaml
    $ llmpulse worker --role light      # join, light scorers, guardrails
    $ llmpulse worker --role heavy      # model scorers only, in their own consumer group
    $ llmpulse models fetch detoxify-original minilm --dir /models
    $ llmpulse guardrails prepare       # compile the default policy's gates once (setup, image)
    $ llmpulse-processors worker --help # the same, from this distribution alone
"""

from __future__ import annotations

import logging
import sys

import click

from llmpulse.processors.guardrails.command import guardrails
from llmpulse.processors.models.commands import models
from llmpulse.processors.otlp.command import otlp
from llmpulse.processors.service import health_options
from llmpulse.schemas import environment as env
from llmpulse.schemas.commandline import log_level_option, require_kafka, run_command

__all__ = ["commands", "guardrails", "models", "run", "worker"]


@click.command("worker")
@click.option("--bootstrap-servers", envvar=env.BOOTSTRAP_SERVERS, required=True,
              help=f"Kafka bootstrap servers (or ${env.BOOTSTRAP_SERVERS}).")
@click.option("--config", "config_path", envvar=env.CONFIG, default=None,
              type=click.Path(dir_okay=False), help=f"YAML configuration (or ${env.CONFIG}).")
@click.option("--role", type=click.Choice(["all", "light", "heavy", "drift"]), default="all",
              show_default=True, help="What this process runs.")
@click.option("--prefix", envvar=env.TOPIC_PREFIX, default="", help="Topic name prefix.")
@click.option("--partitions", envvar=env.TOPIC_PARTITIONS, type=click.IntRange(min=1), default=6,
              show_default=True, help="Partitions of the input topics.")
@click.option("--join-timeout", type=float, default=300.0, show_default=True,
              help="Seconds a prompt waits for its response (and back) before it is emitted "
                   "as incomplete.")
@click.option("--no-heavy", is_flag=True, help="Skip the model scorers.")
@click.option("--no-drift", is_flag=True, help="Skip the drift agent and the alert rules.")
@click.option("--fast", is_flag=True, help="Short consumer-group timeouts (tests, the demo).")
@click.option("--datadir", default=None, type=click.Path(file_okay=False),
              help="Faust's local data folder.")
@click.option("--join-linger", type=float, default=3.0, show_default=True,
              help="seconds a lonely half waits in memory before the join table")
@click.option("--standby-replicas", type=int, default=0, show_default=True,
              help="warm copies of each join-table partition on other workers")
@health_options("127.0.0.1:9465")
@log_level_option(click)
def worker(bootstrap_servers: str, config_path: str | None, role: str, prefix: str,
           partitions: int, join_timeout: float, no_heavy: bool, no_drift: bool, fast: bool,
           datadir: str | None, join_linger: float, standby_replicas: int,
           health_address: str, stall_seconds: float, log_level: str) -> None:
    """Validate, join, score and guard every call (a Faust worker; Ctrl-C stops it)."""
    from llmpulse.processors.config import load_config
    from llmpulse.processors.pipeline import Enricher
    from llmpulse.processors.worker import WorkerSettings, build_app

    options = dict(bootstrap_servers=bootstrap_servers, topic_prefix=prefix,
                   partitions=partitions, role=role, heavy=not no_heavy, drift=not no_drift,
                   join_timeout_s=join_timeout, join_linger_s=join_linger,
                   standby_replicas=standby_replicas, stall_s=stall_seconds)
    if datadir:
        options["datadir"] = datadir
    if role in {"heavy", "drift"}:
        options["app_id"] = f"llmpulse-processors-{role}"
    settings = WorkerSettings.fast(**options) if fast else WorkerSettings(**options)
    config = load_config(config_path)
    require_kafka(bootstrap_servers)  # before the models: a wrong address costs seconds
    enricher = Enricher(config)
    if role in {"all", "light"}:
        enricher.load_light()
    if role in {"all", "heavy"} and not no_heavy:
        backends = enricher.load_models()
        logging.getLogger(__name__).info("model scorers: %s", backends)
    monitor = engine = None
    if role in {"all", "drift"} and not no_drift:
        from llmpulse.processors.alerting import AlertEngine, load_alert_config
        from llmpulse.processors.drift.config import load_drift_config
        from llmpulse.processors.drift.monitor import DriftMonitor

        monitor = DriftMonitor(load_drift_config(config_path))
        engine = AlertEngine(load_alert_config(config_path))
    app = build_app(settings, enricher, drift_monitor=monitor, alert_engine=engine)
    from llmpulse.processors.service import run_with_health

    run_with_health(app, health_address, loglevel=log_level)


@click.group("llmpulse-processors")
def commands() -> None:
    """The processors room's commands (``llmpulse`` mounts the same ones)."""


commands.add_command(worker)
commands.add_command(models)
commands.add_command(otlp)
commands.add_command(guardrails)


def run() -> None:
    """The ``llmpulse-processors`` entry point: one line, not a traceback, for an expected failure."""
    sys.exit(run_command(commands, "llmpulse-processors"))
