"""``llmpulse replay|export|import``: re-run, keep and bring back ranges of history.

These commands cross rooms (they read Kafka with the processors' replay, write results to
the sinks' store and resolve prompts with the SDK's registry), so they live in the
umbrella; the work itself is done by ``llmpulse.processors.replay`` and
``llmpulse.processors.datasets``.

Example:
    $ llmpulse replay --from 2026-01-01T00:00 --to 2026-01-02T00:00 --policy strict.yaml
    $ llmpulse export --from 2026-11-20T00:00 --to 2026-11-21T00:00 --out support-day.parquet
    $ llmpulse import --prefix eval. support-day.parquet
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from typing import Any

import click

from llmpulse.cli.topics import kafka_failures
from llmpulse.schemas import environment as env
from llmpulse.schemas.commandline import MOMENT_HELP, configure_logging, log_level_option, moment_range

__all__ = ["export", "import_", "replay"]


def _range(start: str | None, end: str | None) -> tuple[datetime | None, datetime | None]:
    try:
        return moment_range(start, end)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _range_options(fn: Any) -> Any:
    """``--from``/``--since`` and ``--to``/``--until``, as on every llmpulse command."""
    fn = click.option("--to", "--until", "end", default=None,
                      help=f"End of the range (default: the end of each partition): {MOMENT_HELP}.")(fn)
    return click.option("--from", "--since", "start", default=None,
                        help=f"Start of the range (default: the beginning): {MOMENT_HELP}; a "
                             "duration counts back from --to.")(fn)


_log_level_option = log_level_option(click)


class _Progress:
    """A counter on standard error, redrawn at most once a second: the work, its rate."""

    def __init__(self, label: str, unit: str) -> None:
        self.label = label
        self.unit = unit
        self.started = self._shown = time.monotonic()
        self.count = 0
        self.tty = sys.stderr.isatty()

    def update(self, count: int, detail: str = "") -> None:
        self.count = count
        now = time.monotonic()
        if now - self._shown >= 1.0:
            self._shown = now
            self._draw(detail, final=False)

    def finish(self, detail: str = "") -> None:
        self._draw(detail, final=True)

    def _draw(self, detail: str, *, final: bool) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        line = (f"{self.label}: {self.count:,} {self.unit}, {self.count / elapsed:,.0f}/s, "
                f"{elapsed:.0f}s" + (f", {detail}" if detail else ""))
        end = "\n" if final or not self.tty else ""
        click.echo(("\r" if self.tty else "") + line + end, err=True, nl=False)


@click.command("replay")
@click.option("--bootstrap-servers", envvar=env.BOOTSTRAP_SERVERS, required=True,
              help=f"Kafka bootstrap servers (or ${env.BOOTSTRAP_SERVERS}).")
@click.option("--prefix", envvar=env.TOPIC_PREFIX, default="", help="Topic name prefix.")
@click.option("--topic", "topics", multiple=True,
              help="Topic to read (repeatable; default the prompts and responses topics).")
@_range_options
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
              help=f"chdb:///path or http(s)://... (or ${env.CLICKHOUSE_URL}); migrated first.")
@_log_level_option
def replay(bootstrap_servers: str, prefix: str, topics: tuple[str, ...], start: str | None,
           end: str | None, from_offset: int | None, to_offset: int | None,
           config_path: str | None, policy_path: str | None, baseline_config: str | None,
           no_baseline: bool, prompt_dir: str | None, candidate: str | None,
           model_url: str | None, model_key: str | None, model_name: str | None, rate: float,
           run_id: str | None, name: str, limit: int | None, clickhouse_url: str | None,
           log_level: str) -> None:
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
    from llmpulse.sinks.cli import open_store

    configure_logging(log_level)
    if (start or end) and (from_offset is not None or to_offset is not None):
        raise click.UsageError("give --from/--to or --from-offset/--to-offset, not both")
    if candidate and not (prompt_dir and model_url):
        raise click.UsageError("--candidate needs --prompt-dir and --model-url")
    if not candidate and not (config_path or policy_path):
        raise click.UsageError("give --config and/or --policy, or --candidate")
    since, until = _range(start, end)
    source = ReplaySource(bootstrap_servers, list(topics) or topics_for(prefix),
                          start=since, end=until, from_offset=from_offset, to_offset=to_offset)
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
    shown = _Progress("replay", "calls evaluated")
    try:
        with open_store(clickhouse_url, writes=True) as store, kafka_failures(bootstrap_servers):
            result = run_replay(store, source, candidate=enricher, baseline=baseline, prompt=prompt,
                                run_id=run_id, name=name, max_calls=limit, config=options,
                                on_progress=lambda r: shown.update(r.calls, f"{r.skipped:,} skipped"))
    finally:
        if prompt is not None:
            prompt.model.close()
    shown.finish(f"{result.skipped:,} skipped")
    click.echo(f"run {result.run_id}: {result.status}, {result.calls} call(s) evaluated, "
               f"{result.skipped} skipped, {result.stored_calls} stored in all; "
               f"calls with verdicts {result.violations}")


@click.command("export")
@click.option("--bootstrap-servers", envvar=env.BOOTSTRAP_SERVERS, required=True)
@click.option("--prefix", envvar=env.TOPIC_PREFIX, default="", help="Topic name prefix.")
@click.option("--topic", "topics", multiple=True,
              help="Topic(s) to export, without the prefix (default: prompts, responses, feedback).")
@_range_options
@click.option("--from-offset", type=click.IntRange(min=0), default=None)
@click.option("--to-offset", type=click.IntRange(min=0), default=None)
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="A .jsonl or .parquet file.")
@_log_level_option
def export(bootstrap_servers: str, prefix: str, topics: tuple[str, ...], start: str | None,
           end: str | None, from_offset: int | None, to_offset: int | None, out: str,
           log_level: str) -> None:
    """Keep a range of history as a dataset file (JSONL or Parquet)."""
    from llmpulse.processors.datasets import export_range
    from llmpulse.processors.replay import ReplaySource, topics_for
    from llmpulse.schemas.topics import FEEDBACK, PROMPTS, RESPONSES

    configure_logging(log_level)
    names = topics_for(prefix, topics or (PROMPTS, RESPONSES, FEEDBACK))
    since, until = _range(start, end)
    source = ReplaySource(bootstrap_servers, names, start=since, end=until,
                          from_offset=from_offset, to_offset=to_offset)
    shown = _Progress("export", "events")
    with kafka_failures(bootstrap_servers):
        try:
            count = export_range(source, out, prefix=prefix, progress=shown.update)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
    shown.finish()
    click.echo(f"exported {count} events to {out}")


@click.command("import")
@click.option("--bootstrap-servers", envvar=env.BOOTSTRAP_SERVERS, required=True)
@click.option("--prefix", envvar=env.TOPIC_PREFIX, default="", help="Topic name prefix.")
@click.option("--otlp", is_flag=True,
              help="DATASET is OTLP trace data (protobuf, OTLP/JSON or JSON lines): its GenAI "
                   "spans are mapped onto prompts and responses, as the OTLP stage does.")
@click.argument("dataset", type=click.Path(dir_okay=False, exists=True))
@_log_level_option
def import_(bootstrap_servers: str, prefix: str, otlp: bool, dataset: str, log_level: str) -> None:
    """Produce a dataset file's events to the topics they came from (under --prefix)."""
    from llmpulse.processors.datasets import import_dataset, produce_events

    configure_logging(log_level)
    shown = _Progress("import", "events")
    with kafka_failures(bootstrap_servers):
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
                count = import_dataset(dataset, bootstrap_servers=bootstrap_servers, prefix=prefix,
                                       progress=shown.update)
        except (ValueError, RuntimeError) as exc:
            raise click.ClickException(str(exc)) from exc
    shown.count = count
    shown.finish()
    click.echo(f"imported {count} events into {prefix or '(no prefix)'} topics")
