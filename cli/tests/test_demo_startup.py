"""``llmpulse demo`` says at start which model and backend each scorer runs.

The embedded demo runs until its start-up line (the store migrated, every model loaded for
real) and is stopped there through its ``echo`` (the whole run is tests/test_demo.py's). It
runs in a child process: chDB hosts one engine path per process, and the demo opens its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# The child runs the demo until its "scorers: " line, prints the lines it got and stops there.
CHILD = """
import sys
from pathlib import Path
from llmpulse.cli.demo.command import run_embedded

class StartedUp(Exception):
    pass

lines = []

def echo(message="", **kwargs):
    lines.append(message)
    if message.startswith("scorers: "):
        raise StartedUp

try:
    run_embedded(out=Path(sys.argv[1]), requests=10, seed=1, clickhouse=None, drift_window=10, echo=echo)
except StartedUp:
    print("\\n".join(lines[-2:]))
else:
    sys.exit("the demo ended without printing its scorers")
"""


def test_the_demo_prints_each_scorers_backend_before_simulating(tmp_path: Path) -> None:
    # no models folder and no Detoxify cache: the documented fallback, named as such
    env = {k: v for k, v in os.environ.items() if k != "LLMPULSE_MODELS_DIR"}
    env["TORCH_HOME"] = str(tmp_path / "torch")
    done = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "demo")], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    loading, scorers = done.stdout.splitlines()[-2:]
    assert loading == "loading the scorers' models ..."
    backends = dict(pair.split("=", 1) for pair in scorers.removeprefix("scorers: ").split(", "))
    assert backends["toxicity"] == "profanity-check"  # no Detoxify model here: said, not hidden
    assert backends["embeddings"] == "minilm:all-MiniLM-L6-v2"  # sentence-transformers on the packaged model
    assert backends["readability"] == "textstat:flesch_reading_ease"
    assert list(backends) == sorted(backends)
