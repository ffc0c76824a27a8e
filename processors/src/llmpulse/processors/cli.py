"""``llmpulse worker``: run the stream processors (a Faust worker).

Example:
    $ llmpulse worker --bootstrap-servers 127.0.0.1:9092 --config llmpulse.yaml
    $ llmpulse worker --role light      # join, light scorers, guardrails
    $ llmpulse worker --role heavy      # model scorers only, in their own consumer group
"""

from __future__ import annotations

import logging

import click

from llmpulse.schemas import environment as env

__all__ = ["worker"]


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
@click.option("--loglevel", default="info", show_default=True)
def worker(bootstrap_servers: str, config_path: str | None, role: str, prefix: str,
           partitions: int, join_timeout: float, no_heavy: bool, no_drift: bool, fast: bool,
           datadir: str | None, loglevel: str) -> None:
    """Validate, join, score and guard every call (a Faust worker; Ctrl-C stops it)."""
    import faust

    from llmpulse.processors.config import load_config
    from llmpulse.processors.pipeline import Enricher
    from llmpulse.processors.worker import WorkerSettings, build_app

    options = dict(bootstrap_servers=bootstrap_servers, topic_prefix=prefix,
                   partitions=partitions, role=role, heavy=not no_heavy, drift=not no_drift,
                   join_timeout_s=join_timeout)
    if datadir:
        options["datadir"] = datadir
    if role in {"heavy", "drift"}:
        options["app_id"] = f"llmpulse-processors-{role}"
    settings = WorkerSettings.fast(**options) if fast else WorkerSettings(**options)
    enricher = Enricher(load_config(config_path))
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
    faust.Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()
