"""Seconds from ``exec`` of ``llmpulse worker`` to Faust's ``Ready`` (the line the tests wait
on), the start-up caches off (as every process ran before) against on, in the same run.

Each case starts a worker on a topic prefix of its own, waits for ``[^Worker]: Ready``,
stops it, and splits the start-up with the worker's own log lines:

- ``before_faust_s``: exec to Faust's first ``[^Worker]: Starting...``: imports, the
  guardrail policy (its Hyperscan gates), the light scorers, the model scorers (role
  ``all``), the drift state, the app's agents.
- ``faust_s``: Faust's start to ``Ready``: topic creation, joining the consumer group,
  assignment, table recovery; ``join_s`` of it is the group join alone (from the
  subscription to ``Joined group``).

Cases (``--rounds`` of each, in turn, each measured in a fresh process):

- ``cold``: an empty gate cache (``LLMPULSE_CACHE_DIR``) and no bytecode cache
  (``PYTHONDONTWRITEBYTECODE=1``, an empty ``PYTHONPYCACHEPREFIX``): what every worker,
  demo and test process paid before the caches, in an environment such as CI's that
  writes no ``.pyc`` files.
- ``gate_cache``: the gate compiled by an earlier process, still no bytecode.
- ``warm``: both caches filled by an earlier process.

``ratio`` is ``warm`` over ``cold`` (lower is better). Roles: ``light`` is the worker the
tests start most (``--no-heavy --no-drift``), ``all`` loads the model scorers and drift.

Prints JSON. ``uv run python benchmarks/worker_startup.py [--roles light,all] [--rounds 1]
[--bootstrap-servers HOST:PORT]`` (without a broker it starts one).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from kafka_broker import broker_unless_given  # noqa: E402
from worker_process import WorkerProcess  # noqa: E402

from llmpulse.cli.topics import ensure_topics  # noqa: E402

CASES = ("cold", "gate_cache", "warm")
_STAMP = re.compile(rb"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\] \[\d+\] \[\w+\] (.*)$", re.M)


def _when(log: bytes, needle: bytes) -> float | None:
    """Epoch seconds of the first log line containing ``needle``."""
    for stamp, text in _STAMP.findall(log):
        if needle in text:
            return datetime.strptime(stamp.decode(), "%Y-%m-%d %H:%M:%S,%f").timestamp()
    return None


def _environment(case: str, folders: dict[str, Path]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in {"PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX", "LLMPULSE_CACHE_DIR"}}
    env.setdefault("HF_HUB_OFFLINE", "1")  # the model scorers read local files only
    if case == "cold":
        fresh = Path(tempfile.mkdtemp(dir=folders["scratch"]))
        env.update(LLMPULSE_CACHE_DIR=str(fresh / "gates"), PYTHONDONTWRITEBYTECODE="1",
                   PYTHONPYCACHEPREFIX=str(fresh / "pyc"))  # an empty one: no .pyc is read
    elif case == "gate_cache":
        env.update(LLMPULSE_CACHE_DIR=str(folders["gates"]), PYTHONDONTWRITEBYTECODE="1",
                   PYTHONPYCACHEPREFIX=str(folders["scratch"] / "no-pyc"))
    else:
        env.update(LLMPULSE_CACHE_DIR=str(folders["gates"]), PYTHONPYCACHEPREFIX=str(folders["pyc"]))
    return env


def start_once(bootstrap: str, role: str, case: str, folders: dict[str, Path]) -> dict[str, float]:
    prefix = f"ws{uuid.uuid4().hex[:8]}."
    ensure_topics(bootstrap, prefix=prefix, partitions=2)
    heavy = role == "all"
    worker = WorkerProcess(bootstrap, prefix, folders["scratch"] / prefix, heavy=heavy,
                           drift=heavy, env=_environment(case, folders))
    exec_at = time.time()
    seconds = worker.start(timeout_s=600)
    cpu = worker.cpu_seconds()
    worker.stop()
    log = worker.log.read_bytes()
    starting, ready = _when(log, b"[^Worker]: Starting..."), _when(log, b"[^Worker]: Ready")
    subscribed, joined = _when(log, b"Subscribed to topic(s)"), _when(log, b"Joined group")
    if None in (starting, ready, subscribed, joined):
        raise RuntimeError(f"a start-up line is missing from {worker.log}")
    assert starting and ready and subscribed and joined  # for the type checker
    return {"ready_s": round(seconds, 2), "cpu_s": round(cpu, 2),
            "before_faust_s": round(starting - exec_at, 2), "faust_s": round(ready - starting, 2),
            "join_s": round(joined - subscribed, 2)}


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: round(statistics.median(r[key] for r in runs), 2) for key in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--roles", default="light,all")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--bootstrap-servers", default=None)
    args = parser.parse_args()
    roles = [r for r in args.roles.split(",") if r]
    with tempfile.TemporaryDirectory(prefix="worker-startup-") as tmp:
        base = Path(tmp)
        folders = {name: base / name for name in ("scratch", "gates", "pyc")}
        for folder in folders.values():
            folder.mkdir()
        bootstrap, broker = broker_unless_given(args.bootstrap_servers, base)
        try:
            results: dict[str, dict[str, object]] = {}
            for role in roles:
                # Fill both caches once (not measured), as an earlier process would have.
                start_once(bootstrap, role, "warm", folders)
                runs: dict[str, list[dict[str, float]]] = {case: [] for case in CASES}
                for round_ in range(args.rounds):
                    for case in CASES if round_ % 2 == 0 else reversed(CASES):
                        runs[case].append(start_once(bootstrap, role, case, folders))
                        print(f"{role} {case}: {runs[case][-1]}", file=sys.stderr, flush=True)
                medians = {case: _median(runs[case]) for case in CASES}
                results[role] = {**medians, "rounds": args.rounds,
                                 "ratio": round(medians["warm"]["ready_s"]
                                                / medians["cold"]["ready_s"], 3),
                                 "cpu_ratio": round(medians["warm"]["cpu_s"]
                                                    / medians["cold"]["cpu_s"], 3)}
        finally:
            if broker is not None:
                broker.stop()
    print(json.dumps({"benchmark": "worker_startup", "cpus": os.cpu_count(),
                      "load_1min": round(os.getloadavg()[0], 2), **results}, indent=2))


if __name__ == "__main__":
    main()
