"""The ``llmpulse demo`` command: run the simulation, then report what llmpulse saw."""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from llmpulse.schemas.commandline import configure_logging, log_level_option

logger = logging.getLogger(__name__)


@dataclass
class DemoResult:
    """What a run produced (the tests read it)."""

    out: Path
    report: Path
    comparison_json: Path
    alerts: list[Any]
    drift_start: datetime
    since: datetime
    until: datetime
    calls: int
    worse_version: str | None
    seconds: float
    dead_letters: dict[str, int]
    agent_runs: int = 0
    """Order-agent runs (traces) the simulation made."""
    agent_calls: int = 0
    """The model calls of those runs (stored in ``calls`` beside the support answers)."""
    agent_comparison: Any = None
    """The order agent's v1 against v2 (a ``Comparison`` with its agent section)."""
    agent_comparison_json: Path | None = None


def _report_writer(folder: Path) -> Any:
    """An Evidently report takes seconds: the demo keeps the first drifted window's report
    of each prompt version (the one its alert points to)."""
    from llmpulse.processors.drift.report import DriftReportWriter

    class FirstReportPerKey(DriftReportWriter):
        done: set[Any] = set()

        def submit(self, key: Any, result: Any, *args: Any) -> str | None:
            if key in self.done:
                return None
            self.done.add(key)
            return super().submit(key, result, *args)  # type: ignore[no-any-return]

    writer = FirstReportPerKey(folder)
    writer.done = set()
    return writer


def _drift_config(out: Path, window: int) -> Any:
    """Windows by count (the simulated day is short); the reference is the first two
    windows of each version, well before the drift."""
    import msgspec

    from llmpulse.processors.drift.config import load_drift_config

    return msgspec.structs.replace(
        load_drift_config(environ={}), reports_dir=None,
        window_calls=window, window_seconds=None, reference_calls=2 * window,
        sample_size=window)


