"""``llmpulse models``: fetch, list, verify, export and pin the model scorers' models.

Example:
    $ llmpulse models fetch detoxify-original minilm --dir /models
    $ llmpulse models list --dir /models
    $ llmpulse models verify --dir /models          # exit 1 when a file is not intact
    $ llmpulse models pin --dir /models --catalog processors/src/llmpulse/processors/models/data/catalog.json
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from llmpulse.processors.errors import INSTALL_ML, ModelUnavailableError
from llmpulse.processors.models.catalog import Catalog
from llmpulse.processors.models.fetch import FetchError, OfflineError, fetch_models
from llmpulse.processors.models.folder import ModelsFolder
from llmpulse.schemas import environment as env

__all__ = ["DEFAULT_MODELS", "default_models_dir", "models"]

DEFAULT_MODELS = ("detoxify-original", "minilm")
"""What ``models fetch`` gets when no name is given: what the default configuration uses."""

EXIT_OFFLINE = 3
EXIT_BAD = 1


def default_models_dir() -> str:
    """``$LLMPULSE_MODELS_DIR``, else ``~/.cache/llmpulse/models``."""
    return os.environ.get(env.MODELS_DIR) or str(Path.home() / ".cache" / "llmpulse" / "models")


def _dir_option(fn):  # type: ignore[no-untyped-def]
    return click.option("--dir", "root", default=default_models_dir, type=click.Path(file_okay=False),
                        show_default=f"${env.MODELS_DIR} or ~/.cache/llmpulse/models",
                        help="The models folder.")(fn)


def _catalog_option(fn):  # type: ignore[no-untyped-def]
    return click.option("--catalog", "catalog_path", default=None, type=click.Path(dir_okay=False),
                        help="A catalog file instead of the shipped one (a mirror, tests).")(fn)


class _Progress:
    """One line per tenth of a file on stderr (long downloads show they are moving)."""

    def __init__(self) -> None:
        self.shown: dict[str, int] = {}

    def __call__(self, label: str, done: int, total: int | None) -> None:
        step = done * 10 // total if total else done >> 26  # tenths, or every 64 MiB
        if self.shown.get(label) != step:
            self.shown[label] = step
            size = f"{done / 1e6:.1f}/{total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
            click.echo(f"  {label}: {size}", err=True)


@click.group("models")
def models() -> None:
    """The model scorers' models: fetch them once, then workers read them offline."""


@models.command("fetch")
@click.argument("names", nargs=-1)
@_dir_option
@_catalog_option
@click.option("--onnx/--no-onnx", "onnx", default=True, show_default=True,
              help="Export each model to ONNX after fetching it (needs torch: the ml extra).")
@click.option("--quantize/--no-quantize", default=True, show_default=True,
              help="Also write the int8 models: ONNX (dynamic) and OpenVINO (NNCF, where installed).")
def fetch(names: tuple[str, ...], root: str, catalog_path: str | None, onnx: bool, quantize: bool) -> None:
    """Download NAMES (default: detoxify-original minilm), verify them, write the folder's manifest."""
    catalog = Catalog.load(catalog_path)
    wanted = list(names) or [n for n in DEFAULT_MODELS if n in catalog]
    for name in wanted:
        catalog[name]  # an unknown name fails before any download
    click.echo(f"fetching {', '.join(wanted)} into {root}", err=True)
    try:
        report = fetch_models(wanted, root, catalog=catalog, progress=_Progress())
    except OfflineError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_OFFLINE)
    except FetchError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_BAD)
    click.echo(f"{len(report.downloaded)} downloaded, {len(report.copied)} copied from a package, "
               f"{len(report.kept)} already in place and intact", err=True)
    if report.unpinned:
        click.echo(f"{len(report.unpinned)} file(s) have no pinned sha256 in the catalog; their hash is now "
                   f"recorded in the folder's manifest: {', '.join(report.unpinned)}", err=True)
    if onnx:
        _export(ModelsFolder(root), wanted, quantize, prune=False)


