"""Size of a worker's Python environment: the processors' ``onnx`` extra (ONNX Runtime, no
torch), the ``openvino`` extra (``onnx`` plus OpenVINO's runtime: what the image installs)
and the ``ml`` extra (torch, Detoxify, sentence-transformers, NNCF), each installed
from the lock into a fresh virtual environment (``uv export`` then ``uv pip install``, from
uv's cache), measured as the bytes of its site-packages (third-party packages: the
workspace's own add a few hundred kB). Prints JSON; the ratios are ml/onnx and openvino/onnx.

    flock /tmp/llmpulse-heavy.lock uv run python benchmarks/environment_size.py

``--image``: an estimate of the runtime image (the Dockerfile's default target: worker,
sink, topics), for machines without a Docker engine. It builds what each of the
Dockerfile's layers adds, as the Dockerfile would, in a temporary folder: ``pip install
uv==X`` (the version read from the Dockerfile), ``COPY . /app`` (the build context that
``scripts/docker_context.py`` lists with Docker's .dockerignore rules) and ``uv sync
--all-packages --frozen --no-dev --extra <the runtime target's>`` (into a fresh environment through
``UV_PROJECT_ENVIRONMENT``), and adds the base image's size as stated, not measured
(``python:3.11-slim``, ``BASE_IMAGE_MB``). Bytes are the files' sizes (uncompressed, as
``docker images`` shows them); layer metadata and filesystem blocks are not counted.

    uv run python benchmarks/environment_size.py --image
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def site_packages_bytes(venv: Path) -> int:
    return sum(folder_bytes(folder) for folder in venv.glob("lib/python*/site-packages"))


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


BASE_IMAGE = "python:3.11-slim"
BASE_IMAGE_MB = 130
"""What ``docker images`` shows for python:3.11-slim on linux/amd64 (Debian slim with
CPython 3.11): stated, not measured here (no Docker engine)."""


def folder_bytes(folder: Path) -> int:
    """The bytes of the files below ``folder`` (links not followed, not counted)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def image_estimate(where: Path) -> dict[str, object]:
    """What each layer of the Dockerfile's runtime target adds, built here, in MB."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    uv_version = re.search(r"uv==([0-9.]+)", dockerfile)
    extra = re.search(r"--extra (\S+) --compile-bytecode", dockerfile)  # the runtime target's
    assert uv_version and extra, "the Dockerfile changed: update this"
    tool = where / "uv-layer"  # RUN pip install --no-cache-dir uv==X
    subprocess.run(["uv", "pip", "install", "--quiet", "--target", str(tool),
                    f"uv=={uv_version.group(1)}"], check=True)
    context = json.loads(subprocess.run(  # COPY . /app
        ["uv", "run", "--quiet", "--with", "docker==7.2.0", "python", "scripts/docker_context.py"],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout)["with_dockerignore"]
    venv = where / "app-venv"  # RUN uv sync --all-packages --frozen --no-dev --extra openvino
    subprocess.run(["uv", "sync", "--quiet", "--all-packages", "--frozen", "--no-dev", "--extra",
                    extra.group(1), "--link-mode", "copy"], cwd=ROOT, check=True,
                   env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv)})
    layers = {"uv": folder_bytes(tool), "context": int(context["bytes"]), "venv": folder_bytes(venv)}
    added = sum(layers.values())
    return {"image_extra": extra.group(1),
            **{f"image_layer_{name}_mb": round(size / 1e6, 1) for name, size in layers.items()},
            "image_added_mb": round(added / 1e6, 1), "image_base": BASE_IMAGE,
            "image_base_mb_stated": BASE_IMAGE_MB,
            "image_estimate_mb": round(added / 1e6 + BASE_IMAGE_MB),
            "image_note": "estimate: the layers built here plus the base image's stated size"}


def main() -> None:
    out: dict[str, object] = {"benchmark": "environment_size", "platform": sys.platform,
                              "machine": os.uname().machine}
    if "--image" in sys.argv[1:]:
        with tempfile.TemporaryDirectory() as tmp:
            out.update(image_estimate(Path(tmp)))
        print(json.dumps(out, indent=2))
        return
    with tempfile.TemporaryDirectory() as tmp:
        for extra in ("onnx", "openvino", "ml"):
            size, packages = install(extra, Path(tmp))
            out[f"{extra}_extra_site_packages_mb"] = round(size / 1e6, 1)
            out[f"{extra}_extra_packages"] = packages
    ratio = float(out["ml_extra_site_packages_mb"]) / float(out["onnx_extra_site_packages_mb"])  # type: ignore[arg-type]
    out["ml_to_onnx_ratio"] = round(ratio, 1)
    out["openvino_to_onnx_ratio"] = round(float(out["openvino_extra_site_packages_mb"])  # type: ignore[arg-type]
                                          / float(out["onnx_extra_site_packages_mb"]), 2)  # type: ignore[arg-type]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
