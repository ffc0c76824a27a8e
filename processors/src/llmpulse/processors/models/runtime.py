"""Run a fetched model: on ONNX Runtime (no torch), or on torch, in length-bucketed batches.

Texts are tokenised once, truncated at the model's maximum tokens, sorted by length and
cut into batches of similar lengths, each padded only to its own longest text, so one long
answer does not slow a whole batch; results come back in the original order. The same
bucketing serves both backends.

- ``OnnxTextModel``: ``tokenizers`` + ``onnxruntime`` over ``onnx/model.onnx`` (fp32) or
  ``onnx/model.int8.onnx``; ``device="cuda"`` asks for ONNX Runtime's CUDA provider
  (``onnxruntime-gpu``), and says so in the log when only the CPU one is there.
- ``TorchTextModel``: the same outputs from the torch model (a Detoxify checkpoint in a
  models folder), for machines without an ONNX export.

On a CPU with AMX (Intel Xeon 4th generation and later) ONNX Runtime asks Linux for the AMX
tile state itself when it loads (MLAS's ``MlasInitAMX``:
``arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)``) and then runs the int8 export's
matrix products (uint8 activations by int8 weights, the only pairing dynamic quantisation
makes) on AMX tiles; nothing needs asking from Python. ``amx_tiles()`` says whether this
process holds that permission; an int8 model says so in the log when it loads. An int8
export that its models folder records with an older quantisation recipe (``stale_int8``)
still loads and scores, with one warning naming the recipes and the
``llmpulse models export`` command that quantises it again.

A model's outputs are ``multi-label`` probabilities (sigmoid of the logits, Detoxify's
classes), ``single-label`` probabilities (softmax of the logits, a sequence classifier's
``id2label`` classes, such as a prompt-injection classifier) or ``sentence-embedding``
vectors (mean of the token states, unit length).

Example:
    >>> from llmpulse.processors.models.runtime import length_buckets
    >>> length_buckets([5, 1, 9, 2, 7], 2)
    [[1, 3], [0, 4], [2]]
    >>> length_buckets([12, 10, 11, 60, 58, 13], 32)  # two runs cost less than padding to 60
    [[1, 2, 0, 5], [4, 3]]
"""

from __future__ import annotations

import ctypes
import json
import logging
import platform
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from llmpulse.processors.errors import INSTALL_ML, ModelUnavailableError
from llmpulse.processors.models.export import MODEL_INFO, ONNX_FP32, ONNX_INT8, int8_recipes
from llmpulse.processors.models.folder import ModelsFolder

__all__ = ["RUN_COST_TOKENS", "OnnxTextModel", "TokenizedModel", "TorchTextModel", "amx_tiles",
           "length_buckets", "padded_rows", "padded_width", "top_label"]

logger = logging.getLogger(__name__)

INSTALL_ONNX = "pip install 'llmpulse-processors[onnx]'"


RUN_COST_TOKENS = 16
"""What one model run costs beyond its tokens, counted in padded tokens (a run's fixed
overhead and the lower efficiency of small matrix products): what ``length_buckets``
weighs a new batch against the padding it saves."""


_SYS_ARCH_PRCTL = 158  # x86-64
_ARCH_GET_XCOMP_PERM = 0x1022
_ARCH_REQ_XCOMP_PERM = 0x1023
_XFEATURE_XTILEDATA = 18


def amx_tiles(request: bool = False) -> bool | None:
    """Whether this process may use AMX tiles (Linux on x86-64): true once ONNX Runtime has
    loaded on a CPU with AMX (it asks for them), false on a CPU without AMX or where the
    request was refused; None where it cannot be asked (another system or architecture).
    ``request``: ask Linux for them first (``ARCH_REQ_XCOMP_PERM``, as ONNX Runtime and
    OpenVINO do before using them), so the answer is whether they are usable here."""
    if sys.platform != "linux" or platform.machine().lower() not in {"x86_64", "amd64"}:
        return None
    try:  # an unusual libc or sandbox: no answer rather than a scorer that fails to load
        libc = ctypes.CDLL(None)
        if request:  # refused (no AMX, a kernel or seccomp saying no): the permission read below is 0
            libc.syscall(_SYS_ARCH_PRCTL, _ARCH_REQ_XCOMP_PERM, ctypes.c_ulong(_XFEATURE_XTILEDATA))
        mask = ctypes.c_ulong(0)
        if libc.syscall(_SYS_ARCH_PRCTL, _ARCH_GET_XCOMP_PERM, ctypes.byref(mask)) != 0:
            return None
    except (OSError, AttributeError):
        return None
    return bool(mask.value >> _XFEATURE_XTILEDATA & 1)


