"""One worker's throughput, checkout against checkout, side by side in the same run.

``worker_throughput.py`` measures the tree it is in, and its figures move with the load of
a shared machine. To tell a regression from a busy machine, this runs the one-worker part
of each checkout's own ``benchmarks/worker_throughput.py`` (that checkout's SDK makes the
input, its worker takes it, the same clock and CPU reading) alternately, on one broker,
and reports every run and the ratios of the medians: calls/s and calls per worker CPU
second, each checkout against the first.

Each checkout needs its own environment::

    git worktree add --detach /tmp/llmpulse-old 3c59cf9
    (cd /tmp/llmpulse-old && uv sync --all-packages --all-extras --frozen)
    flock /tmp/llmpulse-heavy.lock uv run python benchmarks/worker_compare.py \\
        /tmp/llmpulse-old . [--calls 20000] [--rounds 2] [--bootstrap HOST:PORT]

Prints JSON (progress on stderr).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

ONE_WORKER = textwrap.dedent("""
    import importlib.util, json, sys, tempfile
    from pathlib import Path
    root, bootstrap, calls = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    spec = importlib.util.spec_from_file_location("wt", root / "benchmarks" / "worker_throughput.py")
    wt = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(wt)
    tmp = Path(tempfile.mkdtemp(prefix="llmpulse-wcmp-"))
    made = wt._input(bootstrap, calls, tmp)
    prefix, spans = made if isinstance(made, tuple) else (made, 0)  # older scripts: the prefix
    kw = {"spans": spans} if spans else {}
    print(json.dumps(wt._workers(bootstrap, prefix, 1, tmp, calls, **kw)))
""")
"""Run by each checkout's own Python: its ``_input`` and ``_workers(n=1)``."""


def _one_worker(root: Path, bootstrap: str, calls: int) -> dict[str, object]:
    python = root / ".venv" / "bin" / "python"
    proc = subprocess.run([str(python), "-c", ONE_WORKER, str(root), bootstrap, str(calls)],
                          capture_output=True, text=True, timeout=1800, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{root}: exit {proc.returncode}\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkouts", nargs="+", type=Path,
                        help="checkouts with their .venv; the first is the baseline")
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=2, help="runs of each checkout, alternately")
    parser.add_argument("--bootstrap", default=None)
    args = parser.parse_args()
    roots = [c.resolve() for c in args.checkouts]
    from kafka_broker import broker_unless_given

    tmp = Path(tempfile.mkdtemp(prefix="llmpulse-wcmp-"))
    bootstrap, broker = broker_unless_given(args.bootstrap, tmp)
    runs: list[dict[str, object]] = []
    try:
        for n in range(args.rounds):
            for root in roots:
                load = Path("/proc/loadavg").read_text().split()[0]
                result = {"checkout": str(root), "round": n + 1, "load_1m": float(load),
                          **_one_worker(root, bootstrap, args.calls)}
                runs.append(result)
                print(f"[{time.strftime('%H:%M:%S')}] {root}: {result['calls_per_s']} calls/s, "
                      f"{result['calls_per_worker_cpu_s']} per worker CPU s", file=sys.stderr,
                      flush=True)
    finally:
        if broker is not None:
            broker.stop()
    median = {str(root): {key: statistics.median(float(r[key]) for r in runs  # type: ignore[arg-type]
                                                 if r["checkout"] == str(root))
                          for key in ("calls_per_s", "calls_per_worker_cpu_s")}
              for root in roots}
    base = median[str(roots[0])]
    print(json.dumps({
        "benchmark": "worker_compare", "calls": args.calls, "rounds": args.rounds,
        "runs": runs, "median": median,
        "ratio_to_first": {name: {key: round(m[key] / base[key], 3) for key in m}
                           for name, m in median.items()},
    }, indent=2))


if __name__ == "__main__":
    main()
