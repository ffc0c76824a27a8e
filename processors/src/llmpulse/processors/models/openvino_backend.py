"""Run an exported model on OpenVINO: fp32 or bf16 from the ONNX export, or a static int8
model made from it once by NNCF and cached beside it.

OpenVINO (``llmpulse-processors[openvino]``: its runtime and ``tokenizers``, no torch, no
NNCF) reads the fused fp32 export ``onnx/model.onnx`` as it is. Its int8 model is NNCF's
static quantisation of that export (``model_type=TRANSFORMER``), activations calibrated on
the texts shipped in ``data/calibration.jsonl``, with a recipe per kind of model
(``OPENVINO_RECIPES``): every MatMul for a classifier (Detoxify), only each layer's FFN
input MatMul for sentence embeddings (quantising all of MiniLM took cosines to fp32 down
to 0.89 on short messages). It is made where NNCF is installed (the ``ml`` extra):
``llmpulse models fetch/export``, or a worker's first load; a worker without NNCF and
without the model says which command makes it, and ``auto`` runs ONNX Runtime instead.

The int8 model lives in ``openvino/<recipe>-<key>/model.xml`` (+ ``model.bin``), where the
key hashes the recipe, the fp32 export's sha256, the calibration texts and the shapes
calibration runs (``WIDTH_STEP``, ``ROW_STEP``, its batch size): a change of any is a new
folder, made again. A worker making one removes only the folders of recipes it knows to be
superseded (two versions sharing a volume during a rolling upgrade keep each other's);
``llmpulse models export`` removes the others: run it once an upgrade is complete. Made
files are recorded in the models folder's manifest (``llmpulse models verify``).

``bf16`` runs the fp32 export with OpenVINO's ``INFERENCE_PRECISION_HINT=bf16`` where the CPU
computes in bf16 (``bf16_supported``: ``BF16`` in the device's ``OPTIMIZATION_CAPABILITIES``,
AVX512-BF16 or AMX); elsewhere it runs fp32 and says so (``precision`` records what runs).
bf16 is fast only on AMX's tiles (``bf16_fast``: the ``amx_bf16`` flag and Linux's permission
to use the tiles): with AVX512-BF16 alone OpenVINO still offers bf16, and makes it its default,
but MiniLM ran slower in bf16 than in fp32 there. So the rest of an int8 model (all but its
int8 matrix products, on VNNI or AMX int8) runs in bf16 on an AMX CPU and in fp32 on another,
and where the CPU's flags cannot be read (MiniLM int8 1.6x faster than with the rest in bf16
on an AVX512-BF16 CPU; docs/FIGURES.md, models13); fp32 stays fp32.
``device``: ``cpu``, or ``gpu`` / ``gpu.N`` (an Intel GPU, OpenVINO's ``GPU`` plugin); CUDA is
not an OpenVINO device.

Example:
    >>> from llmpulse.processors.models.openvino_backend import openvino_device, openvino_recipe_of
    >>> openvino_device("gpu:1"), openvino_recipe_of("multi-label")
    ('GPU.1', 'ov-int8-v3')
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from collections.abc import Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from llmpulse.processors._locks import exclusive
from llmpulse.processors.errors import INSTALL_ML, ModelUnavailableError
from llmpulse.processors.models.export import MODEL_INFO, ONNX_FP32
from llmpulse.processors.models.folder import ModelsFolder, sha256_of
from llmpulse.processors.models.runtime import TokenizedModel, amx_tiles

__all__ = ["INSTALL_OPENVINO", "OPENVINO_DIR", "OPENVINO_RECIPES", "ROW_STEP", "WIDTH_STEP",
           "OpenVinoTextModel", "bf16_fast", "bf16_supported", "calibration_feeds", "calibration_texts",
           "compile_openvino", "ffn_inputs", "make_openvino_int8", "openvino_device",
           "openvino_int8_file", "openvino_recipe_of", "quantize_openvino", "remove_other_int8",
           "rest_precision"]

logger = logging.getLogger(__name__)

INSTALL_OPENVINO = "pip install 'llmpulse-processors[openvino]'"
OPENVINO_DIR = "openvino"
"""The model folder's sub-folder of OpenVINO int8 models (one per cache key)."""
OPENVINO_RECIPES = {"sentence-embedding": "ov-int8-v3-ffn-in", "default": "ov-int8-v3"}
"""How each kind of model is quantised for OpenVINO; part of the int8 model's cache key. v3:
calibrated on each run's exact shape, as v1 was; v2 calibrated on the runtime's rounded shapes
(padding rows and tokens included) and kept MiniLM's cosines no closer to fp32 than v1 (0.9969
against 0.9974 held out, 0.9935 against 0.9939 on short messages; docs/FIGURES.md, models14)."""
SUPERSEDED_RECIPES = frozenset({"ov-int8-v1", "ov-int8-v1-ffn-in", "ov-int8-v2", "ov-int8-v2-ffn-in"})
"""Recipes this code knows to be replaced: making an int8 model removes their folders, and
only theirs. A folder of a recipe it does not know (a newer version's, sharing the volume
during a rolling upgrade) or of its own recipe under another key is left alone, so two
versions never delete each other's model; ``llmpulse models export`` removes every other
folder (run it once an upgrade is complete)."""
CALIBRATION_BATCH_SIZE = 32
"""The batch size calibration buckets its texts with (the scorers' default; part of the key).
A scorer with another batch size runs the same widths, its texts grouped otherwise."""
CALIBRATION_EXACT_SHAPES = True
"""The recipe's calibration runs: each padded to its longest text only (``calibration_feeds``)."""
WIDTH_STEP = 8
"""OpenVINO runs an input shape it has not run before at about half speed, and keeps what it
prepared for each shape (7-9 MB a shape for BERT-base int8; a few hundred shapes, least
recently used first out), so its runs' widths are rounded up (``padded_width``: multiples of
8 tokens up to 64, 16 up to 128...; 20 widths up to 512)..."""
ROW_STEP = 8
"""... and their rows padded to 1, 2, 4, 8, then multiples of 8 (``padded_rows``): at most 140
shapes at batch 32, so a stream of new texts runs mostly seen shapes and memory stays bounded."""


