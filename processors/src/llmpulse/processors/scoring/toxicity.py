"""Toxicity of answers (``toxicity``) and of user messages (``prompt_toxicity``).

The model is Detoxify when one is at hand, looked for in this order: the models folder
(``llmpulse models fetch``; ``scoring.toxicity.models_dir`` or ``$LLMPULSE_MODELS_DIR``),
on OpenVINO where it is installed (its int8 model made by the fetch, or by NNCF at first
load), else on ONNX Runtime where the fetch exported it, else on torch; a local checkpoint from the
configuration; the checkpoint Detoxify itself caches (``torch.hub`` cache, with the base
model's transformers files in the Hugging Face cache). Otherwise it is
``alt-profanity-check``, which ships its own small model. Every score names its backend
(``detoxify:original+openvino-int8``, ``detoxify:original+onnx-int8``, ``detoxify:original``,
``profanity-check``); with no
model, the score is ``unavailable`` and names what is missing. No number is ever emitted
that a model did not produce.

A Detoxify checkpoint is a ``torch.save`` of ``{"config": ..., "state_dict": ...}``; its
``config.arch.args.model_type`` and the ``huggingface_config_path`` setting must both be
a local folder holding the transformers config and tokenizer, or transformers tries to
reach the model hub.

Example:
    >>> from llmpulse.processors.config import ToxicityConfig
    >>> from llmpulse.processors.scoring.toxicity import ToxicityScorer
    >>> scorer = ToxicityScorer(ToxicityConfig(backend="profanity-check", batch_size=16))
    >>> scorer.batching.size, scorer.produces
    (16, ('toxicity', 'prompt_toxicity'))
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from llmpulse.processors.config import BatchSettings, ToxicityConfig
from llmpulse.processors.errors import INSTALL_ML, ModelUnavailableError
from llmpulse.processors.models.folder import configured_model_dir
from llmpulse.processors.models.runtime import TokenizedModel, length_buckets, top_label
from llmpulse.processors.scoring.base import hub_offline, last_user_text, not_applicable, unavailable
from llmpulse.schemas import EnrichedCall, ScoreResult

__all__ = ["DetoxifyModel", "FolderDetoxifyModel", "ProfanityCheckModel", "ToxicityModel", "ToxicityScorer",
           "cached_detoxify"]

logger = logging.getLogger(__name__)

_BASE_MODELS = {"original": "bert-base-uncased", "unbiased": "roberta-base",
                "multilingual": "xlm-roberta-base", "original-small": "albert-base-v2",
                "unbiased-small": "albert-base-v2"}


class ToxicityModel(Protocol):
    """A loaded toxicity model: ``predict`` returns ``(score, label)`` per text."""

    backend: str

    def predict(self, texts: list[str]) -> list[tuple[float, str | None]]: ...


class DetoxifyModel:
    """Detoxify loaded from a local checkpoint, through Detoxify's own loading code.

    Raises:
        ModelUnavailableError: detoxify is not installed or the checkpoint does not load.
    """

    def __init__(self, checkpoint: str, *, huggingface_config_path: str | None = None,
                 model_type: str = "original", name: str | None = None, device: str = "cpu",
                 threads: int | None = None, batch_size: int = 32) -> None:
        hub_offline()
        if not Path(checkpoint).is_file():
            raise ModelUnavailableError(f"Detoxify checkpoint {checkpoint}", "no such file")
        try:
            import torch
            from detoxify import Detoxify
        except ImportError:
            raise ModelUnavailableError("detoxify", f"not installed: {INSTALL_ML}") from None
        if threads:
            torch.set_num_threads(threads)
        try:
            self._model = Detoxify(model_type=model_type, checkpoint=checkpoint, device=device,
                                   huggingface_config_path=huggingface_config_path)
        except Exception as exc:  # torch, transformers and file errors alike
            raise ModelUnavailableError(f"Detoxify checkpoint {checkpoint}",
                                        f"{type(exc).__name__}: {exc}") from None
        self.classes: list[str] = list(self._model.class_names)
        self.batch_size = batch_size
        self.backend = f"detoxify:{name or Path(checkpoint).stem}"

    def predict(self, texts: list[str]) -> list[tuple[float, str | None]]:
        """Toxicity of each text, labelled with its most likely class when above 0.5; texts
        of similar length are batched together (Detoxify pads a batch to its longest)."""
        out: list[tuple[float, str | None]] = [(0.0, None)] * len(texts)
        for bucket in length_buckets([len(t) for t in texts], self.batch_size):
            raw: dict[str, Any] = self._model.predict([texts[i] for i in bucket])
            columns = {name: (v if isinstance(v, list) else [v]) for name, v in raw.items()}
            names = list(columns)
            for row, i in enumerate(bucket):
                out[i] = top_label(names, [columns[n][row] for n in names])
        return out


class FolderDetoxifyModel:
    """A Detoxify model from a models folder, on OpenVINO, ONNX Runtime or torch.

    Args:
        model_dir: ``<models>/detoxify-<type>``.
        runtime: ``openvino``, ``onnx`` (both from the fetch's export) or ``torch``.
        precision: the exported model's, ``int8``, ``bf16`` (OpenVINO; fp32 where the CPU has
            no bf16 and on ONNX Runtime) or ``fp32``.

    Raises:
        ModelUnavailableError: the export, the runtime or torch is missing.
    """

    def __init__(self, model_dir: Path, *, runtime: str, precision: str = "int8", device: str = "cpu",
                 threads: int | None = None, batch_size: int = 32) -> None:
        from llmpulse.processors.models.runtime import OnnxTextModel, TorchTextModel

        name = model_dir.name.removeprefix("detoxify-")
        self.runtime: OnnxTextModel | TorchTextModel | TokenizedModel
        if runtime == "torch":
            self.runtime = TorchTextModel(model_dir, device=device, threads=threads, batch_size=batch_size)
            self.backend = f"detoxify:{name}"
            where = f"torch {device}"
        else:
            if runtime == "openvino":
                from llmpulse.processors.models.openvino_backend import OpenVinoTextModel

                self.runtime = OpenVinoTextModel(model_dir, precision=precision, device=device,
                                                 threads=threads, batch_size=batch_size)
            else:
                self.runtime = OnnxTextModel(model_dir, precision=precision, device=device,
                                             threads=threads, batch_size=batch_size)
            self.backend = f"detoxify:{name}+{runtime}-{self.runtime.precision}"
            where = self.runtime.provider
        logger.info("toxicity: %s from %s on %s", self.backend, model_dir, where)

    def predict(self, texts: list[str]) -> list[tuple[float, str | None]]:
        """Toxicity of each text, labelled with its most likely class when above 0.5."""
        classes = self.runtime.classes
        return [top_label(classes, row) for row in self.runtime.run(texts)]


class ProfanityCheckModel:
    """alt-profanity-check: a linear model over character n-grams, shipped in the package."""

    backend = "profanity-check"

    def __init__(self) -> None:
        try:
            import profanity_check
        except ImportError:
            raise ModelUnavailableError("alt-profanity-check", f"not installed: {INSTALL_ML}") from None
        self._predict_prob = profanity_check.predict_prob

    def predict(self, texts: list[str]) -> list[tuple[float, str | None]]:
        """Probability that each text is offensive."""
        return [(float(p), "profanity" if p >= 0.5 else None) for p in self._predict_prob(texts)]


def cached_detoxify(model_type: str, *, torch_hub_dir: str | None = None,
                    hf_cache_dir: str | None = None) -> tuple[str, str] | None:
    """Detoxify's own cached checkpoint and the base model's cached transformers folder,
    when a user's machine has both (``(checkpoint, config_folder)``), else None.

    Args:
        model_type: ``original``, ``unbiased``, ``multilingual``, ``original-small``...
        torch_hub_dir: default ``torch.hub.get_dir()`` (``$TORCH_HOME/hub``).
        hf_cache_dir: default the Hugging Face hub cache (``$HF_HUB_CACHE``).
    """
    try:
        import torch
        from detoxify.detoxify import MODEL_URLS
        from huggingface_hub import snapshot_download
    except ImportError:
        return None
    url = MODEL_URLS.get(model_type)
    base = _BASE_MODELS.get(model_type)
    if url is None or base is None:
        return None
    checkpoint = Path(torch_hub_dir or torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
    if not checkpoint.is_file():
        return None
    try:
        folder = snapshot_download(base, local_files_only=True, cache_dir=hf_cache_dir)
    except Exception:  # not cached (the hub raises several kinds of errors)
        return None
    return str(checkpoint), folder


class ToxicityScorer:
    """Scores answers and user messages in micro-batches.

    Args:
        config: the scorer's settings (backend, checkpoint, batch size...).
        model: a loaded model to use instead of resolving one (tests, replay).
    """

    name = "toxicity"
    version = "1"
    produces = ("toxicity", "prompt_toxicity")

    def __init__(self, config: ToxicityConfig | None = None, *, model: ToxicityModel | None = None) -> None:
        self.config = config or ToxicityConfig()
        self.batching: BatchSettings | None = BatchSettings(size=self.config.batch_size,
                                                            max_wait_s=self.config.max_wait_s)
        self._model: ToxicityModel | None = model
        self._resolved = model is not None
        self._missing = ""
        self._fallback_reason: str | None = None

    @property
    def backend(self) -> str:
        """The backend in use (resolving the model if needed), or ``none``."""
        model = self.load()
        return model.backend if model is not None else "none"

    def load(self) -> ToxicityModel | None:
        """Resolve and load the model once; None when no model is available."""
        if self._resolved:
            return self._model
        self._resolved = True
        cfg = self.config
        reasons: list[str] = []
        folder = configured_model_dir(cfg.models_dir, f"detoxify-{cfg.model_type}")
        runtimes = {"auto": ["openvino", "onnx", "torch"], "openvino": ["openvino"], "onnx": ["onnx"],
                    "detoxify": ["torch"]}.get(cfg.backend, [])
        if cfg.backend == "auto" and cfg.device.startswith("cuda"):
            runtimes.remove("openvino")  # OpenVINO has no CUDA device
        if folder is not None and runtimes:
            for runtime in runtimes:
                try:
                    self._model = FolderDetoxifyModel(folder, runtime=runtime, precision=cfg.precision,
                                                      device=cfg.device, threads=cfg.threads,
                                                      batch_size=cfg.batch_size)
                    break
                except ModelUnavailableError as exc:
                    reasons.append(str(exc))
                    if cfg.backend == "auto" and runtime != "torch":
                        log = logger.info if exc.reason.startswith("not installed") else logger.warning
                        log("toxicity: not on %s: %s", runtime, exc)
        elif cfg.backend in ("onnx", "openvino"):
            reasons.append(f"no detoxify-{cfg.model_type} in a models folder (scoring.toxicity.models_dir or "
                           f"$LLMPULSE_MODELS_DIR); run llmpulse models fetch detoxify-{cfg.model_type}")
        if self._model is None and cfg.backend in ("auto", "detoxify"):
            try:
                self._model = self._load_detoxify()
            except ModelUnavailableError as exc:
                reasons.append(str(exc))
                logger.warning("toxicity: Detoxify unavailable: %s", exc)
            if self._model is None and not reasons:
                reasons.append(f"no Detoxify model: none in a models folder (llmpulse models fetch "
                               f"detoxify-{cfg.model_type}, then scoring.toxicity.models_dir or "
                               f"$LLMPULSE_MODELS_DIR), no checkpoint configured "
                               f"(scoring.toxicity.checkpoint) and none cached for model {cfg.model_type!r}")
        if self._model is None and cfg.backend in ("auto", "profanity-check"):
            try:
                self._model = ProfanityCheckModel()
                if reasons:
                    self._fallback_reason = "fallback: " + "; ".join(reasons)
                    logger.warning("toxicity: using alt-profanity-check (%s)", "; ".join(reasons))
            except ModelUnavailableError as exc:
                reasons.append(str(exc))
        if self._model is None:
            self._missing = "; ".join(reasons)
            logger.error("toxicity: no model available, scores will be 'unavailable': %s", self._missing)
        else:
            logger.info("toxicity: backend %s", self._model.backend)
        return self._model

    def _load_detoxify(self) -> ToxicityModel | None:
        cfg = self.config
        if cfg.checkpoint:
            return DetoxifyModel(cfg.checkpoint, huggingface_config_path=cfg.huggingface_config_path,
                                 device=cfg.device, threads=cfg.threads, batch_size=cfg.batch_size)
        cached = cached_detoxify(cfg.model_type)
        if cached is None:
            return None
        checkpoint, folder = cached
        return DetoxifyModel(checkpoint, huggingface_config_path=folder, model_type=cfg.model_type,
                             name=cfg.model_type, device=cfg.device, threads=cfg.threads,
                             batch_size=cfg.batch_size)

    def score(self, calls: Sequence[EnrichedCall]) -> list[list[ScoreResult]]:
        """Score a micro-batch: one model call for the batch, each distinct text scored once."""
        model = self.load()
        index: dict[str, int] = {}
        slots: list[list[tuple[str, int | str]]] = []
        cap = self.config.max_chars
        for call in calls:
            wanted: list[tuple[str, int | str]] = []
            response = call.response
            if response is not None and response.text and response.text.strip():
                wanted.append(("toxicity", index.setdefault(response.text[:cap], len(index))))
            else:
                wanted.append(("toxicity", "no answer text"))
            if self.config.score_prompts:
                question = last_user_text(call.prompt)
                if question.strip():
                    wanted.append(("prompt_toxicity", index.setdefault(question[:cap], len(index))))
                else:
                    wanted.append(("prompt_toxicity", "no user message"))
            slots.append(wanted)
        if model is None:
            detail = f"no toxicity model: {self._missing}"
            return [[unavailable(n, self.version, "none", detail) for n, _ in wanted] for wanted in slots]
        values: list[tuple[float, str | None]] = []
        error: str | None = None
        if index:
            try:
                values = model.predict(list(index))
            except Exception as exc:  # a model failure must not stop the stream
                error = f"{model.backend} failed: {type(exc).__name__}: {exc}"
                logger.exception("toxicity: %s on a batch of %d texts", model.backend, len(index))
        out = []
        for wanted in slots:
            results = []
            for name, slot in wanted:
                if isinstance(slot, str):
                    results.append(not_applicable(name, self.version, model.backend, slot))
                elif error is not None:
                    results.append(ScoreResult(name=name, scorer_version=self.version,
                                               backend=model.backend, status="error", detail=error))
                else:
                    value, label = values[slot]
                    results.append(ScoreResult(name=name, scorer_version=self.version,
                                               backend=model.backend, value=value, label=label,
                                               detail=self._fallback_reason))
            out.append(results)
        return out
