"""``llmpulse demo --kafka HOST:PORT``: the same simulation through the real stack.

The SDK sends to Kafka; an ``llmpulse worker`` process validates, joins, scores, guards
and watches drift; a sink (in this process) writes to the store (chDB, or the ClickHouse
server given with ``--clickhouse``); then the same comparison and report as the embedded
run are made from the store.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from llmpulse.cli.demo.drain import wait_until_consumed

if TYPE_CHECKING:
    from llmpulse.cli.demo.command import DemoResult

_CONFIG = """# written by llmpulse demo --kafka
drift:
  window_calls: {window}
  window_seconds: null
  reference_calls: {reference}
  sample_size: {window}
scoring:
  embeddings:
    sample_rate: 0.25
"""


def run_with_kafka(*, kafka: str, out: Path, requests: int, seed: int, clickhouse: str | None,
                   drift_window: int, echo: Any = click.echo) -> DemoResult:
    """The run through the real stack; returns what the embedded run returns."""
    import shutil

    import llmpulse.producers as llmpulse
    from llmpulse.cli.demo.command import DemoResult
    from llmpulse.cli.demo.scenario import agent_line, simulate, store_summary, summarise, worse_version
    from llmpulse.cli.demo.simulator import OrderAgent, SupportBot
    from llmpulse.cli.topics import ensure_topics
    from llmpulse.processors.worker.app import WORKER_INPUTS
    from llmpulse.schemas import Alert
    from llmpulse.sinks.sink import Sink, SinkConfig
    from llmpulse.sinks.store import Store

    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    prefix = f"demo-{datetime.now(UTC):%Y%m%d%H%M%S}."  # topics of this run only
    echo(f"kafka: {kafka} (topics {prefix}*)")
    ensure_topics(kafka, prefix=prefix, partitions=2)
    store_url = clickhouse or f"chdb://{out / 'store'}"
    if clickhouse is None and (out / "store").exists():
        shutil.rmtree(out / "store")
    store = Store.open(store_url)
    store.migrate()
    config = out / "llmpulse.yaml"
    config.write_text(_CONFIG.format(window=drift_window, reference=2 * drift_window))
    log = open(out / "worker.log", "wb")  # noqa: SIM115
    worker = subprocess.Popen(
        [sys.executable, "-m", "llmpulse.cli.main", "worker", "--bootstrap-servers", kafka,
         "--prefix", prefix, "--partitions", "2", "--config", str(config), "--fast",
         "--datadir", str(out / "worker-data")],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    stop = threading.Event()
    sink = Sink(SinkConfig(bootstrap_servers=kafka, prefix=prefix, group_id=f"{prefix}sink",
                           batch_seconds=0.5), store)
    sink_thread = threading.Thread(target=sink.run, args=(stop,), daemon=True)
    try:
        echo("starting the worker (group join, table recovery) ...")
        _wait_for(lambda: b"[^Worker]: Ready" in (out / "worker.log").read_bytes(), 180,
                  worker, out / "worker.log")
        sink_thread.start()
        llmpulse.init(app="acme-support", environment="demo", bootstrap_servers=kafka,
                      topic_prefix=prefix, spool_dir=out / "spool", warn_on_drop=False)
        until = datetime.now(UTC).replace(microsecond=0)
        since = until - timedelta(hours=12)
        bot, agent = SupportBot(seed=seed, total=requests), OrderAgent(seed=seed)
        with click.progressbar(length=requests, label="simulating requests", show_eta=True,
                               show_pos=True) as bar:
            drift_start = simulate(bot, requests, since, until - since, lambda i: bar.update(1),
                                   agent)
        llmpulse.flush(30)
        stats = llmpulse.stats()
        echo(f"SDK: sent {stats['sent']} events, dropped {stats['dropped']}")
        # Done when every stage has consumed all its input: the worker's group (join,
        # model scorers, drift) has committed every record of its topics, whose outputs
        # were sent before; then the sink's group has committed everything those made.
        worker_group = f"{prefix}llmpulse-processors"
        worker_topics = [f"{prefix}{t}" for t in WORKER_INPUTS]
        wait_until_consumed(kafka, [(worker_group, worker_topics),
                                    (sink.config.group_id, sink.config.topics)],
                            timeout_s=900, alive=lambda: _alive(worker, out / "worker.log"),
                            echo=echo)
        summary = store_summary(store)
        echo(f"stored {summary['calls']} calls, {summary['feedback']} feedback, "
             f"{summary['verdicts']} guardrail verdicts, {summary['drift_windows']} drift windows")
        echo(agent_line(summary))
        done = summarise(store, out, since, until, echo)
        alerts = [Alert(**row) for row in store.query(
            "SELECT occurred_at, app, status, severity, rule, dedup_key, summary, prompt_version "
            "FROM alerts ORDER BY occurred_at").dicts()]
        echo(f"\nalerts ({len(alerts)}):")
        for a in alerts:
            echo(f"  {a.occurred_at:%H:%M} {a.status:8} {a.severity:8} {a.rule:12} "
                 f"{a.prompt_version or '':4} {a.summary}")
        seconds = time.perf_counter() - t0
        echo(f"\nreport:      {done.report}\ncomparison:  {done.comparison_json}\n"
             f"agent comparison: {done.agent_comparison_json}\nworker log:  "
             f"{out / 'worker.log'}\nstore:       {store_url}\ndone in {seconds:.0f} s")
        return DemoResult(out=out, report=done.report, comparison_json=done.comparison_json,
                          alerts=alerts, agent_comparison=done.agent_comparison,
                          agent_comparison_json=done.agent_comparison_json,
                          drift_start=drift_start, since=since, until=until,
                          calls=summary["calls"], worse_version=worse_version(done.comparison),
                          seconds=seconds, dead_letters=summary["dead_letters"],
                          agent_runs=agent.runs, agent_calls=agent.model_calls)
    finally:
        llmpulse.shutdown(5)
        stop.set()
        if sink_thread.is_alive():
            sink_thread.join(30)
        worker.terminate()
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()
        store.close()


def _alive(proc: subprocess.Popen[bytes], log: Path) -> None:
    if proc.poll() is not None:
        raise click.ClickException(f"the worker exited ({proc.returncode}); see {log}")


def _wait_for(ready: Any, timeout_s: float, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise click.ClickException(f"the worker exited ({proc.returncode}); see {log}")
        if ready():
            return
        time.sleep(0.3)
    raise click.ClickException(f"the worker was not ready after {timeout_s:.0f} s; see {log}")
