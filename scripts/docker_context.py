"""The size of the build context ``docker build .`` would send, honouring .dockerignore.

There is no Docker engine on the development machines, so this builds the context tarball
the way the Docker SDK for Python does before it posts it to the engine
(``docker.utils.build.tar``, which applies .dockerignore with Docker's own rules), and
prints its size with and without the ignore file, as JSON: ``files`` and ``bytes`` (the
files' content) for both, and ``tar_bytes`` (the tarball itself) for the context that
is sent; the context without the ignore file is only listed (several GB: not tarred).

Example:
    $ uv run --with docker==7.2.0 python scripts/docker_context.py
    {"with_dockerignore": {"files": ..., "bytes": ..., "tar_bytes": ...}, "without": {...}, ...}
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from docker.utils.build import exclude_paths, tar

ROOT = Path(__file__).resolve().parents[1]


def _listed(patterns: list[str]) -> dict[str, int]:
    files = [ROOT / p for p in exclude_paths(str(ROOT), patterns, dockerfile="Dockerfile")]
    files = [p for p in files if p.is_file() and not p.is_symlink()]
    return {"files": len(files), "bytes": sum(p.stat().st_size for p in files)}


def _tar_bytes(patterns: list[str]) -> int:
    archive = tar(str(ROOT), exclude=patterns, dockerfile=("Dockerfile", None), gzip=False)
    size = archive.seek(0, 2)
    archive.close()
    return int(size)


def main() -> int:
    ignore = ROOT / ".dockerignore"
    patterns = [line.strip() for line in ignore.read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    with_ignore = {**_listed(patterns), "tar_bytes": _tar_bytes(patterns)}
    without = _listed([])
    print(json.dumps({"with_dockerignore": with_ignore, "without": without,
                      "ratio": round(with_ignore["bytes"] / without["bytes"], 6)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