def openvino_recipe_of(task: str) -> str:
    """The OpenVINO int8 recipe of a model of this task (``model.json``'s ``task``)."""
    return OPENVINO_RECIPES.get(task, OPENVINO_RECIPES["default"])


def calibration_texts() -> list[str]:
    """The shipped calibration texts (``data/calibration.jsonl``, ``#`` lines are comments)."""
    text = resources.files("llmpulse.processors.models").joinpath("data/calibration.jsonl").read_text("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip() and not line.startswith("#")]


@cache
def _calibration_digest() -> str:
    return hashlib.sha256("\n".join(calibration_texts()).encode("utf-8")).hexdigest()


def _fp32_sha256(model_dir: Path) -> str:
    """The fp32 export's sha256 as its models folder records it (hashed here when it does not)."""
    entry = ModelsFolder(model_dir.parent).entry(model_dir.name) or {}
    record = (entry.get("exports") or {}).get(ONNX_FP32)
    return str(record["sha256"]) if record and record.get("sha256") else sha256_of(model_dir / ONNX_FP32)


def openvino_int8_file(model_dir: str | Path, batch_size: int = CALIBRATION_BATCH_SIZE) -> Path:
    """Where the model's OpenVINO int8 model is (or goes) under the current recipe, export,
    calibration set and the shapes calibration runs (``WIDTH_STEP``, ``ROW_STEP``, the batch size)."""
    model_dir = Path(model_dir)
    task = json.loads((model_dir / MODEL_INFO).read_text("utf-8")).get("task", "")
    recipe = openvino_recipe_of(task)
    shapes = f"exact={CALIBRATION_EXACT_SHAPES} width={WIDTH_STEP} rows={ROW_STEP} batch={batch_size}"
    key = hashlib.sha256("\n".join([recipe, _fp32_sha256(model_dir), _calibration_digest(), shapes]).encode())
    return model_dir / OPENVINO_DIR / f"{recipe}-{key.hexdigest()[:12]}" / "model.xml"


def openvino_device(device: str) -> str:
    """OpenVINO's name of a configured device: ``cpu`` -> ``CPU``, ``gpu:1`` -> ``GPU.1``."""
    name, _, index = device.replace(".", ":").partition(":")
    return name.upper() + (f".{index}" if index else "")


def ffn_inputs(model: Any) -> list[str]:
    """The friendly names of an OpenVINO model's MatMuls with the widest constant weight: each
    layer's FFN input (hidden -> 4 x hidden)."""
    widths = {}
    for op in model.get_ops():
        if op.get_type_name() == "MatMul":
            last = op.input_value(1).get_partial_shape()[-1]
            if last.is_static:
                widths[op.get_friendly_name()] = last.get_length()
    return [name for name, width in widths.items() if width == max(widths.values())]


def calibration_feeds(model_dir: str | Path, texts: Sequence[str], *,
                      exact_shapes: bool = CALIBRATION_EXACT_SHAPES, padding_rows: bool = False,
                      batch_size: int = CALIBRATION_BATCH_SIZE) -> list[Any]:
    """``texts`` tokenised and cut into length buckets of ``batch_size`` as the backend does: the
    model inputs of each run. ``exact_shapes`` (the recipe's): each run padded to its longest
    text only, every text once; else its width rounded by ``WIDTH_STEP`` as the backend runs it,
    and with ``padding_rows`` its rows padded by ``ROW_STEP`` with copies of its first text (as
    recipe v2 calibrated; without, each run's own rows only)."""
    encoder = TokenizedModel(model_dir, batch_size=batch_size)
    if not exact_shapes:
        encoder.width_step, encoder.row_step = WIDTH_STEP, ROW_STEP
    return [feed if padding_rows else {name: value[:len(bucket)] for name, value in feed.items()}
            for bucket, feed in encoder.feeds(texts)]


def quantize_openvino(model_dir: str | Path, *, ffn_input_only: bool = False,
                      texts: Sequence[str] | None = None, exact_shapes: bool = CALIBRATION_EXACT_SHAPES,
                      padding_rows: bool = False, batch_size: int = CALIBRATION_BATCH_SIZE) -> Any:
    """NNCF's static int8 of the model's fp32 export (``model_type=TRANSFORMER``), its
    activations calibrated on ``texts`` (default: the shipped ones) tokenised, bucketed and
    shaped by ``calibration_feeds`` (its options; default the recipe's); with
    ``ffn_input_only`` only each layer's FFN input MatMul. Returns the ``openvino.Model`` (not
    saved)."""
    import nncf
    import openvino

    model_dir = Path(model_dir)
    feeds = calibration_feeds(model_dir, calibration_texts() if texts is None else texts,
                              exact_shapes=exact_shapes, padding_rows=padding_rows, batch_size=batch_size)
    model = openvino.Core().read_model(str(model_dir / ONNX_FP32))
    ignored = nncf.IgnoredScope()
    if ffn_input_only:
        keep = set(ffn_inputs(model))
        ignored = nncf.IgnoredScope(validate=False, names=[
            op.get_friendly_name() for op in model.get_ops()
            if op.get_type_name() == "MatMul" and op.get_friendly_name() not in keep])
    return nncf.quantize(model, nncf.Dataset(feeds), model_type=nncf.ModelType.TRANSFORMER,
                         subset_size=len(feeds), ignored_scope=ignored)


def make_openvino_int8(model_dir: str | Path, batch_size: int = CALIBRATION_BATCH_SIZE) -> Path:
    """Quantise the model's fp32 export to OpenVINO int8 with NNCF (its kind's recipe, the
    shipped calibration texts), save it under its cache key, record it in the models folder's
    manifest and remove the folders of superseded recipes (``SUPERSEDED_RECIPES``); returns the
    model's ``model.xml``. ``batch_size``: calibration's (``CALIBRATION_BATCH_SIZE``).

    Processes that start together make it once (a lock in the folder); the others wait and
    read it.

    Raises:
        ModelUnavailableError: NNCF or OpenVINO is missing, there is no fp32 export, or the
            making failed (a read-only folder, NNCF's error), named in the message.
    """
    model_dir = Path(model_dir)
    if not (model_dir / ONNX_FP32).is_file():
        raise ModelUnavailableError(str(model_dir / ONNX_FP32), "no ONNX export; run llmpulse models export")
    target = openvino_int8_file(model_dir, batch_size)
    root = target.parent.parent
    try:
        import nncf
        import openvino
    except ImportError:
        raise ModelUnavailableError(f"OpenVINO int8 model {target.parent.name}",
                                    f"not made yet and NNCF is not installed here; run llmpulse models "
                                    f"export {model_dir.name} --dir {model_dir.parent} where it is "
                                    f"({INSTALL_ML})") from None
    try:
        root.mkdir(parents=True, exist_ok=True)
        with exclusive(root / ".making-lock"):  # workers that start together make it once
            if not target.is_file():  # (made by another process while this one waited)
                _make(model_dir, target, nncf, openvino, batch_size)
    except Exception as exc:  # a read-only folder, NNCF failing: the next backend, not a crash
        raise ModelUnavailableError(
            f"OpenVINO int8 model {target.parent.name}",
            f"could not be made here ({type(exc).__name__}: {exc}); run llmpulse models export "
            f"{model_dir.name} --dir {model_dir.parent} where the folder is writable") from exc
    return target


def remove_other_int8(model_dir: str | Path, keep: Path, *, superseded_only: bool) -> list[str]:
    """Remove the model's OpenVINO int8 folders other than ``keep``'s (``model.xml``) and forget
    their files in the models folder's manifest: with ``superseded_only`` only those of
    ``SUPERSEDED_RECIPES`` (a worker making its model), else all (``llmpulse models export``, run
    once an upgrade is complete). Returns the folders' names."""
    model_dir = Path(model_dir)
    root = model_dir / OPENVINO_DIR
    gone = [other for other in (root.iterdir() if root.is_dir() else [])
            if other.is_dir() and other != keep.parent and not other.name.startswith(".making-")
            and (not superseded_only or other.name.rsplit("-", 1)[0] in SUPERSEDED_RECIPES)]
    folder = ModelsFolder(model_dir.parent)
    for other in gone:
        shutil.rmtree(other, ignore_errors=True)
        if folder.entry(model_dir.name) is not None:
            folder.forget_exports(model_dir.name, f"{OPENVINO_DIR}/{other.name}/")
    return [other.name for other in gone]


def _make(model_dir: Path, target: Path, nncf: Any, openvino: Any, batch_size: int) -> None:
    """Quantise, save under ``target``'s key, drop superseded recipes, record in the manifest."""
    root = target.parent.parent
    recipe = target.parent.name.rsplit("-", 1)[0]
    embedding = json.loads((model_dir / MODEL_INFO).read_text("utf-8")).get("task") == "sentence-embedding"
    logger.info("%s: making the OpenVINO int8 model (recipe %s, once; NNCF calibrates on %d texts, "
                "a minute for a BERT-base model)", model_dir.name, recipe, len(calibration_texts()))
    quantized = quantize_openvino(model_dir, ffn_input_only=embedding, batch_size=batch_size)
    staging = Path(tempfile.mkdtemp(prefix=".making-", dir=root))
    try:
        openvino.save_model(quantized, str(staging / "model.xml"), compress_to_fp16=False)
        if target.parent.exists():  # a half-made one, left by a process that died
            shutil.rmtree(target.parent)
        staging.rename(target.parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    remove_other_int8(model_dir, target, superseded_only=True)
    folder = ModelsFolder(model_dir.parent)
    if folder.entry(model_dir.name) is not None:
        xml = str(target.relative_to(model_dir))
        folder.record_export(model_dir.name, xml, {
            "precision": "int8", "recipe": recipe, "runtime": "openvino",
            "from": f"nncf {nncf.__version__} static int8 (TRANSFORMER) of {ONNX_FP32}, calibrated on "
                    f"{len(calibration_texts())} shipped texts"
                    + (", only the FFN input MatMuls" if embedding else "")})
        folder.record_export(model_dir.name, xml.removesuffix(".xml") + ".bin", {})


@cache
def bf16_supported(device: str = "CPU") -> bool:
    """Whether OpenVINO computes in bf16 on this device (``BF16`` among its
    ``OPTIMIZATION_CAPABILITIES``: a CPU with AVX512-BF16 or AMX); false when it cannot say
    (OpenVINO not installed, no such device)."""
    try:
        import openvino

        return "BF16" in openvino.Core().get_property(device, "OPTIMIZATION_CAPABILITIES")
    except Exception:  # not installed, an unknown device (OpenVINO raises its own error types)
        return False


CPUINFO = Path("/proc/cpuinfo")


def _cpu_has(cpuinfo: str, flag: str) -> bool:
    """Whether ``/proc/cpuinfo``'s text lists ``flag`` on its x86 ``flags`` line (an ARM CPU's
    line is ``Features``: never)."""
    line = next((line for line in cpuinfo.splitlines() if line.startswith("flags")), "")
    return flag in line.partition(":")[2].split()


@cache
def bf16_fast(device: str = "CPU") -> bool:
    """Whether bf16 is this device's fast precision: OpenVINO computes in bf16 there
    (``bf16_supported``) and, for a CPU, it has AMX's bf16 tiles (``amx_bf16`` in
    ``/proc/cpuinfo``) and Linux lets this process use them (``amx_tiles(request=True)``; a
    kernel or seccomp may refuse, and OpenVINO then runs bf16 on AVX512). A CPU with AVX512-BF16
    alone ran MiniLM and BERT-base slower in bf16 than in fp32. False where the flags cannot be
    read (no ``/proc/cpuinfo``: Windows, macOS; a restricted ``/proc``) and on ARM (no
    ``amx_bf16``): an int8 model's float part runs f32 there."""
    if not bf16_supported(device):
        return False
    if not device.startswith("CPU"):
        return True
    try:
        cpuinfo = CPUINFO.read_text()
    except OSError:
        return False
    return _cpu_has(cpuinfo, "amx_bf16") and amx_tiles(request=True) is True


def rest_precision(device: str) -> str | None:
    """The inference precision of an int8 model's float part on ``device``: ``bf16`` where it is
    fast (``bf16_fast``), ``f32`` on another CPU, None (the device's default) on a GPU."""
    if not device.startswith("CPU"):
        return None
    return "bf16" if bf16_fast(device) else "f32"


class _Session:
    """An OpenVINO compiled model behind ONNX Runtime's ``run(None, feed)``."""

    def __init__(self, compiled: Any) -> None:
        self.compiled = compiled
        self.request = compiled.create_infer_request()
        self.names = [i.get_any_name() for i in compiled.inputs]

    def run(self, _outputs: Any, feed: dict[str, Any]) -> list[Any]:
        return [self.request.infer({name: feed[name] for name in self.names})[0].copy()]


def compile_openvino(model: str | Path | Any, device: str = "CPU", threads: int | None = None,
                     precision_hint: str | None = None) -> _Session:
    """A model file (ONNX or OpenVINO IR) or an ``openvino.Model`` compiled for one request at a
    time (``PERFORMANCE_HINT=LATENCY``), as a session with ``run(None, feed)``.

    Args:
        device: OpenVINO's device name (``CPU``, ``GPU``, ``GPU.1``).
        threads: CPU inference threads (None: OpenVINO's default).
        precision_hint: ``f32``, ``bf16``... (None: the device's default; bf16 on an AMX CPU).
    """
    import openvino

    core = openvino.Core()
    config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
    if threads and device.startswith("CPU"):
        config["INFERENCE_NUM_THREADS"] = threads
    if precision_hint:
        config["INFERENCE_PRECISION_HINT"] = precision_hint
    loaded = core.read_model(str(model)) if isinstance(model, str | Path) else model
    return _Session(core.compile_model(loaded, device, config))


class OpenVinoTextModel(TokenizedModel):
    """An exported model on OpenVINO: ``fp32`` (the ONNX export, computed in fp32), ``bf16`` (the
    same export computed in bf16 where the device can, else fp32) or ``int8`` (the NNCF model of
    its recipe, made here once when NNCF is installed). ``precision`` is what runs.

    Args:
        model_dir: the model's folder in a models folder (``/models/detoxify-original``).
        precision: ``int8``, ``bf16`` or ``fp32``.
        device: ``cpu`` or ``gpu`` / ``gpu.N`` (an Intel GPU); a missing device runs on the CPU.
        threads: CPU inference threads (None: OpenVINO's default, every core).
        batch_size: texts per run.
        width_step: each run's tokens rounded up as ``padded_width`` says with this step
            (``WIDTH_STEP``; 1: the longest text's, as ONNX Runtime runs).
        row_step: each run's rows padded as ``padded_rows`` says (``ROW_STEP``; 1: its texts).

    Raises:
        ModelUnavailableError: openvino or the export is missing, the device is CUDA, or the
            int8 model is not made and NNCF is not here to make it.
    """

    def __init__(self, model_dir: str | Path, *, precision: str = "int8", device: str = "cpu",
                 threads: int | None = None, batch_size: int = 32, width_step: int = WIDTH_STEP,
                 row_step: int = ROW_STEP) -> None:
        model_dir = Path(model_dir)
        if device.startswith("cuda"):
            raise ModelUnavailableError("OpenVINO", f"device {device}: OpenVINO runs on the CPU or an Intel "
                                        "GPU (device: gpu), not CUDA; use backend onnx for CUDA")
        super().__init__(model_dir, precision=precision, batch_size=batch_size)
        self.width_step, self.row_step = width_step, row_step
        try:
            import openvino
        except ImportError:
            raise ModelUnavailableError("openvino", f"not installed: {INSTALL_OPENVINO}") from None
        if precision == "int8":
            try:  # (its key reads the fp32 export's hash, from the manifest or the file)
                file = openvino_int8_file(model_dir)
            except OSError as exc:
                raise ModelUnavailableError(str(model_dir / ONNX_FP32), f"no ONNX export ({exc}); run "
                                            "llmpulse models export") from None
            if not file.is_file():
                file = make_openvino_int8(model_dir)
        else:
            file = model_dir / ONNX_FP32
            if not file.is_file():
                raise ModelUnavailableError(str(file), "no ONNX export; run llmpulse models export")
        target = openvino_device(device)
        available = openvino.Core().available_devices
        if not any(d == target or d.startswith(target + ".") for d in available):
            logger.warning("%s: OpenVINO device %s asked, but this machine has %s; running on the CPU",
                           model_dir.name, target, ", ".join(available))
            target = "CPU"
        if precision == "bf16" and not bf16_supported(target):
            logger.info("%s: OpenVINO %s has no bf16 arithmetic; running fp32", model_dir.name, target)
            self.precision = precision = "fp32"
        try:
            hint = {"fp32": "f32", "bf16": "bf16"}.get(precision) or rest_precision(target)
            self.session = compile_openvino(file, target, threads, hint)
            rest = self.session.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        except Exception as exc:  # OpenVINO raises its own error types
            raise ModelUnavailableError(str(file), f"{type(exc).__name__}: {exc}") from None
        self.input_names = self.session.names
        self.provider = f"OpenVINO {target} ({'int8, the rest ' if precision == 'int8' else ''}{rest})"
        self.file = file