def length_buckets(lengths: Sequence[int], size: int, run_cost: int = RUN_COST_TOKENS,
                   row_step: int = 1) -> list[list[int]]:
    """Indices grouped into batches of at most ``size``, shortest texts first, cut where
    padding would cost more than another run: of all the ways to cut the sorted texts into
    consecutive batches, the one with the fewest padded tokens plus ``run_cost`` a batch
    (each batch is padded to its longest text, and to ``padded_rows(rows, row_step, size)``
    rows)."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    n = len(order)
    rows = [padded_rows(k, row_step, size) for k in range(size + 1)]
    best = [0] + [0] * n  # best[j]: the cost of the first j texts
    cut = [0] * (n + 1)  # where the last batch of the first j texts starts
    for j in range(1, n + 1):
        longest = lengths[order[j - 1]]
        cost, later = min((best[i] + run_cost + rows[j - i] * longest, -i)
                          for i in range(max(0, j - size), j))
        best[j], cut[j] = cost, -later  # on a tie, the earlier batches full
    buckets: list[list[int]] = []
    j = n
    while j:
        buckets.append(order[cut[j]:j])
        j = cut[j]
    return buckets[::-1]


def padded_rows(rows: int, step: int, size: int) -> int:
    """The rows a run of ``rows`` texts is padded to when its runtime prepares each new input
    shape: the next power of two up to ``step``, then a multiple of ``step``, at most
    ``size`` (the batch size) and never fewer than ``rows``."""
    if step <= 1 or rows <= 1:
        return rows
    padded = 1 << (rows - 1).bit_length() if rows <= step else -(-rows // step) * step
    return max(rows, min(padded, size))


def padded_width(tokens: int, step: int, cap: int) -> int:
    """The width (tokens) a run whose longest text has ``tokens`` is padded to when its
    runtime prepares each new input shape (OpenVINO): eight widths a doubling, at least
    ``step`` apart (``step`` 8: multiples of 8 up to 64, of 16 up to 128, of 32 up to 256...),
    at most ``cap`` (the model's maximum tokens); ``step`` 1: ``tokens`` as it is. So a stream
    of new texts brings few shapes (20 widths up to 512), and the rounding adds fewer than
    ``step`` tokens up to ``8 * step``, under a quarter above."""
    if step <= 1:
        return tokens
    grain = max(step, (1 << (tokens - 1).bit_length()) // 8)
    return min(-(-tokens // grain) * grain, cap)


def top_label(classes: Sequence[str], probabilities: Any) -> tuple[float, str | None]:
    """``(toxicity, label)``: the ``toxicity`` class (else the highest), and the most likely
    class when it reaches 0.5."""
    values = [float(p) for p in probabilities]
    best = max(range(len(values)), key=values.__getitem__)
    value = values[classes.index("toxicity")] if "toxicity" in classes else values[best]
    return value, classes[best] if values[best] >= 0.5 else None


def _finish(task: str, output: Any, mask: Any) -> Any:
    """Probabilities or unit embeddings from a batch's raw output (numpy)."""
    import numpy as np

    if task == "multi-label":
        return 1.0 / (1.0 + np.exp(-output))
    if task == "single-label":
        shifted = np.exp(output - output.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)
    weights = mask[..., None].astype(output.dtype)
    pooled = (output * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
    return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)


def _gather(n: int, parts: Iterable[tuple[list[int], Any]]) -> Any:
    """One array of ``n`` rows from each bucket's indices and rows."""
    import numpy as np

    out: Any = None
    for bucket, rows in parts:
        if out is None:
            out = np.zeros((n, *rows.shape[1:]), dtype=np.float32)
        out[bucket] = rows
    return out


def _warn_if_stale_int8(model_dir: Path) -> None:
    """Log a warning when a models folder's int8 export of this model was made with an
    older recipe than its kind's current one: it still runs, as it was, until
    ``llmpulse models export`` quantises it again. A folder without a manifest entry for
    the model (not made by ``llmpulse models fetch``) says nothing either way."""
    folder = ModelsFolder(model_dir.parent)
    name = model_dir.name
    if folder.entry(name) is None:
        return
    recorded, current = int8_recipes(folder, name)
    if recorded != current:
        logger.warning("%s: int8 export made with recipe %s, the current one is %r; scoring with it "
                       "as it is: run llmpulse models export %s --dir %s to quantise it again",
                       name, repr(recorded) if recorded else "(none recorded)", current, name, folder.root)


class TokenizedModel:
    """What every exported model shares, whatever runs it: ``onnx/model.json`` (task,
    classes, maximum tokens, inputs), the tokenizer (truncating at the maximum tokens), the
    length buckets' feeds and the outputs' finish. A backend sets ``session``: anything with
    ONNX Runtime's ``run(None, feed)``.

    Args:
        model_dir: the model's folder in a models folder (``/models/minilm``).
        precision: the backend's precision, recorded (``fp32``, ``int8``).
        batch_size: texts per run.

    Raises:
        ModelUnavailableError: no ``onnx/model.json`` (not exported), or tokenizers missing.
    """

    session: Any
    provider: str = "none"
    width_step: int = 1
    """Each run's width (tokens) is its longest text's, rounded up as ``padded_width`` says
    with this step; 1 for a runtime that pays nothing for a new shape (ONNX Runtime)."""
    row_step: int = 1
    """Each run's rows are padded as ``padded_rows`` says (copies of its first text, whose
    outputs are dropped); 1: its texts only."""

    def __init__(self, model_dir: str | Path, *, precision: str = "fp32", batch_size: int = 32) -> None:
        self.model_dir = Path(model_dir)
        if not (self.model_dir / MODEL_INFO).is_file():
            raise ModelUnavailableError(str(self.model_dir / MODEL_INFO),
                                        "no ONNX export; run llmpulse models fetch (with torch) "
                                        "or llmpulse models export")
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise ModelUnavailableError("tokenizers", f"not installed: {INSTALL_ONNX}") from None
        self.info: dict[str, Any] = json.loads((self.model_dir / MODEL_INFO).read_text("utf-8"))
        self.task: str = self.info["task"]
        self.classes: list[str] = list(self.info.get("classes", []))
        self.input_names: list[str] = list(self.info.get("inputs", ["input_ids", "attention_mask"]))
        self.precision = precision
        self.batch_size = batch_size
        self.tokenizer = Tokenizer.from_file(str(self.model_dir / self.info["tokenizer"]))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(int(self.info["max_tokens"]))
        self.pad_id = int(self.info.get("pad_token_id", 0))

    def feeds(self, texts: Sequence[str]) -> Iterator[tuple[list[int], dict[str, Any]]]:
        """Each length bucket's indices and its model inputs: padded to its longest text (its
        width rounded up by ``padded_width`` and its rows by ``padded_rows`` where the
        runtime wants few shapes); the attention mask marks the padding."""
        import numpy as np

        encodings = self.tokenizer.encode_batch(list(texts))
        cap = int(self.info["max_tokens"])
        widths = [padded_width(len(e.ids), self.width_step, cap) for e in encodings]
        for bucket in length_buckets(widths, self.batch_size, row_step=self.row_step):
            width = max(widths[i] for i in bucket)
            rows = padded_rows(len(bucket), self.row_step, self.batch_size)
            ids = np.full((rows, width), self.pad_id, dtype=np.int64)
            mask = np.zeros((rows, width), dtype=np.int64)
            types = np.zeros((rows, width), dtype=np.int64)
            for row, i in enumerate(bucket):
                enc = encodings[i]
                ids[row, :len(enc.ids)] = enc.ids
                mask[row, :len(enc.ids)] = 1
                types[row, :len(enc.ids)] = enc.type_ids
            ids[len(bucket):], mask[len(bucket):], types[len(bucket):] = ids[0], mask[0], types[0]
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            yield bucket, {name: feed[name] for name in self.input_names}

    def run(self, texts: Sequence[str]) -> Any:
        """Probabilities (``n x classes``) or unit embeddings (``n x dim``), one row a text."""
        return _gather(len(texts), ((bucket, _finish(self.task, self.session.run(None, feed)[0][:len(bucket)],
                                                     feed["attention_mask"][:len(bucket)]))
                                    for bucket, feed in self.feeds(texts)))


class OnnxTextModel(TokenizedModel):
    """A model exported by ``llmpulse models fetch``, on ONNX Runtime.

    Args:
        model_dir: the model's folder in a models folder (``/models/minilm``).
        precision: ``fp32`` or ``int8`` (``bf16`` runs fp32: ONNX Runtime has no bf16 on a CPU).
        device: ``cpu`` or ``cuda`` / ``cuda:N``.
        threads: ONNX Runtime intra-op threads (None: its default, every core).
        batch_size: texts per run.

    Raises:
        ModelUnavailableError: onnxruntime/tokenizers missing, or the export is not there.
    """

    def __init__(self, model_dir: str | Path, *, precision: str = "int8", device: str = "cpu",
                 threads: int | None = None, batch_size: int = 32) -> None:
        precision = "fp32" if precision == "bf16" else precision
        file = Path(model_dir) / (ONNX_INT8 if precision == "int8" else ONNX_FP32)
        if not file.is_file():
            raise ModelUnavailableError(str(file), "no ONNX export; run llmpulse models fetch (with torch) "
                                        "or llmpulse models export")
        super().__init__(model_dir, precision=precision, batch_size=batch_size)
        try:
            import onnxruntime
        except ImportError:
            raise ModelUnavailableError("onnxruntime", f"not installed: {INSTALL_ONNX}") from None
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        # Idle pool threads sleep rather than spin: a worker shares its cores with its own
        # consumer and light scorers (2 threads on a busy 2-core machine: +20% texts/s).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda"):
            index = device.partition(":")[2] or "0"
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": int(index)}))  # type: ignore[arg-type]
            if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
                logger.warning("%s: device %s asked, but this onnxruntime has no CUDA provider "
                               "(install onnxruntime-gpu); running on the CPU", self.model_dir.name, device)
                providers = ["CPUExecutionProvider"]
        try:
            self.session = onnxruntime.InferenceSession(str(file), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own error types
            raise ModelUnavailableError(str(file), f"{type(exc).__name__}: {exc}") from None
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.provider = self.session.get_providers()[0]
        if precision == "int8" and self.provider == "CPUExecutionProvider" and amx_tiles():
            logger.info("%s: int8 matrix products on AMX tiles", self.model_dir.name)
        if precision == "int8":
            _warn_if_stale_int8(self.model_dir)


class TorchTextModel:
    """A Detoxify checkpoint, or a transformers sequence classifier, from a models folder,
    on torch, with the same bucketing.

    Args:
        model_dir: the model's folder (``/models/detoxify-original``: a ``*.ckpt`` and its
            ``base/``; ``/models/deberta-injection``: a transformers folder).
    """

    def __init__(self, model_dir: str | Path, *, device: str = "cpu", threads: int | None = None,
                 batch_size: int = 32) -> None:
        from llmpulse.processors.models.export import (
            load_classifier_torch,
            load_detoxify_torch,
            max_tokens_of,
        )

        self.model_dir = Path(model_dir)
        checkpoints = sorted(self.model_dir.glob("*.ckpt"))
        if not checkpoints and not (self.model_dir / "config.json").is_file():
            raise ModelUnavailableError(str(self.model_dir), "no Detoxify checkpoint (*.ckpt) nor a "
                                        "transformers config.json in it")
        try:
            import torch
        except ImportError:
            raise ModelUnavailableError("torch", f"not installed: {INSTALL_ML}") from None

        if threads:
            torch.set_num_threads(threads)
        if checkpoints:
            self.model, self.tokenizer, self.classes = load_detoxify_torch(
                checkpoints[0], self.model_dir / "base", device)
            self.task = "multi-label"
            self.max_tokens = max_tokens_of(self.model_dir / "base")
        else:
            self.model, self.tokenizer, self.classes = load_classifier_torch(self.model_dir, device)
            self.task = "single-label"
            self.max_tokens = max_tokens_of(self.model_dir)
        self.device = device
        self.batch_size = batch_size
        self.precision = "fp32"

    def run(self, texts: Sequence[str]) -> Any:
        """Probabilities, one row a text (``n x classes``): sigmoid (multi-label) or softmax."""
        import torch

        activate = torch.sigmoid if self.task == "multi-label" else (lambda t: torch.softmax(t, dim=-1))

        lengths = [len(ids) for ids in self.tokenizer(list(texts), truncation=True,
                                                      max_length=self.max_tokens)["input_ids"]]

        def run_bucket(bucket: list[int]) -> Any:
            inputs = self.tokenizer([texts[i] for i in bucket], return_tensors="pt", truncation=True,
                                    max_length=self.max_tokens, padding=True).to(self.device)
            with torch.no_grad():
                return activate(self.model(**inputs)[0]).float().cpu().numpy()

        return _gather(len(texts), ((b, run_bucket(b)) for b in length_buckets(lengths, self.batch_size)))