def _export(folder: ModelsFolder, names: list[str], quantize: bool, *, prune: bool) -> None:
    for name in names:
        _export_onnx(folder, name, quantize)
        if quantize:
            _make_openvino(folder, name, prune=prune)


def _make_openvino(folder: ModelsFolder, name: str, *, prune: bool) -> None:
    """The OpenVINO int8 model of an exported toxicity or embedding model, where NNCF is here.
    With ``prune`` (``models export``, run once an upgrade is complete) its other int8 folders
    (older recipes, exports or calibrations) are removed; without (``models fetch``, which
    compose's one-shot ``models`` service runs at every start) only superseded recipes' are, as
    a worker does, so a version starting beside another on one volume keeps the other's."""
    from llmpulse.processors.models.export import MODEL_INFO

    model_dir = folder.model_dir(name)
    if (folder.entry(name) or {}).get("kind") == "sequence-classification" \
            or not (model_dir / MODEL_INFO).is_file():
        return  # the guardrails' classifier runs on ONNX Runtime; an unexported model has nothing to read
    try:
        import nncf  # noqa: F401
        import openvino  # noqa: F401
    except ImportError:
        click.echo(f"{name}: no OpenVINO int8 model (making it needs openvino and nncf: {INSTALL_ML}); "
                   f"the scorers run it on ONNX Runtime", err=True)
        return
    from llmpulse.processors.models.openvino_backend import (
        make_openvino_int8,
        openvino_int8_file,
        remove_other_int8,
    )

    target = openvino_int8_file(model_dir)
    if target.is_file():
        click.echo(f"{name}: OpenVINO int8 model already there ({target.parent.name})", err=True)
        _remove_other_int8(name, remove_other_int8(model_dir, target, superseded_only=not prune))
        return
    click.echo(f"{name}: making the OpenVINO int8 model (NNCF calibrates it once; a minute for BERT-base)",
               err=True)
    try:
        made = make_openvino_int8(model_dir)
    except Exception as exc:  # NNCF and OpenVINO raise many kinds; the ONNX exports stay usable
        click.echo(f"{name}: no OpenVINO int8 model ({type(exc).__name__}: {exc}); the scorers run it on "
                   f"ONNX Runtime", err=True)
        return
    click.echo(f"{name}: made {made.relative_to(model_dir)}", err=True)
    _remove_other_int8(name, remove_other_int8(model_dir, made, superseded_only=not prune))


def _remove_other_int8(name: str, removed: list[str]) -> None:
    if removed:
        click.echo(f"{name}: removed the other OpenVINO int8 models {', '.join(removed)}", err=True)


def _export_onnx(folder: ModelsFolder, name: str, quantize: bool) -> None:
    from llmpulse.processors.models.export import MODEL_INFO, ONNX_FP32, ONNX_INT8, stale_int8

    entry = folder.entry(name) or {}
    exports = entry.get("exports", {})
    if ONNX_FP32 in exports and MODEL_INFO in exports and quantize and ONNX_INT8 in exports \
            and stale_int8(folder, name):
        from llmpulse.processors.models.export import requantize

        click.echo(f"{name}: int8 export made with an older recipe; quantising again", err=True)
        click.echo(f"{name}: exported {requantize(folder, name)}", err=True)
        return
    if ONNX_FP32 in exports and (ONNX_INT8 in exports or not quantize):
        click.echo(f"{name}: ONNX export already there", err=True)
        return
    try:
        from llmpulse.processors.models.export import export_model

        written = export_model(folder, name, quantize=quantize)
    except ModelUnavailableError as exc:
        click.echo(f"{name}: no ONNX export ({exc}); the scorers run it on torch where torch is "
                   f"installed, or run llmpulse models export {name} on a machine with the ml extra",
                   err=True)
        return
    click.echo(f"{name}: exported {', '.join(written)}", err=True)


