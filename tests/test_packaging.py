"""Each distribution declares what it imports and works installed alone.

The first test reads every room's sources (fast): each import outside the standard
library must be declared by that room's ``pyproject.toml`` (core, or an extra when the
import is guarded or lazy). The slow tests install one room with only the llmpulse
distributions it declares into a fresh venv (``uv pip install``, from uv's cache when it
can) and run that room's own entry point.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ["schemas", "producers", "processors", "sinks", "dashboards", "cli"]
OPTIONAL_MODULES = {
    # Modules that are themselves part of an extra (nothing on the room's default path
    # imports them): they may import that extra's packages at import time.
    "llmpulse/schemas/health.py": "health",
    "llmpulse/processors/replay/": "replay",
    "llmpulse/processors/datasets.py": "replay",
}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(text: str) -> str:
    return _norm(re.split(r"[<>=!~;\[ ]", text.strip(), maxsplit=1)[0])


def _declared(room: str) -> tuple[str, set[str], dict[str, set[str]]]:
    project = tomllib.loads((ROOT / room / "pyproject.toml").read_text())["project"]
    core = {_requirement_name(d) for d in project.get("dependencies", [])}
    extras = {name: {_requirement_name(d) for d in group}
              for name, group in project.get("optional-dependencies", {}).items()}
    return _norm(project["name"]), core, extras


def _extra_of(where: str) -> str | None:
    path = where.rsplit(":", 1)[0].split("/src/", 1)[-1]
    return next((extra for prefix, extra in OPTIONAL_MODULES.items() if path.startswith(prefix)),
                None)


def _guarded_lines(tree: ast.AST) -> set[int]:
    """Lines of imports inside a function, a ``try`` or ``if TYPE_CHECKING`` (not at import)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Try):
            lines.update(n.lineno for n in ast.walk(node) if isinstance(n, ast.Import | ast.ImportFrom))
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            lines.update(n.lineno for n in ast.walk(node) if isinstance(n, ast.Import | ast.ImportFrom))
    return lines


@functools.cache
def _owners() -> dict[str, set[str]]:
    """Module name (``google``, ``google.protobuf``) -> the distributions that install it.

    Two levels, because namespace packages (``google``, ``opentelemetry``) are shared by
    many distributions: ``google.protobuf`` is protobuf's, ``opentelemetry.proto`` is
    opentelemetry-proto's.
    """
    owners: dict[str, set[str]] = {}
    for dist in importlib.metadata.distributions():
        name = _norm(dist.metadata["Name"])
        for file in dist.files or ():
            parts = file.parts
            if not parts or parts[0].endswith((".dist-info", ".data")) or parts[0] == "..":
                continue
            top = parts[0].removesuffix(".py").split(".")[0]
            owners.setdefault(top, set()).add(name)
            if len(parts) > 1:
                owners.setdefault(f"{top}.{parts[1].removesuffix('.py').split('.')[0]}", set()).add(name)
    return owners


