"""Size of a worker's Python environment: the processors' ``onnx`` extra (ONNX Runtime, no
torch) against the ``ml`` extra (torch, Detoxify, sentence-transformers), each installed
from the lock into a fresh virtual environment (``uv export`` then ``uv pip install``, from
uv's cache), measured as the bytes of its site-packages (third-party packages: the
workspace's own add a few hundred kB). Prints JSON; the ratio is ml/onnx.

    flock /tmp/llmpulse-heavy.lock uv run python benchmarks/environment_size.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def site_packages_bytes(venv: Path) -> int:
    total = 0
    for folder in venv.glob("lib/python*/site-packages"):
        for path in folder.rglob("*"):
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
    return total


def install(extra: str, where: Path) -> tuple[int, int]:
    """(bytes of site-packages, packages) of the workspace with the processors' ``extra``."""
    requirements = where / f"{extra}.txt"
    exported = subprocess.run(["uv", "export", "--frozen", "--no-dev", "--all-packages", "--extra", extra,
                               "--no-hashes", "--no-emit-workspace", "--quiet"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout
    requirements.write_text(exported)
    venv = where / extra
    subprocess.run(["uv", "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    subprocess.run(["uv", "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"),
                    "-r", str(requirements)], check=True, cwd=ROOT)
    packages = sum(1 for line in exported.splitlines() if line and not line.startswith(("#", " ", "-")))
    return site_packages_bytes(venv), packages


def main() -> None:
    out: dict[str, object] = {"benchmark": "environment_size", "platform": sys.platform,
                              "machine": os.uname().machine}
    with tempfile.TemporaryDirectory() as tmp:
        for extra in ("onnx", "ml"):
            size, packages = install(extra, Path(tmp))
            out[f"{extra}_extra_site_packages_mb"] = round(size / 1e6, 1)
            out[f"{extra}_extra_packages"] = packages
    ratio = float(out["ml_extra_site_packages_mb"]) / float(out["onnx_extra_site_packages_mb"])  # type: ignore[arg-type]
    out["ml_to_onnx_ratio"] = round(ratio, 1)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