@models.command("export")
@click.argument("names", nargs=-1)
@_dir_option
@click.option("--quantize/--no-quantize", default=True, show_default=True)
def export(names: tuple[str, ...], root: str, quantize: bool) -> None:
    """Export fetched models to ONNX again, and make their OpenVINO int8 models where NNCF is
    installed (default: every model in the folder)."""
    folder = ModelsFolder(root)
    _export(folder, list(names) or list(folder.models()), quantize, prune=True)


@models.command("list")
@_dir_option
@_catalog_option
@click.option("--json", "as_json", is_flag=True, help="Print the folder's manifest as JSON.")
def list_(root: str, catalog_path: str | None, as_json: bool) -> None:
    """What the folder holds, and what else the catalog offers."""
    folder = ModelsFolder(root)
    held = folder.models()
    if as_json:
        click.echo(json.dumps(held, indent=1, sort_keys=True))
        return
    catalog = Catalog.load(catalog_path)
    click.echo(f"models folder {folder.root}")
    for name in [*catalog.names, *[n for n in held if n not in catalog]]:
        entry = held.get(name)
        if entry is None:
            click.echo(f"  {name:24} not fetched     ({catalog[name].description})")
            continue
        files = entry.get("files", {})
        unpinned = sum(1 for f in files.values() if not f.get("pinned"))
        onnx_files = [p.rsplit("/", 1)[-1] for p in entry.get("exports", {}) if p.endswith(".onnx")]
        exports = ", ".join(sorted(onnx_files))
        openvino = ", ".join(sorted({p.split("/")[1] for p in entry.get("exports", {})
                                     if p.startswith("openvino/")}))
        size = sum(f["size"] for f in files.values()) / 1e6
        click.echo(f"  {name:24} {entry['scorer']:10} {len(files)} files, {size:.1f} MB, "
                   f"{unpinned} unpinned; onnx: {exports or 'none'}; openvino: {openvino or 'none'}; "
                   f"fetched {entry.get('fetched_at')}")


@models.command("verify")
@click.argument("names", nargs=-1)
@_dir_option
def verify(names: tuple[str, ...], root: str) -> None:
    """Re-hash every file against the folder's manifest; exit 1 when one is not intact."""
    folder = ModelsFolder(root)
    held = folder.models()
    if not held:
        click.echo(f"error: no models in {folder.root}; run llmpulse models fetch --dir {root}", err=True)
        sys.exit(EXIT_BAD)
    problems = folder.verify(list(names) or None)
    for problem in problems:
        click.echo(f"NOT INTACT {problem}")
    checked = [n for n in held if not names or n in names]
    if problems:
        sys.exit(EXIT_BAD)
    click.echo(f"intact: {', '.join(checked)}")


@models.command("pin")
@_dir_option
@click.option("--catalog", "catalog_path", required=True, type=click.Path(dir_okay=False, exists=True),
              help="The catalog file to update (the project's models/data/catalog.json).")
def pin(root: str, catalog_path: str) -> None:
    """Fill the catalog's unpinned sha256 and sizes from a verified, freshly fetched folder
    (a maintainer's step; review the diff before committing it)."""
    folder = ModelsFolder(root)
    problems = folder.verify()
    if problems:
        raise click.ClickException("the folder is not intact: " + "; ".join(map(str, problems)))
    data = json.loads(Path(catalog_path).read_text("utf-8"))
    held = folder.models()
    count = 0
    for name, spec in data["models"].items():
        recorded = held.get(name, {}).get("files", {})
        for file in spec["files"]:
            got = recorded.get(file["path"])
            if file.get("sha256") is None and got is not None:
                file["sha256"], file["size"] = got["sha256"], got["size"]
                file["hash_source"] = f"pinned from a fetch of {got['source']}"
                count += 1
    Path(catalog_path).write_text(json.dumps(data, indent=1) + "\n", "utf-8")
    click.echo(f"pinned {count} file(s) in {catalog_path}")
