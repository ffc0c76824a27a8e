"""A models folder: what ``llmpulse models fetch`` wrote, and its own manifest.

The folder holds one sub-folder per model (``detoxify-original/``, ``minilm/``) and
``llmpulse-models.json``, which records every file's sha256 and size as verified at fetch
time, where it came from, whether the catalog had pinned its hash, and the ONNX exports
made from it. Workers read only this folder at run time; ``verify`` re-hashes it.

Example:
    >>> import tempfile
    >>> from llmpulse.processors.models.folder import ModelsFolder
    >>> folder = ModelsFolder(tempfile.mkdtemp())
    >>> folder.models(), folder.verify()
    ({}, [])
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["MANIFEST_NAME", "ModelsFolder", "Problem", "configured_model_dir", "sha256_of"]

MANIFEST_NAME = "llmpulse-models.json"
"""The folder's own manifest, at its top level."""


def configured_model_dir(models_dir: str | None, name: str) -> Path | None:
    """A model's folder in the configured models folder (else ``$LLMPULSE_MODELS_DIR``),
    when it holds that model; None otherwise."""
    from llmpulse.schemas import environment as env

    root = models_dir or os.environ.get(env.MODELS_DIR)
    if not root:
        return None
    folder = ModelsFolder(root)
    return folder.model_dir(name) if folder.entry(name) is not None else None


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    """The sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Problem:
    """A file of the folder that is not as its manifest says."""

    model: str
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.model}/{self.path}: {self.reason}"


class ModelsFolder:
    """A models folder and its manifest (``llmpulse-models.json``).

    Args:
        root: the folder (created on the first write).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST_NAME

    def model_dir(self, name: str) -> Path:
        """The sub-folder of one model."""
        return self.root / name

    def _read(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.manifest_path.read_text("utf-8"))
        except FileNotFoundError:
            return {"format": 1, "models": {}}
        return data

    def _write(self, data: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.manifest_path.with_suffix(f".json.{os.getpid()}.tmp")  # one per writer
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", "utf-8")
        tmp.replace(self.manifest_path)

    def models(self) -> dict[str, dict[str, Any]]:
        """The manifest's entry of every model in the folder, by name."""
        return dict(self._read().get("models", {}))

    def entry(self, name: str) -> dict[str, Any] | None:
        """One model's manifest entry, or None when the folder does not have it."""
        return self.models().get(name)

    def record_model(self, name: str, info: dict[str, Any], files: dict[str, dict[str, Any]]) -> None:
        """Record a model's verified files (replacing its earlier entry, keeping exports
        whose source files did not change)."""
        data = self._read()
        old = data["models"].get(name, {})
        same = old.get("files") == files
        data["models"][name] = {**info, "files": files, "exports": old.get("exports", {}) if same else {},
                                "fetched_at": datetime.now(UTC).isoformat(timespec="seconds")}
        self._write(data)

    def record_export(self, name: str, path: str, info: dict[str, Any]) -> None:
        """Record a file made from a model's files (an ONNX export), with its hash."""
        data = self._read()
        file = self.model_dir(name) / path
        data["models"][name].setdefault("exports", {})[path] = {
            **info, "sha256": sha256_of(file), "size": file.stat().st_size}
        self._write(data)

    def forget_exports(self, name: str, prefix: str) -> None:
        """Drop the records of a model's exports under ``prefix`` (files made again elsewhere)."""
        data = self._read()
        exports = data["models"].get(name, {}).get("exports", {})
        for path in [p for p in exports if p.startswith(prefix)]:
            del exports[path]
        self._write(data)

    def file_ok(self, name: str, path: str, expected: dict[str, Any]) -> str | None:
        """Why a file differs from its record (missing, size, sha256), or None when intact."""
        file = self.model_dir(name) / path
        if not file.is_file():
            return "missing"
        if expected.get("size") is not None and file.stat().st_size != expected["size"]:
            return f"size {file.stat().st_size}, expected {expected['size']}"
        if expected.get("sha256") and sha256_of(file) != expected["sha256"]:
            return "sha256 differs from the manifest"
        return None

    def verify(self, names: list[str] | None = None) -> list[Problem]:
        """Re-hash every recorded file and export; the problems found (none: intact)."""
        problems = []
        for name, entry in self.models().items():
            if names and name not in names:
                continue
            records = {**entry.get("files", {}), **entry.get("exports", {})}
            for path, expected in sorted(records.items()):
                reason = self.file_ok(name, path, expected)
                if reason is not None:
                    problems.append(Problem(name, path, reason))
        return problems
