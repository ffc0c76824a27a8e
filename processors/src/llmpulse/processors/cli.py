"""``llmpulse worker``: run the stream processors (a Faust worker).

Example:
    $ llmpulse worker --bootstrap-servers 127.0.0.1:9092 --config llmpulse.yaml
    $ llmpulse worker --role light      # join, light scorers, guardrails
    $ llmpulse worker --role heavy      # model scorers only, in their own consumer group
    $ llmpulse models fetch detoxify-original minilm --dir /models
    $ llmpulse replay --from 2026-01-01T00:00 --to 2026-01-02T00:00 --policy strict.yaml
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import click

from llmpulse.processors.models.commands import models
from llmpulse.schemas import environment as env

__all__ = ["export", "import_", "models", "replay", "worker"]


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
@click.option("--health-address", envvar=env.HEALTH_ADDRESS, default="127.0.0.1:9465",
              show_default=True, show_envvar=True,
              help="Serve /healthz, /readyz and /metrics here ('off': not at all). Not loopback: "
                   f"${env.HEALTH_TOKEN} is required.")
@click.option("--stall-seconds", type=click.FloatRange(min=0), default=120.0, show_default=True,
              help="Exit non-zero (for the supervisor to restart it) when records wait but none "
                   "arrives for this long; 0: never.")
@click.option("--loglevel", default="info", show_default=True)
def worker(bootstrap_servers: str, config_path: str | None, role: str, prefix: str,
           partitions: int, join_timeout: float, no_heavy: bool, no_drift: bool, fast: bool,
           datadir: str | None, join_linger: float, standby_replicas: int,
           health_address: str, stall_seconds: float, loglevel: str) -> None:
    """Validate, join, score and guard every call (a Faust worker; Ctrl-C stops it)."""
    import faust

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
    from llmpulse.schemas.errors import LlmpulseError
    from llmpulse.schemas.health import serve_health

    health = app.llmpulse_health  # type: ignore[attr-defined]
    explicit = click.get_current_context().get_parameter_source("health_address") != \
        click.core.ParameterSource.DEFAULT
    try:
        server = serve_health(health.metrics.registry, health.readiness, health_address,
                              explicit=explicit)
    except LlmpulseError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        faust.Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()
    finally:
        if server is not None:
            server.stop()


def _when(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO datetime (2026-01-31T12:00)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@click.command("replay")
@click.option("--bootstrap-servers", envvar=env.BOOTSTRAP_SERVERS, required=True,
              help=f"Kafka bootstrap servers (or ${env.BOOTSTRAP_SERVERS}).")
@click.option("--prefix", envvar=env.TOPIC_PREFIX, default="", help="Topic name prefix.")
@click.option("--topic", "topics", multiple=True,
              help="Topic to read (repeatable; default the prompts and responses topics).")
@click.option("--from", "start", default=None, help="Start of the range (ISO datetime, UTC if no zone).")
@click.option("--to", "end", default=None, help="End of the range (ISO datetime).")
@click.option("--from-offset", type=click.IntRange(min=0), default=None,
              help="First offset of every partition (instead of --from).")
@click.option("--to-offset", type=click.IntRange(min=0), default=None,
              help="End offset of every partition, exclusive (instead of --to).")
@click.option("--config", "config_path", default=None, type=click.Path(dir_okay=False, exists=True),
              help="Processors configuration of the candidate (scorer set).")
@click.option("--policy", "policy_path", default=None, type=click.Path(dir_okay=False, exists=True),
              help="Guardrail policy of the candidate.")
@click.option("--baseline-config", envvar=env.CONFIG, default=None,
              type=click.Path(dir_okay=False), help=f"Configuration of the baseline (or ${env.CONFIG}).")
@click.option("--no-baseline", is_flag=True, help="Write the candidate variant only.")
@click.option("--prompt-dir", default=None, type=click.Path(file_okay=False, exists=True),
              help="Prompt registry folder (with --candidate).")
@click.option("--candidate", default=None, help="Prompt version to evaluate: ID@VERSION or ID@LABEL.")
@click.option("--model-url", default=None, help="OpenAI-compatible base URL (…/v1).")
@click.option("--model-key", envvar="LLMPULSE_MODEL_KEY", default=None,
              help="API key of the model endpoint (or $LLMPULSE_MODEL_KEY).")
@click.option("--model", "model_name", default=None, help="Model name (default: the prompt's).")
@click.option("--rate", type=float, default=5.0, show_default=True, help="Model requests per second.")
@click.option("--run-id", default=None, help="Resume this run (default: a new id).")
@click.option("--name", default="", help="A name for the run.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Stop after this many new calls (resume later with --run-id).")
@click.option("--clickhouse", "clickhouse_url", envvar=env.CLICKHOUSE_URL, default=None,
              help=f"chdb:///path or http(s)://... (or ${env.CLICKHOUSE_URL}).")
def replay(bootstrap_servers: str, prefix: str, topics: tuple[str, ...], start: str | None,
           end: str | None, from_offset: int | None, to_offset: int | None,
           config_path: str | None, policy_path: str | None, baseline_config: str | None,
           no_baseline: bool, prompt_dir: str | None, candidate: str | None,
           model_url: str | None, model_key: str | None, model_name: str | None, rate: float,
           run_id: str | None, name: str, limit: int | None, clickhouse_url: str | None) -> None:
    """Re-run a range of recorded calls through a scorer set, a policy or a prompt version."""
    from llmpulse.processors.config import load_config
    from llmpulse.processors.guardrails.policy import GuardrailPolicy
    from llmpulse.processors.pipeline import Enricher
    from llmpulse.processors.replay import (
        CandidatePrompt,
        ChatModel,
        ReplaySource,
        topics_for,
    )
    from llmpulse.processors.replay import replay as run_replay
    from llmpulse.sinks.store import Store

    if (start or end) and (from_offset is not None or to_offset is not None):
        raise click.UsageError("give --from/--to or --from-offset/--to-offset, not both")
    if candidate and not (prompt_dir and model_url):
        raise click.UsageError("--candidate needs --prompt-dir and --model-url")
    if not candidate and not (config_path or policy_path):
        raise click.UsageError("give --config and/or --policy, or --candidate")
    source = ReplaySource(bootstrap_servers, list(topics) or topics_for(prefix),
                          start=_when(start), end=_when(end), from_offset=from_offset,
                          to_offset=to_offset)
    policy = GuardrailPolicy.load(policy_path) if policy_path else None
    enricher = Enricher(load_config(config_path or baseline_config), policy=policy)
    baseline = None if no_baseline else Enricher(load_config(baseline_config))
    prompt = None
    if candidate:
        from llmpulse.producers.prompts import PromptRegistry

        template = PromptRegistry(prompt_dir).resolve(candidate)  # type: ignore[arg-type]
        prompt = CandidatePrompt(template, ChatModel(model_url, api_key=model_key, rate=rate),  # type: ignore[arg-type]
                                 model_name)
    options = {"topics": list(source.topics), "config": config_path, "policy": policy_path,
               "baseline_config": baseline_config, "candidate": candidate, "prompt_dir": prompt_dir,
               "model_url": model_url, "model": model_name, "rate": rate}
    try:
        with Store.open(clickhouse_url) as store:
            result = run_replay(store, source, candidate=enricher, baseline=baseline, prompt=prompt,
                                run_id=run_id, name=name, max_calls=limit, config=options)
    finally:
        if prompt is not None:
            prompt.model.close()
    click.echo(f"run {result.run_id}: {result.status}, {result.calls} call(s) evaluated, "
               f"{result.skipped} skipped, {result.stored_calls} stored in all; "
               f"calls with verdicts {result.violations}")


@click.command("export")
@click.option("--bootstrap-servers", envvar=env.BOOTSTRAP_SERVERS, required=True)
@click.option("--prefix", envvar=env.TOPIC_PREFIX, default="", help="Topic name prefix.")
@click.option("--topic", "topics", multiple=True,
              help="Topic(s) to export, without the prefix (default: prompts, responses, feedback).")
@click.option("--from", "start", default=None, help="Start of the range (ISO datetime).")
@click.option("--to", "end", default=None, help="End of the range (ISO datetime).")
@click.option("--from-offset", type=click.IntRange(min=0), default=None)
@click.option("--to-offset", type=click.IntRange(min=0), default=None)
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="A .jsonl or .parquet file.")
def export(bootstrap_servers: str, prefix: str, topics: tuple[str, ...], start: str | None,
           end: str | None, from_offset: int | None, to_offset: int | None, out: str) -> None:
    """Keep a range of history as a dataset file (JSONL or Parquet)."""
    from llmpulse.processors.datasets import export_range
    from llmpulse.processors.replay import ReplaySource, topics_for
    from llmpulse.schemas.topics import FEEDBACK, PROMPTS, RESPONSES

    names = topics_for(prefix, topics or (PROMPTS, RESPONSES, FEEDBACK))
    source = ReplaySource(bootstrap_servers, names, start=_when(start), end=_when(end),
                          from_offset=from_offset, to_offset=to_offset)
    count = export_range(source, out, prefix=prefix)
    click.echo(f"exported {count} events to {out}")


@click.command("import")
@click.option("--bootstrap-servers", envvar=env.BOOTSTRAP_SERVERS, required=True)
@click.option("--prefix", envvar=env.TOPIC_PREFIX, default="", help="Topic name prefix.")
@click.option("--otlp", is_flag=True,
              help="DATASET is OTLP trace data (protobuf, OTLP/JSON or JSON lines): its GenAI "
                   "spans are mapped onto prompts and responses, as the OTLP stage does.")
@click.argument("dataset", type=click.Path(dir_okay=False, exists=True))
def import_(bootstrap_servers: str, prefix: str, otlp: bool, dataset: str) -> None:
    """Produce a dataset file's events to the topics they came from (under --prefix)."""
    from llmpulse.processors.datasets import import_dataset, produce_events

    try:
        if otlp:
            from llmpulse.processors.otlp.files import read_otlp_file
            from llmpulse.processors.otlp.mapper import OtlpMapper
            from llmpulse.schemas import Limits

            mapper = OtlpMapper(limits=Limits.from_env())  # LLMPULSE_LIMIT_MAX_PAST_SECONDS ...
            count = produce_events(read_otlp_file(dataset, mapper),  # type: ignore[arg-type]
                                   bootstrap_servers=bootstrap_servers, prefix=prefix)
            click.echo(f"{mapper.counts['spans']} span(s): {mapper.counts['calls']} call(s), "
                       f"{mapper.counts['skipped']} not GenAI calls, "
                       f"{sum(v for k, v in mapper.counts.items() if k.startswith('dlq:'))} "
                       "dead-lettered")
        else:
            count = import_dataset(dataset, bootstrap_servers=bootstrap_servers, prefix=prefix)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"imported {count} events into {prefix or '(no prefix)'} topics")
