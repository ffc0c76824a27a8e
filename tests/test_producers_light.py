"""The SDK stays light: no Faust, torch, chDB or ClickHouse client comes with it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ["faust", "torch", "chdb", "clickhouse_connect", "transformers", "detoxify", "aiokafka",
         "evidently", "pandas", "llmpulse.processors", "llmpulse.sinks", "llmpulse.dashboards"]
HEAVY_DISTRIBUTIONS = {"faust-streaming", "torch", "chdb", "clickhouse-connect", "transformers",
                       "detoxify", "aiokafka", "evidently", "pandas", "numpy"}


def _producer_modules() -> list[str]:
    package = ROOT / "producers" / "src" / "llmpulse" / "producers"
    return sorted(
        "llmpulse.producers" + ("" if p.stem == "__init__" else f".{p.stem}")
        for p in package.glob("*.py")
    )


def test_importing_every_producers_module_pulls_in_nothing_heavy() -> None:
    """Even in the full workspace, where the heavy packages are installed."""
    code = (
        "import importlib, json, sys\n"
        f"for m in {_producer_modules()!r}: importlib.import_module(m)\n"
        f"print(json.dumps([h for h in {HEAVY!r} if h in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert json.loads(out.stdout) == []


def test_producers_installs_alone_without_heavy_packages(tmp_path: Path) -> None:
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is missing: .ci/run installs it")
    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    environ = {**os.environ, "VIRTUAL_ENV": str(venv)}
    subprocess.run([uv, "pip", "install", "-q", "--python", str(python),
                    str(ROOT / "schemas"), str(ROOT / "producers")],
                   check=True, timeout=600, env=environ)
    listed = subprocess.run([uv, "pip", "list", "--format", "json", "--python", str(python)],
                            capture_output=True, text=True, check=True, timeout=60, env=environ)
    installed = {d["name"].lower() for d in json.loads(listed.stdout)}
    assert {"llmpulse-producers", "llmpulse-schemas", "confluent-kafka"} <= installed
    assert not installed & HEAVY_DISTRIBUTIONS, installed & HEAVY_DISTRIBUTIONS
    code = "; ".join(f"import {m}" for m in _producer_modules()) + "; print('ok')"
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