def _imports(room: str) -> list[tuple[set[str], bool, str]]:
    """``(distributions, at import time, where)`` for every non-stdlib import of a room."""
    owners = _owners()
    found = []
    for path in sorted((ROOT / room / "src").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        guarded = _guarded_lines(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                parts = name.split(".")
                if parts[0] in sys.stdlib_module_names or parts[0] == "__future__":
                    continue
                if parts[0] == "llmpulse":
                    dists = {"llmpulse" if parts[1] == "cli" else f"llmpulse-{parts[1]}"}
                else:
                    dists = owners.get(".".join(parts[:2])) or owners.get(parts[0]) or {parts[0]}
                found.append((dists, node.lineno not in guarded,
                              f"{path.relative_to(ROOT)}:{node.lineno}"))
    return found


@pytest.mark.parametrize("room", ROOMS)
def test_each_room_declares_what_it_imports(room: str) -> None:
    name, core, extras = _declared(room)
    every_extra = set().union(*extras.values())
    undeclared = [(sorted(d), where) for d, _, where in _imports(room)
                  if name not in d and not d & (core | every_extra)]
    assert not undeclared, f"{room} imports what its pyproject.toml does not declare: {undeclared}"
    only_extra_at_import = [(sorted(d), where) for d, eager, where in _imports(room)
                            if eager and name not in d and not d & core
                            and not d & extras.get(_extra_of(where) or "", set())]
    assert not only_extra_at_import, (
        f"{room} imports an optional dependency at import time: {only_extra_at_import}")


# -- each distribution alone in a fresh venv ------------------------------------------------

ALONE = {
    # room: (llmpulse folders to install, commands to run, what must not be installed)
    "schemas": (["schemas"], [
        ["python", "-c", "import sys, pathlib; from llmpulse.schemas import export_json_schemas; "
                         "print(len(export_json_schemas(pathlib.Path(sys.argv[1]))))",
         "{tmp}/jsonschema"],
    ], {"llmpulse-producers", "confluent-kafka"}),
    "producers": (["schemas", "producers"], [
        ["python", "-c", "import sys, llmpulse.producers as p; got = []; "
                         "p.init(app='alone', deliver_to=lambda t, k, v: got.append(t)); "
                         "p.feedback('0190a3c4-0000-7000-8000-000000000001', thumbs='up'); "
                         "assert 'confluent_kafka' not in sys.modules; print(got)"],
    ], {"faust-streaming", "llmpulse-processors", "chdb"}),
    "processors": (["schemas", "processors"], [
        ["llmpulse-processors", "worker", "--help"],
        ["python", "-c", "import importlib, pathlib, llmpulse.processors as p; "
                         "base = pathlib.Path(p.__path__[0]); "
                         "names = ['.'.join(('llmpulse', 'processors', *f.relative_to(base)"
                         ".with_suffix('').parts)).removesuffix('.__init__') "
                         "for f in sorted(base.rglob('*.py'))]; "
                         "[importlib.import_module(n) for n in names if not n.startswith("
                         "('llmpulse.processors.replay', 'llmpulse.processors.datasets'))]; "
                         "import numpy as np; from llmpulse.processors.drift.stats import ks_test; "
                         "print(ks_test(np.arange(50.0), np.arange(50.0) + 30))"],
        ["python", "-c", "import llmpulse.processors.replay",
         "!replay needs 'llmpulse-sinks': pip install 'llmpulse-processors[replay]'"],
    ], {"llmpulse-sinks", "llmpulse-producers", "llmpulse", "confluent-kafka", "torch"}),
    "sinks": (["schemas", "sinks"], [
        ["llmpulse-sinks", "db", "migrate", "--clickhouse", "chdb://{tmp}/store"],
        ["llmpulse-sinks", "sink", "--help"],
    ], {"llmpulse-processors", "faust-streaming", "llmpulse"}),
    "dashboards": (["schemas", "sinks", "dashboards"], [
        ["llmpulse-dashboards", "dashboards", "generate", "--out", "{tmp}/grafana"],
        ["llmpulse-dashboards", "report", "--help"],
    ], {"llmpulse-processors", "faust-streaming", "llmpulse"}),
}


def _install(venv: Path, folders: list[str]) -> dict[str, str]:
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is missing: scripts/setup.sh installs it")
    environ = {**os.environ, "VIRTUAL_ENV": str(venv)}
    environ.pop("PYTHONPATH", None)
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True,
                   timeout=120, env=environ)
    install = [uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"),
               *[str(ROOT / f) for f in folders]]
    # From uv's cache when everything is there (no network); else from the index.
    offline = subprocess.run([*install, "--offline"], capture_output=True, text=True,
                             timeout=900, env=environ)
    if offline.returncode != 0:
        subprocess.run(install, check=True, timeout=900, env=environ)
    return environ


@pytest.mark.slow
@pytest.mark.parametrize("room", sorted(ALONE))
def test_each_distribution_installs_alone_and_its_entry_point_works(room: str,
                                                                     tmp_path: Path) -> None:
    folders, commands, absent = ALONE[room]
    venv = tmp_path / "venv"
    environ = _install(venv, folders)
    listed = subprocess.run([shutil.which("uv") or "uv", "pip", "list", "--format", "json",
                             "--python", str(venv / "bin" / "python")], capture_output=True,
                            text=True, check=True, timeout=60, env=environ)
    installed = {_norm(d["name"]) for d in __import__("json").loads(listed.stdout)}
    assert {f"llmpulse-{f}" for f in folders} <= installed
    assert not installed & absent, f"{room} alone brought {installed & absent}"
    for command in commands:
        expect_failure = command[-1].startswith("!")
        argv = [a.format(tmp=tmp_path) for a in (command[:-1] if expect_failure else command)]
        argv[0] = str(venv / "bin" / argv[0])
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=tmp_path,
                              env=environ)
        if expect_failure:
            assert done.returncode != 0 and command[-1][1:] in done.stderr, (argv, done.stderr)
        else:
            assert done.returncode == 0, (argv, done.stdout, done.stderr)