def run_embedded(*, out: Path, requests: int, seed: int, clickhouse: str | None,
                 drift_window: int, embedding_sample: float = 0.25,
                 echo: Any = click.echo) -> DemoResult:
    """The embedded run: SDK -> in-process pipeline -> chDB -> report."""
    import llmpulse.producers as llmpulse
    from llmpulse.cli.demo.pipeline import EmbeddedPipeline
    from llmpulse.cli.demo.scenario import agent_line, agent_summary, simulate, summarise, worse_version
    from llmpulse.cli.demo.simulator import OrderAgent, SupportBot
    from llmpulse.processors.alerting import AlertConfig, AlertEngine
    from llmpulse.processors.config import load_config
    from llmpulse.processors.drift.monitor import DriftMonitor
    from llmpulse.processors.pipeline import Enricher
    from llmpulse.sinks.store import Store

    t_start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    store_url = clickhouse or f"chdb://{out / 'store'}"
    if clickhouse is None and (out / "store").exists():
        shutil.rmtree(out / "store")  # a fresh store for a fresh run
    echo(f"store: {store_url}")
    store = Store.open(store_url)
    try:
        store.migrate()
        echo("loading the scorers' models ...")
        # MiniLM embeds about 60 texts/s on this kind of CPU: score relevance and
        # groundedness on a sample of the calls (decided per call_id), as a busy
        # deployment would. Everything else runs on every call.
        enricher = Enricher(load_config(environ={
            **os.environ, "LLMPULSE_SCORING__EMBEDDINGS__SAMPLE_RATE": str(embedding_sample)}))
        backends = enricher.load_models()
        echo("scorers: " + ", ".join(f"{k}={v}" for k, v in sorted(backends.items())))
        from llmpulse.processors.drift.embedding import default_embedder

        scorer = enricher.batched_scorers.get("embeddings")  # one MiniLM for scores and drift
        reports = _report_writer(out / "drift-reports")
        drift = DriftMonitor(_drift_config(out, drift_window), report_writer=reports,
                             embedder=default_embedder(scorer) if scorer is not None else None)
        pipeline = EmbeddedPipeline(store, enricher=enricher, drift=drift,
                                    alerts=AlertEngine(AlertConfig()))
        llmpulse.init(app="acme-support", environment="demo", deliver_to=pipeline.accept,
                      warn_on_drop=False)
        until = datetime.now(UTC).replace(microsecond=0)
        since = until - timedelta(hours=12)
        bot, agent = SupportBot(seed=seed, total=requests), OrderAgent(seed=seed)
        with click.progressbar(length=requests, label="simulating requests",
                               show_eta=True, show_pos=True) as bar:
            def step(i: int) -> None:
                if (i + 1) % 200 == 0 or i + 1 == requests:
                    pipeline.process()
                bar.update(1)

            drift_start = simulate(bot, requests, since, until - since, step, agent)
        pipeline.finish()
        llmpulse.shutdown()
        reports.flush(timeout=120)
        totals = pipeline.totals
        timing = ", ".join(f"{k} {v:.1f}s" for k, v in totals.seconds.most_common())
        logger.info("pipeline time: %s", timing)
        echo(f"pipeline time: {timing}")
        echo(f"processed {totals.calls} calls, {totals.feedback} feedback, {totals.verdicts} "
             f"guardrail verdicts, {totals.drift_results} drift windows "
             f"({totals.drifted_windows} drifted)")
        refused = ", ".join(f"{n} {reason}" for reason, n in totals.dead_letters.most_common())
        echo(f"dead letters: {refused or 'none'}")
        echo(agent_line(agent_summary(store)))
        summary = summarise(store, out, since, until, echo)
    finally:
        store.close()
    alerts = totals.alerts
    echo(f"\nalerts ({len(alerts)}):")
    for alert in alerts:
        echo(f"  {alert.occurred_at:%H:%M} {alert.status:8} {alert.severity:8} {alert.rule:12} "
             f"{alert.prompt_version or '':4} {alert.summary}")
    worse = worse_version(summary.comparison)
    seconds = time.perf_counter() - t_start
    echo(f"\nreport:      {summary.report}\ncomparison:  {summary.comparison_json}\n"
         f"agent comparison: {summary.agent_comparison_json}\n"
         f"drift reports: {out / 'drift-reports'}\nstore:       {store_url}\n"
         f"done in {seconds:.0f} s")
    return DemoResult(out=out, report=summary.report, comparison_json=summary.comparison_json,
                      alerts=alerts, agent_comparison=summary.agent_comparison,
                      agent_comparison_json=summary.agent_comparison_json,
                      drift_start=drift_start, since=since, until=until, calls=totals.calls,
                      worse_version=worse, seconds=seconds,
                      dead_letters=dict(totals.dead_letters), agent_runs=agent.runs,
                      agent_calls=agent.model_calls)


@click.command("demo")
@click.option("--requests", type=click.IntRange(min=100), default=3000, show_default=True,
              help="Requests the simulated chatbot answers.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              default=Path("llmpulse-demo"), show_default=True, help="Where the files go.")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--bootstrap-servers", "--kafka", "kafka", default=None, metavar="HOST:PORT",
              help="Run through the real stack at this Kafka: SDK -> Kafka -> worker -> sink "
                   "(--kafka: the short form).")
@click.option("--clickhouse", default=None, metavar="URL",
              help="A ClickHouse server (http://user:pass@host:8123/db) instead of chDB.")
@click.option("--drift-window", type=click.IntRange(min=20), default=150, show_default=True,
              help="Calls per drift window (per prompt version).")
@log_level_option(click, default="warning")
def demo(requests: int, out: Path, seed: int, kafka: str | None, clickhouse: str | None,
         drift_window: int, log_level: str) -> None:
    """Simulate an instrumented support chatbot and show what llmpulse finds."""
    configure_logging(log_level)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    if kafka:
        from llmpulse.cli.demo.stack import run_with_kafka

        run_with_kafka(kafka=kafka, out=out, requests=requests, seed=seed,
                       clickhouse=clickhouse, drift_window=drift_window)
        return
    run_embedded(out=out, requests=requests, seed=seed, clickhouse=clickhouse,
                 drift_window=drift_window)
